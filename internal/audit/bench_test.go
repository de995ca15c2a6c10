package audit

import (
	"context"
	"io"
	"testing"

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
