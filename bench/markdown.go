package bench

import (
	"fmt"
	"strings"
	"time"
)

// writeMarkdown renders docs/benchmarks.md: how the run was made, the
// targets with their figures, every measurement, the ratios, the chart and
// the seeding times.
func (r *Report) writeMarkdown(b *strings.Builder) {
	c := r.Config
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	p("# Benchmarks")
	p("")
	p("Written by `make bench` (the program is [bench/](../bench/)); every figure below comes from the one run")
	p("described here. Regenerate it rather than editing it.")
	p("")
	p("## The run")
	p("")
	p("- Command: `%s` (plus `BENCH_TX_PER_ACCOUNT=%d`, `BENCH_WARMUP=%v`)", c.Command(), c.TxPerAccount, c.Warmup)
	p("- Date: %s, %v in all", r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Finished.Sub(r.Started).Round(time.Second))
	m := r.Machine
	p("- Machine: %d CPUs (`nproc`), %s, %s memory, %s, %s", m.CPUs, m.CPUModel, m.Memory, m.Kernel, m.GoVersion)
	for _, db := range c.DBs {
		if v, ok := r.Versions[db]; ok {
			p("- %s: %s", db, v)
			if strings.Contains(v, "fsync=off") {
				p("  (fsync was off: PostgreSQL's commits cost less here than in production; make bench turns it on)")
			}
		}
	}
	p("- Load average at start / end: %s / %s (the machine was shared with other work; figures are what this run saw)", m.LoadStart, m.LoadEnd)
	p("")
	p("Method: the real server (`server.New`, the same handler chain, audit log and connection pool as `consentgate serve`)")
	p("runs in the benchmark process on a database the demo generator seeded; tokens come from the real flow (PAR,")
	p("login, consent screen, code, token). Load is closed-loop: %d connections, each sending its next request when", c.Conns)
	p("the previous answer has been read (vegeta v12.13.0 as a library, unbounded rate, %d workers), %v per endpoint", c.Conns, c.Duration)
	p("after %v of unmeasured warm-up. The load generator shares the machine's CPUs with the server. Latency runs from", c.Warmup)
	p("the start of a request to the last byte of its answer; percentiles are exact (nearest rank over every answer).")
	p("Every data request carries `x-fapi-customer-ip-address` (customer present), so unattended-call limits do not apply.")
	p("The measured customer (gen-1) has about %d transactions on its checking account at every size; the", c.TxPerAccount)
	p("transactions page is `?limit=100` (the default 90 days), the deep page asks `from` the first day of the")
	p("400-day history and continues from the cursor of the last full page. Every size is seeded and served")
	p("at once, and each endpoint is measured at all sizes side by side: after a warm-up of each, four rounds of a")
	p("quarter of the duration, every other one in reverse order (A B C, C B A, A B C, C B A), the gated page")
	p("interleaved with its ungated baseline the same way, so that other work on the machine hits every size and")
	p("both sides alike. The")
	p("ungated baseline is the same store query rendered in the same JSON shape behind the same global")
	p("middleware, without token, consent, purpose check or audit event; `bare_gin` is a constant JSON answer")
	p("from a bare gin engine, the framework's floor. After seeding, the benchmark checkpoints the database and")
	p("syncs the disk, so that the load's write-back does not land in the measurements.")
	p("")
	p("## Targets")
	p("")
	p("| target | measured | verdict |")
	p("|---|---|---|")
	for _, t := range r.Targets() {
		p("| %s | %s | %s |", t.Name, t.Measured, t.Verdict())
	}
	p("")
	p("## Results")
	p("")
	p("| db | transactions | endpoint | req/s | p50 ms | p95 ms | p99 ms | errors |")
	p("|---|---:|---|---:|---:|---:|---:|---:|")
	for _, x := range r.Results {
		p("| %s | %s | %s | %.0f | %s | %s | %s | %d |", x.DB, SizeLabel(x.Size), x.Endpoint, x.RPS, ms(x.P50), ms(x.P95), ms(x.P99), x.Errors)
	}
	p("")
	p("## Ratios")
	p("")
	p("Throughput of the gated read over its baseline, measured in the same run.")
	p("")
	p("| db | transactions | page gated / ungated | deep page gated / ungated | page gated / bare gin |")
	p("|---|---:|---:|---:|---:|")
	for _, db := range r.dbs() {
		for _, n := range r.sizes(db) {
			p("| %s | %s | %s | %s | %s |", db, SizeLabel(n), r.ratio(db, n, EpTransactions, EpUngated),
				r.ratio(db, n, EpDeep, EpUngatedDeep), r.ratio(db, n, EpTransactions, EpBare))
		}
	}
	p("")
	p("## Latency vs data size")
	p("")
	p("![Transactions page latency, p50 and p99, against transactions in the database](benchmarks.svg)")
	p("")
	p("## Seeding")
	p("")
	p("`consentgate demo seed` writes through the same bulk path (`accounts.SQLStore.Load`: COPY on PostgreSQL,")
	p("large multi-row statements in 50,000-row transactions on SQLite), with progress on stderr.")
	p("")
	p("| db | transactions | customers | accounts | rows written | time | rows/s |")
	p("|---|---:|---:|---:|---:|---:|---:|")
	for _, s := range r.Seedings {
		p("| %s | %s | %d | %d | %d | %v | %.0f |", s.DB, SizeLabel(s.Size), s.Customers, s.Accounts, s.Actual,
			s.Took.Round(100*time.Millisecond), float64(s.Actual)/s.Took.Seconds())
	}
	if len(r.Notes) > 0 {
		p("")
		p("## Notes")
		p("")
		for _, n := range r.Notes {
			p("- %s", n)
		}
	}
	p("")
	b.WriteString(staticNotes)
}

func (r *Report) ratio(db string, size int, num, den string) string {
	a, ok1 := r.find(db, size, num)
	d, ok2 := r.find(db, size, den)
	if !ok1 || !ok2 || d.RPS == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f (%.0f / %.0f)", a.RPS/d.RPS, a.RPS, d.RPS)
}
