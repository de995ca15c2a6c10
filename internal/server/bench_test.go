package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/server"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// Benchmark shape: clients reading in parallel, alternating rounds of each
// mode so that drift on a shared machine hits both alike.
const (
	benchClients = 32
	benchRounds  = 10
	benchRound   = 600 * time.Millisecond
	benchWarmup  = 500 * time.Millisecond
)

// nopRecorder records nothing: the ungated baseline of the audit cost.
type nopRecorder struct{}

func (nopRecorder) Record(_ context.Context, ev audit.Event) (audit.Event, error) { return ev, nil }

// BenchmarkAuditGate measures what "no audit, no data" costs: the same
// transactions read (GET /v1/accounts/{id}/transactions?limit=50, a real
// access token checked against the database, the real handler chain and
// HTTP server) on two nodes of one database, one recording every call
// durably through the group-commit writer before answering, the other with
// a recorder that records nothing. Rounds alternate between the two within
// one run; the ratio gated/ungated is reported with the append rate and the
// verify rate of the resulting log. Run with make bench (-benchtime 1x: the
// rounds are timed, not b.N).
func BenchmarkAuditGate(b *testing.B) {
	for _, d := range testdb.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			dbURL := testdb.URL(b, d)
			gated := testutil.Start(b, d, testutil.Options{DatabaseURL: dbURL})
			tok := gated.Authorize(b, testutil.DemoFlow())
			card := cardAccount(b, gated, tok.AccessToken)
			ungated, _ := startNode(b, dbURL, server.Options{AuditRecorder: nopRecorder{}})
			path := "/v1/accounts/" + card + "/transactions?limit=50"

			client := &http.Client{Timeout: 30 * time.Second,
				Transport: &http.Transport{MaxIdleConns: 2 * benchClients, MaxIdleConnsPerHost: benchClients}}
			load(b, client, gated.URL+path, tok.AccessToken, benchWarmup)
			load(b, client, ungated+path, tok.AccessToken, benchWarmup)

			head := func() int64 {
				// Appended events get their seq at integration: integrate
				// first, so the head counts every committed event.
				if _, err := audit.Integrate(context.Background(), gated.DB); err != nil {
					b.Fatal(err)
				}
				var seq int64
				if err := gated.DB.Raw(`SELECT seq FROM audit_head WHERE id = 1`).Row().Scan(&seq); err != nil {
					b.Fatal(err)
				}
				return seq
			}
			events0, batches0 := head(), auditBatches(b, gated)
			var gatedN, ungatedN int64
			var gatedT, ungatedT time.Duration
			var pairs []float64 // gated/ungated of each round: robust to bursts of load from elsewhere
			b.ResetTimer()
			for round := range benchRounds {
				// Which mode goes first alternates too: load from the rest of
				// the machine that comes and goes must not favour one.
				var g, u int64
				for i := range 2 {
					if (i == 0) == (round%2 == 0) {
						g = load(b, client, gated.URL+path, tok.AccessToken, benchRound)
					} else {
						u = load(b, client, ungated+path, tok.AccessToken, benchRound)
					}
				}
				gatedN, ungatedN = gatedN+g, ungatedN+u
				gatedT, ungatedT = gatedT+benchRound, ungatedT+benchRound
				pairs = append(pairs, float64(g)/float64(max(u, 1)))
			}
			b.StopTimer()
			slices.Sort(pairs)
			median := (pairs[(len(pairs)-1)/2] + pairs[len(pairs)/2]) / 2
			events, batches := head()-events0, auditBatches(b, gated)-batches0

			start := time.Now()
			rep, err := audit.Verify(context.Background(), gated.DB, gated.Node.AuditKeys())
			verifyT := time.Since(start)
			if err != nil || !rep.Valid {
				b.Fatalf("the log does not verify: %+v %v", rep, err)
			}

			gatedRate, ungatedRate := float64(gatedN)/gatedT.Seconds(), float64(ungatedN)/ungatedT.Seconds()
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(gatedRate, "gated_req/s")
			b.ReportMetric(ungatedRate, "ungated_req/s")
			b.ReportMetric(gatedRate/ungatedRate, "ratio")
			b.ReportMetric(median, "median_round_ratio")
			b.ReportMetric(float64(events)/gatedT.Seconds(), "appended_events/s")
			b.ReportMetric(float64(rep.Events)/verifyT.Seconds(), "verified_events/s")
			b.Logf("%s, %d clients: gated %.0f req/s, ungated %.0f req/s, ratio %.2f (median of %d rounds %.2f); %d events appended (%.0f events/s, %.1f events per commit); verified %d events in %v (%.0f events/s)",
				d, benchClients, gatedRate, ungatedRate, gatedRate/ungatedRate, benchRounds, median, events, float64(events)/gatedT.Seconds(),
				float64(events)/float64(max(batches, 1)), rep.Events, verifyT.Round(time.Millisecond), float64(rep.Events)/verifyT.Seconds())
		})
	}
}

// load runs benchClients clients against url for d and returns the number
// of 200 answers; any other answer fails the benchmark.
func load(b *testing.B, client *http.Client, url, token string, d time.Duration) int64 {
	var ok atomic.Int64
	var failure atomic.Value
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				// Customer present: the SPEC §4 unattended-call limit must not refuse the load.
				req.Header.Set("x-fapi-customer-ip-address", "203.0.113.7")
				resp, err := client.Do(req)
				if err != nil {
					failure.Store(err.Error())
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failure.Store(fmt.Sprintf("status %d", resp.StatusCode))
					return
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if f := failure.Load(); f != nil {
		b.Fatalf("%s: %v", url, f)
	}
	return ok.Load()
}

// auditBatches reads the node's committed audit transactions from /metrics.
func auditBatches(b *testing.B, s *testutil.Server) int64 {
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "consentgate_audit_batches_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			return int64(f)
		}
	}
	b.Fatal("no consentgate_audit_batches_total in /metrics")
	return 0
}
