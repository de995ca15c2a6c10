package server_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/testutil"
)

// TestProviderFeed: the demo provider feeds its institution through the real
// server with a client_credentials token, every batch lands in the audit
// log, and the demo app may not write.
func TestProviderFeed(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		var tok testutil.Tokens
		r := s.ClientCredentials(t, "demo-provider", "demo-provider-secret", "provider:write")
		r.JSON(t, &tok)
		if r.StatusCode != http.StatusOK || tok.AccessToken == "" {
			t.Fatalf("provider token: %d %s", r.StatusCode, r.Body)
		}
		post := func(path, token, body string) *testutil.Response {
			req := s.NewRequest(t, http.MethodPost, path, bytes.NewBufferString(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			return s.Do(t, req)
		}
		now := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
		for _, step := range []struct{ path, body string }{
			{"/v1/provider/customers", `{"records":[{"id":"c-1","display_name":"Carol Provider"}]}`},
			{"/v1/provider/accounts", `{"records":[{"id":"a-1","customer_id":"c-1","type":"checking","display_name":"Everyday","last4":"1234","currency":"USD"}]}`},
			{"/v1/provider/transactions", `{"records":[{"id":"t-1","account_id":"a-1","status":"pending","transacted_at":"` + now + `","amount":"-12.34","currency":"USD","merchant_name":"Corner Shop","merchant_category_code":"5411","card_last4":"1234"}]}`},
			{"/v1/provider/transactions", `{"records":[{"id":"t-1","account_id":"a-1","status":"booked","transacted_at":"` + now + `","booked_at":"` + now + `","amount":"-12.34","currency":"USD","merchant_name":"Corner Shop","merchant_category_code":"5411","card_last4":"1234"}]}`},
		} {
			if r := post(step.path, tok.AccessToken, step.body); r.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d %s", step.path, r.StatusCode, r.Body)
			}
		}
		// A full card number is refused with the record and field named, and nothing is written.
		r = post("/v1/provider/transactions", tok.AccessToken, `{"records":[{"id":"t-2","account_id":"a-1","status":"pending","transacted_at":"`+now+`","amount":"-1.00","currency":"USD","description":"card 4111111111111111"}]}`)
		if r.StatusCode != http.StatusUnprocessableEntity || !bytes.Contains(r.Body, []byte(`"field":"description"`)) {
			t.Fatalf("PAN in description: %d %s", r.StatusCode, r.Body)
		}
		// The data app cannot write.
		app := s.Authorize(t, testutil.DemoFlow())
		if r := post("/v1/provider/customers", app.AccessToken, `{"records":[]}`); r.StatusCode < 400 || r.StatusCode >= 500 {
			t.Fatalf("app wrote provider data: %d %s", r.StatusCode, r.Body)
		}

		var audit testutil.Tokens
		s.ClientCredentials(t, "demo-auditor", "demo-auditor-secret", "audit:read").JSON(t, &audit)
		var evs struct {
			Data []struct {
				Outcome string `json:"outcome"`
				Status  int    `json:"status"`
			} `json:"data"`
		}
		s.Get(t, "/v1/audit/events?type=provider.write&client_id=demo-provider", audit.AccessToken).JSON(t, &evs)
		allowed, denied := 0, 0
		for _, e := range evs.Data {
			if e.Outcome == "allowed" {
				allowed++
			} else {
				denied++
			}
		}
		if allowed != 4 || denied != 1 {
			t.Fatalf("provider.write events: %d allowed, %d denied: %+v", allowed, denied, evs.Data)
		}
	})
}
