//go:build chaos || soak || cluster

package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/net/html"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/demo"
	"github.com/consentgate/consentgate/internal/ingest"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
)

// chaosGrant is a grant the load holds tokens of.
type chaosGrant struct {
	GrantID, Access, Refresh string
}

// chaosLoad is the mixed load of TestChaos and everything it saw, for the
// checks after each kill. It never fails the test itself: a dead node is
// expected, and each worker just tries again on the next node.
type chaosLoad struct {
	base atomic.Pointer[string] // the node being served by, "" while down
	// nodes, when set (TestCluster), replaces base: requests go round the
	// nodes in turn, and one a node does not answer is sent to the next.
	nodes []string
	rr    atomic.Int64

	mu         sync.Mutex
	served     []string       // interaction ids of data calls answered 200
	codeWins   map[string]int // 200s per authorization code
	uriHonours map[string]int // consent hand-offs per request_uri
	grants     []chaosGrant   // live grants (data calls, refreshes, revocations)
	revoked    []chaosGrant   // revoked with a 200: must stay dead
	batches    map[int]bool   // provider batch → acknowledged with a 200
	counts     map[string]int // what happened, for the report
	fiveXX     []string       // every 5xx answer: method, path, node, status
	unserved   int            // requests no node answered

	n       atomic.Int64
	batchNo atomic.Int64
}

func newChaosLoad() *chaosLoad {
	return &chaosLoad{codeWins: map[string]int{}, uriHonours: map[string]int{}, batches: map[int]bool{}, counts: map[string]int{}}
}

func (l *chaosLoad) count(what string) {
	l.mu.Lock()
	l.counts[what]++
	l.mu.Unlock()
}

var chaosClient = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

// do sends a request to the current node; errors when the node is down.
// With nodes set it sends it to the next node in turn, and again to the
// following ones while a node does not answer (a client retrying
// elsewhere); it errors only when no node answered.
func (l *chaosLoad) do(c *http.Client, method, path string, body io.Reader, hdr ...string) (*http.Response, []byte, error) {
	bases := l.nodes
	if len(bases) > 0 {
		first := int(l.rr.Add(1)) % len(bases)
		bases = append(append([]string(nil), bases[first:]...), bases[:first]...)
	} else if base := l.base.Load(); base != nil && *base != "" {
		bases = []string{*base}
	} else {
		return nil, nil, errors.New("node down")
	}
	var payload []byte
	if body != nil {
		var err error
		if payload, err = io.ReadAll(body); err != nil {
			return nil, nil, err
		}
	}
	var lastErr error
	for try, base := range bases {
		if try > 0 {
			hdr = retryID(hdr, try)
		}
		resp, b, err := l.send(c, base, method, path, payload, hdr)
		if err != nil {
			lastErr = err
			if len(l.nodes) > 0 {
				l.count("retried on another node")
			}
			continue
		}
		if resp.StatusCode >= 500 {
			l.mu.Lock()
			l.fiveXX = append(l.fiveXX, fmt.Sprintf("%s %s on %s: %d %s", method, path, base, resp.StatusCode, b))
			l.mu.Unlock()
		}
		return resp, b, nil
	}
	if len(l.nodes) > 0 {
		l.mu.Lock()
		l.unserved++
		l.mu.Unlock()
	}
	return nil, nil, lastErr
}

// retryID gives a retried request an interaction id of its own: the node
// that did not answer may have served and audited the first try.
func retryID(hdr []string, try int) []string {
	out := append([]string(nil), hdr...)
	for i := 0; i+1 < len(out); i += 2 {
		if strings.EqualFold(out[i], "x-fapi-interaction-id") {
			out[i+1] = fmt.Sprintf("%s-retry%d", hdr[i+1], try)
		}
	}
	return out
}

// send sends one request to base; an absolute URL in path (a redirect to
// follow) is used as it is.
func (l *chaosLoad) send(c *http.Client, base, method, path string, payload []byte, hdr []string) (*http.Response, []byte, error) {
	u := path
	if strings.HasPrefix(path, "/") {
		u = base + path
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, nil, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "basic" {
			id, secret, _ := strings.Cut(hdr[i+1], ":")
			req.SetBasicAuth(id, secret)
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func (l *chaosLoad) postForm(path, basic string, form url.Values) (*http.Response, []byte, error) {
	return l.do(chaosClient, http.MethodPost, path, strings.NewReader(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded", "basic", basic)
}

const demoBasic = testutil.DemoClientID + ":" + testutil.DemoClientSecret

// dataCall reads a grant's accounts and records a 200's interaction id.
func (l *chaosLoad) dataCall() {
	g, ok := l.pick()
	if !ok {
		return
	}
	id := fmt.Sprintf("chaos-%d", l.n.Add(1))
	resp, _, err := l.do(chaosClient, http.MethodGet, "/v1/accounts", nil, "Authorization", "Bearer "+g.Access,
		"x-fapi-interaction-id", id, "x-fapi-customer-ip-address", "203.0.113.9")
	if err != nil {
		return
	}
	switch resp.StatusCode {
	case http.StatusOK:
		l.mu.Lock()
		l.served = append(l.served, resp.Header.Get("x-fapi-interaction-id")) // id, or a retry's
		l.mu.Unlock()
	case http.StatusUnauthorized:
		l.drop(g) // expired (300 s) or its grant ended
	}
	l.count(fmt.Sprintf("data %d", resp.StatusCode))
}

func (l *chaosLoad) pick() (chaosGrant, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.grants) == 0 {
		return chaosGrant{}, false
	}
	return l.grants[rand.IntN(len(l.grants))], true
}

// drop forgets a grant (revoked, or its refresh outcome unknown).
func (l *chaosLoad) drop(g chaosGrant) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.grants {
		if l.grants[i].GrantID == g.GrantID {
			l.grants = append(l.grants[:i], l.grants[i+1:]...)
			return
		}
	}
}

// refresh rotates a grant's refresh token.
func (l *chaosLoad) refresh() {
	g, ok := l.pick()
	if !ok {
		return
	}
	resp, body, err := l.postForm("/oauth2/token", demoBasic, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.Refresh}})
	if err != nil || resp.StatusCode != http.StatusOK {
		l.drop(g) // unknown or refused: a retry would be reuse
		l.count("refresh failed")
		return
	}
	var tok testutil.Tokens
	_ = json.Unmarshal(body, &tok)
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.grants {
		if l.grants[i].GrantID == g.GrantID {
			l.grants[i].Access, l.grants[i].Refresh = tok.AccessToken, tok.RefreshToken
		}
	}
	l.counts["refresh 200"]++
}

// revoke ends a grant through RFC 7009.
func (l *chaosLoad) revoke() {
	g, ok := l.pick()
	if !ok {
		return
	}
	l.drop(g)
	resp, _, err := l.postForm("/oauth2/revoke", demoBasic, url.Values{"token": {g.Refresh}})
	if err == nil && resp.StatusCode == http.StatusOK {
		l.mu.Lock()
		l.revoked = append(l.revoked, g)
		l.counts["revoke 200"]++
		l.mu.Unlock()
	}
}

// flow takes a new grant through PAR, authorize, login, consent and the
// code exchange, replaying the request_uri, and one code in four (a replay
// revokes what the code issued, so that grant is not kept); every honoured
// request_uri and every code that won tokens is recorded.
func (l *chaosLoad) flow() error {
	fr := testutil.DemoFlow()
	verifier, challenge := testutil.PKCE()
	resp, body, err := l.postForm("/oauth2/par", demoBasic, testutil.PARForm(fr, "st-chaos", challenge))
	if err != nil || resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("par: %v %s", err, body)
	}
	var par struct {
		RequestURI string `json:"request_uri"`
	}
	_ = json.Unmarshal(body, &par)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: chaosClient.CheckRedirect}
	authorize := "/oauth2/authorize?" + url.Values{"client_id": {fr.ClientID}, "request_uri": {par.RequestURI}}.Encode()
	var consentURL string
	for range 2 { // the second use must be refused
		resp, _, err := l.do(browser, http.MethodGet, authorize, nil)
		if err != nil {
			return err
		}
		if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(loc, "/consent") {
			l.mu.Lock()
			l.uriHonours[par.RequestURI]++
			l.mu.Unlock()
			consentURL = loc
		}
	}
	if consentURL == "" {
		return errors.New("authorize refused")
	}
	resp, page, err := l.do(browser, http.MethodGet, "/login?return_to="+url.QueryEscape(consentURL), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("login page: %v", err)
	}
	form, _ := formFields(page, "/login")
	form.Set("username", fr.Username)
	form.Set("password", fr.Password)
	if resp, _, err = l.do(browser, http.MethodPost, "/login", strings.NewReader(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded"); err != nil || resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("login: %v", err)
	}
	if resp, page, err = l.do(browser, http.MethodGet, consentURL, nil); err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("consent page: %v", err)
	}
	form, accounts := formFields(page, "/consent")
	form["account"] = accounts
	form.Set("decision", "approve")
	resp, _, err = l.do(browser, http.MethodPost, "/consent", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("consent: %v", err)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {fr.RedirectURI}, "code_verifier": {verifier}}
	replay := rand.IntN(4) == 0
	for try := range 2 { // the replay must be refused
		if try == 1 && !replay {
			break
		}
		resp, body, err := l.postForm("/oauth2/token", demoBasic, exchange)
		if err != nil || resp.StatusCode != http.StatusOK {
			continue
		}
		var tok testutil.Tokens
		_ = json.Unmarshal(body, &tok)
		l.mu.Lock()
		if l.codeWins[code]++; l.codeWins[code] == 1 && !replay {
			if len(l.grants) >= maxChaosGrants {
				l.grants = l.grants[1:] // the oldest; its access token is the likeliest to have expired
			}
			l.grants = append(l.grants, chaosGrant{GrantID: tok.GrantID, Access: tok.AccessToken, Refresh: tok.RefreshToken})
		}
		l.mu.Unlock()
	}
	l.count("flow")
	return nil
}

// formFields returns the hidden inputs and checkbox values of the page's
// form that posts to action.
func formFields(page []byte, action string) (url.Values, []string) {
	form, boxes := url.Values{}, []string(nil)
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		return form, nil
	}
	attr := func(n *html.Node, k string) string {
		for _, a := range n.Attr {
			if a.Key == k {
				return a.Val
			}
		}
		return ""
	}
	var walk func(n *html.Node, in bool)
	walk = func(n *html.Node, in bool) {
		if n.Type == html.ElementNode && n.Data == "form" {
			in = attr(n, "action") == action
		}
		if in && n.Type == html.ElementNode && n.Data == "input" {
			switch attr(n, "type") {
			case "hidden":
				form.Set(attr(n, "name"), attr(n, "value"))
			case "checkbox":
				boxes = append(boxes, attr(n, "value"))
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, in)
		}
	}
	walk(doc, false)
	return form, boxes
}

// setupProvider creates the provider customer and account the batches write to.
func setupProvider(t *testing.T, load *chaosLoad) {
	t.Helper()
	tok := providerToken(load)
	for _, step := range []struct{ path, body string }{
		{"/v1/provider/customers", `{"records":[{"id":"chaos-c","display_name":"Chaos Customer"}]}`},
		{"/v1/provider/accounts", `{"records":[{"id":"chaos-a","customer_id":"chaos-c","type":"credit_card","display_name":"Chaos Card","last4":"4242","currency":"USD"}]}`},
	} {
		resp, body, err := load.do(chaosClient, http.MethodPost, step.path, strings.NewReader(step.body),
			"Content-Type", "application/json", "Authorization", "Bearer "+tok)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %v %s", step.path, err, body)
		}
	}
}

func providerToken(load *chaosLoad) string {
	resp, body, err := load.postForm("/oauth2/token", demo.ProviderClientID+":demo-provider-secret",
		url.Values{"grant_type": {"client_credentials"}, "scope": {"provider:write"}})
	if err != nil || resp.StatusCode != http.StatusOK {
		return ""
	}
	var tok testutil.Tokens
	_ = json.Unmarshal(body, &tok)
	return tok.AccessToken
}

// providerBatch writes chaosBatchSize transactions marked with a batch
// number; a 200 marks the batch acknowledged. It returns the status (0
// when the node did not answer).
func (l *chaosLoad) providerBatch(token string, start time.Time) int {
	if b := l.base.Load(); b == nil || *b == "" {
		return 0 // the node is down: nothing sent
	}
	return l.postBatch(token, int(l.batchNo.Add(1)), start, "Chaos Shop")
}

// postBatch posts batch k, chaosBatchSize booked transactions at one time,
// recording in l.batches whether it was acknowledged; it returns the
// status (0 when no node answered).
func (l *chaosLoad) postBatch(token string, k int, at time.Time, merchant string) int {
	var recs []string
	for i := range chaosBatchSize {
		recs = append(recs, fmt.Sprintf(`{"id":"chaos-b%d-%d","account_id":"chaos-a","status":"booked","transacted_at":%q,"booked_at":%q,"amount":"-1.%02d","currency":"USD","merchant_name":%q}`,
			k, i, at.Format(time.RFC3339), at.Format(time.RFC3339), i, merchant))
	}
	l.mu.Lock()
	l.batches[k] = false
	l.mu.Unlock()
	resp, _, err := l.do(chaosClient, http.MethodPost, "/v1/provider/transactions", strings.NewReader(`{"records":[`+strings.Join(recs, ",")+`]}`),
		"Content-Type", "application/json", "Authorization", "Bearer "+token)
	if err != nil {
		return 0
	}
	l.mu.Lock()
	l.batches[k] = resp.StatusCode == http.StatusOK
	l.counts[fmt.Sprintf("batch %d", resp.StatusCode)]++
	l.mu.Unlock()
	return resp.StatusCode
}

const (
	chaosBatchSize = 25
	maxChaosGrants = 200
)

// chaosChecks runs the checks on the database a killed node left and
// returns how many served responses have been checked so far.
func chaosChecks(t *testing.T, db *store.DB, keys *jose.JSONWebKeySet, load *chaosLoad, from int) int {
	t.Helper()
	ctx := context.Background()
	rep, err := audit.Verify(ctx, db, keys)
	if err != nil || !rep.Valid {
		t.Fatalf("the audit log after a kill: %+v %v", rep, err)
	}
	load.mu.Lock()
	served := append([]string(nil), load.served[from:]...)
	for _, n := range load.codeWins {
		if n > 1 {
			t.Errorf("an authorization code won tokens %d times", n)
		}
	}
	for uri, n := range load.uriHonours {
		if n > 1 {
			t.Errorf("request_uri %s honoured %d times", uri, n)
		}
	}
	batches := map[int]bool{}
	for k, ok := range load.batches {
		batches[k] = ok
	}
	load.mu.Unlock()

	reader := audit.NewReader(db)
	lost := 0
	for _, id := range served {
		evs, err := reader.ByInteractionID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Type != audit.DataAccess || evs[0].Status != http.StatusOK {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d responses served 200 have no data.access event", lost, len(served))
	}

	var families []struct {
		RequestID string
		N         int
	}
	if err := db.WithContext(ctx).Raw(`SELECT request_id, count(*) AS n FROM oauth_tokens WHERE kind = ? AND active
		GROUP BY request_id HAVING count(*) > 1`, "refresh_token").Scan(&families).Error; err != nil {
		t.Fatal(err)
	}
	if len(families) > 0 {
		t.Fatalf("refresh token families with several live tokens: %+v", families)
	}

	for k, acked := range batches {
		ids := make([]string, chaosBatchSize)
		for i := range ids {
			ids[i] = ingest.TransactionID(demo.InstitutionID, fmt.Sprintf("chaos-b%d-%d", k, i))
		}
		var n int
		if err := db.WithContext(ctx).Raw(`SELECT count(*) FROM transactions WHERE id IN ?`, ids).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		if (n != 0 && n != chaosBatchSize) || (acked && n != chaosBatchSize) {
			t.Fatalf("provider batch %d (acknowledged %v) has %d of %d transactions", k, acked, n, chaosBatchSize)
		}
	}
	return from + len(served)
}

// loadWorkers run the load's calls in loops until halted.
type loadWorkers struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func newLoadWorkers() *loadWorkers { return &loadWorkers{stop: make(chan struct{})} }

// run calls fn again and again, pause apart, until halt.
func (w *loadWorkers) run(pause time.Duration, fn func()) {
	w.wg.Go(func() {
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			fn()
			time.Sleep(pause)
		}
	})
}

// halt stops every loop and waits for the calls under way.
func (w *loadWorkers) halt() {
	close(w.stop)
	w.wg.Wait()
}
