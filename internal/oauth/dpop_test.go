package oauth

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// dpopTokens runs the code flow for a DPoP client (the code bound at PAR
// by a proof) and returns its tokens.
func dpopTokens(t *testing.T, e *env, c *pkjwtClient) tokens {
	t.Helper()
	f := c.flow()
	code := c.code(f, c.proof(http.MethodPost, "/oauth2/par", ""))
	return e.tokens(c.exchange(f, code, c.proof(http.MethodPost, "/oauth2/token", "")))
}

// TestDPoPBinding follows one DPoP-bound grant (RFC 9449 §5, §6, §7): the
// tokens are DPoP tokens bound to the key, introspection says so, the data
// API takes them only with a proof by that key, and refresh keeps them bound.
func TestDPoPBinding(t *testing.T) {
	e := newEnv(t)
	c := e.newPKJWTClient(true)
	tok := dpopTokens(t, e, c)
	if tok.TokenType != "DPoP" || tok.RefreshToken == "" {
		t.Fatalf("tokens %+v", tok)
	}
	jkt := c.dpop.thumbprint(t)
	intro := jsonBody(t, c.post("/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, ""))
	if cnf, _ := intro["cnf"].(map[string]any); intro["active"] != true || cnf["jkt"] != jkt || intro["token_type"] != "DPoP" {
		t.Fatalf("introspection %v, want cnf.jkt %s", intro, jkt)
	}
	if a, err := e.resource("DPoP "+tok.AccessToken, c.proof(http.MethodGet, "/v1/accounts", tok.AccessToken)); err != nil || a.CustomerID != custAlice {
		t.Fatalf("data call with token and proof: %+v %v", a, err)
	}

	// A stolen token is useless: as Bearer, or with a proof by another key.
	wantTokenError(t, e, "Bearer "+tok.AccessToken, "", "invalid_token", "DPoP")
	thief := newKey(t, jose.ES256)
	theft := thief.sign(t, dpopProofType, true, proofClaims(http.MethodGet, testIssuer+"/v1/accounts", e.p.DPoPNonce(), tok.AccessToken, e.clock.Now()))
	wantTokenError(t, e, "DPoP "+tok.AccessToken, theft, ErrCodeInvalidDPoPProof, "DPoP")

	// Refresh needs a proof by the same key and stays bound to it.
	refresh := url.Values{"grant_type": {GrantRefreshToken}, "refresh_token": {tok.RefreshToken}}
	stolen := thief.sign(t, dpopProofType, true, proofClaims(http.MethodPost, testIssuer+"/oauth2/token", e.p.DPoPNonce(), "", e.clock.Now()))
	wantOAuthError(t, c.post("/oauth2/token", refresh, stolen), http.StatusBadRequest, ErrCodeInvalidDPoPProof)
	wantOAuthError(t, c.post("/oauth2/token", refresh, ""), http.StatusBadRequest, ErrCodeInvalidDPoPProof)
	next := e.tokens(c.post("/oauth2/token", refresh, c.proof(http.MethodPost, "/oauth2/token", "")))
	if next.TokenType != "DPoP" {
		t.Fatalf("refreshed tokens %+v", next)
	}
	if cnf, _ := jsonBody(t, c.post("/oauth2/introspect", url.Values{"token": {next.RefreshToken}}, ""))["cnf"].(map[string]any); cnf["jkt"] != jkt {
		t.Fatalf("refreshed refresh token not bound to %s: %v", jkt, cnf)
	}
	if _, err := e.resource("DPoP "+next.AccessToken, c.proof(http.MethodGet, "/v1/accounts", next.AccessToken)); err != nil {
		t.Fatalf("data call with the refreshed token: %v", err)
	}
}

// wantTokenError checks a refused data API authentication.
func wantTokenError(t *testing.T, e *env, authz, proof, code, scheme string) *TokenError {
	t.Helper()
	_, err := e.resource(authz, proof)
	var te *TokenError
	if !errors.As(err, &te) || te.Status != http.StatusUnauthorized || te.Code != code || te.Scheme != scheme {
		t.Fatalf("err = %#v, want 401 %s with scheme %q", err, code, scheme)
	}
	if scheme == SchemeDPoP && (te.Nonce == "" || len(te.Algs) != 3) {
		t.Fatalf("DPoP challenge without nonce or algs: %#v", te)
	}
	return te
}

// TestDPoPProofRules pins RFC 9449 §4.3 at the data API: each row is a
// proof sent with a valid DPoP-bound token.
func TestDPoPProofRules(t *testing.T) {
	e := newEnv(t)
	c := e.newPKJWTClient(true)
	tok := dpopTokens(t, e, c)
	other := newKey(t, jose.ES256)
	rs := newKey(t, jose.RS256)
	htu := testIssuer + "/v1/accounts"
	claims := func(mod func(map[string]any)) map[string]any {
		m := proofClaims(http.MethodGet, htu, e.p.DPoPNonce(), tok.AccessToken, e.clock.Now())
		if mod != nil {
			mod(m)
		}
		return m
	}
	valid := func(mod func(map[string]any)) string { return c.dpop.sign(t, dpopProofType, true, claims(mod)) }
	pubJWK := c.dpop.public()
	replayed := valid(nil)
	cases := []struct {
		name, proof, code string // code "" = accepted
	}{
		{name: "valid", proof: valid(nil)},
		{name: "htu with query and fragment, default port, upper-case host", proof: valid(func(m map[string]any) { m["htu"] = "https://AS.example:443/v1/accounts?x=1#f" })},
		{name: "first use", proof: replayed},
		{name: "replayed jti", proof: replayed, code: ErrCodeInvalidDPoPProof},
		{name: "no proof", proof: "", code: ErrCodeInvalidDPoPProof},
		{name: "typ JWT", proof: c.dpop.sign(t, "JWT", true, claims(nil)), code: ErrCodeInvalidDPoPProof},
		{name: "no jwk header", proof: c.dpop.sign(t, dpopProofType, false, claims(nil)), code: ErrCodeInvalidDPoPProof},
		{name: "alg none", proof: unsigned(map[string]any{"alg": "none", "typ": dpopProofType, "jwk": pubJWK}, claims(nil), nil), code: ErrCodeInvalidDPoPProof},
		{name: "HS256 keyed with the public key", proof: unsigned(map[string]any{"alg": "HS256", "typ": dpopProofType, "jwk": pubJWK}, claims(nil), []byte(c.dpop.thumbprint(t))), code: ErrCodeInvalidDPoPProof},
		{name: "RS256", proof: rs.sign(t, dpopProofType, true, claims(nil)), code: ErrCodeInvalidDPoPProof},
		{name: "another method", proof: valid(func(m map[string]any) { m["htm"] = http.MethodPost }), code: ErrCodeInvalidDPoPProof},
		{name: "another URL", proof: valid(func(m map[string]any) { m["htu"] = testIssuer + "/v1/accounts/acc-alice-1" }), code: ErrCodeInvalidDPoPProof},
		{name: "another host", proof: valid(func(m map[string]any) { m["htu"] = "https://evil.example/v1/accounts" }), code: ErrCodeInvalidDPoPProof},
		{name: "iat two minutes old", proof: valid(func(m map[string]any) { m["iat"] = e.clock.Now().Add(-2 * time.Minute).Unix() }), code: ErrCodeInvalidDPoPProof},
		{name: "iat a minute ahead", proof: valid(func(m map[string]any) { m["iat"] = e.clock.Now().Add(time.Minute).Unix() }), code: ErrCodeInvalidDPoPProof},
		{name: "no iat", proof: valid(func(m map[string]any) { delete(m, "iat") }), code: ErrCodeInvalidDPoPProof},
		{name: "no jti", proof: valid(func(m map[string]any) { delete(m, "jti") }), code: ErrCodeInvalidDPoPProof},
		{name: "ath of another token", proof: valid(func(m map[string]any) { m["ath"] = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU" }), code: ErrCodeInvalidDPoPProof},
		{name: "no ath", proof: valid(func(m map[string]any) { delete(m, "ath") }), code: ErrCodeInvalidDPoPProof},
		{name: "no nonce", proof: valid(func(m map[string]any) { delete(m, "nonce") }), code: ErrCodeUseDPoPNonce},
		{name: "forged nonce", proof: valid(func(m map[string]any) { m["nonce"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }), code: ErrCodeUseDPoPNonce},
		{name: "valid proof by another key", proof: other.sign(t, dpopProofType, true, claims(nil)), code: ErrCodeInvalidDPoPProof},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.code == "" {
				if _, err := e.resource("DPoP "+tok.AccessToken, tc.proof); err != nil {
					t.Fatalf("valid proof refused: %v", err)
				}
				return
			}
			wantTokenError(t, e, "DPoP "+tok.AccessToken, tc.proof, tc.code, SchemeDPoP)
		})
	}

	t.Run("jwk of one key, signed by another", func(t *testing.T) {
		// Swap the jwk header of a proof by other for c's key: the
		// signature no longer verifies with the key it names.
		p := other.sign(t, dpopProofType, true, claims(nil))
		q := c.dpop.sign(t, dpopProofType, true, claims(nil))
		swapped := strings.Split(q, ".")[0] + "." + strings.SplitN(p, ".", 2)[1]
		wantTokenError(t, e, "DPoP "+tok.AccessToken, swapped, ErrCodeInvalidDPoPProof, SchemeDPoP)
	})
	t.Run("two DPoP headers", func(t *testing.T) {
		req := httptestRequest("/v1/accounts")
		req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
		req.Header.Add("DPoP", valid(nil))
		req.Header.Add("DPoP", valid(nil))
		_, err := e.p.AuthenticateAccess(req.Context(), req)
		if te, ok := err.(*TokenError); !ok || te.Code != ErrCodeInvalidDPoPProof {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("nonce of two steps ago", func(t *testing.T) {
		old := e.p.nonceAt(e.clock.Now().Unix()/int64(dpopNonceStep/time.Second) - 2)
		p := valid(func(m map[string]any) { m["nonce"] = old })
		wantTokenError(t, e, "DPoP "+tok.AccessToken, p, ErrCodeUseDPoPNonce, SchemeDPoP)
	})
}

// TestDPoPTokenEndpoint pins the authorization server's side: proofs are
// required of DPoP clients and refused from others, a nonce is asked for
// first (without using up the code), and a code bound at PAR only goes to
// the same key.
func TestDPoPTokenEndpoint(t *testing.T) {
	e := newEnv(t)
	c := e.newPKJWTClient(true)
	f := c.flow()

	t.Run("nonce first, then the same code works", func(t *testing.T) {
		code := c.code(f, "")
		noNonce := c.dpop.sign(t, dpopProofType, true, proofClaims(http.MethodPost, testIssuer+"/oauth2/token", "", "", e.clock.Now()))
		rec := c.exchange(f, code, noNonce)
		wantOAuthError(t, rec, http.StatusBadRequest, ErrCodeUseDPoPNonce)
		nonce := rec.Header().Get("DPoP-Nonce")
		if nonce == "" {
			t.Fatal("use_dpop_nonce without a DPoP-Nonce header")
		}
		withNonce := c.dpop.sign(t, dpopProofType, true, proofClaims(http.MethodPost, testIssuer+"/oauth2/token", nonce, "", e.clock.Now()))
		if tok := e.tokens(c.exchange(f, code, withNonce)); tok.TokenType != "DPoP" {
			t.Fatalf("tokens %+v", tok)
		}
	})
	t.Run("no proof from a DPoP client", func(t *testing.T) {
		wantOAuthError(t, c.exchange(f, c.code(f, ""), ""), http.StatusBadRequest, ErrCodeInvalidDPoPProof)
	})
	t.Run("proof for the PAR endpoint", func(t *testing.T) {
		wantOAuthError(t, c.exchange(f, c.code(f, ""), c.proof(http.MethodPost, "/oauth2/par", "")), http.StatusBadRequest, ErrCodeInvalidDPoPProof)
	})
	t.Run("proof with ath at the token endpoint", func(t *testing.T) {
		wantOAuthError(t, c.exchange(f, c.code(f, ""), c.proof(http.MethodPost, "/oauth2/token", "some-token")), http.StatusBadRequest, ErrCodeInvalidDPoPProof)
	})
	t.Run("code bound at PAR, redeemed with another key", func(t *testing.T) {
		code := c.code(f, c.proof(http.MethodPost, "/oauth2/par", ""))
		other := newKey(t, jose.ES256)
		p := other.sign(t, dpopProofType, true, proofClaims(http.MethodPost, testIssuer+"/oauth2/token", e.p.DPoPNonce(), "", e.clock.Now()))
		wantOAuthError(t, c.exchange(f, code, p), http.StatusBadRequest, ErrCodeInvalidDPoPProof)
	})
	t.Run("code bound by dpop_jkt", func(t *testing.T) {
		g := c.flow()
		g.extra = url.Values{ParamDPoPJKT: {c.dpop.thumbprint(t)}}
		if tok := e.tokens(c.exchange(g, c.code(g, ""), c.proof(http.MethodPost, "/oauth2/token", ""))); tok.TokenType != "DPoP" {
			t.Fatalf("tokens %+v", tok)
		}
	})
	t.Run("dpop_jkt disagreeing with the PAR proof", func(t *testing.T) {
		g := c.flow()
		g.extra = url.Values{ParamDPoPJKT: {newKey(t, jose.ES256).thumbprint(t)}}
		wantOAuthError(t, c.post("/oauth2/par", g.parForm(), c.proof(http.MethodPost, "/oauth2/par", "")), http.StatusBadRequest, ErrCodeInvalidDPoPProof)
	})
	t.Run("proof from a client not registered for DPoP", func(t *testing.T) {
		plain := e.newPKJWTClient(false)
		plain.dpop = newKey(t, jose.ES256)
		g := plain.flow()
		wantOAuthError(t, plain.post("/oauth2/par", g.parForm(), plain.proof(http.MethodPost, "/oauth2/par", "")), http.StatusBadRequest, ErrCodeInvalidDPoPProof)
		wantOAuthError(t, plain.exchange(g, plain.code(g, ""), plain.proof(http.MethodPost, "/oauth2/token", "")), http.StatusBadRequest, ErrCodeInvalidDPoPProof)
		tok := e.tokens(plain.exchange(g, plain.code(g, ""), ""))
		if tok.TokenType != "bearer" {
			t.Fatalf("tokens %+v", tok)
		}
		// A bearer token sent with the DPoP scheme is refused.
		wantTokenError(t, e, "DPoP "+tok.AccessToken, plain.proof(http.MethodGet, "/v1/accounts", tok.AccessToken), "invalid_token", "")
		if _, err := e.resource("Bearer "+tok.AccessToken, ""); err != nil {
			t.Fatalf("bearer token as Bearer: %v", err)
		}
	})
}

// TestDPoPNonce: a nonce is good for its time step and the next, and on
// every node (stateless, keyed by the shared secret).
func TestDPoPNonce(t *testing.T) {
	e := newEnv(t)
	n := e.p.DPoPNonce()
	if !e.p.validNonce(n) {
		t.Fatal("fresh nonce refused")
	}
	e.clock.Advance(dpopNonceStep)
	if !e.p.validNonce(n) {
		t.Fatal("nonce of the previous step refused")
	}
	e.clock.Advance(dpopNonceStep)
	if e.p.validNonce(n) {
		t.Fatal("nonce of two steps ago accepted")
	}
	for _, bad := range []string{"", "x", n + "A", strings.ToUpper(n)} {
		if e.p.validNonce(bad) {
			t.Fatalf("nonce %q accepted", bad)
		}
	}
}

func TestNormalizeHTU(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"https://as.example/oauth2/token", "https://as.example/oauth2/token", true},
		{"HTTPS://AS.EXAMPLE:443/oauth2/token?x=1#y", "https://as.example/oauth2/token", true},
		{"http://127.0.0.1:80/v1", "http://127.0.0.1/v1", true},
		{"https://as.example/v1/%61ccounts", "https://as.example/v1/accounts", true},
		{"https://as.example", "https://as.example/", true},
		{"http://as.example/oauth2/token", "https://as.example/oauth2/token", false},
		{"https://as.example:8443/oauth2/token", "https://as.example/oauth2/token", false},
		{"https://as.example/oauth2/token/", "https://as.example/oauth2/token", false},
		{"/oauth2/token", "/oauth2/token", false},
	} {
		if got := sameHTU(tc.a, tc.b); got != tc.same {
			t.Errorf("sameHTU(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}
