//go:build soak

package server_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// vitals are a node's own figures, from its /metrics.
type vitals struct {
	RSSMiB     float64
	Goroutines int
	OpenFDs    int
}

func (v vitals) String() string {
	return fmt.Sprintf("RSS %.1f MiB, %d goroutines, %d open fds", v.RSSMiB, v.Goroutines, v.OpenFDs)
}

// readVitals scrapes process_resident_memory_bytes, go_goroutines and
// process_open_fds from the node's Prometheus endpoint.
func readVitals(base string) (vitals, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return vitals{}, err
	}
	defer resp.Body.Close()
	var v vitals
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			v.RSSMiB = f / (1 << 20)
		case "go_goroutines":
			v.Goroutines = int(f)
		case "process_open_fds":
			v.OpenFDs = int(f)
		}
	}
	return v, sc.Err()
}

// TestSoak (make soak) drives the chaos load — data calls, new grants
// through the whole flow, refreshes, revocations, provider batches — at a
// node process for SOAK_DURATION (default 30m) on SOAK_DB (sqlite, or
// postgres under scripts/with-postgres) and reports the node's resident
// memory, goroutines and open file descriptors after a warm-up and at the
// end. A leak shows as growth with the load held constant; the bounds are
// loose on purpose (caches and the database's page cache settle), but a
// goroutine or descriptor per request, or unbounded memory, fails it.
func TestSoak(t *testing.T) {
	duration := 30 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("SOAK_DURATION")); err == nil && d > 0 {
		duration = d
	}
	dialect := store.SQLite
	if os.Getenv("SOAK_DB") == "postgres" {
		dialect = store.Postgres
	}
	base, _ := startProcess(t, testdb.URL(t, dialect))
	load := newChaosLoad()
	load.base.Store(&base)
	setupProvider(t, load)

	workers := newLoadWorkers()
	worker := workers.run
	for range 3 { // a steady few hundred requests a second: a soak, not a benchmark
		worker(5*time.Millisecond, load.dataCall)
	}
	worker(100*time.Millisecond, func() { _ = load.flow() })
	worker(50*time.Millisecond, load.refresh)
	worker(2*time.Second, load.revoke)
	provider := ""
	start := time.Now().UTC().Add(-time.Hour)
	worker(time.Second, func() {
		if provider == "" {
			provider = providerToken(load)
		} else if load.providerBatch(provider, start) == http.StatusUnauthorized {
			provider = ""
		}
	})

	warmup := min(2*time.Minute, duration/10)
	time.Sleep(warmup)
	first, err := readVitals(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after %s of warm-up: %s", warmup, first)
	began := time.Now()
	tick := time.NewTicker(max(duration/10, time.Second))
	defer tick.Stop()
	for time.Since(began) < duration-warmup {
		<-tick.C
		if v, err := readVitals(base); err == nil {
			t.Logf("%6s: %s", time.Since(began).Round(time.Second), v)
		}
	}
	last, err := readVitals(base) // still under the same load as the first reading
	workers.halt()
	if err != nil {
		t.Fatal(err)
	}
	load.mu.Lock()
	counts := fmt.Sprint(load.counts)
	load.mu.Unlock()
	t.Logf("soak of %s on %s: start %s; end %s; load %s", duration, dialect, first, last, counts)
	if last.Goroutines > first.Goroutines+50 || last.OpenFDs > first.OpenFDs+50 || last.RSSMiB > 2*first.RSSMiB+32 {
		t.Fatalf("the node grew: start %s, end %s", first, last)
	}
}
