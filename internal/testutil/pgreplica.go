package testutil

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
)

// PGCluster is a private PostgreSQL cluster (one server) that a test may
// stop, start, pause or promote at will, unlike the shared one of
// scripts/with-postgres that every other test is using. NewPGCluster makes
// a primary; StartReplica makes a streaming hot standby of it.
type PGCluster struct {
	Bin  string // the directory of initdb, pg_ctl and pg_basebackup
	Dir  string // the cluster's own directory: data/, server.log, the socket
	Data string // PGDATA
	Port string // loopback port
	// Primary is the cluster this one streams from (nil for a primary).
	Primary *PGCluster
	runAs   []string // runuser prefix when the tests run as root
}

// PGBinDir finds initdb, pg_ctl and pg_basebackup: where
// scripts/with-postgres found them (CONSENTGATE_TEST_PG_BIN), on PATH, or
// in Debian's versioned directories (newest first). "" when there are none.
func PGBinDir() string {
	var dirs []string
	if d := os.Getenv("CONSENTGATE_TEST_PG_BIN"); d != "" {
		dirs = append(dirs, d)
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(debian)))
	for _, d := range append(dirs, debian...) {
		// Through a symlink (/usr/local/bin/pg_ctl) to the directory that
		// holds its siblings, pg_basebackup among them.
		p, err := filepath.EvalSymlinks(filepath.Join(d, "pg_ctl"))
		if err != nil {
			continue
		}
		d = filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

// NewPGCluster initdb's a primary in a fresh directory, starts it on a free
// loopback port and removes it when the test ends. It accepts streaming
// replication connections from loopback (initdb's trust rules include
// "replication"), so StartReplica can clone it. Without PostgreSQL
// binaries the test is skipped, unless CI is set: CI must not skip it.
func NewPGCluster(t testing.TB) *PGCluster {
	t.Helper()
	bin := PGBinDir()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no PostgreSQL server binaries (initdb, pg_ctl), and CI must not skip this test")
		}
		t.Skip("no PostgreSQL server binaries (initdb, pg_ctl)")
	}
	c := newPGDir(t, bin, nil)
	if err := c.run(filepath.Join(bin, "initdb"), "-D", c.Data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale"); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// StartReplica clones the primary c with pg_basebackup -R (a base backup
// that streams the WAL written meanwhile, and standby.signal with
// primary_conninfo), starts it as a hot standby on its own free port, waits
// until it streams from c, and removes it when the test ends.
func (c *PGCluster) StartReplica(t testing.TB) *PGCluster {
	t.Helper()
	r := newPGDir(t, c.Bin, c)
	if err := r.run(filepath.Join(c.Bin, "pg_basebackup"), "-h", "127.0.0.1", "-p", c.Port, "-U", "postgres",
		"-D", r.Data, "-R", "-X", "stream", "-c", "fast", "--no-sync"); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	r.WaitStreaming(t)
	return r
}

// StartPrimaryWithReplica starts a private primary and one streaming
// replica of it (NewPGCluster, StartReplica).
func StartPrimaryWithReplica(t testing.TB) (primary, replica *PGCluster) {
	t.Helper()
	primary = NewPGCluster(t)
	return primary, primary.StartReplica(t)
}

func newPGDir(t testing.TB, bin string, primary *PGCluster) *PGCluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "consentgate-pg-private-")
	if err != nil {
		t.Fatal(err)
	}
	c := &PGCluster{Bin: bin, Dir: dir, Data: filepath.Join(dir, "data"), Port: freePort(t), Primary: primary}
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
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
	return c
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// URL is the cluster's default database.
func (c *PGCluster) URL() string {
	return "postgres://postgres@127.0.0.1:" + c.Port + "/postgres?sslmode=disable"
}

// Start starts the server and waits until it accepts connections (a
// standby: once it reached a consistent state). fsync is off, as in
// scripts/with-postgres, unless CONSENTGATE_TEST_PG_FSYNC=on (make bench).
func (c *PGCluster) Start() error {
	fsync := "off"
	if os.Getenv("CONSENTGATE_TEST_PG_FSYNC") == "on" {
		fsync = "on"
	}
	return c.pgCtl("start", "-w", "-t", "60", "-l", filepath.Join(c.Dir, "server.log"),
		"-o", "-h 127.0.0.1 -p "+c.Port+" -k "+c.Dir+" -c fsync="+fsync+
			" -c max_connections=100 -c wal_receiver_status_interval=1s")
}

// Stop shuts the server down the way an operator's failover does: active
// connections are terminated at once (fast mode).
func (c *PGCluster) Stop() error { return c.pgCtl("stop", "-w", "-m", "fast") }

// Freeze stops every process of the server with SIGSTOP: it keeps its
// connections open and answers nothing, like a host behind a network
// partition, until Thaw (also called when the test ends).
func (c *PGCluster) Freeze(t testing.TB) {
	t.Helper()
	c.signal(t, syscall.SIGSTOP)
	t.Cleanup(func() { c.signal(t, syscall.SIGCONT) })
}

// Thaw resumes a frozen server (SIGCONT).
func (c *PGCluster) Thaw(t testing.TB) {
	t.Helper()
	c.signal(t, syscall.SIGCONT)
}

// signal sends sig to the server's postmaster (postmaster.pid) and its
// children: only this cluster's own processes.
func (c *PGCluster) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Data, "postmaster.pid"))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pm, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		t.Fatalf("postmaster.pid: %q", first)
	}
	pids := []int{pm}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		b, err := os.ReadFile(st) // #nosec G304 -- /proc of this machine
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, so read after ")".
		_, rest, ok := strings.Cut(string(b), ") ")
		if f := strings.Fields(rest); ok && len(f) > 1 && f[1] == strconv.Itoa(pm) {
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(st))); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, sig) // a backend may have exited meanwhile
	}
}

// Exec runs statements on the cluster's default database.
func (c *PGCluster) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	db := c.open(t)
	defer db.Close()
	if err := db.Exec(sql, args...).Error; err != nil {
		t.Fatalf("%s on 127.0.0.1:%s: %v", sql, c.Port, err)
	}
}

// PauseReplay stops a standby applying WAL (pg_wal_replay_pause): it keeps
// answering reads, ever further behind its primary, until ResumeReplay.
func (c *PGCluster) PauseReplay(t testing.TB) {
	t.Helper()
	c.Exec(t, "SELECT pg_wal_replay_pause()")
	// Pausing is requested, then takes effect between two WAL records.
	c.waitFor(t, "replay paused", "SELECT pg_get_wal_replay_pause_state() = 'paused'")
}

// ResumeReplay lets a paused standby apply WAL again.
func (c *PGCluster) ResumeReplay(t testing.TB) {
	t.Helper()
	c.Exec(t, "SELECT pg_wal_replay_resume()")
}

// WaitStreaming waits until the standby c receives WAL from its primary.
func (c *PGCluster) WaitStreaming(t testing.TB) {
	t.Helper()
	c.waitFor(t, "streaming from the primary", "SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')")
}

// WaitCaughtUp waits until the standby c has replayed everything its
// primary had written when it was called.
func (c *PGCluster) WaitCaughtUp(t testing.TB) {
	t.Helper()
	p := c.Primary.open(t)
	defer p.Close()
	var lsn string
	if err := p.Raw("SELECT pg_current_wal_lsn()::text").Scan(&lsn).Error; err != nil {
		t.Fatalf("primary's WAL position: %v", err)
	}
	c.waitFor(t, "replayed up to "+lsn, "SELECT pg_last_wal_replay_lsn() >= '"+lsn+"'::pg_lsn")
}

// waitFor polls query (one boolean) on c for up to two minutes (a
// standby replaying a bulk load takes a while).
func (c *PGCluster) waitFor(t testing.TB, what, query string) {
	t.Helper()
	db := c.open(t)
	defer db.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var ok bool
		err := db.Raw(query).Scan(&ok).Error
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
			t.Fatalf("127.0.0.1:%s not %s after 2 minutes (last error %v)\n%s", c.Port, what, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *PGCluster) open(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(c.URL(), store.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func (c *PGCluster) pgCtl(args ...string) error {
	return c.run(filepath.Join(c.Bin, "pg_ctl"), append([]string{"-D", c.Data}, args...)...)
}

func (c *PGCluster) run(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append(append(append([]string{}, c.runAs...), name), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...) // #nosec G204 -- test harness: PostgreSQL's own tools on a temp cluster
	cmd.Dir = c.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
		return fmt.Errorf("%s %v: %v\n%s\n%s", filepath.Base(name), args, err, out, log)
	}
	return nil
}
