package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/httpapi"
	"github.com/consentgate/consentgate/internal/testutil"
)

// TestDeferredTokenCheck: once a node has read a token's state, its data
// calls are answered from that state and the check that it still holds is
// deferred to the commit of the call's data.access event. Here the state
// changes behind the node's back, straight in the database as another
// node would change it, and each time the very next call gets the answer
// of the new state: served again (counted in
// consentgate_data_calls_served_again_total) with exactly one data.access
// event, the one of the answer sent; on /v1 and on the FDX routes, each
// served again through its own chain. The counter only moves if the call
// was answered from memory first, so the test also proves the deferral
// is taken.
func TestDeferredTokenCheck(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		tok := s.Authorize(t, testutil.DemoFlow())
		var list struct {
			Data []struct {
				AccountID string `json:"account_id"`
			} `json:"data"`
		}
		r := s.Get(t, "/v1/accounts", tok.AccessToken)
		r.JSON(t, &list)
		if r.StatusCode != http.StatusOK || len(list.Data) < 2 {
			t.Fatalf("accounts: %d %s", r.StatusCode, r.Body)
		}
		account := list.Data[0].AccountID
		page := "/v1/accounts/" + account + "/transactions?limit=5"
		const served = "consentgate_data_calls_served_again_total"
		call := func(id string, want int) *testutil.Response {
			t.Helper()
			before := metric(t, s, served)
			r := s.Get(t, page, tok.AccessToken, httpapi.HeaderInteractionID, id)
			if r.StatusCode != want {
				t.Fatalf("call %s: %d %s, want %d", id, r.StatusCode, r.Body, want)
			}
			if got := metric(t, s, served) - before; got != 1 {
				t.Errorf("call %s: served again %v times, want once", id, got)
			}
			evs := interactionAudit(t, s, id)
			if len(evs) != 1 || evs[0]["status"] != float64(want) {
				t.Errorf("call %s: data.access events %v, want one with status %d", id, evs, want)
			}
			return r
		}
		warm := func() {
			t.Helper()
			var before float64
			for i := range 4 { // the node reads the token's state and remembers it
				if i == 2 {
					before = metric(t, s, served)
				}
				if r := s.Get(t, page, tok.AccessToken); r.StatusCode != http.StatusOK {
					t.Fatalf("warm-up: %d %s", r.StatusCode, r.Body)
				}
			}
			if got := metric(t, s, served) - before; got != 0 {
				t.Fatalf("served again %v times with nothing changed", got)
			}
		}
		exec := func(q string, args ...any) {
			t.Helper()
			if err := s.DB.Exec(q, args...).Error; err != nil {
				t.Fatal(err)
			}
		}

		// A change to the client that changes nothing for the call: its
		// revision moves, the call is served again, and still answered.
		warm()
		exec(`UPDATE oauth_clients SET name = name WHERE id = ?`, testutil.DemoClientID)
		call("deferred-client-touched", http.StatusOK)

		// The account leaves the grant: the next call on it is refused as
		// for any account outside the grant.
		warm()
		exec(`DELETE FROM consent_accounts WHERE consent_id = ? AND account_id = ?`, tok.GrantID, account)
		call("deferred-account-removed", http.StatusNotFound)
		exec(`INSERT INTO consent_accounts (consent_id, account_id) VALUES (?, ?)`, tok.GrantID, account)

		// The token is revoked: the next call gets 401.
		warm()
		exec(`UPDATE oauth_tokens SET active = ? WHERE kind = 'access_token' AND request_id = ?`, false, tok.GrantID)
		call("deferred-token-revoked", http.StatusUnauthorized)

		// The FDX routes, served again through their own chain: a revoked
		// token gets FDX's RFC 6750 401.
		tok = s.Authorize(t, testutil.DemoFlow())
		page = "/fdx/v6/accounts/" + account + "/transactions?limit=5"
		warm()
		exec(`UPDATE oauth_tokens SET active = ? WHERE kind = 'access_token' AND request_id = ?`, false, tok.GrantID)
		r = call("deferred-fdx-token-revoked", http.StatusUnauthorized)
		if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("FDX call with a revoked token: WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
		}
	})
}

// interactionAudit is every audit event of the call with interaction id.
func interactionAudit(t *testing.T, s *testutil.Server, id string) []map[string]any {
	t.Helper()
	auditor := auditorToken(t, s)
	var evs []map[string]any
	q := url.Values{"limit": {"200"}}
	for {
		r := s.Get(t, "/v1/audit/events?"+q.Encode(), auditor)
		var page struct {
			Data       []map[string]any `json:"data"`
			NextCursor *string          `json:"next_cursor"`
		}
		r.JSON(t, &page)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("audit events: %d %s", r.StatusCode, r.Body)
		}
		for _, ev := range page.Data {
			if ev["interaction_id"] == id {
				evs = append(evs, ev)
			}
		}
		if page.NextCursor == nil {
			return evs
		}
		q.Set("cursor", *page.NextCursor)
	}
}
