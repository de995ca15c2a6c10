package oauth

import (
	"context"
	"testing"

	"github.com/ory/fosite/handler/openid"
)

// BenchmarkTokenRead measures the access token check's read on SQLite: one
// statement joining the token, its client and its consent, scanned into
// typed variables (docs/benchmarks-sqlite-driver.md compares drivers on it).
func BenchmarkTokenRead(b *testing.B) {
	db := openSQLite(b)
	seedPeople(b, db)
	p := newTestProvider(b, db, newClock(), &eventLog{})
	ctx := context.Background()
	authorizedConsent(b, p, "grant-bench")
	req := tokenRequest(b, p, "grant-bench", appID, &Session{DefaultSession: openid.DefaultSession{Subject: custAlice}, GrantID: "grant-bench"})
	if err := p.store.CreateAccessTokenSession(ctx, "at-bench", req); err != nil {
		b.Fatal(err)
	}
	b.Run("sequential", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			row, err := p.store.getToken(ctx, kindAccess, "at-bench")
			if err != nil || row.Consent == nil {
				b.Fatal(row, err)
			}
		}
	})
	// As many readers as the pool has connections (store.Open: 8 on SQLite).
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				row, err := p.store.getToken(ctx, kindAccess, "at-bench")
				if err != nil || row.Consent == nil {
					b.Error(row, err)
					return
				}
			}
		})
	})
}
