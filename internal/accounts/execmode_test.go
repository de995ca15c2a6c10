package accounts

import (
	"context"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
)

// BenchmarkPageExecMode measures the /v1 transactions page query (the
// data API's hottest read) under pgx's query execution modes on a direct
// PostgreSQL connection: cache_statement (the default: named prepared
// statements, one round trip once prepared) against exec and
// simple_protocol, the modes that work behind pgbouncer in transaction
// mode (docs/scaling.md "Connection pooling (pgbouncer)").
//
//	./scripts/with-postgres go test -run '^$' -bench PageExecMode -benchtime 3s ./internal/accounts/
func BenchmarkPageExecMode(b *testing.B) {
	base := os.Getenv("CONSENTGATE_TEST_POSTGRES_URL")
	if base == "" {
		b.Skip("CONSENTGATE_TEST_POSTGRES_URL not set")
	}
	db := openPostgres(b, base)
	f := newFixture(b, db, "bem")
	a := f.account(b, "bem-acct", f.alice, TypeChecking)
	now := time.Now()
	if err := f.s.Load(context.Background(), LoadBatch{Transactions: genTransactions(a.ID, "bem-tx", 3000, now)}); err != nil {
		b.Fatal(err)
	}
	if err := db.Exec(`ANALYZE`).Error; err != nil {
		b.Fatal(err)
	}
	var dbURL string
	if err := db.Raw(`SELECT current_database()`).Scan(&dbURL).Error; err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"cache_statement", "exec", "simple_protocol"} {
		b.Run(mode, func(b *testing.B) {
			u, _ := url.Parse(base)
			u.Path = "/" + dbURL
			q := u.Query()
			q.Set("default_query_exec_mode", mode)
			u.RawQuery = q.Encode()
			mdb, err := store.Open(u.String(), store.Options{MaxOpenConns: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer mdb.Close()
			s := NewSQLStore(mdb)
			query := TxQuery{AccountID: a.ID, CustomerID: f.alice, From: now.AddDate(0, 0, -365), To: now, Limit: 100}
			b.ResetTimer()
			for b.Loop() {
				if _, _, err := s.Transactions(context.Background(), query); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
