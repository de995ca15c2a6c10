package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/purpose"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// fakeAuthorizer stands in for the OAuth provider: single-use challenges,
// decisions recorded, a 303 to the app like the real one.
type fakeAuthorizer struct {
	mu        sync.Mutex
	pending   map[string]Pending
	decisions map[string]Decision
}

const appCallback = "http://127.0.0.1:8765/callback"

func (f *fakeAuthorizer) PendingAuthorization(_ context.Context, challenge string) (*Pending, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pending[challenge]
	if !ok {
		return nil, fmt.Errorf("fake: %w", ErrUnknownChallenge)
	}
	return &p, nil
}

func (f *fakeAuthorizer) FinishAuthorization(_ context.Context, w http.ResponseWriter, r *http.Request, challenge string, d Decision) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.pending[challenge]; !ok {
		return fmt.Errorf("fake: %w", ErrUnknownChallenge)
	}
	delete(f.pending, challenge)
	f.decisions[challenge] = d
	target := appCallback + "?code=c0de&state=st"
	if !d.Approve {
		target = appCallback + "?error=access_denied&state=st"
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

func (f *fakeAuthorizer) decision(challenge string) (Decision, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.decisions[challenge]
	return d, ok
}

// fakeAccounts serves ListByCustomer from a fixed list; the handler must
// not call anything else (the embedded nil interface would panic).
type fakeAccounts struct {
	accounts.Store
	all []accounts.Account
}

func (f *fakeAccounts) ListByCustomer(_ context.Context, customerID string) ([]accounts.Account, error) {
	var out []accounts.Account
	for _, a := range f.all {
		if a.CustomerID == customerID {
			out = append(out, a)
		}
	}
	return out, nil
}

var testAccounts = []accounts.Account{
	{ID: "acc_alice_checking", CustomerID: "cus_alice", InstitutionName: "First Demo Bank", Type: accounts.TypeChecking, DisplayName: "Everyday Checking", Last4: "4821"},
	{ID: "acc_alice_credit_card", CustomerID: "cus_alice", InstitutionName: "First Demo Bank", Type: accounts.TypeCreditCard, DisplayName: "Rewards Card", Last4: "7719"},
	{ID: "acc_bob_checking", CustomerID: "cus_bob", InstitutionName: "First Demo Bank", Type: accounts.TypeChecking, DisplayName: "Bob's Checking", Last4: "1111"},
}

// testNow is the web clock: the consent's "until" date is computed from it.
var testNow = time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)

type env struct {
	t      *testing.T
	srv    *httptest.Server
	id     *identity.Service
	auth   *fakeAuthorizer
	db     *store.DB
	grants *consent.SQLStore
	apps   *fakeApps
	hist   *fakeHistory
}

func newEnv(t *testing.T) *env {
	t.Helper()
	gin.SetMode(gin.TestMode)
	db := testdb.Open(t, store.SQLite)
	id := identity.NewService(db, nil)
	ctx := context.Background()
	for _, c := range []struct{ id, user, name, pw string }{
		{"cus_alice", "alice", "Alice Example", "alice-password-1"},
		{"cus_bob", "bob", "Bob Example", "bob-password-1"},
	} {
		if err := id.CreateCustomer(ctx, identity.Customer{ID: c.id, Username: c.user, DisplayName: c.name}, c.pw); err != nil {
			t.Fatal(err)
		}
	}
	auth := &fakeAuthorizer{pending: map[string]Pending{
		"ch-pfm": {Challenge: "ch-pfm", GrantID: "g1", ClientID: "demo-pfm", ClientName: "Pocket Budget",
			Purpose: "personal_finance_management", Scopes: []string{"accounts:read", "balances:read", "transactions:read", "offline_access"},
			HistoryDays: 90, Duration: 365 * 24 * time.Hour},
		"ch-verify": {Challenge: "ch-verify", GrantID: "g2", ClientID: "demo-pfm", ClientName: "Pocket Budget",
			Purpose: "account_verification", Scopes: []string{"accounts:read", "balances:read"}, Duration: 30 * 24 * time.Hour},
		"ch-aggregator": {Challenge: "ch-aggregator", GrantID: "g3", ClientID: "demo-aggregator", ClientName: "Linker",
			Purpose: "account_verification", Scopes: []string{"openid", "profile", "email", "accounts:read", "identity:read", "account_numbers:read"},
			Duration: 30 * 24 * time.Hour, Aggregator: true},
	}, decisions: map[string]Decision{}}
	grants := consent.NewSQLStore(db)
	apps := &fakeApps{grants: grants, names: map[string]string{"demo-pfm": "Pocket Budget", "other-app": "Other App"}}
	hist := &fakeHistory{}
	h, err := New(Deps{Identity: id, Authorizer: auth, Accounts: &fakeAccounts{all: testAccounts},
		Purposes: purpose.Default(), Grants: grants, Apps: apps, History: hist, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	h.Register(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, id: id, auth: auth, db: db, grants: grants, apps: apps, hist: hist}
}

// fakeApps stands in for the authorization server's grant management:
// names from a map, revocation straight on the real consent store.
type fakeApps struct {
	grants  *consent.SQLStore
	names   map[string]string
	mu      sync.Mutex
	revoked []string
}

func (f *fakeApps) ClientNames(_ context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	for _, id := range ids {
		if n, ok := f.names[id]; ok {
			out[id] = n
		}
	}
	return out, nil
}

func (f *fakeApps) RevokeGrant(ctx context.Context, grantID, customerID string) error {
	g, err := f.grants.Get(ctx, grantID)
	if err != nil || g.CustomerID != customerID {
		return fmt.Errorf("fake: %w", ErrGrantNotFound)
	}
	f.mu.Lock()
	f.revoked = append(f.revoked, grantID)
	f.mu.Unlock()
	_, err = f.grants.Revoke(ctx, grantID, "customer", testNow)
	return err
}

// fakeHistory serves a fixed audit log, newest first like the real reader.
type fakeHistory struct {
	mu     sync.Mutex
	events []AccessEvent // ascending seq
	grants []string      // grant of each event
}

func (f *fakeHistory) add(grantID string, ev AccessEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev.Seq = int64(len(f.events) + 1)
	f.events = append(f.events, ev)
	f.grants = append(f.grants, grantID)
}

func (f *fakeHistory) GrantHistory(_ context.Context, grantID string, limit int, beforeSeq int64) ([]AccessEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []AccessEvent
	for i := len(f.events) - 1; i >= 0 && len(out) < limit; i-- {
		if f.grants[i] == grantID && (beforeSeq == 0 || f.events[i].Seq < beforeSeq) {
			out = append(out, f.events[i])
		}
	}
	return out, nil
}

func (f *fakeHistory) LastAccess(_ context.Context, grantIDs []string) (map[string]time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]time.Time{}
	for i, ev := range f.events {
		if ev.Type == "data.access" && ev.Outcome == "allowed" && slices.Contains(grantIDs, f.grants[i]) {
			out[f.grants[i]] = ev.OccurredAt
		}
	}
	return out, nil
}

// browser keeps cookies and does not follow redirects, so tests see each 303.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.e.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkSecurityHeaders(b.e.t, req.Method+" "+req.URL.Path, resp)
	if resp.StatusCode/100 != 3 && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		checkPageStructure(b.e.t, req.Method+" "+req.URL.Path, string(body))
	}
	return resp, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// sessionID is the browser's current cg_session cookie value.
func (b *browser) sessionID() string {
	u, _ := url.Parse(b.e.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == cookieName {
			return c.Value
		}
	}
	return ""
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func csrfFrom(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf_token in page:\n%s", body)
	}
	return m[1]
}

// login logs the browser in as user and returns the 303's Location.
func (b *browser) login(user, password, returnTo string) string {
	b.e.t.Helper()
	_, body := b.get("/login?return_to=" + url.QueryEscape(returnTo))
	resp, body := b.post("/login", url.Values{"csrf_token": {csrfFrom(b.e.t, body)}, "username": {user}, "password": {password}, "return_to": {returnTo}})
	if resp.StatusCode != http.StatusSeeOther {
		b.e.t.Fatalf("login as %s: %d\n%s", user, resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

func checkSecurityHeaders(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	for k, v := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
}

var (
	inputRE = regexp.MustCompile(`<input\b[^>]*>`)
	idRE    = regexp.MustCompile(`\bid="([^"]+)"`)
)

// checkPageStructure pins what every page needs to be usable with a screen
// reader and without scripts.
func checkPageStructure(t *testing.T, what, body string) {
	t.Helper()
	for _, must := range []string{`<html lang="en">`, "<title>", "<main", `<link rel="stylesheet" href="/static/style.css">`} {
		if !strings.Contains(body, must) {
			t.Errorf("%s: page lacks %s", what, must)
		}
	}
	if n := strings.Count(body, "<h1"); n != 1 {
		t.Errorf("%s: %d <h1> elements, want 1", what, n)
	}
	if strings.Contains(strings.ToLower(body), "<script") {
		t.Errorf("%s: page has a script", what)
	}
	for _, in := range inputRE.FindAllString(body, -1) {
		if strings.Contains(in, `type="hidden"`) {
			continue
		}
		m := idRE.FindStringSubmatch(in)
		if m == nil || !strings.Contains(body, `<label for="`+m[1]+`"`) {
			t.Errorf("%s: input without a label: %s", what, in)
		}
	}
	if strings.Contains(body, "There is a problem") && !strings.Contains(body, `role="alert"`) {
		t.Errorf("%s: error summary without role=alert", what)
	}
}
