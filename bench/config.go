// Package bench is consentgate's end-to-end benchmark (make bench): it
// seeds databases of chosen sizes with the demo generator, starts the real
// server on each, obtains tokens through the real OAuth flow and drives
// closed-loop load (vegeta) at the data API, at baselines without the
// consent gate and at the token endpoint; open-loop load at a fixed rate at
// the transactions page and its baseline; and batches of new transactions
// through the provider API (ingestion). It prints one table and writes
// docs/benchmarks.md and docs/benchmarks.svg.
//
// The orchestration is a test behind the "bench" build tag
// (bench_test.go), so that it can drive the server with internal/testutil;
// this package holds the load driver, the baselines and the report. Its
// figures are measurements, never pass/fail criteria: nothing here runs in
// make test beyond the report's own unit tests.
package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the benchmark's shape, from the BENCH_* environment variables
// that make bench passes.
type Config struct {
	Sizes    []int         // BENCH_SIZES: transactions in the database, e.g. "100000 1000000 10000000"
	DBs      []string      // BENCH_DB: "sqlite postgres"
	Duration time.Duration // BENCH_DURATION: load per endpoint, e.g. 10s
	Warmup   time.Duration // BENCH_WARMUP: unmeasured load before each endpoint
	Conns    int           // BENCH_CONNS: concurrent connections (closed loop; the cap of the open loop)
	// Rate is the open loop's fixed request rate per second (BENCH_RATE)
	// at the transactions page and its ungated baseline, over at most
	// Conns connections. The default, 500, is about 40% of the gated
	// page's closed-loop capacity on the 2-core machine of
	// docs/benchmarks.md: a busy server, not a saturated one.
	Rate int
	// IngestConns is how many connections post ingestion batches at once,
	// closed loop (BENCH_INGEST_CONNS).
	IngestConns int
	// TxPerAccount is the generator's transactions per checking and card
	// account (BENCH_TX_PER_ACCOUNT): the measured account has about this
	// many at every size, so the deep cursor is equally deep everywhere
	// and only the rest of the table grows.
	TxPerAccount int
	Out          string // BENCH_OUT: where benchmarks.md and .svg go
	// NotesFile is the hand-written part of benchmarks.md, appended to
	// what the run writes (BENCH_NOTES; docs/benchmarks-notes.md): the
	// reduced runs, profiles and measurements the bench program does not
	// make survive a full run. "" appends nothing.
	NotesFile string
	Profile   string // BENCH_PROFILE: a directory for CPU profiles of each measured run ("" none)
	// Only names the endpoints to measure (BENCH_ONLY, e.g. "token
	// introspect"; the reference's rows come with ours); empty: all. For
	// quick reduced runs while working on one path: a run with it leaves
	// the other rows and targets out of its report.
	Only []string
}

// ConfigFromEnv reads the BENCH_* variables, with make bench's defaults.
func ConfigFromEnv() (Config, error) {
	c := Config{
		Sizes: []int{100_000, 1_000_000, 10_000_000}, DBs: []string{"sqlite", "postgres"},
		Duration: 10 * time.Second, Warmup: 2 * time.Second, Conns: 50, Rate: 500, IngestConns: 4, TxPerAccount: 10_000,
		Out: "../docs", NotesFile: "../docs/benchmarks-notes.md", Profile: os.Getenv("BENCH_PROFILE"),
	}
	if s := os.Getenv("BENCH_SIZES"); s != "" {
		c.Sizes = nil
		for _, f := range strings.Fields(s) {
			n, err := parseCount(f)
			if err != nil || n < 1000 {
				return c, fmt.Errorf("BENCH_SIZES: %q is not a count of at least 1000 (100000, 1e6, 10M)", f)
			}
			c.Sizes = append(c.Sizes, n)
		}
	}
	if s := os.Getenv("BENCH_DB"); s != "" {
		c.DBs = strings.Fields(s)
		for _, d := range c.DBs {
			if d != "sqlite" && d != "postgres" {
				return c, fmt.Errorf("BENCH_DB: %q is not sqlite or postgres", d)
			}
		}
	}
	for name, dst := range map[string]*time.Duration{"BENCH_DURATION": &c.Duration, "BENCH_WARMUP": &c.Warmup} {
		if s := os.Getenv(name); s != "" {
			d, err := time.ParseDuration(s)
			// A zero duration would be an endless attack to vegeta; a
			// warm-up of 0 means none.
			if err != nil || d < 0 || (d == 0 && name == "BENCH_DURATION") {
				return c, fmt.Errorf("%s: %q is not a positive duration", name, s)
			}
			*dst = d
		}
	}
	for name, dst := range map[string]*int{"BENCH_CONNS": &c.Conns, "BENCH_RATE": &c.Rate,
		"BENCH_INGEST_CONNS": &c.IngestConns, "BENCH_TX_PER_ACCOUNT": &c.TxPerAccount} {
		if s := os.Getenv(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				return c, fmt.Errorf("%s: %q is not a positive integer", name, s)
			}
			*dst = n
		}
	}
	c.Only = strings.Fields(os.Getenv("BENCH_ONLY"))
	if s := os.Getenv("BENCH_OUT"); s != "" {
		c.Out = s
	}
	if s, ok := os.LookupEnv("BENCH_NOTES"); ok {
		c.NotesFile = s
	}
	return c, nil
}

// parseCount reads 100000, 1e6, 100k, 10M.
func parseCount(s string) (int, error) {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1e3, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1e6, s[:len(s)-1]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return int(f * mult), nil
}

// Command is the make invocation that reproduces the run.
func (c Config) Command() string {
	sizes := make([]string, len(c.Sizes))
	for i, n := range c.Sizes {
		sizes[i] = strconv.Itoa(n)
	}
	cmd := fmt.Sprintf(`make bench BENCH_SIZES="%s" BENCH_DB="%s" BENCH_DURATION=%v BENCH_CONNS=%d BENCH_RATE=%d BENCH_INGEST_CONNS=%d`,
		strings.Join(sizes, " "), strings.Join(c.DBs, " "), c.Duration, c.Conns, c.Rate, c.IngestConns)
	if len(c.Only) > 0 {
		cmd += fmt.Sprintf(` BENCH_ONLY="%s"`, strings.Join(c.Only, " "))
	}
	return cmd
}

// bigAccountsPerCustomer is the generator's expected number of checking
// and card accounts a customer (one to three accounts, a third each; with
// two, the second is a card 60% of the time): 1/3 + 1.6/3 + 2/3.
const bigAccountsPerCustomer = 4.6 / 3

// CustomersFor is how many generated customers make about size
// transactions at perAccount transactions a checking or card account.
func CustomersFor(size, perAccount int) int {
	return max(1, int(float64(size)/(bigAccountsPerCustomer*float64(perAccount))+0.5))
}

// SizeLabel names a size: 100k, 1M, 10M.
func SizeLabel(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}
