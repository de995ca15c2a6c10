package accounts

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
)

// BenchmarkSQLiteDriverPage measures the gated page's read on SQLite: 100
// rows of one customer's account, first page and a keyset page deep in
// the history (docs/benchmarks-sqlite-driver.md compares drivers on it).
func BenchmarkSQLiteDriverPage(b *testing.B) {
	db := openSQLite(b)
	ctx := context.Background()
	s := NewSQLStore(db)
	if err := s.UpsertInstitution(ctx, Institution{ID: "bank", Name: "Bank"}); err != nil {
		b.Fatal(err)
	}
	if err := db.Exec(`INSERT INTO customers (id, username, password_hash, display_name, created_at) VALUES (?, ?, ?, ?, ?)`,
		"alice", "alice", "x", "Alice", store.Micros(time.Now())).Error; err != nil {
		b.Fatal(err)
	}
	acct := Account{ID: "acct", CustomerID: "alice", InstitutionID: "bank", Type: TypeChecking, DisplayName: "Checking",
		Last4: "1234", Currency: "EUR", Status: "open"}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 5000
	batch := LoadBatch{Accounts: []Account{acct}}
	for i := range n {
		at := base.Add(time.Duration(i) * time.Minute)
		batch.Transactions = append(batch.Transactions, Transaction{ID: fmt.Sprintf("tx-%05d", i), AccountID: acct.ID,
			Status: StatusBooked, TransactedAt: at, BookedAt: &at, Amount: int64(-100 - i), Currency: "EUR",
			Description: "Card payment", MerchantName: "Shop", MCC: "5411", CardLast4: "1234"})
	}
	if err := s.Load(ctx, batch); err != nil {
		b.Fatal(err)
	}
	q := TxQuery{AccountID: acct.ID, CustomerID: "alice", From: base, To: base.Add(n * time.Minute), Limit: 100}
	deep := q
	deep.After = &TxKey{TransactedAt: base.Add(n / 2 * time.Minute), ID: fmt.Sprintf("tx-%05d", n/2)}
	for _, c := range []struct {
		name string
		q    TxQuery
	}{{"first", q}, {"keyset", deep}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				page, next, err := s.Transactions(ctx, c.q)
				if err != nil || len(page) != 100 || next == nil {
					b.Fatal(len(page), next, err)
				}
			}
		})
	}
	// As many readers as the pool has connections (store.Open: 8 on SQLite).
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				page, next, err := s.Transactions(ctx, q)
				if err != nil || len(page) != 100 || next == nil {
					b.Error(len(page), next, err)
					return
				}
			}
		})
	})
}
