package oauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// introspectWith authenticates at the introspection endpoint with an
// assertion (and Basic credentials when basic is set).
func (e *env) introspectWith(assertion string, form url.Values, basic bool) *httptest.ResponseRecorder {
	if form == nil {
		form = url.Values{}
	}
	form.Set("token", "no-such-token")
	if assertion != "" {
		if form.Get("client_assertion_type") == "" {
			form.Set("client_assertion_type", assertionTypeJWTBearer)
		}
		form.Set("client_assertion", assertion)
	}
	req := httptest.NewRequest(http.MethodPost, "/oauth2/introspect", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(appID, appSecret)
	}
	return e.do(req)
}

// TestPrivateKeyJWT pins RFC 7523 §3 and FAPI 2.0 §5.3.2.1 client
// authentication: each row is one assertion, accepted or refused with
// invalid_client and a hint naming the rule.
func TestPrivateKeyJWT(t *testing.T) {
	e := newEnv(t)
	es, ps, ed := newKey(t, jose.ES256), newKey(t, jose.PS256), newKey(t, jose.EdDSA)
	const id = "keyed"
	if _, _, err := e.p.CreateClient(context.Background(), ClientSpec{ID: id, Name: "Keyed", GrantTypes: []string{GrantClientCredentials},
		Scopes: []string{ScopeAuditRead}, AuthMethod: AuthPrivateKeyJWT, JWKS: jwksOf(t, es, ps, ed)}); err != nil {
		t.Fatal(err)
	}
	rs := newKey(t, jose.RS256)
	stranger := newKey(t, jose.ES256)
	stranger.kid = es.kid // same kid, other key: a forged assertion
	now := e.clock.Now()
	pubJSON, _ := json.Marshal(es.public())

	claims := func(mod func(map[string]any)) map[string]any {
		c := assertionClaims(id, testIssuer, now)
		if mod != nil {
			mod(c)
		}
		return c
	}
	replayed := es.sign(t, "JWT", false, claims(nil))
	cases := []struct {
		name      string
		assertion string
		form      url.Values
		basic     bool
		hint      string // "" = accepted
	}{
		{name: "ES256 with aud=issuer", assertion: es.sign(t, "JWT", false, claims(nil))},
		{name: "PS256", assertion: ps.sign(t, "JWT", false, claims(nil))},
		{name: "EdDSA", assertion: ed.sign(t, "JWT", false, claims(nil))},
		{name: "aud=token endpoint (SPEC §2)", assertion: es.sign(t, "JWT", false, claims(func(c map[string]any) { c["aud"] = testIssuer + "/oauth2/token" }))},
		{name: "aud=this endpoint, as an array", assertion: es.sign(t, "JWT", false, claims(func(c map[string]any) { c["aud"] = []string{testIssuer + "/oauth2/introspect"} }))},
		{name: "first use of a jti", assertion: replayed},
		{name: "replayed jti", assertion: replayed, hint: "already used"},
		{name: "aud of another server", assertion: es.sign(t, "JWT", false, claims(func(c map[string]any) { c["aud"] = "https://evil.example" })), hint: "aud"},
		{name: "expired", assertion: es.sign(t, "JWT", false, claims(func(c map[string]any) { c["exp"] = now.Add(-time.Second).Unix() })), hint: "expired"},
		{name: "no exp", assertion: es.sign(t, "JWT", false, claims(func(c map[string]any) { delete(c, "exp") })), hint: "exp"},
		{name: "exp an hour ahead", assertion: es.sign(t, "JWT", false, claims(func(c map[string]any) { c["exp"] = now.Add(time.Hour).Unix() })), hint: "too far ahead"},
		{name: "iat in the future", assertion: es.sign(t, "JWT", false, claims(func(c map[string]any) { c["iat"] = now.Add(2 * time.Minute).Unix() })), hint: "iat"},
		{name: "nbf in the future", assertion: es.sign(t, "JWT", false, claims(func(c map[string]any) { c["nbf"] = now.Add(2 * time.Minute).Unix() })), hint: "nbf"},
		{name: "no jti", assertion: es.sign(t, "JWT", false, claims(func(c map[string]any) { delete(c, "jti") })), hint: "jti"},
		{name: "sub is not iss", assertion: es.sign(t, "JWT", false, claims(func(c map[string]any) { c["sub"] = appID })), hint: "iss and sub"},
		{name: "unknown client", assertion: es.sign(t, "JWT", false, claims(func(c map[string]any) { c["iss"], c["sub"] = "nobody", "nobody" })), hint: "failed"},
		{name: "client registered for client_secret_basic", assertion: es.sign(t, "JWT", false, claims(func(c map[string]any) { c["iss"], c["sub"] = appID, appID })), hint: "client_secret_basic"},
		{name: "signed by an unregistered key with a registered kid", assertion: stranger.sign(t, "JWT", false, claims(nil)), hint: "does not verify"},
		{name: "RS256", assertion: rs.sign(t, "JWT", false, claims(nil)), hint: "PS256, ES256, EdDSA"},
		{name: "alg none", assertion: unsigned(map[string]any{"alg": "none"}, claims(nil), nil), hint: "PS256, ES256, EdDSA"},
		{name: "HS256 keyed with the public key", assertion: unsigned(map[string]any{"alg": "HS256", "kid": es.kid}, claims(nil), pubJSON), hint: "PS256, ES256, EdDSA"},
		{name: "garbage", assertion: "not.a.jwt", hint: "compact JWS"},
		{name: "client_id parameter of another client", assertion: es.sign(t, "JWT", false, claims(nil)), form: url.Values{"client_id": {appID}}, hint: "does not match"},
		{name: "wrong assertion type", assertion: es.sign(t, "JWT", false, claims(nil)), form: url.Values{"client_assertion_type": {"urn:x"}}, hint: "client_assertion_type"},
		{name: "assertion and HTTP Basic at once", assertion: es.sign(t, "JWT", false, claims(nil)), basic: true, hint: "one client authentication method"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{}
			for k, v := range tc.form {
				form[k] = v
			}
			rec := e.introspectWith(tc.assertion, form, tc.basic)
			if tc.hint == "" {
				if rec.Code != http.StatusOK || jsonBody(t, rec)["active"] != false {
					t.Fatalf("accepted assertion refused: %d %s", rec.Code, rec.Body)
				}
				return
			}
			m := wantOAuthError(t, rec, http.StatusUnauthorized, "invalid_client")
			if d, _ := m["error_description"].(string); !strings.Contains(d, tc.hint) {
				t.Fatalf("error_description %q does not mention %q", d, tc.hint)
			}
		})
	}
}

// TestPrivateKeyJWTEveryEndpoint: the same assertion rules hold at PAR,
// the token endpoint, revocation and grant management (query parameters).
func TestPrivateKeyJWTEveryEndpoint(t *testing.T) {
	e := newEnv(t)
	c := e.newPKJWTClient(false)
	f := c.flow()
	tok := e.tokens(c.exchange(f, c.code(f, ""), ""))
	if tok.TokenType != "bearer" || tok.GrantID == "" {
		t.Fatalf("tokens %+v", tok)
	}
	if rec := c.post("/oauth2/revoke", url.Values{"token": {tok.AccessToken}}, ""); rec.Code != http.StatusOK {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
	}
	grant := func(assertion string) int {
		q := url.Values{"client_assertion_type": {assertionTypeJWTBearer}, "client_assertion": {assertion}}
		return e.do(httptest.NewRequest(http.MethodGet, "/oauth2/grants/"+tok.GrantID+"?"+q.Encode(), nil)).Code
	}
	a := c.key.sign(t, "JWT", false, assertionClaims(c.id, testIssuer+"/oauth2/grants", e.clock.Now()))
	if got := grant(a); got != http.StatusOK {
		t.Fatalf("grant read with an assertion: %d", got)
	}
	if got := grant(a); got != http.StatusUnauthorized {
		t.Fatalf("grant read with a replayed assertion: %d", got)
	}
	// A basic-auth client's secret does not open a private_key_jwt client's grant.
	req := httptest.NewRequest(http.MethodGet, "/oauth2/grants/"+tok.GrantID, nil)
	req.SetBasicAuth(c.id, "guess")
	if rec := e.do(req); rec.Code != http.StatusUnauthorized {
		t.Fatalf("basic auth for a private_key_jwt client: %d", rec.Code)
	}
}

// TestJWKSURI: keys published at a jwks_uri are fetched, cached, and
// fetched again when an unknown kid shows up (key rotation).
func TestJWKSURI(t *testing.T) {
	e := newEnv(t)
	old, rotated := newKey(t, jose.ES256), newKey(t, jose.EdDSA)
	var current atomic.Value
	current.Store(jwksOf(t, old))
	var fetches atomic.Int32
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(current.Load().([]byte))
	}))
	defer keys.Close()
	const id = "uri-client"
	if _, _, err := e.p.CreateClient(context.Background(), ClientSpec{ID: id, Name: "URI", GrantTypes: []string{GrantClientCredentials},
		Scopes: []string{ScopeAuditRead}, AuthMethod: AuthPrivateKeyJWT, JWKSURI: keys.URL + "/jwks.json"}); err != nil {
		t.Fatal(err)
	}
	use := func(k *testKey) int {
		return e.introspectWith(k.sign(t, "JWT", false, assertionClaims(id, testIssuer, e.clock.Now())), nil, false).Code
	}
	for range 3 {
		if got := use(old); got != http.StatusOK {
			t.Fatalf("assertion with the published key: %d", got)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for three assertions, want 1 (cached)", n)
	}
	current.Store(jwksOf(t, rotated))
	e.clock.Advance(jwksMinRefetch + time.Second)
	if got := use(rotated); got != http.StatusOK {
		t.Fatalf("assertion with the rotated key: %d", got)
	}
	if got := use(old); got != http.StatusUnauthorized {
		t.Fatalf("assertion with the retired key: %d", got)
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (one refetch for the new kid, none for the retired)", n)
	}
}

// TestRegisterKeys: a private_key_jwt registration holds public signing
// keys this server can verify, and nothing else.
func TestRegisterKeys(t *testing.T) {
	e := newEnv(t)
	es := newKey(t, jose.ES256)
	priv, _ := json.Marshal(jose.JSONWebKey{Key: es.priv, KeyID: "p"})
	small := `{"keys":[{"kty":"RSA","n":"` + strings.Repeat("A", 170) + `","e":"AQAB"}]}`
	withAlg := func(alg string) []byte {
		k := es.public()
		k.Algorithm = alg
		b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k}})
		return b
	}
	cases := []struct {
		name string
		spec ClientSpec
		want string
	}{
		{"private key in the JWKS", ClientSpec{JWKS: []byte(`{"keys":[` + string(priv) + `]}`)}, "public"},
		{"symmetric key", ClientSpec{JWKS: []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`)}, "public"},
		{"RSA under 2048 bits", ClientSpec{JWKS: []byte(small)}, "2048"},
		{"key marked RS256", ClientSpec{JWKS: withAlg("RS256")}, "alg"},
		{"empty set", ClientSpec{JWKS: []byte(`{"keys":[]}`)}, "between 1"},
		{"no keys at all", ClientSpec{}, "public keys"},
		{"JWKS and jwks_uri", ClientSpec{JWKS: jwksOf(t, es), JWKSURI: "https://app.example/jwks"}, "not both"},
		{"plain http jwks_uri", ClientSpec{JWKSURI: "http://app.example/jwks"}, "https"},
		{"a secret", ClientSpec{JWKS: jwksOf(t, es), Secret: "s"}, "no secret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.Name, spec.GrantTypes, spec.Scopes, spec.AuthMethod = "X", []string{GrantClientCredentials}, []string{ScopeAuditRead}, AuthPrivateKeyJWT
			_, _, err := e.p.CreateClient(context.Background(), spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	_, _, err := e.p.CreateClient(context.Background(), ClientSpec{Name: "B", GrantTypes: []string{GrantClientCredentials},
		Scopes: []string{ScopeAuditRead}, JWKS: jwksOf(t, es)})
	if err == nil {
		t.Fatal("a client_secret_basic client registered with a JWKS")
	}
	id, secret, err := e.p.CreateClient(context.Background(), ClientSpec{Name: "Good", GrantTypes: []string{GrantClientCredentials},
		Scopes: []string{ScopeAuditRead}, AuthMethod: AuthPrivateKeyJWT, JWKS: withAlg("ES256"), DPoP: true})
	if err != nil || id == "" || secret != "" {
		t.Fatalf("good registration: %q %q %v", id, secret, err)
	}
}
