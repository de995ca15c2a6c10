package accounts

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
)

// TestLoad runs the bulk load on SQLite and, under scripts/with-postgres,
// on PostgreSQL (the COPY path and its upsert fallback).
func TestLoad(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		db := openSQLite(t)
		db.SQL().SetMaxOpenConns(1) // the pragma checks below see the connection Load used
		testLoad(t, db)
	})
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv("CONSENTGATE_TEST_POSTGRES_URL")
		if base == "" {
			t.Skip("CONSENTGATE_TEST_POSTGRES_URL not set")
		}
		testLoad(t, openPostgres(t, base))
	})
}

func testLoad(t *testing.T, db *store.DB) {
	ctx := context.Background()
	f := newFixture(t, db, "load")
	newest := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	acct := Account{ID: "load-card", CustomerID: f.alice, InstitutionID: f.bank, Type: TypeCreditCard,
		DisplayName: "Card", Last4: "4242", Currency: "EUR", Status: "open"}
	limit := int64(500000)
	bal := Balance{AccountID: acct.ID, Currency: "EUR", Current: -1234, Available: 498766, CreditLimit: &limit, AsOf: newest}
	// 1000 rows: full statements and a remainder on SQLite.
	txs := genTransactions(acct.ID, "load-tx", 1003, newest)
	txs[3].Description = "Caf\u00e9 \"Zum\" \\ tab\t nl\n ctl\x01 \U0001F600" // SQLite's rows travel as JSON
	if err := f.s.Load(ctx, LoadBatch{Accounts: []Account{acct}, Balances: []Balance{bal}, Transactions: txs}); err != nil {
		t.Fatal(err)
	}
	all := func() []Transaction {
		t.Helper()
		got, next, err := f.s.Transactions(ctx, TxQuery{AccountID: acct.ID, From: newest.AddDate(-1, 0, 0), To: newest, Limit: 5000})
		if err != nil || next != nil {
			t.Fatalf("read back: %v (next %v)", err, next)
		}
		return got
	}
	want := slices.Clone(txs)
	slices.SortFunc(want, newestFirst)
	if got := all(); len(got) != len(want) || firstDiff(got, want) != len(want) {
		t.Fatalf("read back %d transactions, first difference at %d", len(got), firstDiff(got, want))
	}
	if b, err := f.s.Balance(ctx, acct.ID); err != nil || b.Current != bal.Current || *b.CreditLimit != limit {
		t.Fatalf("balance %+v %v", b, err)
	}

	// Loading rows that exist updates them (PostgreSQL: COPY conflicts, the
	// batch goes through the upsert instead).
	for i := range txs {
		txs[i].Amount--
	}
	if err := f.s.Load(ctx, LoadBatch{Transactions: txs[:10]}); err != nil {
		t.Fatal(err)
	}
	amounts := map[string]int64{}
	for _, tx := range all() {
		amounts[tx.ID] = tx.Amount
	}
	if amounts[txs[0].ID] != txs[0].Amount || amounts[txs[9].ID] != txs[9].Amount || amounts[txs[10].ID] != txs[10].Amount+1 {
		t.Fatalf("reloaded rows not updated, or others touched: %d %d %d", amounts[txs[0].ID], amounts[txs[9].ID], amounts[txs[10].ID])
	}

	other := Account{ID: "load-other", CustomerID: f.bob, InstitutionID: f.bank, Type: TypeChecking,
		DisplayName: "Bob's", Last4: "1111", Currency: "EUR", Status: "open"}
	if err := f.s.Load(ctx, LoadBatch{Accounts: []Account{other}}); err != nil {
		t.Fatal(err)
	}
	moved := txs[5]
	moved.AccountID = other.ID
	stolen := acct
	stolen.CustomerID = f.bob
	for name, b := range map[string]LoadBatch{
		"transaction moved to another account": {Transactions: []Transaction{moved}},
		"account moved to another customer":    {Accounts: []Account{stolen}},
	} {
		if err := f.s.Load(ctx, b); !errors.Is(err, ErrConflict) {
			t.Errorf("%s: %v, want ErrConflict", name, err)
		}
	}
	bad := txs[1]
	bad.Status = "settled"
	for name, b := range map[string]LoadBatch{
		"duplicate id":   {Transactions: []Transaction{txs[1], txs[1]}},
		"invalid status": {Transactions: []Transaction{bad}},
	} {
		if err := f.s.Load(ctx, b); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	// A refused batch leaves nothing behind, and the connection's
	// synchronous setting is back to the pool's.
	if got := all(); len(got) != len(txs) || got[0].AccountID != acct.ID {
		t.Fatalf("after refused batches: %d rows", len(got))
	}
	if db.Dialect == store.SQLite {
		var sync, cache int
		if err := db.Raw("PRAGMA synchronous").Scan(&sync).Error; err != nil || sync != 2 {
			t.Fatalf("synchronous = %d (%v), want 2 (FULL)", sync, err)
		}
		if err := db.Raw("PRAGMA cache_size").Scan(&cache).Error; err != nil || cache != -2000 {
			t.Fatalf("cache_size = %d (%v), want the default -2000", cache, err)
		}
	}
}
