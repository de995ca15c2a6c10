package server_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// syncBuffer collects a subprocess's output for the failure report.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// buildConsentgate builds the real binary once for the test.
func buildConsentgate(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	bin := filepath.Join(t.TempDir(), "consentgate")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/consentgate")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// serveNode runs `consentgate serve --demo` on addr and dbURL until the test
// ends, and waits until it is ready.
func serveNode(t *testing.T, bin, name, addr, dbURL, issuer string) *testutil.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	// No rate limit: these tests load one client harder than the default
	// 100/s on purpose (the limit has its own test, TestRateLimitTwoNodes).
	cmd := exec.CommandContext(ctx, bin, "serve", "--demo", "--addr", addr, "--db", dbURL, "--issuer", issuer, "--rate-limit", "0")
	// The same secret on every node, so a token issued by one validates on all.
	cmd.Env = append(os.Environ(), "CONSENTGATE_SECRET="+testutil.TestSecret)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) } // graceful shutdown
	cmd.WaitDelay = 10 * time.Second
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start node %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("node %s output:\n%s", name, out.String())
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("node %s exited: %v\n%s", name, err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not ready after 60 s:\n%s", name, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return testutil.Attach(t, base)
}

// TestTwoNodeRevocation runs two `consentgate serve` processes on one
// PostgreSQL database and revokes on one node by each of the three paths:
// the app's next call on the other node gets 401, its refresh
// invalid_grant, and introspection there says inactive. Nothing is cached:
// the other node served the token just before.
func TestTwoNodeRevocation(t *testing.T) {
	if os.Getenv(testdb.EnvPostgresURL) == "" {
		t.Skip("two nodes share PostgreSQL: run under ./scripts/with-postgres (make test)")
	}
	dbURL := testdb.URL(t, store.Postgres)
	bin := buildConsentgate(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	// One issuer for both: it names the service; each node is reached at its
	// own address.
	issuer := "http://" + addrA
	a := serveNode(t, bin, "A", addrA, dbURL, issuer)
	b := serveNode(t, bin, "B", addrB, dbURL, issuer)

	revokeBy := []struct {
		name             string
		issueOn, otherOn *testutil.Server
		revoke           func(t *testing.T, on *testutil.Server, tok testutil.Tokens)
	}{
		{"customer on the dashboard of A", a, b, func(t *testing.T, on *testutil.Server, tok testutil.Tokens) {
			alice := on.NewBrowser()
			loginBrowser(t, on, alice, "alice", "alice-password-1")
			if r := dashboardRevoke(t, alice, tok.GrantID); r.StatusCode != http.StatusSeeOther {
				t.Fatalf("dashboard revoke: %d %s", r.StatusCode, r.Body)
			}
		}},
		{"app's DELETE /oauth2/grants on B", b, a, func(t *testing.T, on *testutil.Server, tok testutil.Tokens) {
			req := on.NewRequest(t, http.MethodDelete, "/oauth2/grants/"+tok.GrantID, nil)
			req.SetBasicAuth(testutil.DemoClientID, testutil.DemoClientSecret)
			if r := on.Do(t, req); r.StatusCode != http.StatusNoContent {
				t.Fatalf("DELETE grant: %d %s", r.StatusCode, r.Body)
			}
		}},
		{"app's RFC 7009 refresh token revocation on A", a, b, func(t *testing.T, on *testutil.Server, tok testutil.Tokens) {
			r := on.PostForm(t, "/oauth2/revoke", testutil.DemoClientID, testutil.DemoClientSecret, url.Values{"token": {tok.RefreshToken}})
			if r.StatusCode != http.StatusOK {
				t.Fatalf("revoke: %d %s", r.StatusCode, r.Body)
			}
		}},
	}
	for _, c := range revokeBy {
		t.Run(c.name, func(t *testing.T) {
			tok := c.issueOn.Authorize(t, testutil.DemoFlow())
			for i := range 3 { // the other node serves the token: any cache would be warm now
				if r := c.otherOn.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusOK {
					t.Fatalf("other node before revocation, call %d: %d %s", i, r.StatusCode, r.Body)
				}
			}
			// Under load: clients keep calling the other node with the token
			// (data calls and introspection) while it is revoked; every call
			// that starts after the revocation returned must be refused.
			load := loadToken(t, c.otherOn, tok.AccessToken)
			time.Sleep(200 * time.Millisecond)
			c.revoke(t, c.issueOn, tok)
			load.revokedAt(time.Now())
			time.Sleep(300 * time.Millisecond)
			load.check(t)
			start := time.Now()
			r := c.otherOn.Get(t, "/v1/accounts", tok.AccessToken)
			if r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("the next call on the other node after revocation: %d %s", r.StatusCode, r.Body)
			}
			expectLocked(t, c.otherOn, tok, "revoked")
			if in := introspect(t, c.otherOn, tok.AccessToken); in["active"] != false {
				t.Errorf("introspection on the other node: %v", in)
			}
			t.Logf("revoked by the %s: the next call on the other node got %d within %s", c.name, r.StatusCode,
				strconv.FormatInt(time.Since(start).Milliseconds(), 10)+" ms")
		})
	}
}

// tokenLoad is concurrent clients using one access token on one node, each
// call alternately a data call and an introspection, until check.
type tokenLoad struct {
	stop    atomic.Bool
	revoked atomic.Int64 // unix nanos when the revocation returned; 0 before
	wg      sync.WaitGroup
	mu      sync.Mutex
	before  int      // calls answered as live before the revocation
	after   int      // calls started after it
	wrong   []string // calls started after it that were answered as live
	failed  []string // transport failures and unexpected statuses
}

// loadToken starts 8 clients on s with token; the token must be live.
func loadToken(t *testing.T, s *testutil.Server, token string) *tokenLoad {
	t.Helper()
	l := &tokenLoad{}
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range 8 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; !l.stop.Load(); i++ {
				started := time.Now().UnixNano()
				live, what, err := tokenCall(client, s.URL, token, (i+w)%2 == 0)
				l.mu.Lock()
				switch rev := l.revoked.Load(); {
				case err != nil:
					l.failed = append(l.failed, err.Error())
				case rev != 0 && started > rev:
					l.after++
					if live {
						l.wrong = append(l.wrong, what)
					}
				case live:
					l.before++
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// revokedAt notes when the revocation returned.
func (l *tokenLoad) revokedAt(at time.Time) { l.revoked.Store(at.UnixNano()) }

// check stops the load and fails on any call answered as live after the
// revocation.
func (l *tokenLoad) check(t *testing.T) {
	t.Helper()
	l.stop.Store(true)
	l.wg.Wait()
	if len(l.failed) > 0 {
		t.Errorf("%d calls failed, first: %s", len(l.failed), l.failed[0])
	}
	if l.before == 0 || l.after == 0 {
		t.Errorf("the load did not straddle the revocation: %d live calls before, %d calls after", l.before, l.after)
	}
	if len(l.wrong) > 0 {
		t.Errorf("%d of %d calls started after the revocation were answered as live, first: %s", len(l.wrong), l.after, l.wrong[0])
	}
	t.Logf("under load: %d live calls before the revocation, %d after it, all refused", l.before, l.after)
}

// tokenCall makes one data call (data) or one introspection with token at
// base and reports whether the token was answered as live.
func tokenCall(client *http.Client, base, token string, data bool) (live bool, what string, err error) {
	var req *http.Request
	if data {
		req, _ = http.NewRequest(http.MethodGet, base+"/v1/accounts", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("x-fapi-customer-ip-address", "203.0.113.7")
	} else {
		req, _ = http.NewRequest(http.MethodPost, base+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.SetBasicAuth(testutil.DemoClientID, testutil.DemoClientSecret)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, "", err
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body) // a short body fails the checks below
	switch {
	case data && resp.StatusCode == http.StatusOK:
		return true, "GET /v1/accounts: 200", nil
	case data && resp.StatusCode == http.StatusUnauthorized:
		return false, "", nil
	case !data && resp.StatusCode == http.StatusOK:
		live := strings.Contains(body.String(), `"active":true`)
		return live, "introspection: " + body.String(), nil
	}
	return false, "", errors.New(req.URL.Path + ": " + strconv.Itoa(resp.StatusCode) + " " + body.String())
}
