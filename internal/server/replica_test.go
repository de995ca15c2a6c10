package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/demo"
	"github.com/consentgate/consentgate/internal/ingest"
	"github.com/consentgate/consentgate/internal/replica"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
)

// replicaNode starts a node on the private primary that reads account data
// from standby (serve --read-db) within maxLag.
func replicaNode(t *testing.T, primary, standby *testutil.PGCluster, maxLag time.Duration) *testutil.Server {
	t.Helper()
	return testutil.Start(t, store.Postgres, testutil.Options{DatabaseURL: primary.URL(), Configure: func(c *config.Config) {
		c.ReadDBs, c.ReadDBMaxLag = []string{standby.URL()}, maxLag
	}})
}

type readyBody struct {
	Status   string `json:"status"`
	Replicas []struct {
		Name  string  `json:"name"`
		State string  `json:"state"`
		Lag   float64 `json:"lag_seconds"`
	} `json:"replicas"`
}

// waitReplicaState polls /readyz until the node's one replica is in state;
// /readyz is 200 throughout, whatever the replica does.
func waitReplicaState(t *testing.T, s *testutil.Server, state string) readyBody {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := s.Get(t, "/readyz", "")
		var b readyBody
		r.JSON(t, &b)
		if r.StatusCode != http.StatusOK || b.Status != "ready" || len(b.Replicas) != 1 {
			t.Fatalf("/readyz with a replica: %d %s", r.StatusCode, r.Body)
		}
		if b.Replicas[0].State == state {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica not %s after 20s: %s", state, r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metric reads one sample of the node's /metrics ("name{labels}" as
// exposed, e.g. `consentgate_data_reads_total{target="replica"}`).
func metric(t *testing.T, s *testutil.Server, series string) float64 {
	t.Helper()
	r := s.Get(t, "/metrics", "")
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", series)
	return 0
}

const (
	replicaReads   = `consentgate_data_reads_total{target="replica"}`
	primaryReads   = `consentgate_data_reads_total{target="primary"}`
	noReplicaReads = `consentgate_replica_fallbacks_total{reason="no_usable_replica"}`
)

// TestReadReplicaReadsAndGate (issue 20 item 1): account data is read on
// the streaming replica, while the gate decides on the primary: with the
// replica paused (its lag as large as the test likes), a node that still
// trusts it serves the replica's older balance, yet a revocation and a
// suspension refuse the very next request; a node with a tight bound skips
// the lagging replica and reads the primary; /readyz stays 200 throughout.
func TestReadReplicaReadsAndGate(t *testing.T) {
	primary, standby := testutil.StartPrimaryWithReplica(t)
	tolerant := replicaNode(t, primary, standby, time.Hour)
	strict := replicaNode(t, primary, standby, 300*time.Millisecond)
	standby.WaitCaughtUp(t)
	waitReplicaState(t, tolerant, "healthy")
	ready := waitReplicaState(t, strict, "healthy")
	// An idle primary: the replica that replayed everything is 0 behind
	// however long ago the last write was.
	if lag := ready.Replicas[0].Lag; lag < 0 || lag > 0.3 {
		t.Fatalf("caught-up replica's lag %v", lag)
	}

	tok := tolerant.Authorize(t, testutil.DemoFlow())
	card := cardAccount(t, tolerant, tok.AccessToken)
	page := "/v1/accounts/" + card + "/transactions?limit=5"
	before := metric(t, tolerant, replicaReads)
	if r := tolerant.Get(t, page, tok.AccessToken); r.StatusCode != http.StatusOK {
		t.Fatalf("transactions page: %d %s", r.StatusCode, r.Body)
	}
	if after := metric(t, tolerant, replicaReads); after <= before {
		t.Fatalf("the transactions page was not read on the replica (replica reads %v → %v)", before, after)
	}

	balance := "/v1/accounts/" + card + "/balances"
	old := tolerant.Get(t, balance, tok.AccessToken)
	if old.StatusCode != http.StatusOK {
		t.Fatalf("balance: %d %s", old.StatusCode, old.Body)
	}
	standby.PauseReplay(t)
	t.Cleanup(func() { standby.ResumeReplay(t) })
	primary.Exec(t, "UPDATE balances SET current_minor = current_minor + 12345 WHERE account_id = $1", card)

	// The tolerant node serves the paused replica's balance: a marker
	// that the read is the replica's.
	if r := tolerant.Get(t, balance, tok.AccessToken); r.StatusCode != http.StatusOK || !bytes.Equal(r.Body, old.Body) {
		t.Fatalf("balance on the node that reads the paused replica: %d %s, want the replica's %s", r.StatusCode, r.Body, old.Body)
	}
	// The strict node finds the replica past its bound and reads the
	// primary: the new balance, counted as a fallback.
	lagging := waitReplicaState(t, strict, "lagging")
	if lagging.Replicas[0].Lag <= 0.3 {
		t.Fatalf("lagging replica's lag %v", lagging.Replicas[0].Lag)
	}
	fallbacks := metric(t, strict, noReplicaReads)
	if r := strict.Get(t, balance, tok.AccessToken); r.StatusCode != http.StatusOK || bytes.Equal(r.Body, old.Body) {
		t.Fatalf("balance on the strict node: %d %s, want the primary's new balance", r.StatusCode, r.Body)
	}
	if n := metric(t, strict, noReplicaReads); n <= fallbacks {
		t.Fatalf("the strict node's read of the primary was not counted as a fallback (%v → %v)", fallbacks, n)
	}

	// Revocation: decided on the primary, so the very next request is
	// refused on both nodes, though the replica still holds the grant's
	// data and its consent row as it was.
	req := tolerant.NewRequest(t, http.MethodDelete, "/oauth2/grants/"+tok.GrantID, nil)
	req.SetBasicAuth(testutil.DemoClientID, testutil.DemoClientSecret)
	if r := tolerant.Do(t, req); r.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.StatusCode, r.Body)
	}
	for _, s := range []*testutil.Server{tolerant, strict} {
		if r := s.Get(t, page, tok.AccessToken); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("revoked grant's next request: %d %s", r.StatusCode, r.Body)
		}
	}

	// Suspension likewise: a fresh grant is served from the paused
	// replica, then refused on the next request once the app is suspended.
	tok2 := tolerant.Authorize(t, testutil.DemoFlow())
	if r := tolerant.Get(t, page, tok2.AccessToken); r.StatusCode != http.StatusOK {
		t.Fatalf("new grant with the replica paused: %d %s", r.StatusCode, r.Body)
	}
	if r := adminPost(t, tolerant, operatorToken(t, tolerant), "/admin/v1/clients/demo-pfm/suspend", `{"reason":"replica test"}`); r.StatusCode != http.StatusOK {
		t.Fatalf("suspend: %d %s", r.StatusCode, r.Body)
	}
	if r := tolerant.Get(t, page, tok2.AccessToken); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("suspended app's next request through the paused replica: %d %s", r.StatusCode, r.Body)
	}
	// Every call, served or refused, was audited on the primary.
	for _, g := range []string{tok.GrantID, tok2.GrantID} {
		if events := grantAudit(t, tolerant, g, "data.access"); len(events) == 0 {
			t.Fatalf("grant %s: no data.access events", g)
		}
	}
	var denied struct {
		Data []map[string]any `json:"data"`
	}
	var at testutil.Tokens
	tolerant.ClientCredentials(t, "demo-auditor", "demo-auditor-secret", "audit:read").JSON(t, &at)
	tolerant.Get(t, "/v1/audit/events?type=data.access&outcome=denied", at.AccessToken).JSON(t, &denied)
	if len(denied.Data) < 3 {
		t.Fatalf("%d denied data.access events, want the 3 refusals: %v", len(denied.Data), denied.Data)
	}

	standby.ResumeReplay(t)
	waitReplicaState(t, strict, "healthy")
}

// TestReadReplicaLost (issue 20 item 1): a replica that hangs or stops
// costs no client an error: a read it fails is made again on the primary,
// the replica is taken out of service, /readyz reports it down and stays
// 200; once it is back it serves again.
func TestReadReplicaLost(t *testing.T) {
	primary, standby := testutil.StartPrimaryWithReplica(t)
	s := replicaNode(t, primary, standby, 2*time.Second)
	waitReplicaState(t, s, "healthy")
	tok := s.Authorize(t, testutil.DemoFlow())
	page := "/v1/accounts/" + cardAccount(t, s, tok.AccessToken) + "/transactions?limit=5"
	if r := s.Get(t, page, tok.AccessToken); r.StatusCode != http.StatusOK {
		t.Fatalf("page: %d", r.StatusCode)
	}
	// Hung (every process stopped, connections open, as behind a network
	// partition): a read in flight waits replica.ReadTimeout at most, then
	// is made on the primary.
	standby.Freeze(t)
	for i := range 5 {
		start := time.Now()
		if r := s.Get(t, page, tok.AccessToken); r.StatusCode != http.StatusOK || time.Since(start) > replica.ReadTimeout+5*time.Second {
			t.Fatalf("call %d with the replica hung: %d after %s %s", i, r.StatusCode, time.Since(start), r.Body)
		}
	}
	waitReplicaState(t, s, "down")
	standby.Thaw(t)
	waitReplicaState(t, s, "healthy")

	// Stopped.
	if err := standby.Stop(); err != nil {
		t.Fatal(err)
	}
	primaryBefore := metric(t, s, primaryReads)
	for i := range 30 {
		if r := s.Get(t, page, tok.AccessToken); r.StatusCode != http.StatusOK {
			t.Fatalf("call %d with the replica stopped: %d %s", i, r.StatusCode, r.Body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := metric(t, s, primaryReads); n < primaryBefore+30 {
		t.Fatalf("with the replica stopped, %v of 30 reads went to the primary", n-primaryBefore)
	}
	down := waitReplicaState(t, s, "down")
	if down.Replicas[0].Lag != -1 {
		t.Fatalf("a down replica's lag should read unknown (-1): %+v", down.Replicas[0])
	}
	if err := standby.Start(); err != nil {
		t.Fatal(err)
	}
	waitReplicaState(t, s, "healthy")
	replicaBefore := metric(t, s, replicaReads)
	if r := s.Get(t, page, tok.AccessToken); r.StatusCode != http.StatusOK {
		t.Fatalf("page with the replica back: %d", r.StatusCode)
	}
	if n := metric(t, s, replicaReads); n <= replicaBefore {
		t.Fatal("the replica that came back serves no reads")
	}
}

// TestReadReplicaSyncCursor (issue 20 item 1, docs/scaling.md): a sync
// client whose requests land on a node reading a paused replica and a node
// reading the primary in turn never sees its cursor go back (no change
// twice) nor skip a change: a page is read on a replica only when the
// replica has replayed the account's changes up to what the cursor covers.
func TestReadReplicaSyncCursor(t *testing.T) {
	primary, standby := testutil.StartPrimaryWithReplica(t)
	stale := replicaNode(t, primary, standby, time.Hour) // keeps trusting the paused replica
	fresh := replicaNode(t, primary, standby, 300*time.Millisecond)
	feed := newSyncFeed(t, stale)
	now := time.Now().UTC()
	acct := ingest.AccountID(demo.InstitutionID, "a-1")
	id := func(p string) string { return ingest.TransactionID(demo.InstitutionID, p) }
	feed.post(t, "/v1/provider/transactions", tx("t-1", "a-1", "pending", "-1.00", now.Add(-3*time.Hour)))
	fr := daveFlow()
	fr.Accounts = []string{acct}
	tok := stale.Authorize(t, fr)
	standby.WaitCaughtUp(t)
	waitReplicaState(t, stale, "healthy")
	waitReplicaState(t, fresh, "healthy")

	seen, cursor := syncRun(t, []*testutil.Server{stale}, tok.AccessToken, acct, "", 10)
	if !slices.Equal(seen, []string{"added " + id("t-1") + " pending -1.00"}) {
		t.Fatalf("first sync: %v", seen)
	}

	standby.PauseReplay(t)
	t.Cleanup(func() { standby.ResumeReplay(t) })
	feed.post(t, "/v1/provider/transactions",
		tx("t-2", "a-1", "pending", "-2.00", now.Add(-2*time.Hour)),
		tx("t-3", "a-1", "pending", "-3.00", now.Add(-time.Hour)))
	waitReplicaState(t, fresh, "lagging")

	// The stale node's replica has not seen t-2 and t-3: nothing new yet,
	// and its cursor stays where it was.
	if seen, cursor = syncRun(t, []*testutil.Server{stale}, tok.AccessToken, acct, cursor, 10); len(seen) != 0 {
		t.Fatalf("the paused replica cannot know of t-2, yet: %v", seen)
	}
	// A run begun on the fresh node (the primary) and continued on the
	// stale one: the continuation page is past what the replica has, so it
	// is read on the primary, not skipped.
	behind := metric(t, stale, `consentgate_replica_fallbacks_total{reason="behind_cursor"}`)
	seen, cursor = syncRun(t, []*testutil.Server{fresh, stale}, tok.AccessToken, acct, cursor, 1)
	want := []string{"added " + id("t-2") + " pending -2.00", "added " + id("t-3") + " pending -3.00"}
	if !slices.Equal(seen, want) {
		t.Fatalf("run across a fresh and a stale node:\n got %v\nwant %v", seen, want)
	}
	if n := metric(t, stale, `consentgate_replica_fallbacks_total{reason="behind_cursor"}`); n <= behind {
		t.Fatalf("the stale node read the continuation page without a behind_cursor fallback (%v → %v)", behind, n)
	}
	// The next run on the stale node starts where the last one ended, not
	// at the replica's older head: nothing is sent again.
	if seen, cursor = syncRun(t, []*testutil.Server{stale}, tok.AccessToken, acct, cursor, 10); len(seen) != 0 {
		t.Fatalf("a cursor past the paused replica went back: %v", seen)
	}
	standby.ResumeReplay(t)
	feed.post(t, "/v1/provider/transactions", tx("t-4", "a-1", "pending", "-4.00", now.Add(-time.Minute)))
	standby.WaitCaughtUp(t)
	waitReplicaState(t, fresh, "healthy")
	for _, s := range []*testutil.Server{stale, fresh} {
		seen, _ := syncRun(t, []*testutil.Server{s}, tok.AccessToken, acct, cursor, 10)
		if !slices.Equal(seen, []string{"added " + id("t-4") + " pending -4.00"}) {
			t.Fatalf("after the replica caught up: %v, want exactly t-4", seen)
		}
	}
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(waitReplicaState(t, stale, "healthy"))
	t.Logf("replica state: %s", b.String())
}
