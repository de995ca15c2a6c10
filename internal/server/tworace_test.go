package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// raceAnswer is one answer of a race: its status and OAuth error code.
type raceAnswer struct {
	status int
	err    string
	body   []byte
}

// raceForms posts the form n times at once, alternating between the nodes,
// all released together, and returns every answer.
func raceForms(t *testing.T, nodes []*testutil.Server, path string, form url.Values, n int) []raceAnswer {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	out := make([]raceAnswer, n)
	go1 := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		node := nodes[i%len(nodes)]
		req, err := http.NewRequest(http.MethodPost, node.URL+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(testutil.DemoClientID, testutil.DemoClientSecret)
		wg.Go(func() {
			<-go1
			resp, err := client.Do(req)
			if err != nil {
				out[i] = raceAnswer{status: -1, err: err.Error()}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var e struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(b, &e)
			out[i] = raceAnswer{status: resp.StatusCode, err: e.Error, body: b}
		})
	}
	close(go1)
	wg.Wait()
	return out
}

// tally counts a race's answers by status and error code.
func tally(answers []raceAnswer) (ok int, codes map[string]int) {
	codes = map[string]int{}
	for _, a := range answers {
		if a.status == http.StatusOK {
			ok++
			continue
		}
		codes[http.StatusText(a.status)+" "+a.err]++
	}
	return ok, codes
}

// TestTwoNodeRaces runs two `consentgate serve` processes on one
// PostgreSQL database (SPEC §8) and races them: 50 concurrent exchanges of
// one code, 50 concurrent refreshes of one refresh token, and a revocation
// on one node while the other serves the grant.
func TestTwoNodeRaces(t *testing.T) {
	if os.Getenv(testdb.EnvPostgresURL) == "" {
		t.Skip("two nodes share PostgreSQL: run under ./scripts/with-postgres (make test)")
	}
	dbURL := testdb.URL(t, store.Postgres)
	bin := buildConsentgate(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	issuer := "http://" + addrA
	a := serveNode(t, bin, "A", addrA, dbURL, issuer)
	b := serveNode(t, bin, "B", addrB, dbURL, issuer)
	nodes := []*testutil.Server{a, b}
	fr := testutil.DemoFlow()

	t.Run("50 exchanges of one code: exactly one gets tokens", func(t *testing.T) {
		requestURI, verifier := a.Push(t, fr)
		code := a.Consent(t, a.NewBrowser(), fr, requestURI).Query().Get("code")
		answers := raceForms(t, nodes, "/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {fr.RedirectURI}, "code_verifier": {verifier}}, 50)
		ok, codes := tally(answers)
		if ok != 1 || codes["Bad Request invalid_grant"] != 49 {
			t.Fatalf("code race: %d got tokens, others %v", ok, codes)
		}
		var tok testutil.Tokens
		for _, ans := range answers {
			if ans.status == http.StatusOK {
				_ = json.Unmarshal(ans.body, &tok)
			}
		}
		// A later replay still revokes what the code issued, on both nodes.
		if r := b.Exchange(t, fr, code, verifier); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("replay after the race: %d %s", r.StatusCode, r.Body)
		}
		for _, n := range nodes {
			if r := n.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("the winner's token after a replay: %d", r.StatusCode)
			}
		}
		t.Logf("code race: 1 winner, %v", codes)
	})

	t.Run("50 refreshes of one token: at most one wins and the reuse ends the grant", func(t *testing.T) {
		tok := a.Authorize(t, fr)
		answers := raceForms(t, nodes, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, 50)
		ok, codes := tally(answers)
		if ok > 1 || codes["Bad Request invalid_grant"] != 50-ok {
			t.Fatalf("refresh race: %d got tokens, others %v (every loser must get invalid_grant)", ok, codes)
		}
		// Concurrent losers presented a token that was rotated under them:
		// that is reuse (SPEC §2), so the whole grant is revoked — the
		// winner's new tokens included.
		var won testutil.Tokens
		for _, ans := range answers {
			if ans.status == http.StatusOK {
				_ = json.Unmarshal(ans.body, &won)
			}
		}
		for _, n := range nodes {
			expectLocked(t, n, tok, "revoked")
			if won.AccessToken != "" {
				expectLocked(t, n, won, "revoked")
			}
		}
		t.Logf("refresh race: %d winner, %v; grant revoked", ok, codes)
	})

	t.Run("revoke on A while B serves: B's next call is 401", func(t *testing.T) {
		tok := a.Authorize(t, fr)
		client := &http.Client{Timeout: 10 * time.Second}
		var (
			revokedAt atomic.Int64 // unix nanos once the revocation answered
			mu        sync.Mutex
			late      []int // statuses of calls that started after it
			before    atomic.Int64
		)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					started := time.Now().UnixNano()
					req, _ := http.NewRequest(http.MethodGet, b.URL+"/v1/accounts", nil)
					req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
					// Customer-present calls: not capped by the unattended limit.
					req.Header.Set("x-fapi-customer-ip-address", "203.0.113.7")
					resp, err := client.Do(req)
					if err != nil {
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if r := revokedAt.Load(); r != 0 && started > r {
						mu.Lock()
						late = append(late, resp.StatusCode)
						mu.Unlock()
					} else if resp.StatusCode == http.StatusOK {
						before.Add(1)
					}
				}
			})
		}
		for deadline := time.Now().Add(10 * time.Second); before.Load() < 20 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		r := a.PostForm(t, "/oauth2/revoke", testutil.DemoClientID, testutil.DemoClientSecret, url.Values{"token": {tok.RefreshToken}})
		revokedAt.Store(time.Now().UnixNano())
		if r.StatusCode != http.StatusOK {
			t.Fatalf("revoke on A: %d %s", r.StatusCode, r.Body)
		}
		time.Sleep(500 * time.Millisecond)
		close(stop)
		wg.Wait()
		if before.Load() == 0 || len(late) == 0 {
			t.Fatalf("B served %d calls before and %d after the revocation: not concurrent", before.Load(), len(late))
		}
		for i, st := range late {
			if st != http.StatusUnauthorized {
				t.Fatalf("B's call %d after the revocation on A answered %d", i, st)
			}
		}
		t.Logf("B served %d calls before the revocation on A and refused all %d after it", before.Load(), len(late))
	})
}
