package accounts

import (
	"context"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// BenchmarkTransactionsPage reads the data API's page of 100 transactions
// (the owner check in the query, as the gated page asks it) on each
// dialect: what the page costs the server process, rows scanned included.
// -benchmem's allocations are the figure to watch.
func BenchmarkTransactionsPage(b *testing.B) {
	for _, d := range testdb.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			db := testdb.Open(b, d)
			ctx := context.Background()
			s := NewSQLStore(db)
			now := time.Now()
			if err := s.UpsertInstitution(ctx, Institution{ID: "bench-bank", Name: "Bench Bank"}); err != nil {
				b.Fatal(err)
			}
			if err := db.Exec(`INSERT INTO customers (id, username, password_hash, display_name, created_at) VALUES (?, ?, ?, ?, ?)`,
				"bench-alice", "bench-alice", "x", "Alice", store.Micros(now)).Error; err != nil {
				b.Fatal(err)
			}
			a := Account{ID: "bench-acct", CustomerID: "bench-alice", InstitutionID: "bench-bank", Type: TypeChecking,
				DisplayName: "Checking", Last4: "1234", Currency: "EUR", Status: "open"}
			if err := s.UpsertAccount(ctx, a); err != nil {
				b.Fatal(err)
			}
			if err := s.UpsertTransactions(ctx, genTransactions(a.ID, "bench-tx", 2000, now)); err != nil {
				b.Fatal(err)
			}
			q := TxQuery{AccountID: a.ID, CustomerID: "bench-alice", From: now.AddDate(0, 0, -90), To: now.Add(time.Hour), Limit: 100}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				txs, next, err := s.Transactions(ctx, q)
				if err != nil || len(txs) != 100 || next == nil {
					b.Fatalf("page: %d rows, next %v, err %v", len(txs), next, err)
				}
			}
		})
	}
}
