package audit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

func TestAppendChains(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := NewWriter(db, WriterOptions{})
		defer w.Close()
		var prev Event
		for i := range 3 {
			got, err := w.Append(ctx, genEvent(i))
			if err != nil {
				t.Fatal(err)
			}
			wantPrev := GenesisHash
			if i > 0 {
				wantPrev = prev.Hash
			}
			if got.Seq != int64(i+1) || got.PrevHash != wantPrev || len(got.EventID) != 36 {
				t.Fatalf("Append #%d = seq %d prev %s id %q", i, got.Seq, got.PrevHash, got.EventID)
			}
			if h, _ := ComputeHash(got.PrevHash, got); h != got.Hash {
				t.Fatalf("returned hash %s, recomputed %s", got.Hash, h)
			}
			prev = got
		}
		// What Append returned is exactly what was stored.
		stored := allEvents(t, db)
		if len(stored) != 3 || stored[2].Hash != prev.Hash || stored[2].EventID != prev.EventID ||
			!stored[2].OccurredAt.Equal(prev.OccurredAt) || stored[2].Path != prev.Path {
			t.Fatalf("stored %+v, returned %+v", stored[len(stored)-1], prev)
		}
		requireValid(t, db, 3)

		if _, err := w.Append(ctx, Event{Type: "nope", Outcome: Allowed}); err == nil || errors.Is(err, ErrUnavailable) {
			t.Fatalf("invalid event: %v, want a plain validation error", err)
		}
	})
}

// TestAppendConcurrent: 50 goroutines through one group-commit writer make
// one contiguous chain, and batches really form.
func TestAppendConcurrent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		w := NewWriter(db, WriterOptions{MaxBatch: 64})
		const goroutines, each = 50, 10
		seqs := make(chan int64, goroutines*each)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					ev, err := w.Append(context.Background(), genEvent(g*each+i))
					if err != nil {
						t.Error(err)
						return
					}
					seqs <- ev.Seq
				}
			})
		}
		wg.Wait()
		w.Close()
		close(seqs)
		seen := map[int64]bool{}
		for s := range seqs {
			if seen[s] || s < 1 || s > goroutines*each {
				t.Fatalf("seq %d returned twice or out of range", s)
			}
			seen[s] = true
		}
		requireValid(t, db, goroutines*each)
	})
}

// TestTwoWriters is the multi-node proof: two writers on two connection
// pools (two serve processes) append concurrently to one database, and the
// result is one verified chain with every acknowledged event in it.
func TestTwoWriters(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			db1, db2 := openTwice(t, d)
			writers := []*Writer{NewWriter(db1, WriterOptions{}), NewWriter(db2, WriterOptions{})}
			var mu sync.Mutex
			acked := map[string]int64{}
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
						acked[ev.EventID] = ev.Seq
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			for _, w := range writers {
				w.Close()
			}
			requireValid(t, db1, 300)
			for _, ev := range allEvents(t, db2) {
				if seq, ok := acked[ev.EventID]; !ok || seq != ev.Seq {
					t.Fatalf("stored event %s at seq %d, acknowledged at %d (%v)", ev.EventID, ev.Seq, seq, ok)
				}
				delete(acked, ev.EventID)
			}
			if len(acked) != 0 {
				t.Fatalf("%d acknowledged events missing from the log", len(acked))
			}
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
		mustExec(t, db, `ALTER TABLE audit_events RENAME TO audit_events_away`)
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
		mustExec(t, db, `ALTER TABLE audit_events_away RENAME TO audit_events`)
		ev, err := w.Append(ctx, genEvent(9))
		if err != nil || ev.Seq != 2 {
			t.Fatalf("Append after recovery = seq %d, %v; want seq 2", ev.Seq, err)
		}
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
		} {
			if err := db.Exec(q).Error; err == nil {
				t.Errorf("%s: accepted", q)
			}
		}
		if db.Dialect == store.Postgres {
			for _, table := range []string{"audit_events", "audit_checkpoints", "audit_head"} {
				if err := db.Exec(`TRUNCATE ` + table).Error; err == nil {
					t.Errorf("TRUNCATE %s: accepted", table)
				}
			}
		}
		requireValid(t, db, 3)
	})
}
