package bench

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
)

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 95: 95 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond} {
		if got := Percentile(s, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if Percentile(nil, 99) != 0 || Percentile(s[:1], 99) != time.Millisecond {
		t.Error("edge cases")
	}
	st := Sample{Latencies: []time.Duration{3, 1, 2}, Elapsed: time.Second}.Stats()
	if st.Requests != 3 || st.RPS != 3 || st.P50 != 2 || st.P99 != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestConfig(t *testing.T) {
	for _, v := range []string{"BENCH_SIZES", "BENCH_DB", "BENCH_DURATION", "BENCH_CONNS"} {
		t.Setenv(v, "")
	}
	t.Setenv("BENCH_SIZES", "100k 1e6 10M")
	t.Setenv("BENCH_DB", "postgres")
	c, err := ConfigFromEnv()
	if err != nil || len(c.Sizes) != 3 || c.Sizes[0] != 100_000 || c.Sizes[1] != 1_000_000 || c.Sizes[2] != 10_000_000 ||
		c.DBs[0] != "postgres" || c.Conns != 50 || c.Duration != 10*time.Second {
		t.Fatalf("%+v %v", c, err)
	}
	if !strings.Contains(c.Command(), `BENCH_SIZES="100000 1000000 10000000"`) {
		t.Errorf("command %s", c.Command())
	}
	t.Setenv("BENCH_DB", "mysql")
	if _, err := ConfigFromEnv(); err == nil {
		t.Error("unknown database accepted")
	}
	if n := CustomersFor(10_000_000, 10_000); n < 600 || n > 700 {
		t.Errorf("customers for 10M: %d", n)
	}
	for n, want := range map[int]string{100_000: "100k", 1_000_000: "1M", 10_000_000: "10M", 1234: "1234"} {
		if got := SizeLabel(n); got != want {
			t.Errorf("SizeLabel(%d) = %s", n, got)
		}
	}
}

func TestBaselineCursor(t *testing.T) {
	k := accounts.TxKey{TransactedAt: time.UnixMicro(1_700_000_000_123_456).UTC(), ID: "txn:with:colons"}
	got, err := DecodeKey(EncodeKey(k))
	if err != nil || !got.TransactedAt.Equal(k.TransactedAt) || got.ID != k.ID {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := DecodeKey("!!"); err == nil {
		t.Error("garbage accepted")
	}
}

// TestReport renders a made-up run: the targets' verdicts, well-formed SVG,
// and the Markdown tables.
func TestReport(t *testing.T) {
	r := &Report{Config: Config{Conns: 50, Duration: time.Second, DBs: []string{"sqlite"}, Sizes: []int{100_000, 10_000_000}},
		Started: time.Now(), Finished: time.Now(), Machine: Machine{CPUs: 2}}
	add := func(size int, ep string, rps float64, p99 time.Duration) {
		r.Results = append(r.Results, Measurement{DB: "sqlite", Size: size, Endpoint: ep,
			Stats: Stats{Requests: 100, RPS: rps, P50: p99 / 2, P95: p99, P99: p99}})
	}
	for _, n := range []int{100_000, 10_000_000} {
		add(n, EpTransactions, 1000, 10*time.Millisecond)
		add(n, EpDeep, 1000, 25*time.Millisecond)
		add(n, EpUngated, 1500, 5*time.Millisecond)
		add(n, EpUngatedDeep, 3000, 5*time.Millisecond)
	}
	add(100_000, EpToken, 2000, 5*time.Millisecond)
	verdicts := map[string]string{}
	for _, tg := range r.Targets() {
		verdicts[tg.Name] = tg.Verdict()
	}
	for name, want := range map[string]string{
		"sqlite: transactions p99 ≤ 20 ms at 50 connections":        "met",
		"sqlite: transactions_deep p99 ≤ 20 ms at 50 connections":   "NOT met",
		"sqlite: gated transactions ≥ 0.5 × ungated":                "met",
		"sqlite: gated transactions_deep ≥ 0.5 × ungated":           "NOT met",
		"sqlite: token endpoint (client_credentials) ≥ 1,700 req/s": "met",
	} {
		if verdicts[name] != want {
			t.Errorf("%s: %q, want %q (all: %v)", name, verdicts[name], want, verdicts)
		}
	}
	dec := xml.NewDecoder(strings.NewReader(r.SVG()))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
	}
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "benchmarks.md"))
	for _, want := range []string{"| sqlite | 10M | transactions | 1000 |", "![", "NOT met", "HMAC-SHA256"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("benchmarks.md lacks %q", want)
		}
	}
}
