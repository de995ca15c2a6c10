package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
)

// A node keeps the records of the access tokens it has checked, yet what
// can change is read on every call, or checked before the call's answer
// leaves (TestDeferredTokenCheck): changes written straight to the
// database, as another node would, hold from the very next data call.
func TestAccessTokenCheckReadsStateLive(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		g := s.Authorize(t, testutil.DemoFlow())
		exec := func(q string, args ...any) {
			t.Helper()
			if err := s.DB.Exec(q, args...).Error; err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		call := func(what string, want int) {
			t.Helper()
			if r := s.Get(t, "/v1/accounts", g.AccessToken); r.StatusCode != want {
				t.Fatalf("%s: %d %s, want %d", what, r.StatusCode, r.Body, want)
			}
		}
		call("first call", http.StatusOK)

		// The record is the node's from now on: the stored one is not read
		// again (here it is made unreadable, and the call still works).
		var data string
		if err := s.DB.Raw(`SELECT request_data FROM oauth_tokens WHERE kind = 'access_token' AND request_id = ?`, g.GrantID).Scan(&data).Error; err != nil || data == "" {
			t.Fatalf("stored record: %q %v", data, err)
		}
		exec(`UPDATE oauth_tokens SET request_data = '{' WHERE kind = 'access_token' AND request_id = ?`, g.GrantID)
		call("record unreadable in the database", http.StatusOK)
		exec(`UPDATE oauth_tokens SET request_data = ? WHERE kind = 'access_token' AND request_id = ?`, data, g.GrantID)

		// Its client suspended, reinstated, renamed: each on the next call.
		exec(`UPDATE oauth_clients SET suspended_at = ?, suspended_reason = 'test', suspended_by = 'test' WHERE id = ?`,
			store.Micros(time.Now()), testutil.DemoClientID)
		call("client suspended", http.StatusUnauthorized)
		exec(`UPDATE oauth_clients SET suspended_at = NULL, suspended_reason = '', suspended_by = '' WHERE id = ?`, testutil.DemoClientID)
		call("client reinstated", http.StatusOK)
		exec(`UPDATE oauth_clients SET name = 'Renamed Planner' WHERE id = ?`, testutil.DemoClientID)
		call("client renamed", http.StatusOK)

		// The token revoked, then its consent: each on the next call.
		exec(`UPDATE oauth_tokens SET active = ? WHERE kind = 'access_token' AND request_id = ?`, false, g.GrantID)
		call("token revoked", http.StatusUnauthorized)
		exec(`UPDATE oauth_tokens SET active = ? WHERE kind = 'access_token' AND request_id = ?`, true, g.GrantID)
		call("token active again", http.StatusOK)
		exec(`UPDATE consents SET status = 'revoked' WHERE id = ?`, g.GrantID)
		call("consent revoked", http.StatusUnauthorized)
	})
}
