package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/server"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// fastWebhooks makes the nodes of the test run webhook rounds often, so a
// test waits milliseconds, not the default 5 s, for a delivery.
func fastWebhooks(t *testing.T) {
	t.Setenv(server.EnvWebhookInterval, "50ms")
}

// TestRevocationPaths revokes a grant by each of the three paths: the
// customer's dashboard button, the app's DELETE /oauth2/grants/{id}, and
// the app's RFC 7009 revocation of its refresh token. Each time the app's
// very next call is refused, introspection says inactive, the dashboard
// shows who stopped it, the audit log has consent.revoked with who revoked,
// and the app gets a signed consent.revoked webhook (the last one only on
// the retry after the receiver failed).
func TestRevocationPaths(t *testing.T) {
	fastWebhooks(t)
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		hooks := newHookReceiver(t, 0)
		hooks.register(t, s)
		alice := s.NewBrowser()
		loginBrowser(t, s, alice, "alice", "alice-password-1")

		paths := []struct {
			name, by, words string
			revoke          func(t *testing.T, tok testutil.Tokens)
		}{
			{"dashboard", "customer", "Stopped by you", func(t *testing.T, tok testutil.Tokens) {
				r := dashboardRevoke(t, alice, tok.GrantID)
				if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/dashboard?revoked="+tok.GrantID {
					t.Fatalf("dashboard revoke: %d %s", r.StatusCode, r.Header.Get("Location"))
				}
			}},
			{"grant management", "client", "Stopped by the app", func(t *testing.T, tok testutil.Tokens) {
				req := s.NewRequest(t, http.MethodDelete, "/oauth2/grants/"+tok.GrantID, nil)
				req.SetBasicAuth(testutil.DemoClientID, testutil.DemoClientSecret)
				if r := s.Do(t, req); r.StatusCode != http.StatusNoContent {
					t.Fatalf("DELETE grant: %d %s", r.StatusCode, r.Body)
				}
			}},
			{"refresh token revocation", "client", "Stopped by the app", func(t *testing.T, tok testutil.Tokens) {
				r := s.PostForm(t, "/oauth2/revoke", testutil.DemoClientID, testutil.DemoClientSecret,
					url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}})
				if r.StatusCode != http.StatusOK {
					t.Fatalf("RFC 7009 revoke: %d %s", r.StatusCode, r.Body)
				}
			}},
		}
		for i, p := range paths {
			t.Run(strings.ReplaceAll(p.name, " ", "_"), func(t *testing.T) {
				last := i == len(paths)-1
				if last {
					hooks.mu.Lock()
					hooks.failFirst = len(hooks.got) + 1 // the next delivery fails once
					hooks.mu.Unlock()
				}
				tok := s.Authorize(t, testutil.DemoFlow())
				if r := s.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusOK {
					t.Fatalf("before revocation: %d", r.StatusCode)
				}
				if in := introspect(t, s, tok.AccessToken); in["active"] != true {
					t.Fatalf("introspection before revocation: %v", in)
				}
				p.revoke(t, tok)

				expectLocked(t, s, tok, "revoked")
				for _, tk := range []string{tok.AccessToken, tok.RefreshToken} {
					if in := introspect(t, s, tk); in["active"] != false {
						t.Errorf("introspection after revocation: %v", in)
					}
				}
				r := alice.Get(t, "/dashboard/consents/"+tok.GrantID)
				if r.StatusCode != http.StatusOK || !strings.Contains(string(r.Body), p.words) || strings.Contains(string(r.Body), "/revoke") {
					t.Errorf("dashboard details after revocation: %d\n%s", r.StatusCode, r.Body)
				}
				evs := grantAudit(t, s, tok.GrantID, "consent.revoked")
				if len(evs) != 1 || evs[0]["reason"] != p.by || evs[0]["customer_id"] != "cus_alice" || evs[0]["client_id"] != testutil.DemoClientID {
					t.Errorf("audit consent.revoked: %v", evs)
				}

				want := 1
				if last {
					want = 2 // the failed attempt and its retry
					hooks.wait(t, tok.GrantID, "consent.revoked", 1)
					s.Clock.Advance(31 * time.Second) // past the first backoff step
				}
				got := hooks.wait(t, tok.GrantID, "consent.revoked", want)
				b := verifyHook(t, s, got[len(got)-1])
				if b.Grant.Status != "revoked" || b.Grant.RevokedBy != p.by || b.Grant.ClientID != testutil.DemoClientID {
					t.Errorf("webhook body: %+v", b)
				}
				if last && string(got[0].body) != string(got[1].body) {
					t.Errorf("the retry sent another body:\n%s\n%s", got[0].body, got[1].body)
				}
			})
		}
	})
}

// TestDashboardRevokeRefusals: a forged POST without the CSRF token,
// another customer's grant id and a logged-out request are refused, and the
// app keeps its access.
func TestDashboardRevokeRefusals(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		tok := s.Authorize(t, testutil.DemoFlow())
		path := "/dashboard/consents/" + tok.GrantID + "/revoke"
		alice, bob, anon := s.NewBrowser(), s.NewBrowser(), s.NewBrowser()
		loginBrowser(t, s, alice, "alice", "alice-password-1")
		loginBrowser(t, s, bob, "bob", "bob-password-1")
		bobForm := testutil.ParseForm(t, bob.Get(t, "/dashboard").Body, "/logout").Hidden // bob's own CSRF token

		for _, c := range []struct {
			name   string
			b      *testutil.Browser
			form   url.Values
			status int
		}{
			{"forged, no CSRF token", alice, url.Values{}, http.StatusForbidden},
			{"another customer's grant", bob, bobForm, http.StatusNotFound},
			{"logged out", anon, url.Values{"csrf_token": {"x"}}, http.StatusSeeOther},
		} {
			r := c.b.Post(t, path, c.form)
			if r.StatusCode != c.status {
				t.Errorf("%s: %d, want %d", c.name, r.StatusCode, c.status)
			}
			if r := s.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusOK {
				t.Fatalf("%s changed something: the app's next call got %d", c.name, r.StatusCode)
			}
		}
		if r := bob.Get(t, "/dashboard/consents/"+tok.GrantID); r.StatusCode != http.StatusNotFound {
			t.Errorf("bob sees alice's grant: %d", r.StatusCode)
		}
		if evs := grantAudit(t, s, tok.GrantID, "consent.revoked"); len(evs) != 0 {
			t.Errorf("refused requests were audited as revocations: %v", evs)
		}
	})
}

// TestExpiry: a consent stops working the instant it expires, with a
// controllable clock: the data API refuses the next call, the refresh
// token is refused, grant management and the dashboard say expired, the
// sweep (here the start-up sweep of a second node on the same database)
// audits consent.expired, and the app got consent.expiring beforehand.
func TestExpiry(t *testing.T) {
	fastWebhooks(t)
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			dbURL := testdb.URL(t, d)
			clock := &testutil.Clock{}
			s := testutil.Start(t, d, testutil.Options{DatabaseURL: dbURL, Clock: clock})
			hooks := newHookReceiver(t, 0)
			hooks.register(t, s)
			fr := testutil.DemoFlow()
			fr.Extra = url.Values{"consent_duration": {"3600"}}
			tok := s.Authorize(t, fr)
			if r := s.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusOK {
				t.Fatalf("before expiry: %d", r.StatusCode)
			}
			// An hour-long consent is within the expiring window at once.
			b := verifyHook(t, s, hooks.wait(t, tok.GrantID, "consent.expiring", 1)[0])
			if b.Grant.Status != "authorized" || b.Grant.ExpiresAt == nil {
				t.Fatalf("expiring webhook: %+v", b)
			}

			clock.Advance(time.Hour + time.Second)
			expectLocked(t, s, tok, "expired")
			alice := s.NewBrowser()
			loginBrowser(t, s, alice, "alice", "alice-password-1")
			if r := alice.Get(t, "/dashboard"); !strings.Contains(string(r.Body), "Ended: the time you allowed ran out") ||
				strings.Contains(string(r.Body), "/dashboard/consents/"+tok.GrantID+"/revoke") {
				t.Fatalf("dashboard after expiry:\n%s", r.Body)
			}

			testutil.Start(t, d, testutil.Options{DatabaseURL: dbURL, Clock: clock})
			deadline := time.Now().Add(10 * time.Second)
			for len(grantAudit(t, s, tok.GrantID, "consent.expired")) != 1 {
				if time.Now().After(deadline) {
					t.Fatal("no consent.expired audit event after the sweep")
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// TestRenewal: the app asks alice to renew its grant (PAR with grant_id
// and grant_management_action=replace); she approves with one account; the
// same grant carries the new terms, the dashboard still shows one consent,
// and the tokens of the old terms are dead.
func TestRenewal(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		old := s.Authorize(t, testutil.DemoFlow())
		var accts struct {
			Data []account `json:"data"`
		}
		s.Get(t, "/v1/accounts", old.AccessToken).JSON(t, &accts)
		if len(accts.Data) != 3 {
			t.Fatalf("accounts before renewal: %+v", accts)
		}

		fr := testutil.DemoFlow()
		fr.Extra = url.Values{"grant_id": {old.GrantID}, "grant_management_action": {"replace"}}
		fr.Accounts = []string{accts.Data[0].AccountID}
		renewed := s.Authorize(t, fr)
		if renewed.GrantID != old.GrantID {
			t.Fatalf("renewal made grant %q, want %q", renewed.GrantID, old.GrantID)
		}
		var got struct {
			Data []account `json:"data"`
		}
		s.Get(t, "/v1/accounts", renewed.AccessToken).JSON(t, &got)
		if len(got.Data) != 1 || got.Data[0].AccountID != accts.Data[0].AccountID {
			t.Fatalf("accounts after renewal: %+v", got)
		}
		if r := s.Refresh(t, testutil.DemoFlow(), old.RefreshToken); r.StatusCode != http.StatusBadRequest ||
			!strings.Contains(string(r.Body), "invalid_grant") {
			t.Errorf("old refresh token after renewal: %d %s", r.StatusCode, r.Body)
		}
		if r := s.Get(t, "/v1/accounts", old.AccessToken); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("old access token after renewal: %d", r.StatusCode)
		}
		// The stale token is not taken for a stolen one: the renewal stands.
		if r := s.Get(t, "/v1/accounts", renewed.AccessToken); r.StatusCode != http.StatusOK {
			t.Fatalf("renewed access token after the old refresh token was tried: %d", r.StatusCode)
		}
		if r := s.Refresh(t, testutil.DemoFlow(), renewed.RefreshToken); r.StatusCode != http.StatusOK {
			t.Fatalf("renewed refresh token: %d %s", r.StatusCode, r.Body)
		}
		alice := s.NewBrowser()
		loginBrowser(t, s, alice, "alice", "alice-password-1")
		body := string(alice.Get(t, "/dashboard").Body)
		if n := strings.Count(body, `class="grant"`); n != 1 || !strings.Contains(body, accts.Data[0].DisplayName) {
			t.Fatalf("dashboard after renewal shows %d active consents:\n%s", n, body)
		}
	})
}

// TestGrantManagement: GET /oauth2/grants/{id} tells the owning app the
// grant's status, scopes, purpose, accounts and times; another app gets 404
// for GET and DELETE, exactly as for a grant that does not exist, and its
// DELETE changes nothing.
func TestGrantManagement(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		fr := testutil.DemoFlow()
		fr.Extra = url.Values{"consent_duration": {"86400"}}
		tok := s.Authorize(t, fr)
		otherID, otherSecret, err := s.Node.Provider().CreateClient(t.Context(), oauth.ClientSpec{
			Name: "Other App", RedirectURIs: []string{"https://other.example/cb"}, GrantTypes: []string{"authorization_code"},
			Scopes: []string{"accounts:read"}, Purposes: []string{"account_verification"},
		})
		if err != nil {
			t.Fatal(err)
		}
		grant := func(method, id, client, secret string) *testutil.Response {
			req := s.NewRequest(t, method, "/oauth2/grants/"+id, nil)
			req.SetBasicAuth(client, secret)
			return s.Do(t, req)
		}
		var g struct {
			GrantID    string   `json:"grant_id"`
			Status     string   `json:"status"`
			ClientID   string   `json:"client_id"`
			Scopes     []string `json:"scopes"`
			Purpose    string   `json:"purpose"`
			AccountIDs []string `json:"account_ids"`
			CreatedAt  string   `json:"created_at"`
			ExpiresAt  string   `json:"expires_at"`
		}
		r := grant(http.MethodGet, tok.GrantID, testutil.DemoClientID, testutil.DemoClientSecret)
		r.JSON(t, &g)
		created, err1 := time.Parse(time.RFC3339, g.CreatedAt)
		expires, err2 := time.Parse(time.RFC3339, g.ExpiresAt)
		if r.StatusCode != http.StatusOK || g.GrantID != tok.GrantID || g.Status != "authorized" || g.ClientID != testutil.DemoClientID ||
			len(g.Scopes) != 4 || g.Purpose != fr.Purpose || len(g.AccountIDs) != 3 || err1 != nil || err2 != nil ||
			expires.Sub(created) < 24*time.Hour-time.Minute || expires.Sub(created) > 24*time.Hour+time.Minute {
			t.Fatalf("grant: %d %s", r.StatusCode, r.Body)
		}
		for _, m := range []string{http.MethodGet, http.MethodDelete} {
			other := grant(m, tok.GrantID, otherID, otherSecret)
			unknown := grant(m, "no-such-grant", otherID, otherSecret)
			if other.StatusCode != http.StatusNotFound || unknown.StatusCode != http.StatusNotFound || string(other.Body) != string(unknown.Body) {
				t.Errorf("%s another app's grant: %d %s; unknown grant: %d %s", m, other.StatusCode, other.Body, unknown.StatusCode, unknown.Body)
			}
		}
		if r := s.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusOK {
			t.Fatalf("another app's DELETE changed the grant: %d", r.StatusCode)
		}
	})
}
