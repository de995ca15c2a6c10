package bench

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/ingest"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
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
	for _, v := range []string{"BENCH_SIZES", "BENCH_DB", "BENCH_DURATION", "BENCH_CONNS", "BENCH_RATE", "BENCH_INGEST_CONNS"} {
		t.Setenv(v, "")
	}
	t.Setenv("BENCH_SIZES", "100k 1e6 10M")
	t.Setenv("BENCH_DB", "postgres")
	c, err := ConfigFromEnv()
	if err != nil || len(c.Sizes) != 3 || c.Sizes[0] != 100_000 || c.Sizes[1] != 1_000_000 || c.Sizes[2] != 10_000_000 ||
		c.DBs[0] != "postgres" || c.Conns != 50 || c.Duration != 10*time.Second {
		t.Fatalf("%+v %v", c, err)
	}
	if c.Rate != 500 || c.IngestConns != 4 {
		t.Errorf("defaults: rate %d, ingest conns %d", c.Rate, c.IngestConns)
	}
	if !strings.Contains(c.Command(), `BENCH_SIZES="100000 1000000 10000000"`) ||
		!strings.Contains(c.Command(), "BENCH_RATE=500 BENCH_INGEST_CONNS=4") {
		t.Errorf("command %s", c.Command())
	}
	t.Setenv("BENCH_RATE", "250")
	t.Setenv("BENCH_INGEST_CONNS", "8")
	if c, err := ConfigFromEnv(); err != nil || c.Rate != 250 || c.IngestConns != 8 ||
		!strings.Contains(c.Command(), "BENCH_RATE=250 BENCH_INGEST_CONNS=8") {
		t.Errorf("%+v %v", c, err)
	}
	t.Setenv("BENCH_RATE", "0")
	if _, err := ConfigFromEnv(); err == nil {
		t.Error("rate 0 accepted")
	}
	t.Setenv("BENCH_RATE", "")
	t.Setenv("BENCH_INGEST_CONNS", "")
	t.Setenv("BENCH_DURATION", "0s") // vegeta would attack forever
	if _, err := ConfigFromEnv(); err == nil {
		t.Error("a zero duration accepted")
	}
	t.Setenv("BENCH_DURATION", "")
	t.Setenv("BENCH_WARMUP", "0s") // no warm-up
	t.Setenv("BENCH_ONLY", "token  introspect")
	if c, err := ConfigFromEnv(); err != nil || c.Warmup != 0 || !slices.Equal(c.Only, []string{"token", "introspect"}) ||
		!strings.Contains(c.Command(), `BENCH_ONLY="token introspect"`) {
		t.Errorf("%+v %v", c, err)
	}
	t.Setenv("BENCH_ONLY", "")
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
	r := &Report{Config: Config{Conns: 50, Rate: 500, IngestConns: 4, Duration: time.Second, DBs: []string{"sqlite", "postgres"},
		Sizes: []int{100_000, 10_000_000}}, Started: time.Now(), Finished: time.Now(), Machine: Machine{CPUs: 2}}
	add := func(db string, size int, ep string, rps float64, p99 time.Duration) {
		r.Results = append(r.Results, Measurement{DB: db, Size: size, Endpoint: ep,
			Stats: Stats{Requests: 100, RPS: rps, P50: p99 / 2, P95: p99, P99: p99}})
	}
	for _, n := range []int{100_000, 10_000_000} {
		add("sqlite", n, EpTransactions, 1000, 10*time.Millisecond)
		add("sqlite", n, EpDeep, 1000, 25*time.Millisecond)
		add("sqlite", n, EpUngated, 1500, 5*time.Millisecond)
		add("sqlite", n, EpUngatedDeep, 3000, 5*time.Millisecond)
		add("sqlite", n, EpOpen, 499, 4*time.Millisecond)
		add("sqlite", n, EpUngatedOpen, 500, 2*time.Millisecond)
		add("sqlite", n, EpIngest, 5, 900*time.Millisecond) // 25,000 transactions/s
		add("postgres", n, EpTransactions, 1000, 30*time.Millisecond)
		add("postgres", n, EpOpen, 500, time.Duration(n/1000)*time.Microsecond)                                 // 100 µs, then 10 ms
		add("postgres", n, EpIngest, map[int]float64{100_000: 10.5, 10_000_000: 11.5}[n], 400*time.Millisecond) // 52,500 then 57,500 transactions/s
	}
	add("postgres", 10_000_000, EpOpen, 470, 21*time.Millisecond) // a second 10M row is ignored: find takes the first
	add("sqlite", 100_000, EpToken, 2000, 5*time.Millisecond)
	verdicts := map[string]string{}
	var names []string
	for _, tg := range r.Targets() {
		verdicts[tg.Name] = tg.Verdict()
		names = append(names, tg.Name)
	}
	for name, want := range map[string]string{
		"sqlite: transactions p99 ≤ 20 ms at 50 connections, closed loop (saturation)":                  "met",
		"sqlite: transactions p99 ≤ 20 ms at 50 connections, open loop at 500 req/s":                    "met",
		"sqlite: transactions_deep p99 ≤ 20 ms at 50 connections, closed loop (saturation)":             "NOT met",
		"sqlite: gated transactions ≥ 0.6 × ungated":                                                    "met",
		"sqlite: gated transactions_deep ≥ 0.6 × ungated":                                               "NOT met",
		"sqlite: token endpoint (client_credentials) ≥ 1,700 req/s":                                     "met",
		"sqlite: ingestion through the API (4 connections, batches of 5,000)":                           "no target",
		"postgres: transactions p99 ≤ 20 ms at 50 connections, closed loop (saturation)":                "NOT met",
		"postgres: transactions p99 ≤ 20 ms at 50 connections, open loop at 500 req/s":                  "met",
		"postgres: ingestion ≥ 50,000 transactions/s through the API (4 connections, batches of 5,000)": "met",
	} {
		if verdicts[name] != want {
			t.Errorf("%s: %q, want %q (all: %v)", name, verdicts[name], want, verdicts)
		}
	}
	// The open-loop row comes right after the closed-loop p99 row.
	for i, n := range names {
		if strings.HasSuffix(n, ": transactions p99 ≤ 20 ms at 50 connections, closed loop (saturation)") &&
			(i+1 >= len(names) || !strings.Contains(names[i+1], "open loop at 500 req/s")) {
			t.Errorf("open-loop target not right after %q: %q", n, names)
		}
	}
	// Below the targets: NOT met (open loop over 20 ms; ingestion under 50,000/s).
	slow := *r
	slow.Results = nil
	for _, m := range r.Results {
		switch {
		case m.DB == "postgres" && m.Endpoint == EpOpen:
			m.P99 = 21 * time.Millisecond
		case m.DB == "postgres" && m.Endpoint == EpIngest:
			m.RPS = 9.9
		}
		slow.Results = append(slow.Results, m)
	}
	for _, tg := range slow.Targets() {
		if strings.HasPrefix(tg.Name, "postgres: transactions p99 ≤ 20 ms at 50 connections, open loop") ||
			strings.HasPrefix(tg.Name, "postgres: ingestion") {
			if tg.Verdict() != "NOT met" {
				t.Errorf("%s: %s (%s), want NOT met", tg.Name, tg.Verdict(), tg.Measured)
			}
		}
	}
	// Behind the offered rate, a low p99 is not service time: NOT met.
	behind := *r
	behind.Results = nil
	for _, m := range r.Results {
		if m.DB == "sqlite" && m.Endpoint == EpOpen && m.Size == 100_000 {
			m.RPS = 470
		}
		behind.Results = append(behind.Results, m)
	}
	for _, tg := range behind.Targets() {
		if strings.HasPrefix(tg.Name, "sqlite: transactions p99 ≤ 20 ms at 50 connections, open loop") && tg.Verdict() != "NOT met" {
			t.Errorf("%s: %s (%s), want NOT met: the run fell behind the rate", tg.Name, tg.Verdict(), tg.Measured)
		}
	}
	// Not measured: n/a.
	none := &Report{Config: r.Config}
	none.Results = append(none.Results, Measurement{DB: "postgres", Size: 100_000, Endpoint: EpTransactions})
	for _, tg := range none.Targets() {
		if (strings.Contains(tg.Name, "open loop") || strings.Contains(tg.Name, "ingestion")) && tg.Verdict() != "n/a" {
			t.Errorf("%s: %s without measurements", tg.Name, tg.Verdict())
		}
	}
	ing, _ := r.find("postgres", 100_000, EpIngest)
	if got := ing.TxPerSec(); got != 52_500 {
		t.Errorf("transactions/s %v", got)
	}
	if m, _ := r.find("postgres", 100_000, EpOpen); m.TxPerSec() != 0 {
		t.Error("transactions/s of a read")
	}

	svg := r.SVG()
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
	}
	for _, want := range []string{"sqlite transactions_open p99", "postgres transactions_open p99", "open loop 500 req/s"} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if strings.Contains(svg, "transactions_open p50") {
		t.Error("SVG draws the open loop's p50")
	}
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "benchmarks.md"))
	for _, want := range []string{"| sqlite | 10M | transactions | 1000 |", "![", "NOT met", "HMAC-SHA256",
		"| sqlite | 100k | transactions_open | 500 | 499 | 2.00 | 4.00 | 4.00 | 0 |",
		"| postgres | 10M | 4 | 11.5 | 57500 | 200.00 | 400.00 | 400.00 | 0 |",
		"| sqlite | 100k | 4 | 5.0 | 25000 |",
		"| postgres: ingestion ≥ 50,000 transactions/s through the API (4 connections, batches of 5,000) | 100k 52500 transactions/s",
		"| sqlite: ingestion through the API (4 connections, batches of 5,000) | 100k 25000 transactions/s (p99 900.00 ms a batch), 10M 25000",
		"| no target |", "Little's law", "about 40% of", "BENCH_RATE=500 BENCH_INGEST_CONNS=4",
		"`demo-provider`", "4 connections (`BENCH_INGEST_CONNS`)", "batch of 5,000 new booked card transactions",
		"(in this run: 50% on sqlite, 50% on postgres)", "| postgres | 100k | ingest_transactions | 10.5 |",
		"Behind the offered rate (under 95% of it): postgres 10M transactions_open (470 req/s).",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("benchmarks.md lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("benchmarks.md:\n%s", md)
	}
	var table strings.Builder
	r.WriteTable(&table)
	if !strings.Contains(table.String(), "postgres 100k ingestion: 52500 transactions/s (4 connections, batches of 5000)") {
		t.Errorf("table:\n%s", table.String())
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 5000: "5,000", 50_000: "50,000", 1_234_567: "1,234,567", -1000: "-1,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestRatioText: a ratio near its target shows the digits that decide the
// verdict; others keep two decimals.
func TestRatioText(t *testing.T) {
	for _, c := range []struct {
		ratio, target float64
		want          string
	}{
		{0.595, 0.6, "0.595"}, {1.996, 2, "1.996"}, {0.5999, 0.6, "0.5999"}, {1.504, 1.5, "1.504"},
		{0.6, 0.6, "0.60"}, {0.63, 0.6, "0.63"}, {1.25, 1, "1.25"}, {0.512, 0.6, "0.51"}, {2.08, 2, "2.08"},
	} {
		if got := ratioText(c.ratio, c.target); got != c.want {
			t.Errorf("ratioText(%v, %v) = %q, want %q", c.ratio, c.target, got, c.want)
		}
	}
}

// TestIngestBodies: every body is a valid batch of IngestBatch new
// transactions for the provider API (the real parser and validator), and
// no two requests share an id.
func TestIngestBodies(t *testing.T) {
	if IngestBatch > ingest.DefaultMaxRecords {
		t.Fatalf("IngestBatch %d over the API's %d", IngestBatch, ingest.DefaultMaxRecords)
	}
	now := time.Now()
	ib := NewIngestBodies("bench-card", now)
	if len(ib.offs) != IngestBatch {
		t.Fatalf("%d id prefixes, want %d", len(ib.offs), IngestBatch)
	}
	svc := ingest.NewService(testdb.Open(t, store.SQLite), func() time.Time { return now }) // parsing reads no table
	a, b := ib.Next(), ib.Next()
	if len(a) > ingest.DefaultMaxBodyBytes {
		t.Fatalf("body of %d bytes over the API's %d", len(a), ingest.DefaultMaxBodyBytes)
	}
	ids := map[string]bool{}
	for _, body := range [][]byte{a, b} {
		batch, err := svc.ParseJSON("inst_first_demo_bank", ingest.KindTransaction, body, 0)
		if err != nil {
			t.Fatalf("%v\n%.300s", err, body)
		}
		if s := batch.Summary(); !strings.Contains(s, "5000") {
			t.Errorf("summary %q", s)
		}
		var recs struct {
			Records []struct {
				ID string `json:"id"`
			} `json:"records"`
		}
		if err := json.Unmarshal(body, &recs); err != nil || len(recs.Records) != IngestBatch {
			t.Fatalf("%d records, %v", len(recs.Records), err)
		}
		for _, r := range recs.Records {
			if ids[r.ID] {
				t.Fatalf("id %q twice", r.ID)
			}
			ids[r.ID] = true
		}
	}
	if p := idPrefix(26*26 + 1); string(p[:]) != "aaaabab" {
		t.Errorf("idPrefix: %s", p[:])
	}
}

// Issue 18's rows: ours against oidc-provider per database, n/a without
// the reference, the ungated baseline against its figures before, and the
// hand-written notes appended to the generated page.
func TestIssue18Targets(t *testing.T) {
	r := &Report{Config: Config{Conns: 50, Rate: 500, IngestConns: 4, DBs: []string{"sqlite", "postgres"}}, Machine: Machine{CPUs: 2}}
	add := func(db string, size int, ep string, rps float64) {
		r.Results = append(r.Results, Measurement{DB: db, Size: size, Endpoint: ep, Stats: Stats{Requests: 100, RPS: rps, P99: 9 * time.Millisecond}})
	}
	for _, n := range []int{100_000, 1_000_000} {
		add("sqlite", n, EpTransactions, 3000)
		add("sqlite", n, EpUngated, 4400) // 2.06× 2141; 2.05× 2151 at 1M
		add("postgres", n, EpTransactions, 3000)
		add("postgres", n, EpUngated, 7000) // 1.90× 3680 at 100k: NOT met
	}
	add("sqlite", 100_000, EpToken, 6000)
	add("sqlite", 100_000, EpRefToken, 5000)
	add("sqlite", 100_000, EpIntrospect, 4000)
	add("sqlite", 100_000, EpRefIntrospect, 8000)
	add("postgres", 100_000, EpToken, 6000) // no reference on postgres: n/a
	got := map[string]Target{}
	for _, tg := range r.Targets() {
		got[tg.Name] = tg
	}
	tok := "token endpoint (client_credentials, durable + audited, client_secret_basic) ≥ 1.0 × oidc-provider 9.13.3 in memory"
	in := "introspection of a consent access token ≥ 1.0 × oidc-provider 9.13.3 in memory"
	for name, want := range map[string]string{
		"sqlite: " + tok: "met", "sqlite: " + in: "NOT met", "postgres: " + tok: "n/a", "postgres: " + in: "n/a",
		"sqlite: ungated page baseline ≥ 2 × its req/s before issue 18":   "met",
		"postgres: ungated page baseline ≥ 2 × its req/s before issue 18": "NOT met",
	} {
		if got[name].Verdict() != want {
			t.Errorf("%s: %s (%s), want %s", name, got[name].Verdict(), got[name].Measured, want)
		}
	}
	for name, want := range map[string]string{
		"sqlite: " + tok: "1.20× (6000 / 5000 req/s; p99 9.00 / 9.00 ms)", "sqlite: " + in: "0.50× (4000 / 8000 req/s",
		"postgres: " + tok: "ours 6000 req/s; oidc-provider 9.13.3 not measured",
		"sqlite: ungated page baseline ≥ 2 × its req/s before issue 18": "100k 2.06× (4400 / 2141 req/s), 1M 2.05× (4400 / 2151 req/s)",
	} {
		if !strings.HasPrefix(got[name].Measured, want) {
			t.Errorf("%s: measured %q, want %q…", name, got[name].Measured, want)
		}
	}
	dir := t.TempDir()
	notes := filepath.Join(dir, "notes.md")
	if err := os.WriteFile(notes, []byte("<!-- what this file is -->\n\n## Profiles before and after\n\nkept\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.Config.NotesFile = notes
	r.Versions = map[string]string{"reference": ReferenceVersion + " (node v20, in memory)"}
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "benchmarks.md"))
	if !strings.HasSuffix(string(md), "\n## Profiles before and after\n\nkept\n") || strings.Contains(string(md), "what this file is") {
		t.Errorf("notes not appended as written:\n%s", md)
	}
	for _, want := range []string{"| sqlite: " + in + " | 0.50× (4000 / 8000 req/s", "Reference (issue 18): oidc-provider 9.13.3",
		"- Reference: oidc-provider 9.13.3 (node v20, in memory)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("benchmarks.md lacks %q", want)
		}
	}
	r.Config.NotesFile = filepath.Join(dir, "missing.md")
	if err := r.Write(dir); err == nil || !strings.Contains(err.Error(), "BENCH_NOTES") {
		t.Errorf("a missing notes file: %v", err)
	}
}

// The committed notes file is there and carries the sections a full run
// must not drop.
func TestHandNotes(t *testing.T) {
	s, err := handNotes("../docs/benchmarks-notes.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Profiles before and after (issue 18)", "## Sync (a separate, reduced run",
		"## Audit appends from several nodes"} {
		if !strings.Contains(s, want) {
			t.Errorf("docs/benchmarks-notes.md lacks %q", want)
		}
	}
}
