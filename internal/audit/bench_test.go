package audit

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// BenchmarkAppend measures durable appends through the group-commit writer:
// one caller at a time (every event pays a full commit), many concurrent
// callers (events share commits), and many concurrent callers with
// MaxBatch 1 (the baseline group commit is measured against: one commit per
// event). Run on PostgreSQL too through scripts/with-postgres.
func BenchmarkAppend(b *testing.B) {
	for _, d := range testdb.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			b.Run("sequential", func(b *testing.B) {
				benchAppend(b, testdb.Open(b, d), WriterOptions{}, false)
			})
			b.Run("parallel", func(b *testing.B) {
				benchAppend(b, testdb.Open(b, d), WriterOptions{}, true)
			})
			b.Run("parallel-unbatched", func(b *testing.B) {
				benchAppend(b, testdb.Open(b, d), WriterOptions{MaxBatch: 1}, true)
			})
		})
	}
}

// appendParallelism × GOMAXPROCS goroutines append at once: a busy API node
// has about that many requests in flight.
const appendParallelism = 32

func benchAppend(b *testing.B, db *store.DB, opts WriterOptions, parallel bool) {
	w := NewWriter(db, opts)
	defer w.Close()
	ctx := context.Background()
	ev := genEvent(0)
	b.ResetTimer()
	if parallel {
		b.SetParallelism(appendParallelism)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := w.Append(ctx, ev); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		for b.Loop() {
			if _, err := w.Append(ctx, ev); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	st := w.Stats()
	b.ReportMetric(float64(st.Events)/b.Elapsed().Seconds(), "events/s")
	if st.Batches > 0 {
		b.ReportMetric(float64(st.Events)/float64(st.Batches), "events/commit")
	}
}

// benchLog is the size of the log the read benchmarks walk.
const benchLog = 20000

// BenchmarkVerify measures full-chain verification (read, re-encode, hash).
func BenchmarkVerify(b *testing.B) {
	for _, d := range testdb.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			db := testdb.Open(b, d)
			load(b, db, 0, benchLog)
			keys := NewSigner(testSecret).KeySet()
			var events int64
			for b.Loop() {
				rep, err := Verify(context.Background(), db, keys)
				if err != nil || !rep.Valid {
					b.Fatal(rep, err)
				}
				events += rep.Events
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkExport measures streaming NDJSON and CSV exports.
func BenchmarkExport(b *testing.B) {
	for _, d := range testdb.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			db := testdb.Open(b, d)
			load(b, db, 0, benchLog)
			for _, format := range []string{FormatNDJSON, FormatCSV} {
				b.Run(format, func(b *testing.B) {
					var events int64
					for b.Loop() {
						n, err := NewReader(db).Export(context.Background(), Filter{}, io.Discard, format)
						if err != nil {
							b.Fatal(err)
						}
						events += n
					}
					b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
				})
			}
		})
	}
}

// nodeBenchDuration is how long each BenchmarkAuditNodes case appends.
const nodeBenchDuration = 4 * time.Second

// BenchmarkAuditNodes measures durable appends per second from 1, 2 and 4
// nodes (one connection pool and one Writer each, appendParallelism
// callers per node, like serve processes) on one database, for the design
// of this package ("tree": appends commit to audit_pending, each node's
// integrator runs every second as Checkpointer.Run does) and the design it
// replaced ("chain": every batch numbered and chained under the head row
// lock, measured here by swapping in appendBatch). Use -benchtime 1x: each
// case runs nodeBenchDuration. On PostgreSQL run with
// CONSENTGATE_TEST_PG_FSYNC=on (make bench does), so commits cost what
// they cost in production.
func BenchmarkAuditNodes(b *testing.B) {
	for _, d := range testdb.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			for _, design := range []string{"chain", "tree"} {
				for _, nodes := range []int{1, 2, 4} {
					b.Run(fmt.Sprintf("%s/nodes=%d", design, nodes), func(b *testing.B) {
						for b.Loop() {
							benchNodes(b, d, design, nodes)
						}
					})
				}
			}
		})
	}
}

func benchNodes(b *testing.B, d store.Dialect, design string, nodes int) {
	url := testdb.URL(b, d)
	dbs := make([]*store.DB, nodes)
	for i := range dbs {
		db, err := store.Open(url, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		dbs[i] = db
	}
	if err := dbs[0].Migrate(context.Background(), nil); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), nodeBenchDuration)
	defer cancel()
	var appended atomic.Int64
	var wg sync.WaitGroup
	writers := make([]*Writer, nodes)
	for i, db := range dbs {
		w := NewWriter(db, WriterOptions{})
		if design == "chain" {
			w.batch, w.direct = appendBatch, false
		} else {
			wg.Go(func() { // the node's integrator, as in serve
				t := time.NewTicker(time.Second)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
						if _, err := Integrate(ctx, db); err != nil && ctx.Err() == nil {
							b.Error(err)
						}
					}
				}
			})
		}
		writers[i] = w
		for range appendParallelism {
			wg.Go(func() {
				ev := genEvent(i)
				for ctx.Err() == nil {
					if _, err := w.Append(ctx, ev); err == nil {
						appended.Add(1)
					} else if ctx.Err() == nil {
						b.Error(err)
						return
					}
				}
			})
		}
	}
	start := time.Now()
	wg.Wait()
	elapsed := time.Since(start)
	var batches int64
	for _, w := range writers {
		w.Close()
		batches += w.Stats().Batches
	}
	if design == "tree" {
		if _, err := Integrate(context.Background(), dbs[0]); err != nil {
			b.Fatal(err)
		}
	}
	var logged int64
	if err := dbs[0].Raw(`SELECT COUNT(*) FROM audit_events`).Row().Scan(&logged); err != nil {
		b.Fatal(err)
	}
	if logged < appended.Load() {
		b.Fatalf("%d events acknowledged, %d in the log", appended.Load(), logged)
	}
	b.ReportMetric(float64(appended.Load())/elapsed.Seconds(), "appends/s")
	b.ReportMetric(float64(appended.Load())/float64(max(batches, 1)), "events/commit")
}
