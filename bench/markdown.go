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
	if v, ok := r.Versions["reference"]; ok {
		p("- Reference: %s", v)
	}
	p("- Load average at start / end: %s / %s (the machine was shared with other work; figures are what this run saw)", m.LoadStart, m.LoadEnd)
	p("")
	p("Method: the real server (`server.New`, the same handler chain, audit log, connection pool and garbage collector target as `consentgate serve`)")
	p("runs in the benchmark process on a database the demo generator seeded; tokens come from the real flow (PAR,")
	p("login, consent screen, code, token). Load is closed-loop unless said otherwise (the open loop and the ingestion")
	p("are described below): %d connections, each sending its next request when", c.Conns)
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
	p("`sync_first_page` is `GET …/transactions/sync?count=500` without a cursor on the measured account (the first")
	p("page of a first sync of its whole history); `sync_incremental` continues from the cursor of a finished first")
	p("sync over %d changes numbered after it, as a provider batch numbers them (docs/sync.md). The notes give", syncChanges)
	p("the time of one whole first sync, page after page, by one client.")
	p("")
	p("Open loop: the transactions page and its ungated baseline are also measured at a fixed rate, %d requests a", c.Rate)
	p("second whatever the answers do (vegeta's constant pacer), over at most the same %d connections and workers,", c.Conns)
	p("interleaved the same way, before the token endpoint (see Stale generic plans below). Closed loop at %d", c.Conns)
	p("connections measures queueing at")
	p("saturation: %d requests are always waiting, so latency ≈ %d / throughput (Little's law). Open loop at a fixed", c.Conns, c.Conns)
	p("rate measures the service time a client sees on a busy server that keeps up; both come from the same run.")
	p("%d req/s (`BENCH_RATE`) is about 40%% of the gated page's closed-loop capacity measured on this 2-core", c.Rate)
	p("machine: a server that is busy but not saturated%s.", r.openShare())
	p("The req/s of an open-loop row is the rate achieved.")
	p("")
	p("Ingestion: the demo data provider (`demo-provider`, client_credentials, scope `provider:write`, registered by")
	p("the demo fixtures as First Demo Bank's provider) takes a token at `POST /oauth2/token` (client_secret_basic),")
	p("a fresh one before every round, and creates a customer and a credit card account of its own through")
	p("`POST /v1/provider/customers` and `/accounts`. Then %d connections (`BENCH_INGEST_CONNS`) post", c.IngestConns)
	p("`POST /v1/provider/transactions` closed loop, each body a batch of %s new booked card transactions (one", thousands(IngestBatch))
	p("pre-built body, each request's ids made new by a prefix written into a copy), in rounds like the other")
	p("endpoints, at every size, last (after the token endpoint and the open loop, so that the rows it adds do not")
	p("touch the read measurements) and on its own account, not the measured one. Every answer must be 200;")
	p("transactions/s = successful batches × %s / elapsed, and latency is per batch.", thousands(IngestBatch))
	p("")
	p("Reference (issue 18): %s, the Node reference implementation, started by the bench as a child process", ReferenceVersion)
	p("(bench/oidcprovider/, installed with `npm ci` when missing) in memory with its default adapter, one client")
	p("(client_secret_basic) with client_credentials and introspection, opaque access tokens (no resource indicator),")
	p("on a loopback port of the same machine. `%s` and `%s` are measured with the same load", EpRefToken, EpRefIntrospect)
	p("generator, connections and rounds as ours, interleaved with `%s` and `%s` (A B, B A, …) in the same run,", EpToken, EpIntrospect)
	p("so each database has its own side-by-side ratio. `%s` is `POST /oauth2/token` (client_credentials,", EpToken)
	p("`demo-auditor`, client_secret_basic: a token row and an audit event committed before the answer); `%s`", EpIntrospect)
	p("is `POST /oauth2/introspect` of a consent access token taken through the real flow, by the client it was")
	p("issued to (`demo-pfm`, client_secret_basic), against oidc-provider's introspection of one of its own tokens.")
	p("Both introspections are checked active before the load. The reference's rows carry the database's name")
	p("only to sit beside the row they are compared with: it has no database.")
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
		p("| %s | %s | %s | %s | %s | %s | %s | %d |", x.DB, SizeLabel(x.Size), x.Endpoint, reqs(x.RPS), ms(x.P50), ms(x.P95), ms(x.P99), x.Errors)
	}
	p("")
	p("`*_open` rows are open loop at %d req/s (their req/s is the rate achieved); `%s` counts batches of", c.Rate, EpIngest)
	p("%s transactions (its req/s is batches/s, its latency a batch's). Both are set out below.", thousands(IngestBatch))
	p("")
	p("### Latency at a fixed rate (open loop)")
	p("")
	p("| db | transactions | endpoint | offered req/s | achieved req/s | p50 ms | p95 ms | p99 ms | errors |")
	p("|---|---:|---|---:|---:|---:|---:|---:|---:|")
	for _, x := range r.Results {
		if x.Endpoint == EpOpen || x.Endpoint == EpUngatedOpen {
			p("| %s | %s | %s | %d | %.0f | %s | %s | %s | %d |", x.DB, SizeLabel(x.Size), x.Endpoint, c.Rate, x.RPS,
				ms(x.P50), ms(x.P95), ms(x.P99), x.Errors)
		}
	}
	if slow := r.openBehind(); len(slow) > 0 {
		p("")
		p("Behind the offered rate (under 95%% of it): %s. There the server did not keep up and requests waited for", strings.Join(slow, ", "))
		p("one of the %d workers, so those rows measure saturation, not service time.", c.Conns)
	}
	p("")
	p("### Ingestion through the API")
	p("")
	p("| db | transactions | connections | batches/s | transactions/s | p50 ms | p95 ms | p99 ms | errors |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, x := range r.Results {
		if x.Endpoint == EpIngest {
			p("| %s | %s | %d | %.1f | %.0f | %s | %s | %s | %d |", x.DB, SizeLabel(x.Size), c.IngestConns, x.RPS, x.TxPerSec(),
				ms(x.P50), ms(x.P95), ms(x.P99), x.Errors)
		}
	}
	p("")
	p("The transactions column is the size of the database the load started on (the read measurements' size);")
	p("the rows ingested come on top.")
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
	r.writeReplica(p)
	p("")
	p("## Latency vs data size")
	p("")
	p("![Transactions page latency, p50 and p99 closed loop and p99 open loop, against transactions in the database](benchmarks.svg)")
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

// openShare says what share of the gated page's closed-loop throughput the
// open loop's rate was in this run, per database: " (in this run: 39% on
// sqlite, 30% on postgres)", or "" without the figures.
func (r *Report) openShare() string {
	var parts []string
	for _, db := range r.dbs() {
		var sum float64
		var n int
		for _, size := range r.sizes(db) {
			if m, ok := r.find(db, size, EpTransactions); ok && m.RPS > 0 {
				sum, n = sum+m.RPS, n+1
			}
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%.0f%% on %s", float64(r.Config.Rate)/(sum/float64(n))*100, db))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (in this run: " + strings.Join(parts, ", ") + ")"
}

// openBehind names the open-loop measurements that achieved less than 95%
// of the offered rate.
func (r *Report) openBehind() []string {
	var out []string
	for _, x := range r.Results {
		if (x.Endpoint == EpOpen || x.Endpoint == EpUngatedOpen) && x.RPS < openKeptUp*float64(r.Config.Rate) {
			out = append(out, fmt.Sprintf("%s %s %s (%.0f req/s)", x.DB, SizeLabel(x.Size), x.Endpoint, x.RPS))
		}
	}
	return out
}

// reqs writes a request rate: whole requests, or tenths below 100 (the
// ingestion's batches).
func reqs(v float64) string {
	if v < 100 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}
