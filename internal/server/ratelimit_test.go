package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/ratelimit"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// nextSecond sleeps until just after the next whole second, the start of a
// fresh rate-limit window.
func nextSecond() {
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second + 20*time.Millisecond).Sub(now))
}

// TestRateLimitTwoNodes is issue 16's rate-limit test on SQLite and
// PostgreSQL: two nodes on one database, the demo app limited to 5 requests
// per second and the auditor to 2 (per-client overrides, as `client create
// --rate-limit` stores them; the server default is 1000). Within one second
// the two nodes together admit exactly the limit, refuse the rest with 429
// rate_limited and Retry-After (problem+json on data, RFC 6749 shape on the
// token endpoint), audit each refusal as denied with the client, and serve
// normally in the next second.
func TestRateLimitTwoNodes(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			dbURL := testdb.URL(t, d)
			a := testutil.Start(t, d, testutil.Options{DatabaseURL: dbURL, RateLimit: 1000})
			b := testutil.Start(t, d, testutil.Options{DatabaseURL: dbURL, RateLimit: 1000})
			if err := ratelimit.SetClientLimit(ctx, a.DB, testutil.DemoClientID, 5); err != nil {
				t.Fatal(err)
			}
			if err := ratelimit.SetClientLimit(ctx, a.DB, auditorID, 2); err != nil {
				t.Fatal(err)
			}
			if err := ratelimit.SetClientLimit(ctx, a.DB, auditorID, -1); err == nil {
				t.Fatal("a negative limit was stored")
			}
			tok := a.Authorize(t, testutil.DemoFlow())
			nodes := []*testutil.Server{a, b}

			// Data calls: as many as fit in one window, alternating nodes.
			nextSecond()
			window := time.Now().Unix()
			okBy := map[string]int{}
			limited := 0
			for i := 0; time.Now().Unix() == window; i++ {
				s := nodes[i%2]
				r := s.Get(t, "/v1/accounts", tok.AccessToken, "x-fapi-customer-ip-address", "192.0.2.7")
				// An answer after the boundary may have been counted in the
				// next window: it is audited, but not judged.
				inWindow := time.Now().Unix() == window
				switch r.StatusCode {
				case http.StatusOK:
					if inWindow {
						okBy[s.URL]++
					}
				case http.StatusTooManyRequests:
					limited++
					var p struct {
						Code string `json:"code"`
					}
					r.JSON(t, &p)
					if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); p.Code != "rate_limited" || ra < 1 {
						t.Fatalf("429: code %q, Retry-After %q", p.Code, r.Header.Get("Retry-After"))
					}
				default:
					t.Fatalf("data call: %d %s", r.StatusCode, r.Body)
				}
				if !inWindow || i > 200 {
					break
				}
			}
			if okBy[a.URL]+okBy[b.URL] != 5 || okBy[a.URL] == 0 || okBy[b.URL] == 0 || limited == 0 {
				t.Fatalf("one window on two nodes: %v admitted, %d limited; want 5 admitted across both", okBy, limited)
			}
			nextSecond()
			if r := b.Get(t, "/v1/accounts", tok.AccessToken, "x-fapi-customer-ip-address", "192.0.2.7"); r.StatusCode != http.StatusOK {
				t.Fatalf("next second: %d %s", r.StatusCode, r.Body)
			}

			// Token endpoint: the auditor's third client_credentials request
			// in a second is refused in RFC 6749 shape.
			nextSecond()
			var codes []int
			for i := range 4 {
				r := nodes[i%2].ClientCredentials(t, auditorID, auditorSecret, "audit:read")
				codes = append(codes, r.StatusCode)
				if r.StatusCode == http.StatusTooManyRequests {
					var e struct {
						Error string `json:"error"`
					}
					if err := json.Unmarshal(r.Body, &e); err != nil || e.Error != "rate_limited" || r.Header.Get("Retry-After") == "" {
						t.Fatalf("token 429: %s Retry-After %q", r.Body, r.Header.Get("Retry-After"))
					}
				}
			}
			if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 || codes[3] != 429 {
				t.Fatalf("token endpoint statuses %v, want [200 200 429 429]", codes)
			}
			// A wrong secret is not counted against the client.
			nextSecond()
			for range 3 {
				if r := a.ClientCredentials(t, auditorID, "not-the-secret", "audit:read"); r.StatusCode != http.StatusUnauthorized {
					t.Fatalf("wrong secret: %d", r.StatusCode)
				}
			}
			auditor := auditorToken(t, a)

			// Every refusal is in the audit log as denied, naming the client.
			denied := listAudit(t, b, auditor, url.Values{"outcome": {"denied"}})
			byClient := map[string]int{}
			for _, ev := range denied {
				if ev.Reason == "rate_limited" {
					byClient[ev.ClientID+" "+ev.Type]++
				}
			}
			if byClient[testutil.DemoClientID+" data.access"] != limited || byClient[auditorID+" token.issued"] != 2 {
				t.Fatalf("rate_limited events %v; want %d data.access for the app and 2 token.issued for the auditor", byClient, limited)
			}

			// The hot-path cost: one shared-counter upsert per request.
			l := ratelimit.New(a.DB, 1_000_000, nil)
			const n = 300
			start := time.Now()
			for range n {
				if _, err := l.Allow(ctx, "bench-client"); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("%s: rate-limit check %v per request (%d sequential upserts)", d, time.Since(start)/n, n)
		})
	}
}
