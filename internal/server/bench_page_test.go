package server_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// BenchmarkGatedPage serves the gated page of 100 transactions
// (GET /v1/accounts/{id}/transactions?limit=100 with a real consent token,
// its data.access event committed before the answer) straight into the
// node's handler from 50 goroutines, without HTTP in between: what one
// request costs the server process itself. Its allocs/op and B/op do not
// depend on what else runs on the machine, unlike req/s; compare them
// before and after a change to the data path.
func BenchmarkGatedPage(b *testing.B) {
	for _, d := range testdb.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			s := testutil.Start(b, d, testutil.Options{})
			tok := s.Authorize(b, testutil.DemoFlow())
			card := cardAccount(b, s, tok.AccessToken)
			path := "/v1/accounts/" + card + "/transactions?limit=100"
			h := s.Node.Handler()
			b.SetParallelism(25) // 50 goroutines on 2 cores, as make bench's 50 connections
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodGet, path, nil)
					req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
					req.Header.Set("x-fapi-customer-ip-address", "203.0.113.7")
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Errorf("status %d: %s", rec.Code, rec.Body.String())
						return
					}
				}
			})
		})
	}
}
