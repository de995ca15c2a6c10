package accounts

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
)

// TestHiddenFieldsNotSelected: the page and sync queries of a purpose that
// may not see description, merchant name or card digits do not name those
// columns at all (SPEC §12: never read), so no row of them leaves the
// database for that caller.
func TestHiddenFieldsNotSelected(t *testing.T) {
	hidden := TxDescription | TxMerchantName | TxCardLast4
	page, _ := txPageSQL(TxQuery{AccountID: "a", From: time.Unix(0, 0), To: time.Now(), Limit: 10, Hidden: hidden})
	posted, _ := postedPageSQL(PostedQuery{AccountID: "a", To: time.Now(), Limit: 10, Hidden: hidden}, false, 11)
	queries := map[string]string{"transactions page": page, "sync snapshot": syncSnapshotSQL(hidden),
		"sync changes": byIDSQL(hidden, "$1"), "FDX posted page": posted}
	for name, q := range queries {
		for _, col := range []string{"description", "merchant_name", "card_last4"} {
			if strings.Contains(q, col) {
				t.Errorf("%s query names %s: %s", name, col, q)
			}
		}
		if !strings.Contains(q, "mcc") || !strings.Contains(q, "amount_minor") {
			t.Errorf("%s query lost a visible column: %s", name, q)
		}
	}
	if all, _ := txPageSQL(TxQuery{AccountID: "a", Limit: 1}); !strings.Contains(all, "description") {
		t.Errorf("with nothing hidden the page reads every column: %s", all)
	}
}

// testHiddenFields: on the database, a page read for a purpose that may not
// see some fields carries none of their values, while the rows hold them.
func testHiddenFields(t *testing.T, db *store.DB, p string) {
	f := newFixture(t, db, p)
	a := f.account(t, p+"-card", f.alice, TypeCreditCard)
	ctx := context.Background()
	if err := f.s.UpsertTransactions(ctx, genTransactions(a.ID, p, 5, time.Now().Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	q := TxQuery{AccountID: a.ID, From: time.Now().Add(-48 * time.Hour), To: time.Now(), Limit: 10}
	all, _, err := f.s.Transactions(ctx, q)
	if err != nil || len(all) != 5 || all[0].Description == "" || all[0].MerchantName == "" || all[0].CardLast4 == "" {
		t.Fatalf("the rows: %+v, %v", all, err)
	}
	q.Hidden = TxDescription | TxMerchantName | TxCardLast4
	shaped, _, err := f.s.Transactions(ctx, q)
	if err != nil || len(shaped) != 5 {
		t.Fatal(err)
	}
	for _, tx := range shaped {
		if tx.Description != "" || tx.MerchantName != "" || tx.CardLast4 != "" || tx.MCC != "5411" || tx.Amount == 0 {
			t.Errorf("shaped row %+v", tx)
		}
	}
}

// TestSyncQueriesUseIndexes: the snapshot walks its index in order and
// the change walk its primary key, without a sort, however long the
// account's history (SQLite's plan; PostgreSQL's is checked by make bench).
func TestSyncQueriesUseIndexes(t *testing.T) {
	db := openSQLite(t)
	for _, c := range []struct{ query, index string }{
		{syncSnapshotSQL(0), "transactions_account_created_idx"},
		{syncChangesSQL, "sqlite_autoindex_transaction_changes_1"},
	} {
		rows, err := db.SQL().Query("EXPLAIN QUERY PLAN "+c.query, "a", 10, -1, "", 0, 100)
		if c.index == "sqlite_autoindex_transaction_changes_1" {
			rows, err = db.SQL().Query("EXPLAIN QUERY PLAN "+c.query, "a", 1, 10, 0, 100)
		}
		if err != nil {
			t.Fatal(err)
		}
		var details []string
		for rows.Next() {
			var id, parent, notUsed int
			var detail string
			if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
				t.Fatal(err)
			}
			details = append(details, detail)
		}
		rows.Close()
		all := strings.Join(details, "; ")
		if !strings.Contains(all, c.index) || strings.Contains(all, "TEMP B-TREE") {
			t.Errorf("plan %q, want a walk of %s without a sort", all, c.index)
		}
	}
}
