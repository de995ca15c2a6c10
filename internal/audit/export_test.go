package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// exported is an NDJSON line as an outside tool would decode it.
type exported struct {
	Seq           int64    `json:"seq"`
	EventID       string   `json:"event_id"`
	OccurredAt    string   `json:"occurred_at"`
	Type          string   `json:"type"`
	Outcome       string   `json:"outcome"`
	Reason        string   `json:"reason"`
	ClientID      string   `json:"client_id"`
	CustomerID    string   `json:"customer_id"`
	GrantID       string   `json:"grant_id"`
	AccountID     string   `json:"account_id"`
	Method        string   `json:"method"`
	Path          string   `json:"path"`
	Status        int      `json:"status"`
	Purpose       string   `json:"purpose"`
	Scopes        []string `json:"scopes"`
	InteractionID string   `json:"interaction_id"`
	PrevHash      string   `json:"prev_hash"`
	Hash          string   `json:"hash"`
}

func TestExportNDJSON(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		load(t, db, 0, 90)
		want, _, err := NewReader(db).Query(context.Background(), Filter{CustomerID: "cust-2"}, MaxLimit, "")
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		n, err := NewReader(db).Export(context.Background(), Filter{CustomerID: "cust-2"}, &buf, FormatNDJSON)
		if err != nil || n != int64(len(want)) || n != 30 {
			t.Fatalf("Export = %d, %v; want %d events", n, err, len(want))
		}
		sc := bufio.NewScanner(&buf)
		i := 0
		for ; sc.Scan(); i++ {
			line := sc.Bytes()
			if mj, _ := json.Marshal(want[i]); !bytes.Equal(line, mj) {
				t.Fatalf("line %d:\n got %s\nwant %s", i, line, mj)
			}
			// The export alone is enough to recompute each event's hash.
			var x exported
			if err := json.Unmarshal(line, &x); err != nil {
				t.Fatal(err)
			}
			occurred, err := time.Parse(time.RFC3339Nano, x.OccurredAt)
			if err != nil {
				t.Fatal(err)
			}
			h, err := ComputeHash(x.PrevHash, Event{Seq: x.Seq, EventID: x.EventID, OccurredAt: occurred, Type: Type(x.Type),
				Outcome: Outcome(x.Outcome), Reason: x.Reason, ClientID: x.ClientID, CustomerID: x.CustomerID, GrantID: x.GrantID,
				AccountID: x.AccountID, Method: x.Method, Path: x.Path, Status: x.Status, Purpose: x.Purpose, Scopes: x.Scopes,
				InteractionID: x.InteractionID})
			if err != nil || h != x.Hash {
				t.Fatalf("line %d: recomputed hash %s, exported %s (%v)", i, h, x.Hash, err)
			}
		}
		if i != len(want) {
			t.Fatalf("%d lines, want %d", i, len(want))
		}
	})
}

func TestExportCSV(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		load(t, db, 0, 40)
		all := allEvents(t, db)
		var buf bytes.Buffer
		f := Filter{Type: DataAccess}
		n, err := NewReader(db).Export(context.Background(), f, &buf, FormatCSV)
		// The generated mix cycles through Types(), so the count follows it.
		var wantN int64
		for i := range 40 {
			if genEvent(i).Type == DataAccess {
				wantN++
			}
		}
		if err != nil || wantN < 2 || n != wantN {
			t.Fatalf("Export = %d, %v; want %d data.access events", n, err, wantN)
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(recs[0], ",") != strings.Join(CSVHeader, ",") || int64(len(recs)) != wantN+1 {
			t.Fatalf("CSV header %v, %d records", recs[0], len(recs))
		}
		for _, rec := range recs[1:] {
			seq, _ := strconv.ParseInt(rec[0], 10, 64)
			ev := all[seq-1]
			want := []string{rec[0], ev.EventID, FormatTime(ev.OccurredAt), "data.access", string(ev.Outcome), ev.Reason,
				ev.ClientID, ev.CustomerID, ev.GrantID, "acc-1", "GET", "/v1/accounts/acc-1/transactions",
				strconv.Itoa(ev.Status), ev.Purpose, "accounts:read transactions:read", ev.InteractionID, ev.PrevHash, ev.Hash}
			if strings.Join(rec, "|") != strings.Join(want, "|") {
				t.Fatalf("CSV row\n got %v\nwant %v", rec, want)
			}
		}

		_, err = NewReader(db).Export(context.Background(), Filter{}, io.Discard, "xml")
		wantCode(t, err, apperr.InvalidRequest, "format")
		_, err = NewReader(db).Export(context.Background(), Filter{Outcome: "x"}, io.Discard, FormatCSV)
		wantCode(t, err, apperr.InvalidRequest, "outcome")
	})
}

// flushRecorder is an http.ResponseWriter-like sink that counts Flush calls
// and the bytes that had arrived at each.
type flushRecorder struct {
	bytes.Buffer
	flushedAt []int
}

func (f *flushRecorder) Flush() { f.flushedAt = append(f.flushedAt, f.Len()) }

func TestExportFlushes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		load(t, db, 0, 2500)
		var w flushRecorder
		n, err := NewReader(db).Export(context.Background(), Filter{}, &w, FormatNDJSON)
		if err != nil || n != 2500 {
			t.Fatal(n, err)
		}
		// Every flushEvery events the data so far reaches the client.
		if len(w.flushedAt) != 3 || w.flushedAt[0] == 0 || w.flushedAt[0] >= w.flushedAt[1] || w.flushedAt[2] != w.Len() {
			t.Fatalf("flushes at %v of %d bytes", w.flushedAt, w.Len())
		}
		if lines := bytes.Count(w.Bytes()[:w.flushedAt[0]], []byte("\n")); lines != flushEvery {
			t.Fatalf("first flush after %d lines, want %d", lines, flushEvery)
		}
	})
}

// countingWriter counts bytes and drops them.
type countingWriter struct{ n atomic.Int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

// TestExportMillion shows constant memory: exporting a million events keeps
// the heap within a few MB of where it started. It takes a minute or two, so
// it runs only with CONSENTGATE_BIG=1.
func TestExportMillion(t *testing.T) {
	if os.Getenv("CONSENTGATE_BIG") != "1" {
		t.Skip("set CONSENTGATE_BIG=1 to export a million events")
	}
	const total = 1_000_000
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		start := time.Now()
		load(t, db, 0, total)
		t.Logf("%s: loaded %d events in %v", db.Dialect, total, time.Since(start).Round(time.Millisecond))

		for _, format := range []string{FormatNDJSON, FormatCSV} {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			baseline := ms.HeapInuse
			var peak atomic.Uint64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				var m runtime.MemStats
				for {
					runtime.ReadMemStats(&m)
					if m.HeapInuse > peak.Load() {
						peak.Store(m.HeapInuse)
					}
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			})
			var out countingWriter
			start = time.Now()
			n, err := NewReader(db).Export(context.Background(), Filter{}, &out, format)
			elapsed := time.Since(start)
			close(stop)
			wg.Wait()
			if err != nil || n != total {
				t.Fatalf("Export %s = %d, %v", format, n, err)
			}
			growth := int64(peak.Load()) - int64(baseline)
			t.Logf("%s %s: %d events, %d MB in %v (%.0f events/s); heap in use %d MB before, peak %d MB (growth %.1f MB)",
				db.Dialect, format, n, out.n.Load()>>20, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(),
				baseline>>20, peak.Load()>>20, float64(growth)/(1<<20))
			if growth > 32<<20 {
				t.Fatalf("export of %d events grew the heap by %d MB: not constant memory", n, growth>>20)
			}
		}

		start = time.Now()
		rep := requireValid(t, db, total)
		elapsed := time.Since(start)
		t.Logf("%s: verified %d events in %v (%.0f events/s)", db.Dialect, rep.Events, elapsed.Round(time.Millisecond),
			float64(rep.Events)/elapsed.Seconds())
	})
}
