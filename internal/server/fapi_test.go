package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/pkg/client"
)

// fapiApp is a private_key_jwt + DPoP app registered on a test server,
// driven by pkg/client, with its DPoP key at hand for hand-made proofs.
type fapiApp struct {
	s    *testutil.Server
	id   string
	c    *client.Client
	dpop *ecdsa.PrivateKey
}

func newFAPIApp(t *testing.T, s *testutil.Server, scopes ...string) *fapiApp {
	t.Helper()
	authKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dpopKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks, err := client.PublicJWKS(authKey, "k1")
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := s.Node.Provider().CreateClient(context.Background(), oauth.ClientSpec{
		Name: "FAPI App", RedirectURIs: []string{testutil.DemoRedirectURI}, Scopes: scopes,
		Purposes: []string{"personal_finance_management"}, AuthMethod: oauth.AuthPrivateKeyJWT, JWKS: jwks, DPoP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Issuer: s.URL, ClientID: id, PrivateKey: authKey, KeyID: "k1",
		DPoPKey: dpopKey, RedirectURI: testutil.DemoRedirectURI, Now: s.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &fapiApp{s: s, id: id, c: c, dpop: dpopKey}
}

// authorize runs PAR, alice's consent and the code exchange; wait runs
// between the consent and the exchange.
func (a *fapiApp) authorize(t *testing.T, scopes []string, wait func()) (*client.Token, error) {
	t.Helper()
	ctx := context.Background()
	p, err := a.c.PushAuthorization(ctx, client.AuthRequest{Scopes: scopes, Purpose: "personal_finance_management"})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(p.AuthorizeURL)
	fr := testutil.DemoFlow()
	fr.ClientID = a.id
	loc := a.s.Consent(t, a.s.NewBrowser(), fr, u.Query().Get("request_uri"))
	if wait != nil {
		wait()
	}
	return a.c.Exchange(ctx, p, loc.String())
}

// proof signs a DPoP proof by the app's key; claims are adjusted by mod.
func (a *fapiApp) proof(t *testing.T, method, path, token, nonce string, mod func(map[string]any)) string {
	t.Helper()
	sum := sha256.Sum256([]byte(token))
	jti := make([]byte, 12)
	_, _ = rand.Read(jti)
	claims := map[string]any{"jti": base64.RawURLEncoding.EncodeToString(jti),
		"htm": method, "htu": a.s.URL + path, "iat": a.s.Clock.Now().Unix(), "ath": base64.RawURLEncoding.EncodeToString(sum[:])}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if mod != nil {
		mod(claims)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: a.dpop},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// call sends a data API GET with the given Authorization header and proof.
func (a *fapiApp) call(t *testing.T, path, authz, proof string) *testutil.Response {
	t.Helper()
	req := a.s.NewRequest(t, http.MethodGet, path, nil)
	req.Header.Set("Authorization", authz)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return a.s.Do(t, req)
}

var allData = []string{"accounts:read", "balances:read", "transactions:read", "offline_access"}

// TestDPoPDataAPI pins the data API's DPoP answers (RFC 9449 §7, §9) as a
// client sees them: the challenge, the nonce dance, and a stolen token.
func TestDPoPDataAPI(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		app := newFAPIApp(t, s, allData...)
		tok, err := app.authorize(t, allData, nil)
		if err != nil {
			t.Fatal(err)
		}
		authz := "DPoP " + tok.AccessToken

		r := app.call(t, "/v1/accounts", authz, app.proof(t, http.MethodGet, "/v1/accounts", tok.AccessToken, "", nil))
		challenge, nonce := r.Header.Get("WWW-Authenticate"), r.Header.Get("DPoP-Nonce")
		if r.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(challenge, `DPoP error="use_dpop_nonce"`) ||
			!strings.Contains(challenge, `algs="PS256 ES256 EdDSA"`) || nonce == "" {
			t.Fatalf("proof without nonce: %d %q nonce %q", r.StatusCode, challenge, nonce)
		}
		problem(t, r, http.StatusUnauthorized, "use_dpop_nonce")
		if r := app.call(t, "/v1/accounts", authz, app.proof(t, http.MethodGet, "/v1/accounts", tok.AccessToken, nonce, nil)); r.StatusCode != http.StatusOK {
			t.Fatalf("proof with the nonce: %d %s", r.StatusCode, r.Body)
		}

		for _, tc := range []struct {
			name, authz, proof, code string
		}{
			{"bound token sent as Bearer", "Bearer " + tok.AccessToken, "", "invalid_token"},
			{"no proof", authz, "", "invalid_dpop_proof"},
			{"proof for another URL", authz, app.proof(t, http.MethodGet, "/v1/accounts/x", tok.AccessToken, nonce, nil), "invalid_dpop_proof"},
			{"proof for another method", authz, app.proof(t, http.MethodDelete, "/v1/accounts", tok.AccessToken, nonce, nil), "invalid_dpop_proof"},
			{"proof for another token (ath)", authz, app.proof(t, http.MethodGet, "/v1/accounts", "another-token", nonce, nil), "invalid_dpop_proof"},
			{"proof from the future", authz, app.proof(t, http.MethodGet, "/v1/accounts", tok.AccessToken, nonce, func(m map[string]any) {
				m["iat"] = s.Clock.Now().Add(5 * time.Minute).Unix()
			}), "invalid_dpop_proof"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := app.call(t, "/v1/accounts", tc.authz, tc.proof)
				if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), `DPoP error="`+tc.code+`"`) || r.Header.Get("DPoP-Nonce") == "" {
					t.Fatalf("challenge %q, nonce %q", r.Header.Get("WWW-Authenticate"), r.Header.Get("DPoP-Nonce"))
				}
				problem(t, r, http.StatusUnauthorized, tc.code)
			})
		}
		t.Run("replayed proof", func(t *testing.T) {
			p := app.proof(t, http.MethodGet, "/v1/accounts", tok.AccessToken, nonce, nil)
			if r := app.call(t, "/v1/accounts", authz, p); r.StatusCode != http.StatusOK {
				t.Fatalf("first use: %d", r.StatusCode)
			}
			problem(t, app.call(t, "/v1/accounts", authz, p), http.StatusUnauthorized, "invalid_dpop_proof")
		})
		t.Run("missing scope answers in the DPoP scheme", func(t *testing.T) {
			narrow := newFAPIApp(t, s, "accounts:read")
			ntok, err := narrow.authorize(t, []string{"accounts:read"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			accts, err := narrow.c.Accounts(context.Background(), ntok, "")
			if err != nil || len(accts) == 0 {
				t.Fatalf("accounts: %v %v", accts, err)
			}
			path := "/v1/accounts/" + accts[0].AccountID + "/balances"
			r := narrow.call(t, path, "DPoP "+ntok.AccessToken, narrow.proof(t, http.MethodGet, path, ntok.AccessToken, nonce, nil))
			if r.StatusCode != http.StatusForbidden || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), `DPoP error="insufficient_scope"`) {
				t.Fatalf("missing scope: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
			}
		})
	})
}

// TestFAPIProfile pins the FAPI 2.0 rules not covered by the bad-input
// suite: the 60 s code, no request objects, no secrets in the body, exact
// redirect URIs (no loopback port leniency) and the metadata.
func TestFAPIProfile(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		t.Run("code lives at most 60 s", func(t *testing.T) {
			app := newFAPIApp(t, s, allData...)
			_, err := app.authorize(t, allData, func() { s.Clock.Advance(61 * time.Second) })
			if e := new(client.Error); !errors.As(err, &e) || e.Code != "invalid_grant" {
				t.Fatalf("code after 61 s: %v", err)
			}
		})
		fr := testutil.DemoFlow()
		_, challenge := testutil.PKCE()
		for name, mod := range map[string]func(url.Values){
			"request object (no signed requests supported)": func(f url.Values) { f.Set("request", "eyJhbGciOiJub25lIn0.e30.") },
			"request_uri pushed to PAR (RFC 9126 §2.1)":     func(f url.Values) { f.Set("request_uri", "urn:ietf:params:oauth:request_uri:x") },
			"loopback redirect_uri on another port":         func(f url.Values) { f.Set("redirect_uri", "http://127.0.0.1:9999/callback") },
			"redirect_uri with a query added":               func(f url.Values) { f.Set("redirect_uri", testutil.DemoRedirectURI+"?x=1") },
			"DPoP key for a client not registered for DPoP": func(f url.Values) { f.Set("dpop_jkt", strings.Repeat("A", 43)) },
		} {
			t.Run(name, func(t *testing.T) {
				form := testutil.PARForm(fr, "state-1", challenge)
				mod(form)
				r := s.PostForm(t, "/oauth2/par", fr.ClientID, fr.ClientSecret, form)
				if r.StatusCode != http.StatusBadRequest {
					t.Fatalf("%d %s", r.StatusCode, r.Body)
				}
			})
		}
		t.Run("client_secret_post refused", func(t *testing.T) {
			form := testutil.PARForm(fr, "state-1", challenge)
			form.Set("client_secret", fr.ClientSecret)
			oauthError(t, s.PostForm(t, "/oauth2/par", "", "", form), http.StatusUnauthorized, "invalid_client")
		})
		t.Run("metadata declares what is supported", func(t *testing.T) {
			var m map[string]any
			s.Get(t, "/.well-known/oauth-authorization-server", "").JSON(t, &m)
			algs := []any{"PS256", "ES256", "EdDSA"}
			for _, k := range []string{"token_endpoint_auth_signing_alg_values_supported", "introspection_endpoint_auth_signing_alg_values_supported",
				"revocation_endpoint_auth_signing_alg_values_supported", "dpop_signing_alg_values_supported"} {
				if got, _ := m[k].([]any); !slices.Equal(got, algs) {
					t.Errorf("%s = %v, want %v", k, m[k], algs)
				}
			}
			if got, _ := m["token_endpoint_auth_methods_supported"].([]any); !slices.Equal(got, []any{"private_key_jwt", "client_secret_basic"}) {
				t.Errorf("token_endpoint_auth_methods_supported = %v", got)
			}
			// PAR is required of every client but the demo's PAR-exempt
			// demo-aggregator (SPEC §10), so the metadata cannot claim it is
			// required of all (TestMetadataPARExemption pins the flip).
			if m["request_parameter_supported"] != false || m["tls_client_certificate_bound_access_tokens"] != false ||
				m["authorization_response_iss_parameter_supported"] != true || m["require_pushed_authorization_requests"] != false {
				t.Errorf("metadata %v", m)
			}
		})
	})
}
