package accounts

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
)

// TestPostedTransactions: the FDX order (pending first, then booked by
// posting time), walked page by page with every page size, is exactly the
// filtered set, on SQLite and PostgreSQL.
func TestPostedTransactions(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testPosted(t, openSQLite(t)) })
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv("CONSENTGATE_TEST_POSTGRES_URL")
		if base == "" {
			t.Skip("CONSENTGATE_TEST_POSTGRES_URL not set")
		}
		testPosted(t, openPostgres(t, base))
	})
}

func testPosted(t *testing.T, db *store.DB) {
	ctx := context.Background()
	f := newFixture(t, db, "pst")
	a := f.account(t, "pst-a", f.alice, TypeCreditCard)
	newest := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	txs := genTransactions(a.ID, "pst", 60, newest) // 20 hours of history, every 7th pending, booked a day later
	if err := f.s.UpsertTransactions(ctx, txs); err != nil {
		t.Fatal(err)
	}
	from, to := newest.Add(-10*time.Hour), newest.Add(20*time.Hour)
	notBefore := newest.Add(-12 * time.Hour)
	// The expected order, computed from the rows themselves.
	var pending, booked []Transaction
	for _, tx := range txs {
		switch {
		case tx.TransactedAt.Before(notBefore):
		case tx.Status == StatusPending && !tx.TransactedAt.Before(from) && !tx.TransactedAt.After(to):
			pending = append(pending, tx)
		case tx.Status == StatusBooked && !tx.BookedAt.Before(from) && !tx.BookedAt.After(to):
			booked = append(booked, tx)
		}
	}
	slices.SortFunc(pending, newestFirst)
	slices.SortFunc(booked, func(x, y Transaction) int {
		if c := y.BookedAt.Compare(*x.BookedAt); c != 0 {
			return c
		}
		return strings.Compare(y.ID, x.ID)
	})
	want := append(pending, booked...)
	if len(pending) == 0 || len(booked) < 10 {
		t.Fatalf("fixture: %d pending, %d booked", len(pending), len(booked))
	}
	for _, limit := range []int{1, 2, 3, len(pending), len(pending) + 1, 7, len(want), len(want) + 5} {
		var got []Transaction
		q := PostedQuery{AccountID: a.ID, CustomerID: f.alice, From: from, To: to, NotBefore: notBefore, Limit: limit}
		for pages := 0; ; pages++ {
			page, next, err := f.s.PostedTransactions(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if next == nil {
				break
			}
			if len(page) != limit || pages > len(want) {
				t.Fatalf("limit %d: page of %d with more to come", limit, len(page))
			}
			q.After = next
		}
		if len(got) != len(want) {
			t.Fatalf("limit %d: %d transactions, want %d", limit, len(got), len(want))
		}
		for i := range want {
			if !txEqual(got[i], want[i]) {
				t.Fatalf("limit %d: #%d is %s, want %s", limit, i, got[i].ID, want[i].ID)
			}
		}
	}
	// Another customer's account reads nothing: ErrNotFound, as for /v1.
	_, _, err := f.s.PostedTransactions(ctx, PostedQuery{AccountID: a.ID, CustomerID: f.bob, From: from, To: to, Limit: 10})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob reading alice's account: %v", err)
	}
}

// TestPostedQueryUsesIndex: each part walks its partial index in order,
// without a sort, first page and deep alike.
func TestPostedQueryUsesIndex(t *testing.T) {
	db := openSQLite(t)
	now := time.Now()
	for _, c := range []struct {
		pending bool
		after   *PostedKey
		index   string
	}{
		{true, nil, "transactions_account_pending_time_idx"},
		{true, &PostedKey{Pending: true, At: now, ID: "x"}, "transactions_account_pending_time_idx"},
		{false, nil, "transactions_account_booked_time_idx"},
		{false, &PostedKey{At: now, ID: "x"}, "transactions_account_booked_time_idx"},
	} {
		query, args := postedPageSQL(PostedQuery{AccountID: "a", CustomerID: "c", From: now.Add(-time.Hour), To: now, After: c.after}, c.pending, 11)
		details := explainSQLite(t, db, query, args...)
		if all := strings.Join(details, "; "); !strings.Contains(all, c.index) || strings.Contains(all, "TEMP B-TREE") {
			t.Errorf("pending=%v after=%v: plan %q, want a walk of %s without a sort", c.pending, c.after != nil, all, c.index)
		}
	}
}

// explainSQLite is the detail column of SQLite's EXPLAIN QUERY PLAN.
func explainSQLite(t *testing.T, db *store.DB, query string, args ...any) []string {
	t.Helper()
	rows, err := db.SQL().Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var details []string
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
			t.Fatal(err)
		}
		details = append(details, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return details
}
