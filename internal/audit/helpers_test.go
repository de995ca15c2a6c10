package audit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// base is the occurred_at of genEvent(0); event i happens i seconds later.
var base = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

// genEvent returns the i-th event of a deterministic mix: three customers,
// two clients, four grants, every type, both outcomes.
func genEvent(i int) Event {
	types := Types()
	ev := Event{
		OccurredAt:    base.Add(time.Duration(i) * time.Second),
		Type:          types[i%len(types)],
		Outcome:       Allowed,
		ClientID:      fmt.Sprintf("client-%d", i%2),
		CustomerID:    fmt.Sprintf("cust-%d", i%3),
		GrantID:       fmt.Sprintf("grant-%d", i%4),
		Purpose:       "personal_finance_management",
		Scopes:        []string{"accounts:read", "transactions:read"},
		InteractionID: fmt.Sprintf("ia-%d", i),
	}
	// Denied every third event, and every other data.access: when the number
	// of types is a multiple of 3, i%3 alone would deny every data.access.
	if i%3 == 0 && (ev.Type != DataAccess || (i/len(types))%2 == 1) {
		ev.Outcome, ev.Reason = Denied, "purpose_not_consented"
	}
	if ev.Type == DataAccess {
		ev.Method, ev.Path, ev.Status, ev.AccountID = "GET", "/v1/accounts/acc-1/transactions", 200, "acc-1"
		if ev.Outcome == Denied {
			ev.Status = 403
		}
	}
	return ev
}

// load appends n generated events (starting at genEvent(first)) directly
// through appendBatch, the integrator's step, many per transaction: the fast
// way to build big logs.
func load(tb testing.TB, db *store.DB, first, n int) {
	tb.Helper()
	const chunk = 5000
	for start := first; start < first+n; start += chunk {
		evs := make([]Event, 0, chunk)
		for i := start; i < min(start+chunk, first+n); i++ {
			ev, err := normalize(genEvent(i), base)
			if err != nil {
				tb.Fatal(err)
			}
			ev.EventID = uuid.NewString()
			evs = append(evs, ev)
		}
		if err := db.Tx(context.Background(), func(tx *gorm.DB) error { return appendBatch(tx, db.Dialect, evs) }); err != nil {
			tb.Fatalf("load: %v", err)
		}
	}
}

// unprotect removes the append-only triggers of table, as an attacker with
// DDL rights could.
func unprotect(t *testing.T, db *store.DB, table string) {
	t.Helper()
	var stmts []string
	if db.Dialect == store.Postgres {
		stmts = []string{"ALTER TABLE " + table + " DISABLE TRIGGER USER"}
	} else {
		triggers := map[string][]string{
			"audit_events":      {"audit_events_no_update", "audit_events_no_delete"},
			"audit_head":        {"audit_head_forward_only", "audit_head_no_delete"},
			"audit_checkpoints": {"audit_checkpoints_no_update", "audit_checkpoints_no_delete"},
			"audit_tree":        {"audit_tree_no_update", "audit_tree_no_delete"},
			"audit_tree_heads":  {"audit_tree_heads_no_update", "audit_tree_heads_no_delete"},
		}[table]
		for _, tr := range triggers {
			stmts = append(stmts, "DROP TRIGGER "+tr)
		}
	}
	for _, s := range stmts {
		mustExec(t, db, s)
	}
}

func mustExec(t *testing.T, db *store.DB, q string, args ...any) {
	t.Helper()
	if err := db.Exec(q, args...).Error; err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func mustVerify(t *testing.T, db *store.DB) Report {
	t.Helper()
	rep, err := Verify(context.Background(), db, NewSigner(testSecret).KeySet())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func requireValid(t *testing.T, db *store.DB, events int64) Report {
	t.Helper()
	rep := mustVerify(t, db)
	if !rep.Valid || rep.Events != events || rep.Head.Seq != events || rep.FirstInvalidSeq != nil {
		t.Fatalf("Verify = %+v, want valid with %d events", rep, events)
	}
	return rep
}

// allEvents reads the whole log in seq order.
func allEvents(t *testing.T, db *store.DB) []Event {
	t.Helper()
	evs, err := NewReader(db).list(context.Background(), `SELECT `+eventColumns+` FROM audit_events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// openTwice returns two independent pools on one fresh migrated database of
// dialect d: two nodes sharing a database.
func openTwice(t *testing.T, d store.Dialect) (*store.DB, *store.DB) {
	t.Helper()
	url := testdb.URL(t, d)
	var dbs [2]*store.DB
	for i := range dbs {
		db, err := store.Open(url, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	if err := dbs[0].Migrate(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return dbs[0], dbs[1]
}
