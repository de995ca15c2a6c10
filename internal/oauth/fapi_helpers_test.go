package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/consentgate/consentgate/internal/purpose"
)

// testKey is a client's signing key (client assertions or DPoP proofs).
type testKey struct {
	priv crypto.Signer
	alg  jose.SignatureAlgorithm
	kid  string
}

func newKey(t testing.TB, alg jose.SignatureAlgorithm) *testKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.PS256, jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("no test key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{priv: priv, alg: alg, kid: "k-" + randomToken(6)}
}

func (k *testKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Use: "sig"}
}

func jwksOf(t testing.TB, keys ...*testKey) []byte {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.public())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (k *testKey) thumbprint(t testing.TB) string {
	t.Helper()
	pub := k.public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// sign makes a compact JWS of claims; embed puts the public key in the jwk
// header (DPoP) instead of its kid (client assertions).
func (k *testKey) sign(t testing.TB, typ string, embed bool, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	if embed {
		opts.EmbedJWK = true
	} else {
		opts = opts.WithHeader(jose.HeaderKey("kid"), k.kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// unsigned builds a JWS by hand: alg "none" (empty signature) or HS256
// keyed with secret.
func unsigned(header, claims map[string]any, secret []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	if secret == nil {
		return in + "."
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// assertionClaims are valid private_key_jwt claims for clientID at now.
func assertionClaims(clientID, aud string, now time.Time) map[string]any {
	return map[string]any{"iss": clientID, "sub": clientID, "aud": aud, "jti": randomToken(12),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
}

// proofClaims are valid DPoP proof claims.
func proofClaims(method, htu, nonce, token string, now time.Time) map[string]any {
	c := map[string]any{"jti": randomToken(12), "htm": method, "htu": htu, "iat": now.Unix()}
	if nonce != "" {
		c["nonce"] = nonce
	}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		c["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return c
}

// pkjwtClient is a private_key_jwt client of the test env, with a DPoP key
// when registered for DPoP.
type pkjwtClient struct {
	e    *env
	id   string
	key  *testKey
	dpop *testKey
}

const testIssuer = "https://as.example"

// newPKJWTClient registers a private_key_jwt client for the code flow.
func (e *env) newPKJWTClient(dpop bool) *pkjwtClient {
	e.t.Helper()
	c := &pkjwtClient{e: e, id: "pk-" + randomToken(6), key: newKey(e.t, jose.ES256)}
	if dpop {
		c.dpop = newKey(e.t, jose.ES256)
	}
	data := []string{purpose.ScopeAccounts, purpose.ScopeBalances, purpose.ScopeTransactions, purpose.ScopeOffline}
	_, secret, err := e.p.CreateClient(context.Background(), ClientSpec{ID: c.id, Name: "Key App", RedirectURIs: []string{appRedirect},
		Scopes: data, Purposes: []string{"personal_finance_management"}, AuthMethod: AuthPrivateKeyJWT,
		JWKS: jwksOf(e.t, c.key), DPoP: dpop})
	if err != nil || secret != "" {
		e.t.Fatalf("register: %q %v", secret, err)
	}
	return c
}

// flow is the app flow for this client.
func (c *pkjwtClient) flow() *flow {
	f := appFlow()
	f.clientID, f.secret, f.scope = c.id, "", "accounts:read offline_access"
	return f
}

// assertion is a fresh valid client assertion for the issuer.
func (c *pkjwtClient) assertion() string {
	return c.key.sign(c.e.t, "JWT", false, assertionClaims(c.id, testIssuer, c.e.clock.Now()))
}

// proof is a fresh valid DPoP proof with the server's current nonce.
func (c *pkjwtClient) proof(method, path, token string) string {
	return c.dpop.sign(c.e.t, dpopProofType, true, proofClaims(method, testIssuer+path, c.e.p.DPoPNonce(), token, c.e.clock.Now()))
}

// post sends form to path with a client assertion and, when proof is not
// "", a DPoP header.
func (c *pkjwtClient) post(path string, form url.Values, proof string) *httptest.ResponseRecorder {
	form = cloneValues(form)
	form.Set("client_assertion_type", assertionTypeJWTBearer)
	form.Set("client_assertion", c.assertion())
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return c.e.do(req)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// code runs PAR (with proof, when not ""), authorize and alice's approval.
func (c *pkjwtClient) code(f *flow, parProof string) string {
	c.e.t.Helper()
	rec := c.post("/oauth2/par", f.parForm(), parProof)
	if rec.Code != http.StatusCreated {
		c.e.t.Fatalf("PAR: %d %s", rec.Code, rec.Body)
	}
	uri, _ := jsonBody(c.e.t, rec)["request_uri"].(string)
	loc := c.e.finish(c.e.challenge(f.clientID, uri), Decision{Approve: true, CustomerID: custAlice, AccountIDs: []string{accAlice1}})
	code := loc.Query().Get("code")
	if code == "" {
		c.e.t.Fatalf("no code in %s", loc)
	}
	return code
}

func (c *pkjwtClient) exchange(f *flow, code, proof string) *httptest.ResponseRecorder {
	return c.post("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {f.redirect}, "code_verifier": {f.verifier}}, proof)
}

// resource authenticates a data API call with the given Authorization
// header and DPoP proof.
func (e *env) resource(authz, proof string) (*Access, error) {
	req := httptest.NewRequest(http.MethodGet, "/v1/accounts", nil)
	req.Header.Set("Authorization", authz)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return e.p.AuthenticateAccess(context.Background(), req)
}
