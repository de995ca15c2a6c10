package bench

import (
	"net/http"
	"slices"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Sample is what a load run saw: every latency (for exact percentiles, no
// sketch), the answers that were not the expected status, and how long
// the load ran.
type Sample struct {
	Latencies []time.Duration // of the expected answers
	Errors    int
	FirstErr  string
	Elapsed   time.Duration
}

// Merge adds o's requests to s: the rounds of one endpoint in an
// interleaved pair become one sample.
func (s *Sample) Merge(o Sample) {
	s.Latencies = append(s.Latencies, o.Latencies...)
	s.Errors += o.Errors
	s.Elapsed += o.Elapsed
	if s.FirstErr == "" {
		s.FirstErr = o.FirstErr
	}
}

// Stats are a sample's throughput and latency percentiles.
type Stats struct {
	Requests      int
	Errors        int
	RPS           float64
	P50, P95, P99 time.Duration
}

// Stats computes the throughput (answers per second of load) and the
// nearest-rank percentiles of the sample.
func (s Sample) Stats() Stats {
	st := Stats{Requests: len(s.Latencies), Errors: s.Errors}
	if s.Elapsed > 0 {
		st.RPS = float64(len(s.Latencies)) / s.Elapsed.Seconds()
	}
	sorted := slices.Clone(s.Latencies)
	slices.Sort(sorted)
	st.P50, st.P95, st.P99 = Percentile(sorted, 50), Percentile(sorted, 95), Percentile(sorted, 99)
	return st
}

// Percentile is the nearest-rank p-th percentile of sorted (0 when empty).
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// Driver sends load over at most Conns connections. With a zero Rate it is
// closed loop: Conns connections, each sending its next request as soon as
// the previous answer is read (vegeta with an unbounded rate and as many
// workers as connections), so it measures a saturated server. With a Rate
// it is open loop: requests start at that fixed pace whatever the answers
// do, each on a free worker of the Conns (so at most Conns in flight), and
// it measures the latency a client sees on a server that keeps up. Latency
// is measured from the moment a worker starts a request to the last byte
// of the answer: should all Conns be busy, a request's wait for a free one
// is not in its latency, so an open-loop figure holds only while the rate
// achieved is the rate offered (the report flags rows that fell behind).
type Driver struct {
	Conns int
	Rate  vegeta.Rate // zero: closed loop
}

// Run loads target for d and returns what it saw; an answer other than
// want counts as an error.
func (dr Driver) Run(target vegeta.Target, want int, d time.Duration) Sample {
	return dr.RunTargeter(vegeta.NewStaticTargeter(target), want, d)
}

// RunTargeter is Run with a targeter, for requests that differ (the
// ingestion batches, each with new transaction ids).
func (dr Driver) RunTargeter(tr vegeta.Targeter, want int, d time.Duration) Sample {
	atk := vegeta.NewAttacker(
		vegeta.Connections(dr.Conns), vegeta.MaxConnections(dr.Conns),
		vegeta.Workers(uint64(dr.Conns)), vegeta.MaxWorkers(uint64(dr.Conns)), // #nosec G115 -- Conns is a validated positive flag
		vegeta.KeepAlive(true), vegeta.Timeout(30*time.Second),
		vegeta.MaxBody(0), // read every answer to the end, keep none of it
		vegeta.Redirects(vegeta.NoFollow),
	)
	s := Sample{Latencies: make([]time.Duration, 0, 1<<16)}
	start := time.Now()
	for r := range atk.Attack(tr, dr.Rate, d, "") {
		if int(r.Code) != want {
			s.Errors++
			if s.FirstErr == "" {
				s.FirstErr = http.StatusText(int(r.Code)) + " " + r.Error
			}
			continue
		}
		s.Latencies = append(s.Latencies, r.Latency)
	}
	s.Elapsed = time.Since(start)
	return s
}
