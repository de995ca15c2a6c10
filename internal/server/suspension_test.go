package server_test

import (
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/consentgate/consentgate/internal/server"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
	"github.com/consentgate/consentgate/internal/webhook"
)

// loadCall is one data call of the load generator.
type loadCall struct {
	node        string
	sent, done  time.Time
	status      int
	transportOK bool
}

// loadApp has workers call GET /v1/accounts with the app's tokens on the
// nodes, round robin, until stop closes; a bounded load (one request in
// flight per worker).
func loadApp(nodes map[string]string, tokens []string, workers int, stop <-chan struct{}) func() []loadCall {
	var (
		mu    sync.Mutex
		calls []loadCall
		wg    sync.WaitGroup
	)
	names := make([]string, 0, len(nodes))
	for n := range nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				node := names[i%len(names)]
				req, _ := http.NewRequest(http.MethodGet, nodes[node]+"/v1/accounts", nil)
				req.Header.Set("Authorization", "Bearer "+tokens[i%len(tokens)])
				req.Header.Set(testutil.CustomerIP, "198.51.100.23")
				c := loadCall{node: node, sent: time.Now()}
				resp, err := client.Do(req)
				c.done = time.Now()
				if err == nil {
					c.status, c.transportOK = resp.StatusCode, true
					resp.Body.Close()
				}
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
			}
		}()
	}
	return func() []loadCall {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return calls
	}
}

// TestTwoNodeSuspension is SPEC §11's promise across nodes: two `consentgate
// serve` processes share one PostgreSQL database while the app's tokens
// read data on both under a bounded load; the operator suspends the app on
// node A, and every call sent after the suspension was answered is refused
// (401) on both nodes; it reports the suspension-to-refusal delay. The
// customer's dashboard (real Chromium, on node B) says the bank paused
// the app, the app gets a signed client.suspended webhook; reinstating on
// B makes the same tokens work again on both nodes, and revoke-grants ends
// them for good.
func TestTwoNodeSuspension(t *testing.T) {
	if os.Getenv(testdb.EnvPostgresURL) == "" {
		t.Skip("two nodes share PostgreSQL: run under ./scripts/with-postgres (make test)")
	}
	chrome := newChrome(t)
	t.Setenv(server.EnvWebhookInterval, "100ms") // inherited by the node processes
	dbURL := testdb.URL(t, store.Postgres)
	bin := buildConsentgate(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	issuer := "http://" + addrA
	a := serveNode(t, bin, "A", addrA, dbURL, issuer)
	b := serveNode(t, bin, "B", addrB, dbURL, issuer)

	hooks := newHookReceiver(t, 0)
	db, err := store.Open(dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := webhook.NewStore(db, nil).SetURL(t.Context(), testutil.DemoClientID, hooks.srv.URL+"/consentgate"); err != nil {
		t.Fatal(err)
	}

	var toks []testutil.Tokens
	var access []string
	for i := range 3 {
		on := a
		if i%2 == 1 {
			on = b
		}
		tok := on.Authorize(t, testutil.DemoFlow())
		toks = append(toks, tok)
		access = append(access, tok.AccessToken)
	}
	op := operatorToken(t, a)

	// Bounded load: 4 workers, one call in flight each, on both nodes.
	nodes := map[string]string{"A": a.URL, "B": "http://" + addrB}
	stop := make(chan struct{})
	wait := loadApp(nodes, access, 4, stop)
	time.Sleep(700 * time.Millisecond) // the load is running and every cache would be warm
	sent := time.Now()
	r := adminPost(t, a, op, "/admin/v1/clients/demo-pfm/suspend", `{"reason":"suspected data resale"}`)
	answered := time.Now()
	if r.StatusCode != http.StatusOK {
		close(stop)
		wait()
		t.Fatalf("suspend: %d %s", r.StatusCode, r.Body)
	}
	time.Sleep(700 * time.Millisecond)
	close(stop)
	calls := wait()

	before, after := map[string]int{}, map[string]int{}
	firstRefusal := map[string]time.Duration{}
	for _, c := range calls {
		if !c.transportOK {
			t.Fatalf("load call on %s failed in transport", c.node)
		}
		switch {
		case c.done.Before(sent) && c.status != http.StatusOK:
			t.Errorf("call on %s before the suspension: %d", c.node, c.status)
		case c.done.Before(sent):
			before[c.node]++
		case c.sent.After(answered):
			after[c.node]++
			if c.status != http.StatusUnauthorized {
				t.Errorf("call on %s sent %s after the suspension was answered: %d, want 401",
					c.node, c.sent.Sub(answered), c.status)
			}
		}
		if c.status == http.StatusUnauthorized {
			if d := c.done.Sub(sent); firstRefusal[c.node] == 0 || d < firstRefusal[c.node] {
				firstRefusal[c.node] = d
			}
		}
	}
	for _, n := range []string{"A", "B"} {
		if before[n] == 0 || after[n] == 0 {
			t.Fatalf("node %s: %d calls before and %d after the suspension; the load did not cover it", n, before[n], after[n])
		}
	}
	t.Logf("suspension under load (%d calls on 2 nodes): suspend call took %s; every call sent after it was answered was refused "+
		"(%d on A, %d on B); first 401 %s (A) and %s (B) after the suspend call was sent",
		len(calls), answered.Sub(sent).Round(time.Microsecond), after["A"], after["B"],
		firstRefusal["A"].Round(time.Microsecond), firstRefusal["B"].Round(time.Microsecond))

	// The token endpoint refuses it on the other node too.
	if r := b.Refresh(t, testutil.DemoFlow(), toks[0].RefreshToken); r.StatusCode != http.StatusBadRequest ||
		!strings.Contains(string(r.Body), "unauthorized_client") {
		t.Fatalf("refresh on B of a suspended app: %d %s", r.StatusCode, r.Body)
	}
	// The customer's dashboard on node B, in Chromium.
	chromeStep(t, chrome, "log in on node B",
		chromedp.Navigate(nodes["B"]+"/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "alice-password-1\r"),
		chromedp.WaitVisible(chromedp.ID("active-title")),
	)
	chromeStep(t, chrome, "open the dashboard", chromedp.Navigate(nodes["B"]+"/dashboard"), chromedp.WaitVisible(chromedp.ID("active-title")))
	if text := chromeText(t, chrome, "main"); !strings.Contains(text, "Paused by your bank") || !strings.Contains(text, "Demo Budget Planner") {
		t.Fatalf("dashboard of a suspended app:\n%s", text)
	}
	screenshot(t, chrome, "dashboard-paused-by-bank.png")
	if body := hooks.clientEvent(t, a, testutil.DemoClientID, webhook.EventClientSuspended); body.Client.Reason != "suspected data resale" {
		t.Fatalf("client.suspended webhook: %+v", body.Client)
	}

	// Reinstated on B: the same tokens work again on both nodes.
	if r := adminPost(t, b, operatorToken(t, b), "/admin/v1/clients/demo-pfm/reinstate", `{"reason":"cleared"}`); r.StatusCode != http.StatusOK {
		t.Fatalf("reinstate: %d %s", r.StatusCode, r.Body)
	}
	for _, on := range []*testutil.Server{a, b} {
		for _, tok := range toks {
			if r := on.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusOK {
				t.Fatalf("the same token after reinstatement on %s: %d %s", on.URL, r.StatusCode, r.Body)
			}
		}
	}

	// revoke-grants on A ends them for good, on B too.
	r = adminPost(t, a, op, "/admin/v1/clients/demo-pfm/revoke-grants", `{"reason":"contract ended"}`)
	var rg struct {
		Revoked int `json:"revoked_grants"`
	}
	r.JSON(t, &rg)
	if r.StatusCode != http.StatusOK || rg.Revoked != len(toks) {
		t.Fatalf("revoke-grants: %d %s", r.StatusCode, r.Body)
	}
	for _, tok := range toks {
		expectLocked(t, b, tok, "revoked")
		hooks.wait(t, tok.GrantID, webhook.EventRevoked, 1)
	}
}
