package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"github.com/consentgate/consentgate/internal/purpose"
)

// Fuzz targets for everything the authorization server parses from a
// client: the PAR and token forms (through the real gin handlers, fosite
// included), client assertions and DPoP proofs. Each asserts what the
// answer must be, not only that nothing panicked.

// tokenErrors are the error codes the token and PAR endpoints document
// (RFC 6749 §5.2, RFC 9126 §2.3, RFC 9449 §12.2, openapi.yaml).
var tokenErrors = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true, "unauthorized_client": true,
	"unsupported_grant_type": true, "invalid_scope": true, "unsupported_response_type": true,
	ErrCodeInvalidDPoPProof: true, ErrCodeUseDPoPNonce: true,
}

// fuzzEnv is newEnv for a fuzz target: one provider on SQLite per worker.
func fuzzEnv(f *testing.F) *env {
	gin.SetMode(gin.TestMode)
	db := openSQLite(f)
	seedPeople(f, db)
	e := &env{clock: newClock(), events: &eventLog{}}
	e.p = newTestProvider(f, db, e.clock, e.events)
	r := gin.New()
	e.p.Register(r)
	e.h = r
	return e
}

// repeats reports whether a form body names a parameter twice.
func repeats(body string) bool {
	v, err := url.ParseQuery(body)
	if err != nil {
		return false
	}
	for _, vals := range v {
		if len(vals) > 1 {
			return true
		}
	}
	return false
}

// wantDocumentedError checks a refusal: a 4xx JSON object whose error is
// one of tokenErrors.
func wantDocumentedError(t *testing.T, rec *httptest.ResponseRecorder, input string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if rec.Code < 400 || rec.Code >= 500 {
		t.Fatalf("status %d for %q: %s", rec.Code, input, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !tokenErrors[e.Error] {
		t.Fatalf("undocumented error for %q: %d %s", input, rec.Code, rec.Body)
	}
}

// FuzzTokenForm: whatever form reaches POST /oauth2/token, the answer is a
// documented 4xx OAuth error, except a client_credentials request by the
// auditor, the one grant a body alone can win here (no code or refresh
// token can be guessed). A repeated parameter is always invalid_request.
func FuzzTokenForm(f *testing.F) {
	for _, s := range []string{
		"grant_type=client_credentials", "grant_type=client_credentials&scope=audit:read",
		"grant_type=client_credentials&scope=audit:read&scope=audit:read", "grant_type=authorization_code&code=abc&code_verifier=x",
		"grant_type=refresh_token&refresh_token=ory_rt_x.y", "grant_type=password&username=a&password=b",
		"grant_type=client_credentials&client_secret=x", "grant_type=%00", "grant_type=client_credentials&client_id=%ff",
		"client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=a.b.c&grant_type=client_credentials",
		"", "&&&", "a=%zz", "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=x",
	} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(2))
	}
	e := fuzzEnv(f)
	creds := [][2]string{{}, {appID, appSecret}, {auditorID, auditorSec}, {appID, "wrong"}}
	f.Fuzz(func(t *testing.T, body string, who uint8) {
		c := creds[int(who)%len(creds)]
		req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if c[0] != "" {
			req.SetBasicAuth(c[0], c[1])
		}
		rec := e.do(req)
		if rec.Code == http.StatusOK {
			var tok struct {
				AccessToken  string `json:"access_token"`
				RefreshToken string `json:"refresh_token"`
				ExpiresIn    int    `json:"expires_in"`
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &tok)
			form, _ := url.ParseQuery(body)
			if c[0] != auditorID || form.Get("grant_type") != GrantClientCredentials || repeats(body) ||
				tok.AccessToken == "" || tok.RefreshToken != "" || tok.ExpiresIn > 300 {
				t.Fatalf("tokens for %q as %q: %s", body, c[0], rec.Body)
			}
			return
		}
		wantDocumentedError(t, rec, body)
		if repeats(body) && rec.Code != http.StatusBadRequest {
			t.Fatalf("repeated parameter in %q answered %d: %s", body, rec.Code, rec.Body)
		}
	})
}

// FuzzPARForm: whatever form the app pushes, the answer is 201 with a
// request_uri of this server that expires within 60 s — only for a request
// with each parameter once, PKCE S256 and a purpose that is registered and
// never prohibited — or a documented 4xx OAuth error.
func FuzzPARForm(f *testing.F) {
	good := appFlow().parForm()
	f.Add(good.Encode())
	for _, mod := range []func(url.Values){
		func(v url.Values) { v.Set("purpose", "advertising") },
		func(v url.Values) { v.Set("purpose", "ADVERTISING") },
		func(v url.Values) { v.Set("code_challenge_method", "plain") },
		func(v url.Values) { v.Add("scope", "payments:write") },
		func(v url.Values) { v.Set("consent_duration", "-1") },
		func(v url.Values) { v.Set("consent_duration", "99999999999999999999") },
		func(v url.Values) { v.Set("grant_management_action", "replace"); v.Set("grant_id", "nope") },
		func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:8766/callback") },
		func(v url.Values) { v.Set("request", "eyJ.eyJ.") },
		func(v url.Values) { v.Set("dpop_jkt", "abc") },
		func(v url.Values) { v.Set("state", "\x00") },
		func(v url.Values) { v.Del("purpose") },
	} {
		v := appFlow().parForm()
		mod(v)
		f.Add(v.Encode())
	}
	e := fuzzEnv(f)
	tab := purpose.Default()
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/oauth2/par", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(appID, appSecret)
		rec := e.do(req)
		if rec.Code != http.StatusCreated {
			wantDocumentedError(t, rec, body)
			return
		}
		var out struct {
			RequestURI string `json:"request_uri"`
			ExpiresIn  int    `json:"expires_in"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		form, _ := url.ParseQuery(body)
		p := form.Get("purpose")
		if _, known := tab.Lookup(p); !strings.HasPrefix(out.RequestURI, requestURIPrefix) || out.ExpiresIn <= 0 ||
			out.ExpiresIn > 60 || repeats(body) || purpose.IsProhibited(p) || !known || form.Get("code_challenge_method") != "S256" {
			t.Fatalf("PAR %q accepted: %s", body, rec.Body)
		}
	})
}

// FuzzClientAssertion: any string sent as a client assertion is refused
// with invalid_client and never a server error; a valid one authenticates
// its own client exactly once (its jti is spent).
func FuzzClientAssertion(f *testing.F) {
	e := fuzzEnv(f)
	key := newKey(f, jose.ES256)
	const id = "pk-fuzz"
	if _, _, err := e.p.CreateClient(context.Background(), ClientSpec{ID: id, Name: "Key App", RedirectURIs: []string{appRedirect},
		Scopes: []string{purpose.ScopeAccounts}, Purposes: []string{"personal_finance_management"}, AuthMethod: AuthPrivateKeyJWT,
		JWKS: jwksOf(f, key)}); err != nil {
		f.Fatal(err)
	}
	now := e.clock.Now()
	f.Add(key.sign(f, "JWT", false, assertionClaims(id, testIssuer, now)))
	f.Add(key.sign(f, "JWT", false, assertionClaims(id, "https://elsewhere.example", now)))
	f.Add(key.sign(f, "JWT", false, map[string]any{"iss": id, "sub": id, "aud": testIssuer, "jti": "j"}))
	f.Add(unsigned(map[string]any{"alg": "none", "kid": key.kid}, assertionClaims(id, testIssuer, now), nil))
	f.Add(unsigned(map[string]any{"alg": "HS256", "kid": key.kid}, assertionClaims(id, testIssuer, now), []byte("public-key-as-secret")))
	f.Add(newKey(f, jose.ES256).sign(f, "JWT", false, assertionClaims(id, testIssuer, now)))
	f.Add("eyJhbGciOiJFUzI1NiJ9.e30.")
	f.Add("a.b.c.d.e")
	f.Add("")
	f.Fuzz(func(t *testing.T, assertion string) {
		form := url.Values{"client_assertion_type": {assertionTypeJWTBearer}, "client_assertion": {assertion}}
		auth := func() (fosite.Client, error) {
			return e.p.authenticatePrivateKeyJWT(context.Background(), httptest.NewRequest(http.MethodPost, "/oauth2/token", nil), form)
		}
		c, err := auth()
		if err != nil {
			wantClientError(t, err, assertion)
			return
		}
		if c.GetID() != id {
			t.Fatalf("assertion %q authenticated %q", assertion, c.GetID())
		}
		if _, err := auth(); err == nil || !strings.Contains(fosite.ErrorToRFC6749Error(err).GetDescription(), "already used") {
			t.Fatalf("assertion %q accepted twice (err %v)", assertion, err)
		}
	})
}

func wantClientError(t *testing.T, err error, input string) {
	t.Helper()
	var re *fosite.RFC6749Error
	if !errors.As(err, &re) || re.ErrorField != "invalid_client" {
		t.Fatalf("assertion %q: %v, want invalid_client", input, err)
	}
}

// FuzzDPoPProof: any DPoP header is refused as invalid_dpop_proof or
// use_dpop_nonce (never another error); a valid proof gives its key's
// RFC 7638 thumbprint and works exactly once.
func FuzzDPoPProof(f *testing.F) {
	e := fuzzEnv(f)
	key := newKey(f, jose.ES256)
	now := e.clock.Now()
	htu := testIssuer + "/oauth2/token"
	nonce := e.p.DPoPNonce()
	f.Add(key.sign(f, dpopProofType, true, proofClaims("POST", htu, nonce, "", now)))
	f.Add(key.sign(f, dpopProofType, true, proofClaims("POST", htu, "", "", now)))
	f.Add(key.sign(f, dpopProofType, true, proofClaims("GET", htu, nonce, "", now)))
	f.Add(key.sign(f, dpopProofType, true, proofClaims("POST", htu+"?x=1#f", nonce, "tok", now)))
	f.Add(key.sign(f, "JWT", true, proofClaims("POST", htu, nonce, "", now)))
	f.Add(key.sign(f, dpopProofType, false, proofClaims("POST", htu, nonce, "", now)))
	f.Add(newKey(f, jose.EdDSA).sign(f, dpopProofType, true, map[string]any{"jti": "j", "htm": "POST", "htu": htu,
		"iat": json.Number("1e400"), "nonce": nonce}))
	f.Add(unsigned(map[string]any{"alg": "none", "typ": dpopProofType}, proofClaims("POST", htu, nonce, "", now), nil))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","typ":"dpop+jwt","jwk":{"kty":"EC"}}`)) + ".e30.AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, proof string) {
		check := func() (string, error) {
			req := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
			req.Header.Set("DPoP", proof)
			return e.p.checkDPoP(context.Background(), req, htu, "")
		}
		jkt, err := check()
		if err != nil {
			var de *dpopError
			if !errors.As(err, &de) || (de.code != ErrCodeInvalidDPoPProof && de.code != ErrCodeUseDPoPNonce) || de.desc == "" {
				t.Fatalf("proof %q: %v, want a DPoP error", proof, err)
			}
			return
		}
		if raw, derr := base64.RawURLEncoding.DecodeString(jkt); derr != nil || len(raw) != 32 {
			t.Fatalf("proof %q: thumbprint %q", proof, jkt)
		}
		if _, err := check(); err == nil || !strings.Contains(err.Error(), "already used") {
			t.Fatalf("proof %q accepted twice (err %v)", proof, err)
		}
	})
}
