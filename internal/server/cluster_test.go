//go:build cluster

package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/demo"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/ingest"
	"github.com/consentgate/consentgate/internal/replica"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
)

// clusterMaxLag is the nodes' --read-db-max-lag. A replica measured
// further behind serves no reads, and the lag is measured every
// replica.DefaultInterval, so a transaction acknowledged more than
// clusterLagBound before a read started is visible to that read
// (docs/scaling.md, "Lag: measured, bounded").
const (
	clusterMaxLag   = time.Second
	clusterLagBound = clusterMaxLag + replica.DefaultInterval
)

// TestCluster (make cluster, which make test runs) starts scripts/cluster: a
// PostgreSQL primary, a streaming replica made by pg_basebackup, and three
// `consentgate serve` processes of the built binary. A mixed load — /v1 and
// /fdx/v6 reads, new grants through the whole flow, refreshes, revocations,
// provider ingestion — goes round the three nodes, a request a node does not
// answer going to the next. Meanwhile the test pauses replay on the
// replica, revokes a grant on the customer dashboard and suspends an app
// through the operator API while replay is paused, resumes replay, kills a
// node with SIGKILL and stops the replica. It checks:
//   - from the moment the revoke and the suspend calls returned, no node
//     served that grant or that app one 200;
//   - no answer was a 5xx, and every request was answered by some node;
//   - after the kill and after the replica stopped, the other nodes went on
//     serving;
//   - every read that started more than clusterLagBound after a provider
//     batch was acknowledged saw the whole batch (nothing stale);
//   - nothing lost: the audit log verifies (`consentgate audit verify` and
//     audit.Verify) and holds one data.access event per 200 data answer,
//     every acknowledged batch is written whole and readable through the
//     API, no code won tokens twice, no refresh family has two live tokens.
func TestCluster(t *testing.T) {
	if testutil.PGBinDir() == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup), and CI must not skip the cluster test")
		}
		t.Skip("no PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup)")
	}
	t0 := time.Now()
	bin := buildConsentgate(t)
	c := clusterUp(t, bin)
	t.Logf("built and started the cluster in %s", time.Since(t0).Round(time.Second))
	primary, err := store.Open(c.env["PRIMARY_URL"], store.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	standby, err := store.Open(c.env["REPLICA_URL"], store.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer standby.Close()

	// Setup, on the first node: the provider's customer gets a password
	// from the bank (provider-created customers have none) and grants the
	// demo app its card, the account the ingestion writes to.
	node1 := testutil.Attach(t, c.nodes[0])
	load := newChaosLoad()
	load.nodes = c.nodes
	setupProvider(t, load)
	hash, err := identity.HashPassword("cluster-password-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := primary.Exec(`UPDATE customers SET password_hash = ? WHERE id = ?`, hash,
		ingest.CustomerID(demo.InstitutionID, "chaos-c")).Error; err != nil {
		t.Fatal(err)
	}
	probeFlow := testutil.DemoFlow()
	probeFlow.Username, probeFlow.Password = ingest.Username(demo.InstitutionID, "chaos-c"), "cluster-password-1"
	probe := node1.Authorize(t, probeFlow)
	probeAccount := ingest.AccountID(demo.InstitutionID, "chaos-a")

	for range 4 {
		tok := node1.Authorize(t, testutil.DemoFlow())
		load.grants = append(load.grants, chaosGrant{GrantID: tok.GrantID, Access: tok.AccessToken, Refresh: tok.RefreshToken})
	}
	// The grant the customer revokes, and the app the bank suspends (made
	// with the CLI on the primary, with a grant of its own).
	revokee := node1.Authorize(t, testutil.DemoFlow())
	app := createClusterClient(t, bin, c.env["PRIMARY_URL"])
	suspFlow := testutil.DemoFlow()
	suspFlow.ClientID, suspFlow.ClientSecret, suspFlow.RedirectURI = app.ClientID, app.ClientSecret, "http://127.0.0.1:8767/callback"
	suspendee := node1.Authorize(t, suspFlow)

	for _, n := range c.nodes {
		waitReplicaState(t, testutil.Attach(t, n), "healthy")
	}
	t.Logf("setup done at %s", time.Since(t0).Round(time.Second))
	// The load.
	workers := newLoadWorkers()
	worker := workers.run
	var (
		watchMu  sync.Mutex
		watched  []watchedCall // every call with the revoked grant's or the suspended app's token
		readsMu  sync.Mutex
		reads    []freshRead
		batchMu  sync.Mutex
		acked    []ackedBatch
		batchSeq atomic.Int64
	)
	watch := func(who, token string) func() {
		return func() {
			start := time.Now()
			resp, _, err := load.do(chaosClient, http.MethodGet, "/v1/accounts", nil, "Authorization", "Bearer "+token,
				"x-fapi-interaction-id", fmt.Sprintf("cluster-w-%d", load.n.Add(1)))
			if err != nil {
				return
			}
			watchMu.Lock()
			watched = append(watched, watchedCall{who: who, start: start, status: resp.StatusCode})
			watchMu.Unlock()
			if resp.StatusCode == http.StatusOK {
				load.mu.Lock()
				load.served = append(load.served, resp.Header.Get("x-fapi-interaction-id"))
				load.mu.Unlock()
			}
		}
	}
	worker(5*time.Millisecond, watch("revoked grant", revokee.AccessToken))
	worker(5*time.Millisecond, watch("suspended app", suspendee.AccessToken))
	for range 2 {
		worker(5*time.Millisecond, load.dataCall)
	}
	worker(5*time.Millisecond, func() { clusterRead(load) })
	worker(50*time.Millisecond, func() { _ = load.flow() })
	worker(50*time.Millisecond, load.refresh)
	worker(700*time.Millisecond, load.revoke)
	// Ingestion: batch k's transactions are at base + k seconds, so that a
	// read of that second finds exactly that batch.
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	var provider atomic.Pointer[string]
	worker(100*time.Millisecond, func() {
		if p := provider.Load(); p == nil || *p == "" {
			tok := providerToken(load)
			provider.Store(&tok)
			return
		}
		k := int(batchSeq.Add(1))
		switch status := clusterBatch(load, *provider.Load(), k, base.Add(time.Duration(k)*time.Second)); status {
		case http.StatusOK:
			batchMu.Lock()
			acked = append(acked, ackedBatch{k: k, at: time.Now()})
			batchMu.Unlock()
		case http.StatusUnauthorized:
			empty := ""
			provider.Store(&empty) // expired: take a new one
		}
	})
	// Freshness probes: the newest batch acknowledged more than the lag
	// bound ago is read back through the gated API; it must be whole.
	worker(50*time.Millisecond, func() {
		batchMu.Lock()
		var b *ackedBatch
		for i := len(acked) - 1; i >= 0; i-- {
			if time.Since(acked[i].at) > clusterLagBound {
				b = &acked[i]
				break
			}
		}
		batchMu.Unlock()
		if b == nil {
			return
		}
		at := base.Add(time.Duration(b.k) * time.Second)
		q := url.Values{"from": {at.Format(time.RFC3339)}, "to": {at.Add(500 * time.Millisecond).Format(time.RFC3339Nano)}, "limit": {"500"}}
		start := time.Now()
		id := fmt.Sprintf("cluster-f-%d", load.n.Add(1))
		resp, body, err := load.do(chaosClient, http.MethodGet, "/v1/accounts/"+probeAccount+"/transactions?"+q.Encode(), nil,
			"Authorization", "Bearer "+probe.AccessToken, "x-fapi-interaction-id", id, "x-fapi-customer-ip-address", "203.0.113.9")
		if err != nil || resp.StatusCode != http.StatusOK {
			return
		}
		var page struct {
			Data []json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(body, &page)
		load.mu.Lock()
		load.served = append(load.served, resp.Header.Get("x-fapi-interaction-id"))
		load.mu.Unlock()
		readsMu.Lock()
		reads = append(reads, freshRead{batch: b.k, ackedAt: b.at, start: start, got: len(page.Data)})
		readsMu.Unlock()
	})

	// The events, while the load runs.
	began := time.Now()
	step := func(d time.Duration, what string) {
		time.Sleep(d)
		t.Logf("%5.1fs %s", time.Since(began).Seconds(), what)
	}
	step(4*time.Second, "pausing replay on the replica")
	if err := standby.Exec(`SELECT pg_wal_replay_pause()`).Error; err != nil {
		t.Fatal(err)
	}
	pausedAt := time.Now()
	node2 := testutil.Attach(t, c.nodes[1])
	lagging := waitReplicaState(t, node2, "lagging")
	step(time.Second, fmt.Sprintf("node 2 measures the replica %.1fs behind: lagging; alice revokes a grant on node 2's dashboard",
		lagging.Replicas[0].Lag))
	alice := node2.NewBrowser()
	loginBrowser(t, node2, alice, "alice", "alice-password-1")
	if r := dashboardRevoke(t, alice, revokee.GrantID); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("dashboard revoke: %d %s", r.StatusCode, r.Body)
	}
	revokedAt := time.Now()
	step(time.Second, "the bank suspends an app through node 3's operator API")
	node3 := testutil.Attach(t, c.nodes[2])
	var op testutil.Tokens
	node3.ClientCredentials(t, "demo-operator", "demo-operator-secret", "admin:clients").JSON(t, &op)
	req := node3.NewRequest(t, http.MethodPost, "/admin/v1/clients/"+app.ClientID+"/suspend", strings.NewReader(`{"reason":"cluster test"}`))
	req.Header.Set("Authorization", "Bearer "+op.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	if r := node3.Do(t, req); r.StatusCode != http.StatusOK {
		t.Fatalf("suspend: %d %s", r.StatusCode, r.Body)
	}
	suspendedAt := time.Now()
	step(5*time.Second, "resuming replay")
	if err := standby.Exec(`SELECT pg_wal_replay_resume()`).Error; err != nil {
		t.Fatal(err)
	}
	resumedAt := time.Now()
	step(5*time.Second, "kill -9 node 2")
	if err := syscall.Kill(c.pids[1], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	step(8*time.Second, "stopping the replica")
	c.script(t, "stop-replica")
	replicaStoppedAt := time.Now()
	step(8*time.Second, "stopping the load")
	workers.halt()
	loadTime := time.Since(began)

	// No grant served after its revocation, no app after its suspension.
	servedAfter := map[string]int{}
	callsAfter := map[string]int{}
	before := map[string]int{}
	for _, w := range watched {
		cut := revokedAt
		if w.who == "suspended app" {
			cut = suspendedAt
		}
		if !w.start.After(cut) {
			if w.status == http.StatusOK {
				before[w.who]++
			}
			continue
		}
		callsAfter[w.who]++
		if w.status == http.StatusOK {
			servedAfter[w.who]++
		}
	}
	for _, who := range []string{"revoked grant", "suspended app"} {
		if before[who] == 0 || callsAfter[who] < 50 {
			t.Errorf("%s: %d answers 200 before, %d calls after: the watch did not run", who, before[who], callsAfter[who])
		}
		if servedAfter[who] > 0 {
			t.Errorf("%s: %d of %d calls started after the call returned were served 200", who, servedAfter[who], callsAfter[who])
		}
	}

	load.mu.Lock()
	fiveXX, unserved, retried := load.fiveXX, load.unserved, load.counts["retried on another node"]
	load.mu.Unlock()
	for i, e := range fiveXX {
		if i == 10 {
			break
		}
		t.Errorf("a 5xx: %s", e)
	}
	if len(fiveXX) > 0 {
		t.Errorf("%d answers were 5xx", len(fiveXX))
	}
	if unserved > 0 {
		t.Errorf("%d requests were answered by no node", unserved)
	}
	if retried == 0 {
		t.Error("no request was sent to the killed node and retried on another: the kill went unnoticed")
	}

	// Nothing stale: every read that started more than the lag bound
	// after a batch's acknowledgement saw the whole batch.
	stale, duringPause, afterKill, afterReplica := 0, 0, 0, 0
	for _, r := range reads {
		if r.start.After(pausedAt.Add(clusterLagBound)) && r.start.Before(resumedAt) && r.ackedAt.After(pausedAt) {
			duringPause++ // the replica had not replayed the batch: read on the primary
		}
		if r.start.Sub(r.ackedAt) > clusterLagBound && r.got != clusterBatchSize {
			stale++
			if stale <= 5 {
				t.Errorf("batch %d acknowledged %s before a read that saw %d of its %d transactions",
					r.batch, r.start.Sub(r.ackedAt).Round(time.Millisecond), r.got, clusterBatchSize)
			}
		}
		if r.start.After(killedAt) {
			afterKill++
		}
		if r.start.After(replicaStoppedAt) {
			afterReplica++
		}
	}
	if stale > 0 {
		t.Errorf("%d of %d reads were stale past the %s lag bound", stale, len(reads), clusterLagBound)
	}
	if duringPause == 0 || afterKill == 0 || afterReplica == 0 {
		t.Errorf("freshness reads of batches written during the pause %d, after the kill %d, after the replica stopped %d: "+
			"a phase went unchecked", duringPause, afterKill, afterReplica)
	}

	// The replica served reads, and the nodes fell back to the primary
	// while it lagged and after it stopped.
	var fromReplica, fellBack float64
	for _, i := range []int{0, 2} {
		n := testutil.Attach(t, c.nodes[i])
		fromReplica += metric(t, n, replicaReads)
		fellBack += metric(t, n, noReplicaReads)
	}
	if fromReplica == 0 || fellBack == 0 {
		t.Errorf("nodes 1 and 3: %g data reads on the replica, %g on the primary for want of a usable replica", fromReplica, fellBack)
	}

	// Nothing lost.
	t.Logf("%5.1fs checking the audit log and the batches", time.Since(began).Seconds())
	keys := audit.NewSigner([]byte(testutil.TestSecret)).KeySet()
	checked := chaosChecks(t, primary, keys, load, 0)
	verify := exec.Command(bin, "audit", "verify", "--db", c.env["PRIMARY_URL"])
	verify.Env = append(os.Environ(), "CONSENTGATE_SECRET="+testutil.TestSecret)
	if out, err := verify.CombinedOutput(); err != nil {
		t.Fatalf("consentgate audit verify: %v\n%s", err, out)
	}
	batchMu.Lock()
	ackedN := len(acked)
	want := map[string]bool{}
	for _, b := range acked {
		for i := range clusterBatchSize {
			want[ingest.TransactionID(demo.InstitutionID, fmt.Sprintf("chaos-b%d-%d", b.k, i))] = true
		}
	}
	batchMu.Unlock()
	t.Logf("%5.1fs reading the batches back", time.Since(began).Seconds())
	got := clusterTransactions(t, testutil.Attach(t, c.nodes[2]), probe, probeAccount, base)
	missing := 0
	for id := range want {
		if !got[id] {
			missing++
		}
	}
	if ackedN == 0 || missing > 0 {
		t.Errorf("%d batches acknowledged; %d of their %d transactions not readable through the API", ackedN, missing, len(want))
	}

	load.mu.Lock()
	defer load.mu.Unlock()
	t.Logf("%s of load on 3 nodes: %d data answers 200, each with its data.access event; nodes 1 and 3 read %g times on the replica, "+
		"%g on the primary for want of a usable one; %d freshness reads, %d stale past %s "+
		"(%d of batches the paused replica lacked, %d after the kill, %d after the replica stopped); revoked grant: %d calls after, %d served; "+
		"suspended app: %d calls after, %d served; %d batches acknowledged, %d of their transactions missing; %d codes won tokens once each; %v",
		loadTime.Round(time.Second), checked, fromReplica, fellBack, len(reads), stale, clusterLagBound, duringPause, afterKill, afterReplica,
		callsAfter["revoked grant"], servedAfter["revoked grant"], callsAfter["suspended app"], servedAfter["suspended app"],
		ackedN, missing, len(load.codeWins), load.counts)
}

// watchedCall is one call with a token that is about to stop working.
type watchedCall struct {
	who    string
	start  time.Time
	status int
}

// freshRead is a read of one acknowledged batch.
type freshRead struct {
	batch          int
	ackedAt, start time.Time
	got            int
}

type ackedBatch struct {
	k  int
	at time.Time
}

const clusterBatchSize = chaosBatchSize

// clusterRead reads a grant's balances, a transactions page or the FDX
// accounts and transactions, each answer 200 recorded as served.
func clusterRead(l *chaosLoad) {
	g, ok := l.pick()
	if !ok {
		return
	}
	paths := []string{
		"/v1/accounts/acc_alice_checking/balances",
		"/v1/accounts/acc_alice_credit_card/transactions?limit=20",
		"/fdx/v6/accounts",
		"/fdx/v6/accounts/acc_alice_checking/transactions?limit=20",
	}
	path := paths[int(l.n.Load())%len(paths)]
	id := fmt.Sprintf("cluster-r-%d", l.n.Add(1))
	resp, _, err := l.do(chaosClient, http.MethodGet, path, nil, "Authorization", "Bearer "+g.Access,
		"x-fapi-interaction-id", id, "x-fapi-customer-ip-address", "203.0.113.9")
	if err != nil {
		return
	}
	if resp.StatusCode == http.StatusOK {
		l.mu.Lock()
		l.served = append(l.served, resp.Header.Get("x-fapi-interaction-id"))
		l.mu.Unlock()
	}
	l.count(fmt.Sprintf("read %d", resp.StatusCode))
}

// clusterBatch writes batch k, every transaction at one time, recorded in
// load.batches like the chaos test's batches; a batch a node did not
// answer was sent to the next node (the same ids: ingestion is idempotent).
func clusterBatch(l *chaosLoad, token string, k int, at time.Time) int {
	return l.postBatch(token, k, at, "Cluster Shop")
}

// clusterTransactions reads every transaction of the account from base on,
// page by page.
func clusterTransactions(t *testing.T, s *testutil.Server, tok testutil.Tokens, account string, base time.Time) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	q := url.Values{"from": {base.Format(time.RFC3339)}, "to": {time.Now().UTC().Format(time.RFC3339)}, "limit": {"500"}}
	for {
		r := s.Get(t, "/v1/accounts/"+account+"/transactions?"+q.Encode(), tok.AccessToken)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("transactions: %d %s", r.StatusCode, r.Body)
		}
		var page struct {
			Data []struct {
				ID string `json:"transaction_id"`
			} `json:"data"`
			Next *string `json:"next_cursor"`
		}
		r.JSON(t, &page)
		for _, tx := range page.Data {
			ids[tx.ID] = true
		}
		if page.Next == nil {
			return ids
		}
		q.Set("cursor", *page.Next)
	}
}

// clusterClient is a client made with `consentgate client create`.
type clusterClient struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}
