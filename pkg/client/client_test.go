package client_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
	"github.com/consentgate/consentgate/pkg/client"
)

const pfm = "personal_finance_management"

// checked is an HTTP client whose every answer from s is validated against
// openapi.yaml, so the client and the published contract agree.
func checked(t *testing.T, s *testutil.Server) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil || !strings.HasPrefix(req.URL.String(), s.URL+"/") {
			return resp, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		testutil.Spec(t).CheckResponse(t, req, resp, body)
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// register creates a private_key_jwt client for authKey on s.
func register(t *testing.T, s *testutil.Server, authKey crypto.Signer, kid string, dpop bool) string {
	t.Helper()
	jwks, err := client.PublicJWKS(authKey, kid)
	if err != nil {
		t.Fatal(err)
	}
	id, secret, err := s.Node.Provider().CreateClient(context.Background(), oauth.ClientSpec{
		Name: "Key App", RedirectURIs: []string{testutil.DemoRedirectURI},
		Scopes:   []string{"accounts:read", "balances:read", "transactions:read", "offline_access"},
		Purposes: []string{pfm}, AuthMethod: oauth.AuthPrivateKeyJWT, JWKS: jwks, DPoP: dpop,
	})
	if err != nil || secret != "" {
		t.Fatalf("register: %q %v", secret, err)
	}
	return id
}

// consent drives alice's browser through login and consent for pending.
func consent(t *testing.T, s *testutil.Server, clientID string, p *client.Pending, deny bool) string {
	t.Helper()
	u, err := url.Parse(p.AuthorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	fr := testutil.DemoFlow()
	fr.ClientID, fr.Deny = clientID, deny
	return s.Consent(t, s.NewBrowser(), fr, u.Query().Get("request_uri")).String()
}

func mustKey(t *testing.T, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "EC":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RSA":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "Ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestClientFlow is the "done when": an app with only a private
// key and a DPoP key completes the flow, reads data, refreshes and revokes,
// for each key type, on each database.
func TestClientFlow(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			s := testutil.Start(t, d, testutil.Options{})
			ctx := context.Background()
			for _, kind := range []string{"EC", "RSA", "Ed25519"} {
				t.Run(kind, func(t *testing.T) {
					authKey, dpopKey := mustKey(t, kind), mustKey(t, kind)
					id := register(t, s, authKey, "k1", true)
					c, err := client.New(client.Config{Issuer: s.URL, ClientID: id, PrivateKey: authKey, KeyID: "k1",
						DPoPKey: dpopKey, RedirectURI: testutil.DemoRedirectURI, HTTPClient: checked(t, s)})
					if err != nil {
						t.Fatal(err)
					}
					p, err := c.PushAuthorization(ctx, client.AuthRequest{
						Scopes: []string{"accounts:read", "balances:read", "transactions:read", "offline_access"}, Purpose: pfm})
					if err != nil {
						t.Fatal(err)
					}
					tok, err := c.Exchange(ctx, p, consent(t, s, id, p, false))
					if err != nil {
						t.Fatal(err)
					}
					if tok.TokenType != "DPoP" || tok.GrantID == "" || tok.RefreshToken == "" {
						t.Fatalf("token %+v", tok)
					}
					accts, err := c.Accounts(ctx, tok, pfm)
					if err != nil || len(accts) == 0 {
						t.Fatalf("accounts: %v %v", accts, err)
					}
					if _, err := c.Balances(ctx, tok, "", accts[0].AccountID); err != nil {
						t.Fatalf("balances: %v", err)
					}
					page, err := c.Transactions(ctx, tok, pfm, accts[0].AccountID, client.TransactionQuery{Limit: 5})
					if err != nil || len(page.Data) > 5 {
						t.Fatalf("transactions: %v %v", page, err)
					}
					_, err = c.Accounts(ctx, tok, "advertising")
					if e := new(client.Error); !errors.As(err, &e) || e.Code != "purpose_prohibited" {
						t.Fatalf("prohibited purpose: %v", err)
					}

					// The stolen access token is useless to anyone without the DPoP key.
					if r := s.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusUnauthorized ||
						!strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "DPoP ") {
						t.Fatalf("stolen token as Bearer: %d %s", r.StatusCode, r.Header.Get("WWW-Authenticate"))
					}
					thief, _ := client.New(client.Config{Issuer: s.URL, ClientID: id, PrivateKey: mustKey(t, kind),
						DPoPKey: mustKey(t, kind), RedirectURI: testutil.DemoRedirectURI, HTTPClient: checked(t, s)})
					_, err = thief.Accounts(ctx, tok, "")
					if e := new(client.Error); !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.Code != "invalid_dpop_proof" {
						t.Fatalf("stolen token with another DPoP key: %v", err)
					}

					next, err := c.Refresh(ctx, tok)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := c.Refresh(ctx, tok); err == nil {
						t.Fatal("rotated refresh token accepted")
					}
					// Reusing the rotated token ended the grant (SPEC §2).
					_, err = c.Accounts(ctx, next, "")
					if e := new(client.Error); !errors.As(err, &e) || e.Code != "invalid_token" {
						t.Fatalf("after refresh reuse: %v", err)
					}
				})
			}
		})
	}
}

// TestClientChecksAuthorizationResponse: Exchange believes a redirect only
// from this server (iss) for this request (state), and reports refusals.
func TestClientChecksAuthorizationResponse(t *testing.T) {
	s := testutil.Start(t, testdb.Dialects()[0], testutil.Options{})
	ctx := context.Background()
	authKey := mustKey(t, "EC")
	id := register(t, s, authKey, "", false)
	c, err := client.New(client.Config{Issuer: s.URL, ClientID: id, PrivateKey: authKey, RedirectURI: testutil.DemoRedirectURI,
		HTTPClient: checked(t, s)})
	if err != nil {
		t.Fatal(err)
	}
	push := func() *client.Pending {
		p, err := c.PushAuthorization(ctx, client.AuthRequest{Scopes: []string{"accounts:read"}, Purpose: pfm})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := push()
	cb, _ := url.Parse(consent(t, s, id, p, false))
	for name, mod := range map[string]func(q url.Values){
		"no iss":      func(q url.Values) { q.Del("iss") },
		"foreign iss": func(q url.Values) { q.Set("iss", "https://evil.example") },
		"other state": func(q url.Values) { q.Set("state", "forged") },
	} {
		u := *cb
		q := u.Query()
		mod(q)
		u.RawQuery = q.Encode()
		if _, err := c.Exchange(ctx, p, u.String()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	tok, err := c.Exchange(ctx, p, cb.String())
	if err != nil || tok.TokenType != "bearer" {
		t.Fatalf("exchange: %+v %v", tok, err)
	}
	if _, err := c.Accounts(ctx, tok, ""); err != nil {
		t.Fatalf("accounts with a bearer token: %v", err)
	}
	if err := c.Revoke(ctx, tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Accounts(ctx, tok, ""); err == nil {
		t.Fatal("revoked token accepted")
	}

	p = push()
	_, err = c.Exchange(ctx, p, consent(t, s, id, p, true))
	if e := new(client.Error); !errors.As(err, &e) || e.Code != "access_denied" {
		t.Fatalf("refusal: %v", err)
	}
}

// The public client must stay public: no import of consentgate's internal
// packages in its non-test files.
func TestNoInternalImports(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		n++
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); strings.Contains(p, "/internal/") || strings.HasSuffix(p, "/internal") {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
	if _, err := os.Stat("client.go"); err != nil || n == 0 {
		t.Fatalf("no package files found (%d): %v", n, err)
	}
}
