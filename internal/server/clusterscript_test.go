//go:build cluster

package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/testutil"
)

func createClusterClient(t *testing.T, bin, dbURL string) clusterClient {
	t.Helper()
	cmd := exec.Command(bin, "client", "create", "--db", dbURL, "--name", "Cluster Test App",
		"--redirect-uri", "http://127.0.0.1:8767/callback", "--grant-type", "authorization_code", "--grant-type", "refresh_token",
		"--scope", "accounts:read", "--scope", "balances:read", "--scope", "transactions:read", "--scope", "offline_access",
		"--purpose", "personal_finance_management")
	cmd.Env = append(os.Environ(), "CONSENTGATE_SECRET="+testutil.TestSecret)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client create: %v\n%s", err, out)
	}
	var c clusterClient
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("client create: %v\n%s", err, out)
	}
	return c
}

// localCluster is a cluster started by scripts/cluster.
type localCluster struct {
	dir   string
	env   map[string]string // DIR/cluster.env
	nodes []string          // the nodes' base URLs
	pids  []int
}

// clusterUp runs `scripts/cluster up` in a fresh directory and `down` when
// the test ends, showing the nodes' logs first if it failed.
func clusterUp(t *testing.T, bin string) *localCluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "consentgate-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	c := &localCluster{dir: dir}
	t.Cleanup(func() {
		if t.Failed() {
			for i := range c.nodes {
				log, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node%d.log", i+1)))
				lines := strings.Split(string(log), "\n")
				t.Logf("node%d log (last lines):\n%s", i+1, strings.Join(lines[max(0, len(lines)-30):], "\n"))
			}
		}
		c.script(t, "down")
	})
	up := exec.Command(clusterScript(), "up", dir)
	up.Env = append(os.Environ(), "CONSENTGATE_BIN="+bin, "CONSENTGATE_SECRET="+testutil.TestSecret,
		"CLUSTER_READ_DB_MAX_LAG="+clusterMaxLag.String())
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("scripts/cluster up: %v\n%s", err, out)
	}
	f, err := os.Open(filepath.Join(dir, "cluster.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c.env = map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		c.env[k] = strings.Trim(v, "'")
	}
	for i := 1; c.env[fmt.Sprintf("NODE%d_URL", i)] != ""; i++ {
		pid, err := strconv.Atoi(c.env[fmt.Sprintf("NODE%d_PID", i)])
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, c.env[fmt.Sprintf("NODE%d_URL", i)])
		c.pids = append(c.pids, pid)
	}
	if len(c.nodes) != 3 || c.env["PRIMARY_URL"] == "" || c.env["REPLICA_URL"] == "" {
		t.Fatalf("cluster.env: %v", c.env)
	}
	return c
}

// script runs a scripts/cluster command on the cluster.
func (c *localCluster) script(t *testing.T, command string) {
	t.Helper()
	if out, err := exec.Command(clusterScript(), command, c.dir).CombinedOutput(); err != nil { // #nosec G204 -- test harness: the repository's own script
		t.Errorf("scripts/cluster %s: %v\n%s", command, err, out)
	}
}

func clusterScript() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "scripts", "cluster")
}
