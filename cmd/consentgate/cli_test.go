package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// binary builds the consentgate binary once for the tests that run it as a
// user would: exit statuses and the build information are the binary's.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "consentgate-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "consentgate")
		// -buildvcs=auto: stamp the commit when built in a git checkout
		// (GOFLAGS may say false), like a plain go build or go install.
		out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = errors.New(string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("go build: %v", binErr)
	}
	return binPath
}

// runBinary runs the built binary and returns its exit status and output.
func runBinary(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), "CONSENTGATE_DATABASE_URL=sqlite:"+filepath.Join(t.TempDir(), "cli.db"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// TestHelpAndExitStatus (issue 14 item 11): --help prints the command's
// usage on stdout and exits 0 for every command and subcommand; a command
// line that cannot be understood exits 2 and says why on stderr; bare
// consentgate is such a command line.
func TestHelpAndExitStatus(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"},
		{"serve", "--help"}, {"migrate", "--help"}, {"client", "--help"}, {"client", "create", "--help"},
		{"demo", "--help"}, {"demo", "seed", "-h"}, {"import", "--help"}, {"audit", "--help"},
		{"audit", "verify", "--help"}, {"audit", "export", "--help"}, {"audit", "query", "--help"},
		{"webhook", "--help"}, {"webhook", "set", "--help"}, {"webhook", "deliveries", "--help"}, {"version", "--help"},
	} {
		code, out, errb := runBinary(t, args...)
		if code != 0 || !strings.Contains(strings.ToLower(out), "usage") || strings.Contains(out+errb, "help requested") {
			t.Errorf("%v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errb)
		}
	}
	// Flags are listed with their meaning.
	if _, out, _ := runBinary(t, "client", "create", "--help"); !strings.Contains(out, "-institution") || !strings.Contains(out, "-redirect-uri") {
		t.Errorf("client create --help lists no flags:\n%s", out)
	}
	// import's --format and --institution have defaults: the usage says they are optional.
	for _, args := range [][]string{{"--help"}, {"import", "--help"}} {
		if _, out, _ := runBinary(t, args...); !strings.Contains(out, "import [--db URL] [--format jsonl|csv] [--institution ID] FILE|-") {
			t.Errorf("%v: import's usage line:\n%s", args, out)
		}
	}

	for _, c := range []struct {
		args []string
		says string
	}{
		{nil, "Usage:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"client"}, "which client command?"},
		{[]string{"client", "delete"}, `unknown client command "delete"`},
		{[]string{"client", "create", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"client", "create"}, "--name is required"},
		{[]string{"client", "create", "--name", "A", "stray"}, `unexpected argument "stray"`},
		{[]string{"demo"}, "which demo command?"},
		{[]string{"demo", "seed", "--customers", "many"}, "invalid value"},
		{[]string{"import"}, "name one file to import"},
		{[]string{"import", "records.txt"}, "cannot tell the format"},
		{[]string{"audit"}, "which audit command?"},
		{[]string{"audit", "frobnicate"}, `unknown audit command "frobnicate"`},
		{[]string{"audit", "verify", "stray"}, `unexpected argument "stray"`},
		{[]string{"audit", "query", "--format", "xml"}, "--format must be table or json"},
		{[]string{"audit", "query", "--limit", "0"}, "--limit must be from 1"},
		{[]string{"webhook"}, "which webhook command?"},
		{[]string{"webhook", "frobnicate"}, `unknown webhook command "frobnicate"`},
		{[]string{"webhook", "set", "--client-id", "app"}, "--client-id and --url are required"},
		{[]string{"serve", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"serve", "stray"}, `unexpected argument "stray"`},
		{[]string{"serve", "--db", "sqlite:x.db", "--read-db", "postgres://replica/cg"}, "--read-db needs a PostgreSQL primary"},
		{[]string{"serve", "--db", "postgres://primary/cg", "--read-db", "sqlite:replica.db"}, "--read-db number 1 (sqlite:…) must be a postgres:// URL"},
		{[]string{"serve", "--db", "postgres://primary/cg", "--read-db", "postgres://replica/cg", "--read-db-max-lag", "-1s"}, "--read-db-max-lag must be positive"},
		{[]string{"migrate", "stray"}, `unexpected argument "stray"`},
		{[]string{"version", "stray"}, `unexpected argument "stray"`},
	} {
		code, out, errb := runBinary(t, c.args...)
		if code != 2 || out != "" || !strings.Contains(errb, c.says) {
			t.Errorf("%v: exit %d, want 2 saying %q\nstdout: %s\nstderr: %s", c.args, code, c.says, out, errb)
		}
	}
}

// TestVersion (issue 14 item 11): version prints the module version and,
// for a binary built in a git checkout, the commit, from the build
// information the Go toolchain records.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, errb := runBinary(t, args...)
		line := strings.TrimSuffix(out, "\n")
		if code != 0 || !strings.HasPrefix(line, "consentgate ") || !strings.HasSuffix(line, " "+runtime.Version()) || strings.Contains(line, "\n") {
			t.Fatalf("%v: exit %d %q %s", args, code, out, errb)
		}
		head, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil || strings.Contains(line, "commit unknown") {
			continue // not stamped (no git, or a worktree the toolchain does not read)
		}
		if want := "(commit " + strings.TrimSpace(string(head)); !strings.Contains(line, want) {
			t.Errorf("version %q lacks %q", line, want)
		}
	}
}

// TestServeIssuerFollowsAddr (issue 14 item 10): serve --demo on another
// port advertises itself at that port, not at :8080.
func TestServeIssuerFollowsAddr(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(binary(t), "serve", "--demo", "--addr", addr, "--db", "sqlite:"+filepath.Join(t.TempDir(), "serve.db"))
	cmd.Env = append(os.Environ(), "CONSENTGATE_ISSUER=", "CONSENTGATE_SECRET=")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	var meta struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/.well-known/oauth-authorization-server")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&meta)
			resp.Body.Close()
			if err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not answer: %v\n%s", err, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	want := "http://" + addr
	if meta.Issuer != want || meta.TokenEndpoint != want+"/oauth2/token" {
		t.Errorf("issuer %q, token endpoint %q; want %s", meta.Issuer, meta.TokenEndpoint, want)
	}
}

// TestDemoSeedSummary (issue 14 item 11): demo seed ends with a sentence,
// not a Go struct dump.
func TestDemoSeedSummary(t *testing.T) {
	dbURL := testdb.URL(t, store.SQLite)
	code, out, errb := runCLI("demo", "seed", "--db", dbURL, "--customers", "2", "--transactions-per-account", "3")
	if code != 0 || !strings.HasPrefix(out, "generated 2 customers, ") || strings.Contains(out, "{") ||
		!strings.Contains(out, "gen-1 … gen-2") {
		t.Errorf("demo seed: exit %d %q %s", code, out, errb)
	}
}

// TestAuditQueryCommand (issue 14 item 11): auditors read pages of the log
// from the command line with the API's filters, as a table or as the API's
// JSON page, and the table says how to get the next page.
func TestAuditQueryCommand(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			dbURL, _ := seedLog(t, d, 12)
			args := []string{"audit", "query", "--db", dbURL, "--limit", "5"}
			code, out, errb := runCLI(args...)
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if code != 0 || len(lines) != 7 || !strings.HasPrefix(lines[0], "SEQ") || !strings.HasPrefix(lines[1], "1 ") ||
				!strings.HasPrefix(lines[5], "5 ") || !strings.HasPrefix(lines[6], "5 events; more match: consentgate audit query ") {
				t.Fatalf("first page: exit %d\n%s%s", code, out, errb)
			}
			_, cursor, ok := strings.Cut(lines[6], " --cursor ")
			if !ok {
				t.Fatalf("no cursor in %q", lines[6])
			}
			code, out, _ = runCLI(append(args, "--cursor", cursor)...)
			lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if code != 0 || len(lines) != 7 || !strings.HasPrefix(lines[1], "6 ") {
				t.Fatalf("second page: exit %d\n%s", code, out)
			}

			code, out, errb = runCLI("audit", "query", "--db", dbURL, "--outcome", "denied", "--format", "json")
			var page struct {
				Data []struct {
					Seq     int64  `json:"seq"`
					Outcome string `json:"outcome"`
					Reason  string `json:"reason"`
				} `json:"data"`
				NextCursor *string `json:"next_cursor"`
			}
			if err := json.Unmarshal([]byte(out), &page); code != 0 || err != nil || len(page.Data) != 4 || page.NextCursor != nil ||
				page.Data[0].Seq != 3 || page.Data[3].Reason != "purpose_prohibited" {
				t.Fatalf("json, denied: exit %d %v\n%s%s", code, err, out, errb)
			}
			code, out, _ = runCLI("audit", "query", "--db", dbURL, "--client-id", "nobody")
			if code != 0 || !strings.HasSuffix(out, "\n0 events.\n") {
				t.Errorf("no match: exit %d %q", code, out)
			}
			for _, bad := range [][]string{{"--type", "bogus"}, {"--since", "yesterday"}, {"--cursor", "garbage"}} {
				if code, _, errb := runCLI(append([]string{"audit", "query", "--db", dbURL}, bad...)...); code != 1 || errb == "" {
					t.Errorf("%v: exit %d %s", bad, code, errb)
				}
			}
		})
	}
}
