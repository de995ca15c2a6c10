package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// TestAppendThenIntegrate: Append commits to audit_pending and returns the
// event without a position; Integrate gives the events their seqs in the
// order they committed, chains them and empties audit_pending.
func TestAppendThenIntegrate(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := NewWriter(db, WriterOptions{})
		defer w.Close()
		var acked []Event
		for i := range 3 {
			got, err := w.Append(ctx, genEvent(i))
			if err != nil {
				t.Fatal(err)
			}
			if got.Seq != 0 || got.Hash != "" || len(got.EventID) != 36 {
				t.Fatalf("Append #%d = seq %d hash %q id %q: a position before integration", i, got.Seq, got.Hash, got.EventID)
			}
			// Time-ordered ids keep event_id's index appending at its edge.
			if id, err := uuid.Parse(got.EventID); err != nil || id.Version() != 7 || (i > 0 && got.EventID <= acked[i-1].EventID) {
				t.Fatalf("Append #%d id %q: want UUIDv7 ids in increasing order", i, got.EventID)
			}
			acked = append(acked, got)
		}
		if n := countRows(t, db, "audit_pending"); n != 3 {
			t.Fatalf("pending = %d, want 3", n)
		}
		if evs := allEvents(t, db); len(evs) != 0 {
			t.Fatalf("%d events in the log before integration", len(evs))
		}
		if n, err := Integrate(ctx, db); n != 3 || err != nil {
			t.Fatalf("Integrate = %d, %v", n, err)
		}
		if n, err := Integrate(ctx, db); n != 0 || err != nil {
			t.Fatalf("second Integrate = %d, %v", n, err)
		}
		stored := allEvents(t, db)
		prev := GenesisHash
		for i, ev := range stored {
			a := acked[i]
			if ev.Seq != int64(i+1) || ev.EventID != a.EventID || !ev.OccurredAt.Equal(a.OccurredAt) || ev.Path != a.Path || ev.PrevHash != prev {
				t.Fatalf("stored #%d %+v, acknowledged %+v", i, ev, a)
			}
			prev = ev.Hash
		}
		if n := countRows(t, db, "audit_pending"); n != 0 {
			t.Fatalf("pending = %d after integration", n)
		}
		requireValid(t, db, 3)

		if _, err := w.Append(ctx, Event{Type: "nope", Outcome: Allowed}); err == nil || errors.Is(err, ErrUnavailable) {
			t.Fatalf("invalid event: %v, want a plain validation error", err)
		}
	})
}

func countRows(t *testing.T, db *store.DB, table string) int64 {
	t.Helper()
	var n int64
	if err := db.Raw(`SELECT COUNT(*) FROM ` + table).Row().Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func mustIntegrate(t *testing.T, db *store.DB) {
	t.Helper()
	if _, err := Integrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
}

// requireLogged checks that the log holds exactly the acknowledged events,
// each once, at seqs 1…len(acked).
func requireLogged(t *testing.T, db *store.DB, acked map[string]bool) {
	t.Helper()
	evs := allEvents(t, db)
	for i, ev := range evs {
		if ev.Seq != int64(i+1) || !acked[ev.EventID] {
			t.Fatalf("log position %d holds seq %d, event %s (acknowledged: %v)", i+1, ev.Seq, ev.EventID, acked[ev.EventID])
		}
		delete(acked, ev.EventID)
	}
	if len(acked) != 0 {
		t.Fatalf("%d acknowledged events missing from the log", len(acked))
	}
}

// TestAppendConcurrent: 50 goroutines through one group-commit writer, and
// every acknowledged event is integrated once into one contiguous log.
func TestAppendConcurrent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		w := NewWriter(db, WriterOptions{MaxBatch: 64})
		const goroutines, each = 50, 10
		var mu sync.Mutex
		acked := map[string]bool{}
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					ev, err := w.Append(context.Background(), genEvent(g*each+i))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					acked[ev.EventID] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		w.Close()
		if st := w.Stats(); st.Batches >= st.Events {
			t.Logf("no batch formed: %+v", st)
		}
		mustIntegrate(t, db)
		requireValid(t, db, goroutines*each)
		requireLogged(t, db, acked)
	})
}

// TestTwoWriters is the multi-node proof: two writers and two integrators
// on two connection pools (two serve processes) work concurrently on one
// database; the result is one verified log holding every acknowledged
// event exactly once, with no seq skipped however the commits interleaved.
func TestTwoWriters(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			db1, db2 := openTwice(t, d)
			writers := []*Writer{NewWriter(db1, WriterOptions{}), NewWriter(db2, WriterOptions{})}
			stop := make(chan struct{})
			var integrators sync.WaitGroup
			for _, db := range []*store.DB{db1, db2} {
				integrators.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := Integrate(context.Background(), db); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			var mu sync.Mutex
			acked := map[string]bool{}
			var wg sync.WaitGroup
			for g := range 20 {
				w := writers[g%2]
				wg.Go(func() {
					for i := range 15 {
						ev, err := w.Append(context.Background(), genEvent(g*100+i))
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						acked[ev.EventID] = true
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			close(stop)
			integrators.Wait()
			for _, w := range writers {
				w.Close()
			}
			mustIntegrate(t, db2)
			requireValid(t, db1, 300)
			requireLogged(t, db2, acked)
		})
	}
}

// TestAppendUnavailable: when the log cannot be written, Append fails with
// audit_unavailable, nothing half-written remains, and the writer recovers.
func TestAppendUnavailable(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := NewWriter(db, WriterOptions{Timeout: 2 * time.Second})
		defer w.Close()
		if _, err := w.Append(ctx, genEvent(0)); err != nil {
			t.Fatal(err)
		}
		mustExec(t, db, `ALTER TABLE audit_pending RENAME TO audit_pending_away`)
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() {
				_, err := w.Append(ctx, genEvent(i+1))
				if !errors.Is(err, ErrUnavailable) || apperr.As(err).Code != apperr.AuditUnavailable {
					t.Errorf("Append with the table gone: %v, want audit_unavailable", err)
				}
			})
		}
		wg.Wait()
		mustExec(t, db, `ALTER TABLE audit_pending_away RENAME TO audit_pending`)
		if _, err := w.Append(ctx, genEvent(9)); err != nil {
			t.Fatalf("Append after recovery: %v", err)
		}
		mustIntegrate(t, db)
		requireValid(t, db, 2)

		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := w.Append(cancelled, genEvent(10)); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Append with a cancelled context: %v", err)
		}
		w.Close()
		if _, err := w.Append(ctx, genEvent(11)); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Append after Close: %v", err)
		}
		mustIntegrate(t, db)
		requireValid(t, db, 2) // the cancelled event was not logged
	})
}

// TestCloseCommitsQueued: Close drains the queue; every Append that
// returned nil is in the log.
func TestCloseCommitsQueued(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		w := NewWriter(db, WriterOptions{MaxDelay: 20 * time.Millisecond})
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := range 40 {
			wg.Go(func() {
				if _, err := w.Append(context.Background(), genEvent(i)); err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			})
		}
		time.Sleep(5 * time.Millisecond)
		w.Close()
		wg.Wait()
		mustIntegrate(t, db)
		requireValid(t, db, int64(ok))
	})
}

// TestTriggersRefuseChanges: the database itself refuses to edit the log.
func TestTriggersRefuseChanges(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		load(t, db, 0, 3)
		cp := NewCheckpointer(db, NewSigner(testSecret), CheckpointerOptions{})
		if _, err := cp.Checkpoint(context.Background()); err != nil {
			t.Fatal(err)
		}
		forgeCheckpoint(t, db, NewSigner(testSecret), 3)
		w := NewWriter(db, WriterOptions{})
		if _, err := w.Append(context.Background(), genEvent(3)); err != nil {
			t.Fatal(err)
		}
		w.Close()
		for _, q := range []string{
			`UPDATE audit_events SET reason = 'edited' WHERE seq = 2`,
			`UPDATE audit_events SET seq = 7 WHERE seq = 3`,
			`DELETE FROM audit_events WHERE seq = 3`,
			`DELETE FROM audit_events`,
			`UPDATE audit_checkpoints SET hash = 'x'`,
			`DELETE FROM audit_checkpoints`,
			`UPDATE audit_head SET seq = 1`,
			`UPDATE audit_head SET hash = 'x'`,
			`DELETE FROM audit_head`,
			`UPDATE audit_tree SET hash = hash`,
			`DELETE FROM audit_tree WHERE level = 0`,
			`UPDATE audit_tree_heads SET root_hash = 'x'`,
			`DELETE FROM audit_tree_heads`,
			`UPDATE audit_pending SET reason = 'edited'`,
			`DELETE FROM audit_pending`, // not integrated yet: it may not leave
		} {
			if err := db.Exec(q).Error; err == nil {
				t.Errorf("%s: accepted", q)
			}
		}
		if db.Dialect == store.Postgres {
			for _, table := range []string{"audit_events", "audit_checkpoints", "audit_head", "audit_tree", "audit_tree_heads", "audit_pending"} {
				if err := db.Exec(`TRUNCATE ` + table).Error; err == nil {
					t.Errorf("TRUNCATE %s: accepted", table)
				}
			}
		}
		// One statement deleting an integrated row (here a copy of one put
		// back) with one that is not is refused as a whole; the integrated
		// row alone may leave.
		if err := db.Exec(`INSERT INTO audit_pending (event_id, occurred_at, type, outcome)
			SELECT event_id, occurred_at, type, outcome FROM audit_events WHERE seq = 1`).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Exec(`DELETE FROM audit_pending`).Error; err == nil {
			t.Error("DELETE of an integrated and a pending event: accepted")
		}
		if err := db.Exec(`DELETE FROM audit_pending WHERE event_id IN (SELECT event_id FROM audit_events)`).Error; err != nil {
			t.Errorf("DELETE of an integrated event: %v", err)
		}
		if n := countRows(t, db, "audit_pending"); n != 1 {
			t.Fatalf("%d pending events, want the one not integrated", n)
		}
		requireValid(t, db, 3)
		mustIntegrate(t, db) // the integrator's own DELETE of integrated rows passes
		requireValid(t, db, 4)
	})
}

// AppendWith commits the event and what it records in one transaction:
// both or neither. A failing write fails the batch (audit_unavailable) and
// leaves no event; a good one leaves both.
func TestAppendWith(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := NewWriter(db, WriterOptions{})
		defer w.Close()
		if err := db.Exec(`CREATE TABLE append_with_probe (id TEXT PRIMARY KEY)`).Error; err != nil {
			t.Fatal(err)
		}
		good := Rows{Table: "append_with_probe", Columns: []string{"id"}, Values: []any{"a"}}
		if _, err := w.AppendWith(ctx, genEvent(0), good); err != nil {
			t.Fatal(err)
		}
		if p, r := countRows(t, db, "audit_pending"), countRows(t, db, "append_with_probe"); p != 1 || r != 1 {
			t.Fatalf("after a good AppendWith: %d pending events, %d rows; want 1 and 1", p, r)
		}
		// The same key again: the write fails, so the event must not stay.
		_, err := w.AppendWith(ctx, genEvent(1), good)
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("a failing write: %v, want audit_unavailable", err)
		}
		if p, r := countRows(t, db, "audit_pending"), countRows(t, db, "append_with_probe"); p != 1 || r != 1 {
			t.Fatalf("after a failing AppendWith: %d pending events, %d rows; want 1 and 1", p, r)
		}
		// Concurrent appends share batches: their rows go in multi-row
		// statements (over SQLite's 32 rows a statement), each row once.
		var wg sync.WaitGroup
		for i := range 70 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rows := Rows{Table: "append_with_probe", Columns: []string{"id"}, Values: []any{fmt.Sprintf("c%d", i)}}
				if _, err := w.AppendWith(ctx, genEvent(i), rows); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if p, r := countRows(t, db, "audit_pending"), countRows(t, db, "append_with_probe"); p != 71 || r != 71 {
			t.Fatalf("after 70 concurrent AppendWith: %d pending events, %d rows; want 71 and 71", p, r)
		}
		if _, err := w.AppendWith(ctx, genEvent(0), Rows{Table: "append_with_probe", Columns: []string{"id"}, Values: []any{"x", "y"}[:0:0]}); err != nil {
			t.Fatalf("no rows is Append: %v", err)
		}
		if _, err := w.AppendWith(ctx, genEvent(0), Rows{Table: "append_with_probe", Values: []any{"z"}}); err == nil {
			t.Fatal("rows without columns accepted")
		}
	})
}

// An event with a precondition (Rows.Require) is written, with its rows,
// only while the precondition returns a row in the batch's transaction; a
// refused one leaves nothing and does not fail the rest of its batch.
func TestAppendWithPrecondition(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// A long MaxDelay puts the concurrent appends below in shared batches.
		w := NewWriter(db, WriterOptions{MaxDelay: 20 * time.Millisecond})
		defer w.Close()
		for _, q := range []string{
			`CREATE TABLE precondition_probe (id TEXT PRIMARY KEY)`,
			`CREATE TABLE precondition_state (id TEXT PRIMARY KEY, revision BIGINT NOT NULL)`,
			`INSERT INTO precondition_state (id, revision) VALUES ('k', 1)`,
		} {
			if err := db.Exec(q).Error; err != nil {
				t.Fatal(err)
			}
		}
		at := func(id string, rev int) Rows {
			return Rows{Table: "precondition_probe", Columns: []string{"id"}, Values: []any{id},
				Require: &Precondition{Query: `SELECT 1 FROM precondition_state WHERE id = ? AND revision = ?`, Args: []any{"k", rev}}}
		}
		before := w.Stats().Events
		var wg sync.WaitGroup
		errs := make([]error, 20)
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = w.AppendWith(ctx, genEvent(i), at(fmt.Sprintf("r%d", i), 1+i%2)) // odd i: a stale revision
			}()
		}
		wg.Wait()
		for i, err := range errs {
			switch {
			case i%2 == 0 && err != nil:
				t.Errorf("append %d, precondition holds: %v", i, err)
			case i%2 == 1 && !errors.Is(err, ErrPrecondition):
				t.Errorf("append %d, precondition fails: %v, want ErrPrecondition", i, err)
			case i%2 == 1 && errors.Is(err, ErrUnavailable):
				t.Errorf("append %d: a refused precondition is not an outage: %v", i, err)
			}
		}
		if p, r := countRows(t, db, "audit_pending"), countRows(t, db, "precondition_probe"); p != 10 || r != 10 {
			t.Fatalf("%d pending events, %d rows; want 10 and 10 (the appends whose precondition held)", p, r)
		}
		var ids []string
		if err := db.Raw(`SELECT id FROM precondition_probe ORDER BY id`).Scan(&ids).Error; err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			var i int
			if _, err := fmt.Sscanf(id, "r%d", &i); err != nil || i%2 != 0 {
				t.Errorf("row %q written though its precondition failed", id)
			}
		}
		if n := w.Stats().Events - before; n != 10 {
			t.Errorf("writer counted %d events, want 10", n)
		}
		// The state moves on: the old revision is refused, the new holds.
		if err := db.Exec(`UPDATE precondition_state SET revision = 2`).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := w.AppendWith(ctx, genEvent(0), at("s1", 1)); !errors.Is(err, ErrPrecondition) {
			t.Fatalf("old revision: %v, want ErrPrecondition", err)
		}
		if _, err := w.AppendWith(ctx, genEvent(0), at("s2", 2)); err != nil {
			t.Fatalf("current revision: %v", err)
		}
		if p, r := countRows(t, db, "audit_pending"), countRows(t, db, "precondition_probe"); p != 11 || r != 11 {
			t.Fatalf("%d pending events, %d rows; want 11 and 11", p, r)
		}
	})
}

// An event with a precondition and no rows (a data call answered from a
// remembered token state) is written only while its precondition returns
// a row, checked just before its batch's insert; plain events and events
// whose precondition holds share batches with refused ones and commit.
func TestAppendPreconditionWithoutRows(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := NewWriter(db, WriterOptions{MaxDelay: 20 * time.Millisecond})
		defer w.Close()
		for _, q := range []string{
			`CREATE TABLE precondition_state (id TEXT PRIMARY KEY, revision BIGINT NOT NULL, live BOOLEAN NOT NULL)`,
			`INSERT INTO precondition_state (id, revision, live) VALUES ('k', 1, TRUE)`,
		} {
			if err := db.Exec(q).Error; err != nil {
				t.Fatal(err)
			}
		}
		at := func(rev int) Rows {
			return Rows{Require: &Precondition{Query: `SELECT 1 FROM precondition_state WHERE id = ? AND live = ? AND revision = ?`,
				Args: []any{"k", true, rev}}}
		}
		before := w.Stats().Events
		var wg sync.WaitGroup
		errs := make([]error, 30)
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch i % 3 {
				case 0: // a plain event
					_, errs[i] = w.Append(ctx, genEvent(i))
				case 1: // its precondition holds
					_, errs[i] = w.AppendWith(ctx, genEvent(i), at(1))
				case 2: // a stale revision
					_, errs[i] = w.AppendWith(ctx, genEvent(i), at(0))
				}
			}()
		}
		wg.Wait()
		for i, err := range errs {
			switch {
			case i%3 != 2 && err != nil:
				t.Errorf("append %d: %v", i, err)
			case i%3 == 2 && (!errors.Is(err, ErrPrecondition) || errors.Is(err, ErrUnavailable)):
				t.Errorf("append %d, precondition fails: %v, want ErrPrecondition", i, err)
			}
		}
		if p := countRows(t, db, "audit_pending"); p != 20 {
			t.Fatalf("%d pending events, want 20 (the plain ones and those whose precondition held)", p)
		}
		if n := w.Stats().Events - before; n != 20 {
			t.Errorf("writer counted %d events, want 20", n)
		}
		if err := db.Exec(`UPDATE precondition_state SET live = FALSE`).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := w.AppendWith(ctx, genEvent(0), at(1)); !errors.Is(err, ErrPrecondition) {
			t.Fatalf("after the state changed: %v, want ErrPrecondition", err)
		}
	})
}

// Linger waits for more events only after a batch that showed
// concurrency, and only until the batch is as large as that one was.
func TestWriterLinger(t *testing.T) {
	const linger = time.Second
	w := &Writer{opts: WriterOptions{MaxBatch: 100, Linger: linger}, reqs: make(chan *request, 100)}
	queue := func(n int) {
		for range n {
			w.reqs <- &request{}
		}
	}
	collect := func(prev int) (int, time.Duration) {
		start := time.Now()
		b := w.collect([]*request{{}}, prev)
		return len(b), time.Since(start)
	}

	queue(2)
	if n, took := collect(0); n != 3 || took >= linger/2 {
		t.Errorf("after no batch: %d events in %v, want the 3 queued at once", n, took)
	}
	queue(2)
	if n, took := collect(lingerFrom - 1); n != 3 || took >= linger/2 {
		t.Errorf("after a small batch: %d events in %v, want the 3 queued at once", n, took)
	}
	queue(2)
	go func() {
		time.Sleep(50 * time.Millisecond)
		queue(2)
	}()
	if n, took := collect(5); n != 5 || took < 50*time.Millisecond || took >= linger/2 {
		t.Errorf("after a batch of 5: %d events in %v, want 5 as soon as the fifth arrived", n, took)
	}
	for len(w.reqs) > 0 {
		<-w.reqs
	}
	if n, took := collect(5); n != 1 || took < linger {
		t.Errorf("after a batch of 5, alone: %d events in %v, want 1 after the whole linger", n, took)
	}
	queue(8)
	if n, took := collect(5); n != 9 || took >= linger/2 {
		t.Errorf("after a batch of 5 with 8 queued: %d events in %v, want all 9 at once", n, took)
	}
}
