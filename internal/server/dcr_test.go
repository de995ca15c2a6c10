package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// directoryKey is a software statement issuer's signing key.
type directoryKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

func newDirectoryKey(t *testing.T, kid string) directoryKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return directoryKey{k, kid}
}

// writeJWKS writes the public keys as a JWKS file and returns its path.
func writeJWKS(t *testing.T, ks ...directoryKey) string {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range ks {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: "ES256", Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "directory.jwks")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sign returns a software statement with the claims.
func (k directoryKey) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.kid))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	dcrRedirect1 = "http://127.0.0.1:8799/callback"
	dcrRedirect2 = "http://127.0.0.1:8799/callback2"
)

func statementClaims() map[string]any {
	return map[string]any{
		"iss": "https://directory.example", "iat": time.Now().Unix(), "software_id": "budget-buddy-1",
		"client_name": "Budget Buddy", "redirect_uris": []string{dcrRedirect1, dcrRedirect2},
		"purposes": []string{"personal_finance_management", "account_verification"},
		"scope":    "accounts:read balances:read transactions:read offline_access",
	}
}

// register POSTs a registration request.
func register(t *testing.T, s *testutil.Server, body map[string]any) *testutil.Response {
	t.Helper()
	b, _ := json.Marshal(body)
	req := s.NewRequest(t, http.MethodPost, "/oauth2/register", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	return s.Do(t, req)
}

type registered struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret"`
	RegistrationAccessToken string   `json:"registration_access_token"`
	RegistrationClientURI   string   `json:"registration_client_uri"`
	ClientName              string   `json:"client_name"`
	SoftwareID              string   `json:"software_id"`
	RedirectURIs            []string `json:"redirect_uris"`
	Scope                   string   `json:"scope"`
	Purposes                []string `json:"purposes"`
	Error                   string   `json:"error"`
}

// TestDynamicRegistration is SPEC §11's onboarding through a directory, on
// SQLite and PostgreSQL: with no directory /oauth2/register does not exist;
// a statement signed by the directory's key registers the app (RFC 7591),
// which reads and updates itself with its registration access token
// (RFC 7592) and runs a consent flow; forged and over-reaching statements
// are refused with RFC 7591 §3.2.2's codes; every registration is audited;
// DELETE ends the app for good.
func TestDynamicRegistration(t *testing.T) {
	off := testutil.Start(t, store.SQLite, testutil.Options{})
	if r := register(t, off, map[string]any{"software_statement": "x"}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("registration without a directory: %d %s", r.StatusCode, r.Body)
	}
	var meta map[string]any
	off.Get(t, "/.well-known/oauth-authorization-server", "").JSON(t, &meta)
	if _, ok := meta["registration_endpoint"]; ok {
		t.Fatalf("metadata advertises registration without a directory: %v", meta["registration_endpoint"])
	}

	dir := newDirectoryKey(t, "dir-1")
	rogue := newDirectoryKey(t, "dir-1") // same kid, not the directory's key
	jwks := writeJWKS(t, dir)
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			s := testutil.Start(t, d, testutil.Options{DirectoryJWKS: jwks})
			var meta map[string]any
			s.Get(t, "/.well-known/oauth-authorization-server", "").JSON(t, &meta)
			if meta["registration_endpoint"] != s.URL+"/oauth2/register" {
				t.Fatalf("metadata registration_endpoint: %v", meta["registration_endpoint"])
			}

			// Refusals, each with its RFC 7591 code.
			noIAT := statementClaims()
			delete(noIAT, "iat")
			prohibited := statementClaims()
			prohibited["purposes"] = []string{"personal_finance_management", "advertising"}
			machine := statementClaims()
			machine["scope"] = "accounts:read admin:clients"
			for _, c := range []struct {
				name string
				body map[string]any
				code string
			}{
				{"no statement", map[string]any{}, "invalid_software_statement"},
				{"forged signature", map[string]any{"software_statement": rogue.sign(t, statementClaims())}, "invalid_software_statement"},
				{"not a JWS", map[string]any{"software_statement": "not.a.jws"}, "invalid_software_statement"},
				{"no iat", map[string]any{"software_statement": dir.sign(t, noIAT)}, "invalid_software_statement"},
				{"redirect outside the statement", map[string]any{"software_statement": dir.sign(t, statementClaims()),
					"redirect_uris": []string{"https://evil.example/cb"}}, "invalid_redirect_uri"},
				{"purpose outside the statement", map[string]any{"software_statement": dir.sign(t, statementClaims()),
					"purposes": []string{"credit_underwriting"}}, "invalid_client_metadata"},
				{"prohibited purpose", map[string]any{"software_statement": dir.sign(t, prohibited)}, "invalid_client_metadata"},
				{"scope outside the statement", map[string]any{"software_statement": dir.sign(t, statementClaims()),
					"scope": "accounts:read identity:read"}, "invalid_client_metadata"},
				{"machine scope", map[string]any{"software_statement": dir.sign(t, machine)}, "invalid_client_metadata"},
				{"client_credentials", map[string]any{"software_statement": dir.sign(t, statementClaims()),
					"grant_types": []string{"client_credentials"}}, "invalid_client_metadata"},
			} {
				r := register(t, s, c.body)
				var got registered
				r.JSON(t, &got)
				if r.StatusCode != http.StatusBadRequest || got.Error != c.code {
					t.Errorf("%s: %d %s, want 400 %s", c.name, r.StatusCode, r.Body, c.code)
				}
			}

			// Register, narrowing the statement.
			statement := dir.sign(t, statementClaims())
			r := register(t, s, map[string]any{"software_statement": statement, "redirect_uris": []string{dcrRedirect1},
				"purposes": []string{"personal_finance_management"}})
			var reg registered
			r.JSON(t, &reg)
			if r.StatusCode != http.StatusCreated || reg.ClientID == "" || reg.ClientSecret == "" || reg.RegistrationAccessToken == "" ||
				reg.RegistrationClientURI != s.URL+"/oauth2/register/"+reg.ClientID || reg.ClientName != "Budget Buddy" ||
				reg.SoftwareID != "budget-buddy-1" || reg.Scope != "accounts:read balances:read transactions:read offline_access" {
				t.Fatalf("register: %d %s", r.StatusCode, r.Body)
			}
			var stored string
			if err := s.DB.Raw(`SELECT registration_token_hash FROM oauth_clients WHERE id = ?`, reg.ClientID).Scan(&stored).Error; err != nil ||
				stored == "" || strings.Contains(stored, reg.RegistrationAccessToken) {
				t.Fatalf("the registration access token must be stored hashed: %q %v", stored, err)
			}
			regPath := "/oauth2/register/" + reg.ClientID
			read := func(token string) *testutil.Response {
				req := s.NewRequest(t, http.MethodGet, regPath, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				return s.Do(t, req)
			}
			if r := read("wrong"); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("read with a wrong token: %d", r.StatusCode)
			}
			var got registered
			r = read(reg.RegistrationAccessToken)
			r.JSON(t, &got)
			if r.StatusCode != http.StatusOK || got.ClientID != reg.ClientID || got.ClientSecret != "" ||
				len(got.RedirectURIs) != 1 || got.RedirectURIs[0] != dcrRedirect1 {
				t.Fatalf("read: %d %s", r.StatusCode, r.Body)
			}

			// Update: another redirect URI of the statement, a narrower scope.
			update := func(body map[string]any) *testutil.Response {
				b, _ := json.Marshal(body)
				req := s.NewRequest(t, http.MethodPut, regPath, strings.NewReader(string(b)))
				req.Header.Set("Authorization", "Bearer "+reg.RegistrationAccessToken)
				req.Header.Set("Content-Type", "application/json")
				return s.Do(t, req)
			}
			if r := update(map[string]any{"client_id": reg.ClientID, "redirect_uris": []string{"https://evil.example/cb"}}); r.StatusCode != http.StatusBadRequest ||
				!strings.Contains(string(r.Body), "invalid_redirect_uri") {
				t.Fatalf("update outside the statement: %d %s", r.StatusCode, r.Body)
			}
			r = update(map[string]any{"client_id": reg.ClientID, "redirect_uris": []string{dcrRedirect2},
				"scope": "accounts:read balances:read offline_access", "purposes": []string{"personal_finance_management"}})
			r.JSON(t, &got)
			if r.StatusCode != http.StatusOK || got.RedirectURIs[0] != dcrRedirect2 || got.Scope != "accounts:read balances:read offline_access" {
				t.Fatalf("update: %d %s", r.StatusCode, r.Body)
			}

			// The registered app runs a consent flow and reads data.
			fr := testutil.FlowRequest{ClientID: reg.ClientID, ClientSecret: reg.ClientSecret, RedirectURI: dcrRedirect2,
				Scopes: []string{"accounts:read", "balances:read", "offline_access"}, Purpose: "personal_finance_management",
				Username: "alice", Password: "alice-password-1"}
			tok := s.Authorize(t, fr)
			if r := s.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusOK {
				t.Fatalf("the registered app's data call: %d %s", r.StatusCode, r.Body)
			}

			auditor := auditorToken(t, s)
			for _, typ := range []string{"client.registered", "client.updated"} {
				evs := listAudit(t, s, auditor, url.Values{"type": {typ}, "client_id": {reg.ClientID}, "outcome": {"allowed"}})
				if len(evs) != 1 || !strings.Contains(evs[0].Reason, "budget-buddy-1") {
					t.Errorf("%s events: %+v", typ, evs)
				}
			}
			if evs := listAudit(t, s, auditor, url.Values{"type": {"client.registered"}, "outcome": {"denied"}}); len(evs) < 5 {
				t.Errorf("refused registrations audited: %d", len(evs))
			}

			// DELETE ends it for good: its token, its secret, its registration token.
			req := s.NewRequest(t, http.MethodDelete, regPath, nil)
			req.Header.Set("Authorization", "Bearer "+reg.RegistrationAccessToken)
			if r := s.Do(t, req); r.StatusCode != http.StatusNoContent {
				t.Fatalf("delete: %d %s", r.StatusCode, r.Body)
			}
			if r := s.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("data call after delete: %d", r.StatusCode)
			}
			if r := read(reg.RegistrationAccessToken); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("read after delete: %d", r.StatusCode)
			}
			if r := s.Refresh(t, fr, tok.RefreshToken); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("refresh after delete: %d %s", r.StatusCode, r.Body)
			}
			if evs := listAudit(t, s, auditor, url.Values{"type": {"client.deleted"}, "client_id": {reg.ClientID}}); len(evs) != 1 {
				t.Errorf("client.deleted events: %+v", evs)
			}
		})
	}
}

// TestDynamicRegistrationDirectoryURL: the directory's keys come from its
// URL; when the directory starts signing with a new key, a statement with
// the new kid makes the server refetch the key set (no restart), and a
// statement whose kid the directory does not publish is refused.
func TestDynamicRegistrationDirectoryURL(t *testing.T) {
	old, rotated := newDirectoryKey(t, "dir-2025"), newDirectoryKey(t, "dir-2026")
	var mu sync.Mutex
	published := []directoryKey{old}
	dir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		b, err := os.ReadFile(writeJWKS(t, published...))
		mu.Unlock()
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(dir.Close)
	s := testutil.Start(t, store.SQLite, testutil.Options{DirectoryJWKS: dir.URL + "/jwks.json"})

	if r := register(t, s, map[string]any{"software_statement": old.sign(t, statementClaims())}); r.StatusCode != http.StatusCreated {
		t.Fatalf("registration with the directory's key: %d %s", r.StatusCode, r.Body)
	}
	if r := register(t, s, map[string]any{"software_statement": rotated.sign(t, statementClaims())}); r.StatusCode != http.StatusBadRequest ||
		!strings.Contains(string(r.Body), "invalid_software_statement") {
		t.Fatalf("statement by a key the directory does not publish: %d %s", r.StatusCode, r.Body)
	}
	mu.Lock()
	published = []directoryKey{old, rotated}
	mu.Unlock()
	// The refetch of an unknown kid is rate-limited (30 s): move past it.
	s.Clock.Advance(time.Minute)
	if r := register(t, s, map[string]any{"software_statement": rotated.sign(t, statementClaims())}); r.StatusCode != http.StatusCreated {
		t.Fatalf("statement by the directory's new key: %d %s", r.StatusCode, r.Body)
	}
}
