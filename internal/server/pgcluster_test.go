package server_test

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// pgCluster is a private PostgreSQL cluster a test may stop and start at
// will, unlike the shared one of scripts/with-postgres that every other
// test is using.
type pgCluster struct {
	bin, dir, data string
	port           string
	runAs          []string // runuser prefix when the tests run as root
}

// pgBinDir finds initdb and pg_ctl: where scripts/with-postgres found them,
// on PATH, or in Debian's versioned directories (newest first).
func pgBinDir() string {
	if d := os.Getenv("CONSENTGATE_TEST_PG_BIN"); d != "" {
		return d
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

// newPGCluster initdb's a cluster in a fresh directory, starts it on a free
// loopback port and removes it when the test ends. Without PostgreSQL
// binaries the test is skipped, unless CI is set: CI must not skip it.
func newPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	bin := pgBinDir()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no PostgreSQL server binaries (initdb, pg_ctl), and CI must not skip this test")
		}
		t.Skip("no PostgreSQL server binaries (initdb, pg_ctl)")
	}
	dir, err := os.MkdirTemp("", "consentgate-pg-private-")
	if err != nil {
		t.Fatal(err)
	}
	c := &pgCluster{bin: bin, dir: dir, data: filepath.Join(dir, "data"), port: strings.Split(freeAddr(t), ":")[1]}
	if os.Geteuid() == 0 {
		// initdb refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root without a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.runAs = []string{"runuser", "-u", "postgres", "--"}
	}
	t.Cleanup(func() {
		_ = c.pgCtl("stop", "-m", "immediate")
		os.RemoveAll(dir)
	})
	if err := c.run(filepath.Join(bin, "initdb"), "-D", c.data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale"); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// URL is the cluster's default database.
func (c *pgCluster) URL() string {
	return "postgres://postgres@127.0.0.1:" + c.port + "/postgres?sslmode=disable"
}

// Start starts the cluster and waits until it accepts connections.
func (c *pgCluster) Start() error {
	return c.pgCtl("start", "-w", "-t", "60", "-l", filepath.Join(c.dir, "server.log"),
		"-o", "-h 127.0.0.1 -p "+c.port+" -k "+c.dir+" -c fsync=off -c max_connections=100")
}

// Stop shuts the cluster down the way an operator's failover does: active
// connections are terminated at once (fast mode).
func (c *pgCluster) Stop() error { return c.pgCtl("stop", "-w", "-m", "fast") }

func (c *pgCluster) pgCtl(args ...string) error {
	return c.run(filepath.Join(c.bin, "pg_ctl"), append([]string{"-D", c.data}, args...)...)
}

func (c *pgCluster) run(name string, args ...string) error {
	argv := append(append(append([]string{}, c.runAs...), name), args...)
	cmd := exec.Command(argv[0], argv[1:]...) // #nosec G204 -- test harness: PostgreSQL's own tools on a temp cluster
	cmd.Dir = c.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		return fmt.Errorf("%s %v: %v\n%s\n%s", filepath.Base(name), args, err, out, log)
	}
	return nil
}
