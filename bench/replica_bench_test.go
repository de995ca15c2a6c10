//go:build bench

package bench

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/demo"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
)

// benchReplica measures the gated transactions page read through a
// streaming replica against the same page read on the primary, at the
// smallest size: a private primary (testutil.StartPrimaryWithReplica, its
// own initdb, seeded like the others) with one replica, a node with
// --read-db and a node without, loaded side by side. Without the
// PostgreSQL server binaries (pg_basebackup among them) it is not
// measured and a note says so.
func benchReplica(t *testing.T, cfg Config, rep *Report, m *measurer) {
	if testutil.PGBinDir() == "" {
		rep.Notes = append(rep.Notes, "The read replica was not measured: no PostgreSQL server binaries (initdb, pg_basebackup) on this machine.")
		return
	}
	size := cfg.Sizes[0]
	primary, standby := testutil.StartPrimaryWithReplica(t)
	seed(t, cfg, &Report{}, store.Postgres, primary.URL(), size) // the same data; its seeding time is not reported again
	standby.WaitCaughtUp(t)
	start := func(readDB bool) *site {
		o := testutil.Options{DatabaseURL: primary.URL()}
		if readDB {
			o.Configure = func(c *config.Config) {
				c.ReadDBs, c.ReadDBMaxLag = []string{standby.URL()}, config.DefaultReadDBMaxLag
			}
		}
		s := &site{size: size, srv: testutil.Start(t, store.Postgres, o), flow: testutil.DemoFlow()}
		s.flow.Username, s.flow.Password = "gen-1", demo.GeneratedPassword
		return s
	}
	viaReplica, viaPrimary := start(true), start(false)
	waitReplicaHealthy(t, viaReplica)
	page := func(s *site) func(*site) vegeta.Targeter {
		return static(func(*site) vegeta.Target {
			return vegeta.Target{Method: http.MethodGet, URL: s.srv.URL + "/v1/accounts/" + measuredAccount + "/transactions?limit=100",
				Header: http.Header{"Authorization": {"Bearer " + s.token(t)}, "X-Fapi-Customer-Ip-Address": {customerIP}}}
		})
	}
	m.group([]*site{viaPrimary}, endpoint{name: EpReplicaPage, target: page(viaReplica)}, endpoint{name: EpPrimaryPage, target: page(viaPrimary)})
	// The replica node's reads were the replica's, not fallbacks.
	metrics := string(viaReplica.srv.Get(t, "/metrics", "").Body)
	var replicaReads, primaryReads float64
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, `consentgate_data_reads_total{target="replica"} `); ok {
			replicaReads, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(line, `consentgate_data_reads_total{target="primary"} `); ok {
			primaryReads, _ = strconv.ParseFloat(v, 64)
		}
	}
	fmt.Fprintf(os.Stderr, "bench: replica node: %.0f reads on the replica, %.0f on the primary\n", replicaReads, primaryReads)
	if replicaReads == 0 || primaryReads > replicaReads/100 {
		t.Errorf("the replica node read %.0f times on the replica and %.0f on the primary: the replica row does not measure the replica", replicaReads, primaryReads)
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("postgres %s: %s and %s ran on a private primary with one streaming replica on this machine (fsync as the other PostgreSQL rows).",
		SizeLabel(size), EpReplicaPage, EpPrimaryPage))
}

// waitReplicaHealthy waits until the node's replica serves reads.
func waitReplicaHealthy(t *testing.T, s *site) {
	deadline := time.Now().Add(time.Minute)
	for {
		var b struct {
			Replicas []struct {
				State string `json:"state"`
			} `json:"replicas"`
		}
		r := s.srv.Get(t, "/readyz", "")
		if err := json.Unmarshal(r.Body, &b); err == nil && len(b.Replicas) == 1 && b.Replicas[0].State == "healthy" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bench's replica is not healthy: %s", r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
