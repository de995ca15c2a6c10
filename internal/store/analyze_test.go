package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// After a bulk load, Analyze gives PostgreSQL's planner the table's real
// size (pg_class.reltuples is -1 until a table is first analyzed); on
// SQLite it does nothing and succeeds.
func TestAnalyze(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, q := range []string{
			`INSERT INTO institutions (id, name, created_at) VALUES ('i', 'Bank', 0)`,
			`INSERT INTO customers (id, username, password_hash, display_name, created_at) VALUES ('c', 'c', 'x', 'C', 0)`,
		} {
			if err := db.Exec(q).Error; err != nil {
				t.Fatal(err)
			}
		}
		for i := range 300 {
			if err := db.Exec(`INSERT INTO accounts (id, customer_id, institution_id, type, display_name, last4, currency, status, created_at)
				VALUES (?, 'c', 'i', 'checking', 'A', '1234', 'EUR', 'open', 0)`, fmt.Sprintf("a%03d", i)).Error; err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Analyze(ctx); err != nil {
			t.Fatal(err)
		}
		if db.Dialect != store.Postgres {
			return
		}
		var tuples float64
		if err := db.Raw(`SELECT reltuples FROM pg_class WHERE relname = 'accounts'`).Scan(&tuples).Error; err != nil {
			t.Fatal(err)
		}
		if tuples != 300 {
			t.Errorf("accounts after Analyze: the planner believes %v rows, want 300", tuples)
		}
	})
}
