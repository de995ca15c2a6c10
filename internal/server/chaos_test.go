//go:build chaos

package server_test

import (
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// TestChaos (make chaos) kills a node with SIGKILL at random moments of a
// mixed load — data calls, new grants through the whole flow, refreshes,
// revocations, provider batches — CHAOS_KILLS times (default 20) on each
// database, restarting it each time. After every kill it checks, on the
// database the dead node left: the audit log verifies; every data response
// the load saw as 200 has its data.access event (no audit, no data); no
// authorization code won tokens twice and no request_uri was honoured
// twice; no refresh token family has two live tokens; every provider batch
// is written whole or not at all, and every acknowledged one whole. After
// every restart, the grants revoked before stay revoked.
func TestChaos(t *testing.T) {
	kills := 20
	if v, err := strconv.Atoi(os.Getenv("CHAOS_KILLS")); err == nil && v > 0 {
		kills = v
	}
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) { chaos(t, d, kills) })
	}
}

func chaos(t *testing.T, d store.Dialect, kills int) {
	dbURL := testdb.URL(t, d)
	load := newChaosLoad()
	base, cmd := startProcess(t, dbURL)
	load.base.Store(&base)
	db, err := store.Open(dbURL, store.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys := audit.NewSigner([]byte(testutil.TestSecret)).KeySet()
	setupProvider(t, load)

	workers := newLoadWorkers()
	worker := workers.run
	for range 3 {
		worker(2*time.Millisecond, load.dataCall)
	}
	worker(10*time.Millisecond, func() { _ = load.flow() })
	worker(20*time.Millisecond, load.refresh)
	worker(300*time.Millisecond, load.revoke)
	var provider string
	start := time.Now().UTC().Add(-time.Hour)
	worker(20*time.Millisecond, func() {
		if provider == "" {
			provider = providerToken(load)
			return
		}
		if load.providerBatch(provider, start) == http.StatusUnauthorized {
			provider = "" // expired: take a new one
		}
	})

	checked := 0 // served responses already checked
	began := time.Now()
	for kill := 1; kill <= kills; kill++ {
		time.Sleep(time.Duration(300+rand.IntN(1500)) * time.Millisecond) // a random moment of the load
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		down := ""
		load.base.Store(&down)
		checked = chaosChecks(t, db, keys, load, checked)
		base, cmd = startProcess(t, dbURL)
		load.base.Store(&base)
		checkRevoked(t, load)
	}
	workers.halt()
	checked = chaosChecks(t, db, keys, load, checked)
	load.mu.Lock()
	defer load.mu.Unlock()
	acked := 0
	for _, ok := range load.batches {
		if ok {
			acked++
		}
	}
	t.Logf("%s: %d kills survived in %s; %d data responses served, 0 of their data.access events lost; %d codes won tokens once each "+
		"(every replay refused), %d request_uris honoured once each; %d grants revoked stay revoked; %d provider batches sent, %d acknowledged, none half-written; %v",
		d, kills, time.Since(began).Round(time.Second), checked, len(load.codeWins), len(load.uriHonours), len(load.revoked),
		len(load.batches), acked, load.counts)
}

// checkRevoked: a grant revoked before a kill stays revoked after it.
func checkRevoked(t *testing.T, load *chaosLoad) {
	t.Helper()
	load.mu.Lock()
	revoked := append([]chaosGrant(nil), load.revoked...)
	load.mu.Unlock()
	for _, g := range revoked[max(0, len(revoked)-5):] {
		resp, _, err := load.do(chaosClient, http.MethodGet, "/v1/accounts", nil, "Authorization", "Bearer "+g.Access,
			"x-fapi-customer-ip-address", "203.0.113.9")
		if err == nil && resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("grant %s revoked before the kill answers %d after the restart", g.GrantID, resp.StatusCode)
		}
	}
}
