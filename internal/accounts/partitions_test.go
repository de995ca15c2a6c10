package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/store"
)

// readQuery is one of the data API's reads of transactions, as the store
// builds it.
type readQuery struct {
	name   string
	sql    string
	args   []any
	months int // the most partitions it may touch (0: any)
	// below: the query bounds transacted_at only from below, so the
	// months after now and the default partition stay in its plan.
	below bool
}

// readQueries are the reads whose plans docs/scaling.md shows: the /v1
// page (first and deep), its pending filter, a sync snapshot page, the
// FDX posted-order page (both parts) and sync's read by id. The window
// is the last 365 days before now; the deep page starts 300 days back.
func readQueries(now time.Time, account, customer, someID string) []readQuery {
	from := now.AddDate(0, 0, -365)
	deep := &TxKey{TransactedAt: now.AddDate(0, 0, -300), ID: "~"}
	page := func(name string, q TxQuery, months int) readQuery {
		s, args := txPageSQL(q)
		return readQuery{name: name, sql: s, args: args, months: months}
	}
	posted := func(name string, pending bool, months int) readQuery {
		s, args := postedPageSQL(PostedQuery{AccountID: account, CustomerID: customer, From: from, To: now, NotBefore: from, Limit: 101}, pending, 101)
		return readQuery{name: name, sql: s, args: args, months: months}
	}
	bookedSQL, bookedArgs := postedPageSQL(PostedQuery{AccountID: account, CustomerID: customer, From: from, To: now, NotBefore: from, Limit: 101}, false, 101)
	return []readQuery{
		page("page", TxQuery{AccountID: account, CustomerID: customer, From: from, To: now, Limit: 100}, 2),
		page("deep page", TxQuery{AccountID: account, CustomerID: customer, From: from, To: now, Limit: 100, After: deep}, 2),
		page("pending page", TxQuery{AccountID: account, CustomerID: customer, From: from, To: now, Status: StatusPending, Limit: 100}, 14),
		{name: "sync snapshot", sql: syncSnapshotSQL(0), args: []any{account, int64(1) << 60, int64(0), "", store.Micros(from), 101}, below: true},
		{name: "FDX posted (booked part)", sql: bookedSQL, args: bookedArgs, below: true},
		posted("FDX posted (pending part)", true, 14),
		{name: "sync by id", sql: txByIDPG(0) + " WHERE k.id IN ($1)", args: []any{someID}, months: 1},
	}
}

// planNode is the part of EXPLAIN (FORMAT JSON) the shape check reads.
type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	IndexName    string     `json:"Index Name"`
	Plans        []planNode `json:"Plans"`
	ActualLoops  float64    `json:"Actual Loops"`
}

// walk calls fn on n and every node below it.
func (n planNode) walk(fn func(planNode)) {
	fn(n)
	for _, c := range n.Plans {
		c.walk(fn)
	}
}

// explainPG returns the plan PostgreSQL executes for query (ANALYZE: the
// nodes run-time pruning removed are gone).
func explainPG(t *testing.T, db *store.DB, query string, args ...any) planNode {
	t.Helper()
	var out string
	if err := db.SQL().QueryRow("EXPLAIN (ANALYZE, FORMAT JSON) "+query, args...).Scan(&out); err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(out), &plans); err != nil || len(plans) != 1 {
		t.Fatalf("explain output %s: %v", out, err)
	}
	return plans[0].Plan
}

// TestPartitionedTransactions drives the partitioned table of PostgreSQL
// (migration 00140): rows land in their month or in the default
// partition, an update that changes transacted_at moves the row and its
// key, ids stay unique across months, reversals free their key, the bulk
// loader's fallback upserts, EnsurePartitions moves rows out of the
// default partition, and every read is index scans of the months it may
// see, never a sequential scan or a sort.
func TestPartitionedTransactions(t *testing.T) {
	base := os.Getenv("CONSENTGATE_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("CONSENTGATE_TEST_POSTGRES_URL not set")
	}
	db := openPostgres(t, base)
	ctx := context.Background()
	f := newFixture(t, db, "prt")
	now := time.Now().UTC()
	var accts []Account
	for i := range 20 {
		accts = append(accts, f.account(t, fmt.Sprintf("prt-acct-%02d", i), f.alice, TypeChecking))
	}
	// 20 accounts × 1,500 transactions, a few hours apart over 400 days,
	// through the bulk loader (COPY), and one far in the past and one far
	// in the future: those two have no month of their own.
	var batch LoadBatch
	for i, a := range accts {
		for j := range 1500 {
			at := now.Add(-time.Duration(j*400*24/1500)*time.Hour - time.Duration(i)*time.Minute)
			tx := Transaction{ID: fmt.Sprintf("prt-%02d-%05d", i, j), AccountID: a.ID, Status: StatusBooked, TransactedAt: at,
				Amount: -int64(100 + j), Currency: "EUR", Description: "Purchase", MerchantName: "Shop", MCC: "5411"}
			if j%50 == 0 {
				tx.Status = StatusPending
			} else {
				booked := at.Add(time.Hour)
				tx.BookedAt = &booked
			}
			batch.Transactions = append(batch.Transactions, tx)
		}
	}
	far := []Transaction{
		{ID: "prt-past", AccountID: accts[0].ID, Status: StatusPending, TransactedAt: now.AddDate(-10, 0, 0), Amount: -1, Currency: "EUR"},
		{ID: "prt-future", AccountID: accts[0].ID, Status: StatusPending, TransactedAt: now.AddDate(5, 0, 0), Amount: -1, Currency: "EUR"},
	}
	batch.Transactions = append(batch.Transactions, far...)
	if err := f.s.Load(ctx, batch); err != nil {
		t.Fatal(err)
	}
	count := func(q string, args ...any) int64 {
		t.Helper()
		var n int64
		if err := db.SQL().QueryRow(q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	if n := count(`SELECT count(*) FROM transactions_default`); n != 2 {
		t.Errorf("default partition holds %d rows, want the 2 outside the months created", n)
	}
	if n, want := count(`SELECT count(*) FROM transaction_ids`), int64(len(batch.Transactions)); n != want {
		t.Errorf("transaction_ids holds %d keys, want %d", n, want)
	}

	// The loader again with the same rows: COPY meets existing ids and
	// falls back to the upsert, which updates in place.
	batch.Transactions[1].Description = "Reloaded"
	if err := f.s.Load(ctx, batch); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if n := count(`SELECT count(*) FROM transactions WHERE description = 'Reloaded'`); n != 1 {
		t.Errorf("reload updated %d rows, want 1", n)
	}
	moved := batch.Transactions[1]
	moved.AccountID = accts[1].ID
	if err := f.s.Load(ctx, LoadBatch{Transactions: []Transaction{moved}}); !errors.Is(err, ErrConflict) {
		t.Errorf("loading a transaction on another account: %v, want ErrConflict", err)
	}

	bulk := func(fn func(b *Bulk) error) error {
		return db.Tx(ctx, func(tx *gorm.DB) error { return fn(f.s.Bulk(tx)) })
	}
	// A pending transaction whose transacted_at moves two months back: its
	// row leaves its month, its key follows, and it is read by id there.
	pending := batch.Transactions[0] // j == 0: pending, now
	pending.TransactedAt = now.AddDate(0, -2, 0)
	pending.Description = "Moved"
	if err := bulk(func(b *Bulk) error { return b.UpsertTransactions([]Transaction{pending}) }); err != nil {
		t.Fatalf("move a pending transaction: %v", err)
	}
	var got map[string]Transaction
	if err := bulk(func(b *Bulk) (err error) { got, err = b.TransactionsByID([]string{pending.ID}); return err }); err != nil {
		t.Fatal(err)
	}
	if g := got[pending.ID]; !g.TransactedAt.Equal(pending.TransactedAt.Truncate(time.Microsecond)) || g.Description != "Moved" {
		t.Errorf("moved transaction read by id: %+v, want transacted_at %v", g, pending.TransactedAt)
	}
	if n := count(`SELECT count(*) FROM transactions WHERE id = $1`, pending.ID); n != 1 {
		t.Errorf("%d rows of the moved transaction, want 1", n)
	}
	if n := count(`SELECT count(*) FROM transaction_ids WHERE id = $1 AND transacted_at = $2`, pending.ID, store.Micros(pending.TransactedAt)); n != 1 {
		t.Errorf("the moved transaction's key was not moved")
	}
	// Booked now, in yet another month: the update is allowed (pending →
	// booked); after that its amount is final.
	booked := pending
	booked.Status, booked.TransactedAt = StatusBooked, now.AddDate(0, -1, 0)
	bookedAt := now
	booked.BookedAt = &bookedAt
	if err := bulk(func(b *Bulk) error { return b.UpsertTransactions([]Transaction{booked}) }); err != nil {
		t.Fatalf("book it: %v", err)
	}
	changed := booked
	changed.Amount--
	if err := bulk(func(b *Bulk) error { return b.UpsertTransactions([]Transaction{changed}) }); !errors.Is(err, ErrConflict) {
		t.Errorf("changing a booked amount: %v, want ErrConflict", err)
	}
	// The same id at another time is the same transaction, never a second
	// row: the key in transaction_ids is what is unique.
	again := booked
	again.TransactedAt = now.AddDate(0, -7, 0)
	if err := f.s.UpsertTransactions(ctx, []Transaction{again}); err != nil {
		t.Fatal(err)
	}
	if n := count(`SELECT count(*) FROM transactions WHERE id = $1`, pending.ID); n != 1 {
		t.Errorf("%d rows of one id after an upsert at another time, want 1", n)
	}
	if err := db.Exec(`INSERT INTO transaction_ids (id, transacted_at) VALUES (?, 0)`, pending.ID).Error; !store.IsUniqueViolation(err) {
		t.Errorf("a second key for one id: %v, want a unique violation", err)
	}
	// A reversal deletes the pending row and frees its key.
	rev := batch.Transactions[50] // j == 50: pending
	if err := bulk(func(b *Bulk) error { return b.DeletePendingTransactions([]string{rev.ID}) }); err != nil {
		t.Fatal(err)
	}
	if n := count(`SELECT count(*) FROM transaction_ids WHERE id = $1`, rev.ID) + count(`SELECT count(*) FROM transactions WHERE id = $1`, rev.ID); n != 0 {
		t.Errorf("a reversed transaction left %d rows", n)
	}
	if err := bulk(func(b *Bulk) error { return b.DeletePendingTransactions([]string{batch.Transactions[2].ID}) }); !errors.Is(err, ErrConflict) {
		t.Errorf("reversing a booked transaction: %v, want ErrConflict", err)
	}

	// Five years on, the sweep creates the months around then and moves
	// the future transaction out of the default partition.
	created, err := f.s.EnsurePartitions(ctx, now.AddDate(5, 0, 0))
	if err != nil || created == 0 {
		t.Fatalf("EnsurePartitions: %d, %v", created, err)
	}
	if n := count(`SELECT count(*) FROM transactions_default`); n != 1 {
		t.Errorf("default partition holds %d rows after the sweep, want only the far past one", n)
	}
	if again, err := f.s.EnsurePartitions(ctx, now.AddDate(5, 0, 0)); err != nil || again != 0 {
		t.Errorf("EnsurePartitions again: %d, %v; want nothing to do", again, err)
	}
	if n := count(`SELECT count(*) FROM transactions WHERE id = 'prt-future'`); n != 1 {
		t.Errorf("the future transaction: %d rows, want 1", n)
	}

	if err := db.Exec(`ANALYZE transactions, transaction_ids, accounts`).Error; err != nil {
		t.Fatal(err)
	}
	for _, q := range readQueries(now, accts[3].ID, f.alice, batch.Transactions[3*1500+7].ID) {
		checkPlanShape(t, q, explainPG(t, db, q.sql, q.args...))
	}
}

// checkPlanShape fails unless every partition of transactions the query
// touched was read by one index scan (never a sequential or bitmap scan),
// nothing is sorted, no more partitions are touched than the query's time
// bound allows, and the default partition is pruned when the query bounds
// time on both sides. Partitions pruned at run time (never executed) are
// not touched.
func checkPlanShape(t *testing.T, q readQuery, plan planNode) {
	t.Helper()
	var scans []string
	plan.walk(func(n planNode) {
		switch {
		case n.NodeType == "Sort" || n.NodeType == "Incremental Sort":
			t.Errorf("%s: plan sorts (%s)", q.name, n.NodeType)
		case strings.HasPrefix(n.RelationName, "transactions") && n.ActualLoops > 0:
			scans = append(scans, n.NodeType+" on "+n.RelationName)
			if n.NodeType != "Index Scan" && n.NodeType != "Index Only Scan" {
				t.Errorf("%s: %s on %s, want an index scan", q.name, n.NodeType, n.RelationName)
			}
			if n.RelationName == "transactions_default" && !q.below {
				t.Errorf("%s: scans the default partition: the time bound should prune it", q.name)
			}
		}
	})
	if len(scans) == 0 || (q.months > 0 && len(scans) > q.months) {
		t.Errorf("%s: %d partition scans %v, want 1 to %d", q.name, len(scans), scans, q.months)
	}
}
