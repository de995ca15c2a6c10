package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/webhook"
)

// loginBrowser logs b in as user through the login form.
func loginBrowser(t *testing.T, s *testutil.Server, b *testutil.Browser, user, password string) {
	t.Helper()
	r := b.Get(t, "/login")
	form := testutil.ParseForm(t, r.Body, "/login").Hidden
	form.Set("username", user)
	form.Set("password", password)
	if r := b.Post(t, "/login", form); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("login as %s: %d %s", user, r.StatusCode, r.Body)
	}
}

// dashboardRevoke presses the grant's "Stop access now" button on the
// dashboard of a logged-in browser.
func dashboardRevoke(t *testing.T, b *testutil.Browser, grantID string) *testutil.Response {
	t.Helper()
	r := b.Get(t, "/dashboard")
	action := "/dashboard/consents/" + grantID + "/revoke"
	return b.Post(t, action, testutil.ParseForm(t, r.Body, action).Hidden)
}

// introspect asks the authorization server, as the demo app, about token.
func introspect(t *testing.T, s *testutil.Server, token string) map[string]any {
	t.Helper()
	r := s.PostForm(t, "/oauth2/introspect", testutil.DemoClientID, testutil.DemoClientSecret, url.Values{"token": {token}})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("introspect: %d %s", r.StatusCode, r.Body)
	}
	var out map[string]any
	r.JSON(t, &out)
	return out
}

// grantAudit returns the audit events of a grant and type, read as the
// demo auditor through the auditor API.
func grantAudit(t *testing.T, s *testutil.Server, grantID, typ string) []map[string]any {
	t.Helper()
	r := s.ClientCredentials(t, "demo-auditor", "demo-auditor-secret", "audit:read")
	var tok testutil.Tokens
	r.JSON(t, &tok)
	r = s.Get(t, "/v1/audit/events?"+url.Values{"grant_id": {grantID}, "type": {typ}}.Encode(), tok.AccessToken)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("audit events: %d %s", r.StatusCode, r.Body)
	}
	var page struct {
		Data []map[string]any `json:"data"`
	}
	r.JSON(t, &page)
	return page.Data
}

// expectLocked checks that a revoked or expired grant's tokens are dead
// everywhere the app could use them: the data API (401 invalid_token), the
// token endpoint (invalid_grant) and grant management.
func expectLocked(t *testing.T, s *testutil.Server, tok testutil.Tokens, status string) {
	t.Helper()
	r := s.Get(t, "/v1/accounts", tok.AccessToken)
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("data API after the grant ended: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	r = s.Refresh(t, testutil.DemoFlow(), tok.RefreshToken)
	var terr struct {
		Error string `json:"error"`
	}
	r.JSON(t, &terr)
	if r.StatusCode != http.StatusBadRequest || terr.Error != "invalid_grant" {
		t.Errorf("refresh after the grant ended: %d %s", r.StatusCode, r.Body)
	}
	req := s.NewRequest(t, http.MethodGet, "/oauth2/grants/"+tok.GrantID, nil)
	req.SetBasicAuth(testutil.DemoClientID, testutil.DemoClientSecret)
	var g struct {
		Status string `json:"status"`
	}
	s.Do(t, req).JSON(t, &g)
	if g.Status != status {
		t.Errorf("grant management status %q, want %q", g.Status, status)
	}
}

// hookReceiver is the demo app's webhook endpoint: it fails the first
// failFirst requests with 503 and keeps every request.
type hookReceiver struct {
	srv       *httptest.Server
	mu        sync.Mutex
	failFirst int
	got       []hookRequest
}

type hookRequest struct {
	header http.Header
	body   []byte
}

func newHookReceiver(t *testing.T, failFirst int) *hookReceiver {
	h := &hookReceiver{failFirst: failFirst}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.got = append(h.got, hookRequest{r.Header.Clone(), b})
		if len(h.got) <= h.failFirst {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// register makes h the demo app's webhook on s's database.
func (h *hookReceiver) register(t *testing.T, s *testutil.Server) {
	t.Helper()
	if err := webhook.NewStore(s.DB, nil).SetURL(t.Context(), testutil.DemoClientID, h.srv.URL+"/consentgate"); err != nil {
		t.Fatal(err)
	}
}

// wait returns the requests for grantID and event once there are n of
// them, failing after a while.
func (h *hookReceiver) wait(t *testing.T, grantID, event string, n int) []hookRequest {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var out []hookRequest
		h.mu.Lock()
		for _, r := range h.got {
			var b webhook.Body
			if json.Unmarshal(r.body, &b) == nil && b.Grant.GrantID == grantID && b.Type == event {
				out = append(out, r)
			}
		}
		h.mu.Unlock()
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook %s for %s: %d requests, want %d", event, grantID, len(out), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verifyHook checks a delivery the way docs/webhooks.md tells apps to: the
// JWS in X-Consentgate-Signature with a key of the server's public JWKS
// (fetched from jwks_uri), then iss, aud and the body's SHA-256.
func verifyHook(t *testing.T, s *testutil.Server, r hookRequest) webhook.Body {
	t.Helper()
	var set jose.JSONWebKeySet
	s.Get(t, "/jwks", "").JSON(t, &set)
	jws, err := jose.ParseSignedCompact(r.header.Get("X-Consentgate-Signature"), []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatalf("webhook signature: %v", err)
	}
	keys := set.Key(jws.Signatures[0].Protected.KeyID)
	if len(keys) != 1 {
		t.Fatalf("webhook signed with kid %q, not in the JWKS", jws.Signatures[0].Protected.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("webhook signature does not verify with the JWKS: %v", err)
	}
	var c webhook.Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	var b webhook.Body
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatal(err)
	}
	if c.Issuer != s.URL || c.Audience != testutil.DemoClientID || c.BodySHA256 != webhook.BodyHash(r.body) || c.ID != b.ID {
		t.Fatalf("webhook claims %+v do not match the delivery %s", c, r.body)
	}
	return b
}
