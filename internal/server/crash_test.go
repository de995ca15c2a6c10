package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/server"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// envHelperDB makes the test binary a consentgate node on that database
// (TestNodeProcess), for tests that must kill a node with SIGKILL.
const envHelperDB = "CONSENTGATE_TEST_NODE_DB"

// TestNodeProcess is not a test: re-executed by startProcess, it serves a
// node until it is killed. It prints "LISTENING <addr>" once it accepts.
func TestNodeProcess(t *testing.T) {
	dbURL := os.Getenv(envHelperDB)
	if dbURL == "" {
		t.Skip("helper process of TestAuditSurvivesKill")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Addr: l.Addr().String(), DatabaseURL: dbURL, Issuer: "http://" + l.Addr().String(),
		Secret: []byte(testutil.TestSecret), Demo: true, ShutdownTimeout: time.Second}
	node, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("LISTENING %s\n", l.Addr())
	t.Fatal(node.Serve(context.Background(), l)) // only a kill ends it
}

// startProcess runs a node in a child process on dbURL and returns its base
// URL and the process, which the test kills.
func startProcess(t *testing.T, dbURL string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestNodeProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelperDB+"="+dbURL)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				addr <- a
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case a := <-addr:
		return "http://" + a, cmd
	case <-time.After(30 * time.Second):
		t.Fatal("the node process did not start")
	}
	return "", nil
}

// TestAuditSurvivesKill: two nodes (this process and a child) serve reads on
// one database; the child is killed with SIGKILL in the middle of the load.
// Afterwards the chain verifies, a restarted node appends to it, and every
// response a client saw as 200 has its data.access event.
func TestAuditSurvivesKill(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			dbURL := testdb.URL(t, d)
			s := testutil.Start(t, d, testutil.Options{DatabaseURL: dbURL})
			tok := s.Authorize(t, testutil.DemoFlow())
			path := "/v1/accounts/" + cardAccount(t, s, tok.AccessToken) + "/transactions?limit=5"
			child, cmd := startProcess(t, dbURL)

			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
			var (
				mu                sync.Mutex
				served            []string // interaction ids answered 200
				n                 atomic.Int64
				fromChild, failed atomic.Int64
			)
			call := func(base string) {
				id := fmt.Sprintf("crash-%d", n.Add(1))
				req, _ := http.NewRequest(http.MethodGet, base+path, nil)
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				req.Header.Set("x-fapi-interaction-id", id)
				// Customer present: unattended calls stop at the consent's
				// daily limit, and the load must be served, not refused.
				req.Header.Set(testutil.CustomerIP, "203.0.113.9")
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					mu.Lock()
					served = append(served, id)
					mu.Unlock()
					if base == child {
						fromChild.Add(1)
					}
				}
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						base := child
						if (w+i)%4 == 0 { // a quarter of the load on this process's node
							base = s.URL
						}
						call(base)
					}
				}()
			}
			// Kill the child once it has served a good share, mid-load.
			for deadline := time.Now().Add(15 * time.Second); fromChild.Load() < 300 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			time.Sleep(300 * time.Millisecond) // the load goes on against a dead node
			close(stop)
			wg.Wait()
			if fromChild.Load() == 0 || failed.Load() == 0 {
				t.Fatalf("the kill was not mid-load: %d answers from the child, %d failed calls", fromChild.Load(), failed.Load())
			}

			// A restarted node appends to the same chain.
			restarted, _ := startProcess(t, dbURL)
			for range 20 {
				call(restarted)
			}

			ctx := context.Background()
			// Every committed event into the log first, so that all of them
			// are verified, not only those the checkpointer had reached.
			if _, err := s.Node.AuditCheckpoint(ctx); err != nil {
				t.Fatal(err)
			}
			rep, err := audit.Verify(ctx, s.DB, s.Node.AuditKeys())
			if err != nil || !rep.Valid {
				t.Fatalf("after the kill the log does not verify: %+v %v", rep, err)
			}
			reader := audit.NewReader(s.DB)
			mu.Lock()
			defer mu.Unlock()
			for _, id := range served {
				evs, err := reader.ByInteractionID(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) != 1 || evs[0].Type != audit.DataAccess || evs[0].Status != http.StatusOK || evs[0].Outcome != audit.Allowed {
					t.Fatalf("response %s was served, its events are %+v", id, evs)
				}
			}
			t.Logf("%s: %d responses served (%d by the killed node), %d calls failed; %d events verify",
				d, len(served), fromChild.Load(), failed.Load(), rep.Events)
		})
	}
}
