//go:build bench

package bench

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/demo"
	"github.com/consentgate/consentgate/internal/httpapi"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/ingest"
	"github.com/consentgate/consentgate/internal/server"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// customerIP marks every data call as customer-present (SPEC §3), so the
// unattended-call limits of SPEC §4 never refuse the benchmark's calls.
const customerIP = "203.0.113.7"

// measuredAccount is gen-1's checking account: every customer has one, with
// about BENCH_TX_PER_ACCOUNT transactions.
const measuredAccount = "acc_gen_1_checking"

// TestBench is make bench: for every database, seed one database per
// size, start a server on each, take tokens through the real flow, load
// every endpoint at every size, and finally print the table and write
// docs/benchmarks.md and .svg.
func TestBench(t *testing.T) {
	cfg, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	server.TuneGC() // the collector as consentgate serve runs it
	rep := &Report{Config: cfg, Started: time.Now(), Machine: ThisMachine(), Versions: map[string]string{}}
	fmt.Fprintf(os.Stderr, "bench: %s\n", cfg.Command())
	ref := startReference(t, rep)
	for _, db := range cfg.DBs {
		if db == string(store.Postgres) {
			if os.Getenv(testdb.EnvPostgresURL) == "" {
				rep.Notes = append(rep.Notes, "PostgreSQL was not measured: no PostgreSQL server binary on this machine (see scripts/with-postgres).")
				continue
			}
		}
		t.Run(db, func(t *testing.T) { benchDialect(t, cfg, rep, ref, store.Dialect(db)) })
	}
	rep.Machine.LoadEnd = loadavg()
	rep.Finished = time.Now()
	rep.Sort()
	fmt.Println()
	rep.WriteTable(os.Stdout)
	if err := rep.Write(cfg.Out); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("\nwrote %s and %s\n", filepath.Join(cfg.Out, "benchmarks.md"), filepath.Join(cfg.Out, "benchmarks.svg"))
}

// site is one seeded database of one size with its server and baselines.
type site struct {
	size       int
	srv        *testutil.Server
	flow       testutil.FlowRequest
	from       string // the first day of the generated history
	deepCursor string
	ungatedKey accounts.TxKey
	ungated    string // base URL of the ungated baseline
	bare       string // base URL of the bare gin baseline
	ingest     *IngestBodies
	syncCursor string // a sync cursor with syncChanges changes after it
	syncToken  string // the token of the grant the cursor is bound to
}

// token is a fresh access token of gen-1's consent (they live five minutes).
func (s *site) token(t *testing.T) string { return s.srv.Authorize(t, s.flow).AccessToken }

// benchDialect seeds and starts every size first, then measures each
// endpoint at all sizes in interleaved rounds, so that whatever else the
// machine does while the benchmark runs hits every size alike: the
// latency-vs-size comparison is side by side, like gated vs ungated.
func benchDialect(t *testing.T, cfg Config, rep *Report, ref *Reference, d store.Dialect) {
	var sites []*site
	for _, size := range cfg.Sizes {
		dbURL := testdb.URL(t, d)
		seed(t, cfg, rep, d, dbURL, size)
		sites = append(sites, startSite(t, d, dbURL, size))
	}
	rep.Versions[string(d)] = version(t, sites[0].srv.DB)
	data := func(t *testing.T, s *site, u string) vegeta.Target {
		return vegeta.Target{Method: http.MethodGet, URL: u, Header: http.Header{
			"Authorization": {"Bearer " + s.token(t)}, "X-Fapi-Customer-Ip-Address": {customerIP}}}
	}
	plain := func(u string) vegeta.Target { return vegeta.Target{Method: http.MethodGet, URL: u} }
	txPath := func(s *site) string { return s.srv.URL + "/v1/accounts/" + measuredAccount + "/transactions?" }
	deepQuery := func(s *site, cursor string) url.Values {
		return url.Values{"limit": {"100"}, "from": {s.from}, "cursor": {cursor}}
	}
	m := &measurer{t: t, cfg: cfg, rep: rep, db: string(d)}
	m.group(sites, endpoint{name: EpAccounts, target: static(func(s *site) vegeta.Target { return data(t, s, s.srv.URL+"/v1/accounts") })})
	m.group(sites, endpoint{name: EpBalances, target: static(func(s *site) vegeta.Target {
		return data(t, s, s.srv.URL+"/v1/accounts/"+measuredAccount+"/balances")
	})})
	page := static(func(s *site) vegeta.Target { return data(t, s, txPath(s)+"limit=100") })
	ungatedPage := static(func(s *site) vegeta.Target {
		return plain(s.ungated + "/ungated/transactions?limit=100&account_id=" + measuredAccount)
	})
	m.group(sites, endpoint{name: EpTransactions, target: page}, endpoint{name: EpUngated, target: ungatedPage})
	m.group(sites,
		endpoint{name: EpDeep, target: static(func(s *site) vegeta.Target {
			return data(t, s, txPath(s)+deepQuery(s, s.deepCursor).Encode())
		})},
		endpoint{name: EpUngatedDeep, target: static(func(s *site) vegeta.Target {
			q := deepQuery(s, EncodeKey(s.ungatedKey))
			q.Set("account_id", measuredAccount)
			return plain(s.ungated + "/ungated/transactions?" + q.Encode())
		})})
	// The same page and baseline at a fixed rate (open loop), over at most
	// as many connections. Before the token endpoint's load: that load
	// grows the token table a hundredfold in seconds, and until autovacuum
	// next analyzes it (within a minute), PostgreSQL's generic plans cached
	// on pooled connections still scan it as the tiny table it was
	// (docs/benchmarks.md, "What the measured paths do").
	open := Driver{Conns: cfg.Conns, Rate: vegeta.Rate{Freq: cfg.Rate, Per: time.Second}}
	m.group(sites, endpoint{name: EpOpen, target: page, driver: open},
		endpoint{name: EpUngatedOpen, target: ungatedPage, driver: open})
	m.group(sites, endpoint{name: EpBare, target: static(func(s *site) vegeta.Target { return plain(s.bare + "/bare") })})
	// The token endpoint reads no transactions: one size is enough.
	basic := base64.StdEncoding.EncodeToString([]byte("demo-auditor:demo-auditor-secret"))
	m.group(sites[:1], append([]endpoint{{name: EpToken, target: static(func(s *site) vegeta.Target {
		return vegeta.Target{Method: http.MethodPost, URL: s.srv.URL + "/oauth2/token",
			Body: []byte("grant_type=client_credentials"), Header: http.Header{
				"Authorization": {"Basic " + basic}, "Content-Type": {"application/x-www-form-urlencoded"}}}
	})}}, refToken(ref)...)...)
	// Introspection of a consent access token (gen-1's, through the real
	// flow) by its own client, beside oidc-provider's of one of its tokens.
	m.group(sites[:1], append([]endpoint{{name: EpIntrospect, target: static(func(s *site) vegeta.Target {
		return introspectTarget(t, s)
	})}}, refIntrospect(t, ref)...)...)
	// Sync (docs/sync.md) on the measured account: the first page of a
	// first sync of its whole history, and an incremental sync of 100
	// changes numbered after a cursor; a whole first sync is timed once.
	for _, s := range sites {
		if cfg.measures(EpSyncFirst) || cfg.measures(EpSyncIncr) {
			prepareSync(t, s, rep, string(d))
		}
	}
	syncPath := func(s *site) string { return s.srv.URL + "/v1/accounts/" + measuredAccount + "/transactions/sync?" }
	m.group(sites,
		endpoint{name: EpSyncFirst, target: static(func(s *site) vegeta.Target { return data(t, s, syncPath(s)+"count=500") })},
		endpoint{name: EpSyncIncr, target: static(func(s *site) vegeta.Target {
			// A cursor is bound to its grant: the token of the grant that synced.
			return vegeta.Target{Method: http.MethodGet, URL: syncPath(s) + url.Values{"count": {"500"}, "cursor": {s.syncCursor}}.Encode(),
				Header: http.Header{"Authorization": {"Bearer " + s.syncToken}, "X-Fapi-Customer-Ip-Address": {customerIP}}}
		})})
	if d == store.Postgres && (cfg.measures(EpReplicaPage) || cfg.measures(EpPrimaryPage)) {
		benchReplica(t, cfg, rep, m)
	}
	if !cfg.measures(EpIngest) {
		return
	}
	// Ingestion last: the rows it adds come after every read measurement.
	for _, s := range sites {
		s.ingest = prepareIngest(t, s)
	}
	m.group(sites, endpoint{name: EpIngest, fresh: true, driver: Driver{Conns: cfg.IngestConns},
		target: func(s *site) vegeta.Targeter { return ingestTargeter(t, s) }})
	for _, s := range sites {
		x, _ := rep.find(string(d), s.size, EpIngest)
		checkIngested(t, s, x.Requests)
	}
}

// The demo data provider (demo fixtures, SPEC §9): a client_credentials
// client with provider:write, registered as First Demo Bank's provider.
const (
	providerClient = demo.ProviderClientID
	providerSecret = "demo-provider-secret" // #nosec G101 -- the public demo fixture of SPEC §9
	// The bench's own customer and card account, in the provider's ids.
	ingestCustomer = "bench-ingest-customer"
	ingestAccount  = "bench-ingest-card"
)

// providerToken takes a token of the demo provider through the token
// endpoint (client_secret_basic).
func providerToken(t *testing.T, s *site) string {
	r := s.srv.ClientCredentials(t, providerClient, providerSecret, httpapi.ScopeProviderWrite)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("provider token: %d %s", r.StatusCode, r.Body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	r.JSON(t, &tok)
	return tok.AccessToken
}

// postProvider posts one batch to the provider API and wants 200.
func postProvider(t *testing.T, s *site, token, path, body string) {
	req := s.srv.NewRequest(t, http.MethodPost, "/v1/provider/"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if r := s.srv.Do(t, req); r.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/provider/%s: %d %s", path, r.StatusCode, r.Body)
	}
}

// prepareIngest creates the bench's customer and card account through the
// provider API and formats the ingestion batch for that account.
func prepareIngest(t *testing.T, s *site) *IngestBodies {
	if IngestBatch > ingest.DefaultMaxRecords {
		t.Fatalf("IngestBatch %d is over the API's %d records a batch", IngestBatch, ingest.DefaultMaxRecords)
	}
	tok := providerToken(t, s)
	postProvider(t, s, tok, "customers", `{"records":[{"id":"`+ingestCustomer+`","display_name":"Bench Ingest"}]}`)
	postProvider(t, s, tok, "accounts", `{"records":[{"id":"`+ingestAccount+`","customer_id":"`+ingestCustomer+
		`","type":"credit_card","display_name":"Bench card","last4":"4242","currency":"USD"}]}`)
	return NewIngestBodies(ingestAccount, time.Now())
}

// checkIngested checks that the batches answered 200 really created their
// transactions: at least batches × IngestBatch rows on the bench's account
// (the warm-up's batches come on top).
func checkIngested(t *testing.T, s *site, batches int) {
	var n int64
	id := ingest.AccountID(demo.InstitutionID, ingestAccount)
	if err := s.srv.DB.Raw("SELECT count(*) FROM transactions WHERE account_id = ?", id).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n < int64(batches)*IngestBatch {
		t.Errorf("ingestion at %s: %d transactions on %s after %d batches of %d", SizeLabel(s.size), n, id, batches, IngestBatch)
	}
	fmt.Fprintf(os.Stderr, "bench: %s: %d transactions ingested on %s (%d measured batches and the warm-up's)\n",
		SizeLabel(s.size), n, id, batches)
}

// ingestTargeter posts a new batch on every request, with a fresh token.
func ingestTargeter(t *testing.T, s *site) vegeta.Targeter {
	hdr := http.Header{"Authorization": {"Bearer " + providerToken(t, s)}, "Content-Type": {"application/json"}}
	u := s.srv.URL + "/v1/provider/transactions"
	return func(tg *vegeta.Target) error {
		if tg == nil {
			return vegeta.ErrNilTarget
		}
		*tg = vegeta.Target{Method: http.MethodPost, URL: u, Body: s.ingest.Next(), Header: hdr}
		return nil
	}
}

// startSite starts a node on a seeded database and finds the deep page.
func startSite(t *testing.T, d store.Dialect, dbURL string, size int) *site {
	s := &site{size: size, srv: testutil.Start(t, d, testutil.Options{DatabaseURL: dbURL}), flow: testutil.DemoFlow(),
		from: time.Now().UTC().AddDate(0, 0, -400).Format(time.DateOnly)}
	s.flow.Username, s.flow.Password = "gen-1", demo.GeneratedPassword
	var page int
	s.deepCursor, page = deepestFullPage(t, s.srv, s.token(t), s.from)
	st := accounts.NewSQLStore(s.srv.DB)
	s.ungatedKey = keyAfterPages(t, st, s.from, page)
	ungated, bare := Baselines(st, time.Now)
	u, b := httptest.NewServer(ungated), httptest.NewServer(bare)
	t.Cleanup(u.Close)
	t.Cleanup(b.Close)
	s.ungated, s.bare = u.URL, b.URL
	return s
}

// seed fills a new database with about size transactions.
func seed(t *testing.T, cfg Config, rep *Report, d store.Dialect, dbURL string, size int) {
	ctx := context.Background()
	db, err := store.Open(dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	customers := CustomersFor(size, cfg.TxPerAccount)
	fmt.Fprintf(os.Stderr, "bench: %s %s: seeding %d customers, %d transactions per account\n", d, SizeLabel(size), customers, cfg.TxPerAccount)
	start := time.Now()
	st, err := demo.Generate(ctx, demo.Deps{Accounts: accounts.NewSQLStore(db), Identity: identity.NewService(db, time.Now)},
		demo.Options{Customers: customers, TransactionsPerAccount: cfg.TxPerAccount, Seed: 1, Progress: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	// Fresh planner statistics, as autovacuum would gather within a minute,
	// and the load's dirty pages on disk: the measurements see a database
	// at rest, not the tail of a bulk load being written back.
	settle := []string{"PRAGMA wal_checkpoint(TRUNCATE)"}
	if d == store.Postgres {
		settle = []string{"ANALYZE", "CHECKPOINT"}
	}
	for _, q := range settle {
		if err := db.Exec(q).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	syscall.Sync()
	rep.Seedings = append(rep.Seedings, Seeding{DB: string(d), Size: size, Customers: st.Customers, Accounts: st.Accounts,
		Actual: st.Transactions, Took: took})
}

func version(t *testing.T, db *store.DB) string {
	var v string
	q := "SELECT 'SQLite ' || sqlite_version() || ' (github.com/ncruces/go-sqlite3, pure Go; WAL, synchronous=FULL)'"
	if db.Dialect == store.Postgres {
		q = "SELECT version() || ' (fsync=' || current_setting('fsync') || ', synchronous_commit=' || current_setting('synchronous_commit') || ')'"
	}
	if err := db.Raw(q).Scan(&v).Error; err != nil {
		t.Fatal(err)
	}
	return v
}

// deepestFullPage pages through the measured account's whole history with
// the data API and returns the cursor of its last full page of 100 and
// that page's index.
func deepestFullPage(t *testing.T, srv *testutil.Server, token, from string) (cursor string, page int) {
	var cursors []string // cursors[k] fetches page k; "" the first
	cur := ""
	for {
		q := url.Values{"limit": {"100"}, "from": {from}}
		if cur != "" {
			q.Set("cursor", cur)
		}
		r := srv.Get(t, "/v1/accounts/"+measuredAccount+"/transactions?"+q.Encode(), token, "x-fapi-customer-ip-address", customerIP)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("page %d: %d %s", len(cursors), r.StatusCode, r.Body)
		}
		var body struct {
			Data       []struct{} `json:"data"`
			NextCursor *string    `json:"next_cursor"`
		}
		r.JSON(t, &body)
		if len(body.Data) == 100 {
			cursor, page = cur, len(cursors)
		}
		cursors = append(cursors, cur)
		if body.NextCursor == nil {
			break
		}
		cur = *body.NextCursor
	}
	if page == 0 {
		t.Fatalf("%s has fewer than 200 transactions since %s: no deep page", measuredAccount, from)
	}
	fmt.Fprintf(os.Stderr, "bench: deep page %d of %d\n", page+1, len(cursors))
	return cursor, page
}

// keyAfterPages walks the store as the baseline does and returns the
// keyset position after pages pages: the ungated twin of the deep cursor.
func keyAfterPages(t *testing.T, s accounts.Store, from string, pages int) accounts.TxKey {
	f, err := time.Parse(time.DateOnly, from)
	if err != nil {
		t.Fatal(err)
	}
	q := accounts.TxQuery{AccountID: measuredAccount, From: f, To: time.Now(), Limit: 100}
	for range pages {
		_, next, err := s.Transactions(context.Background(), q)
		if err != nil || next == nil {
			t.Fatalf("walk the store: %v (next %v)", err, next)
		}
		q.After = next
	}
	return *q.After
}

// endpoint is one measured request, built for a site.
type endpoint struct {
	name   string
	target func(*site) vegeta.Targeter
	// fresh builds the targeter anew before every round (a new token each
	// round), not once before the warm-up.
	fresh bool
	// driver loads it; zero: closed loop at BENCH_CONNS.
	driver Driver
}

// static is an endpoint's one request, the same every time.
func static(f func(*site) vegeta.Target) func(*site) vegeta.Targeter {
	return func(s *site) vegeta.Targeter { return vegeta.NewStaticTargeter(f(s)) }
}

// measurer runs and records the endpoints of one database.
type measurer struct {
	t    *testing.T
	cfg  Config
	rep  *Report
	db   string
	runs int
}

// run loads target for d with ep's driver, under a CPU profile when
// BENCH_PROFILE is set.
func (m *measurer) run(ep endpoint, size int, target vegeta.Targeter, d time.Duration, profile bool) Sample {
	name := ep.name
	if profile && m.cfg.Profile != "" {
		m.runs++
		path := filepath.Join(m.cfg.Profile, fmt.Sprintf("%s-%s-%s-%d.pprof", m.db, SizeLabel(size), name, m.runs))
		f, err := os.Create(path)
		if err != nil {
			m.t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			m.t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	dr := ep.driver
	if dr.Conns == 0 {
		dr.Conns = m.cfg.Conns
	}
	return dr.RunTargeter(target, http.StatusOK, d)
}

// group measures endpoints at every site side by side: after a warm-up of
// each, benchRounds rounds of an equal share of the duration, every other
// round in the reverse order of sites and endpoints (A B C, C B A, A B C,
// …), so that drift on the machine hits every endpoint and every size
// alike.
func (m *measurer) group(sites []*site, eps ...endpoint) {
	// BENCH_ONLY: the reference's rows come with the row they are compared with.
	eps = slices.DeleteFunc(eps, func(ep endpoint) bool {
		return !m.cfg.measures(ep.name) && !(ep.name == EpRefToken && m.cfg.measures(EpToken)) &&
			!(ep.name == EpRefIntrospect && m.cfg.measures(EpIntrospect))
	})
	if len(eps) == 0 {
		return
	}
	type cell struct {
		s      *site
		ep     endpoint
		target vegeta.Targeter
		sample Sample
	}
	var cells []*cell
	for _, s := range sites {
		for _, ep := range eps {
			c := &cell{s: s, ep: ep, target: ep.target(s)}
			if m.cfg.Warmup > 0 { // vegeta reads a zero duration as "forever"
				m.run(ep, s.size, c.target, m.cfg.Warmup, false)
			}
			cells = append(cells, c)
		}
	}
	share := m.cfg.Duration / benchRounds
	for round := range benchRounds {
		for i := range cells {
			c := cells[i]
			if round%2 == 1 {
				c = cells[len(cells)-1-i]
			}
			if c.ep.fresh {
				c.target = c.ep.target(c.s)
			}
			c.sample.Merge(m.run(c.ep, c.s.size, c.target, share, true))
		}
	}
	for _, c := range cells {
		m.record(c.s.size, c.ep.name, c.sample)
	}
}

// measures reports whether the run measures endpoint (BENCH_ONLY).
func (c Config) measures(endpoint string) bool {
	return len(c.Only) == 0 || slices.Contains(c.Only, endpoint)
}

// benchRounds is how many slices each measurement is cut into.
const benchRounds = 4

func (m *measurer) record(size int, name string, s Sample) {
	x := m.rep.Add(m.db, size, name, s)
	fmt.Fprintf(os.Stderr, "bench: %-8s %-4s %-26s %8.0f req/s  p50 %6s  p95 %6s  p99 %6s ms  errors %d\n",
		m.db, SizeLabel(size), name, x.RPS, ms(x.P50), ms(x.P95), ms(x.P99), x.Errors)
	if name == EpIngest {
		fmt.Fprintf(os.Stderr, "bench: %-8s %-4s %-26s %8.0f transactions/s\n", m.db, SizeLabel(size), name, x.TxPerSec())
	}
	if s.Errors > 0 {
		m.t.Logf("%s: %d errors, first: %s", name, s.Errors, strings.TrimSpace(s.FirstErr))
		if s.Errors*100 > len(s.Latencies) {
			m.t.Errorf("%s: %d of %d answers were errors", name, s.Errors, s.Errors+len(s.Latencies))
		}
	}
}

// prepareSync times one whole first sync of the measured account (pages of
// 500, customer present) and notes it in the report; then numbers
// syncChanges changes to its transactions after that sync's cursor, as a
// provider batch would (ingest), and keeps the cursor for EpSyncIncr.
func prepareSync(t *testing.T, s *site, rep *Report, db string) {
	tok := s.token(t)
	start := time.Now()
	cursor, pages, added := "", 0, 0
	for {
		q := url.Values{"count": {"500"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r := s.srv.Get(t, "/v1/accounts/"+measuredAccount+"/transactions/sync?"+q.Encode(), tok, "x-fapi-customer-ip-address", customerIP)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("first sync page %d: %d %s", pages, r.StatusCode, r.Body)
		}
		var page struct {
			Added      []struct{} `json:"added"`
			NextCursor string     `json:"next_cursor"`
			HasMore    bool       `json:"has_more"`
		}
		r.JSON(t, &page)
		pages, added, cursor = pages+1, added+len(page.Added), page.NextCursor
		if !page.HasMore {
			break
		}
	}
	took := time.Since(start)
	rep.Notes = append(rep.Notes, fmt.Sprintf("%s %s: a whole first sync of %s (%d transactions, %d pages of 500, one client, sequential) took %s.",
		db, SizeLabel(s.size), measuredAccount, added, pages, took.Round(time.Millisecond)))
	fmt.Fprintf(os.Stderr, "bench: %s %s: first sync of %d transactions in %d pages: %s\n", db, SizeLabel(s.size), added, pages, took)

	st := accounts.NewSQLStore(s.srv.DB)
	txs, _, err := st.Transactions(context.Background(), accounts.TxQuery{AccountID: measuredAccount,
		From: time.Now().AddDate(-3, 0, 0), To: time.Now(), Limit: syncChanges})
	if err != nil || len(txs) != syncChanges {
		t.Fatalf("transactions to change: %d, %v", len(txs), err)
	}
	err = s.srv.DB.Tx(context.Background(), func(tx *gorm.DB) error {
		b := st.Bulk(tx)
		first, err := b.ReserveChanges(map[string]int{measuredAccount: len(txs)})
		if err != nil {
			return err
		}
		changes := make([]accounts.Change, len(txs))
		for i := range txs {
			txs[i].Description += " (updated)"
			changes[i] = accounts.Change{AccountID: measuredAccount, Seq: first[measuredAccount] + int64(i),
				TransactionID: txs[i].ID, Kind: accounts.ChangeModified, TransactedAt: txs[i].TransactedAt}
		}
		if err := b.RecordChanges(changes, time.Now()); err != nil {
			return err
		}
		return b.UpsertTransactions(txs)
	})
	if err != nil {
		t.Fatalf("number the changes: %v", err)
	}
	s.syncCursor, s.syncToken = cursor, tok
}
