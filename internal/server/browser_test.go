package server_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
)

const chromiumPath = "/usr/bin/chromium"

// newChrome starts headless Chromium for the test, or skips loudly when it
// is not installed (and fails under CI=true, where it must be).
func newChrome(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Chromium is required under CI and missing at %s: %v", chromiumPath, err)
		}
		t.Skipf("\n%s\n##  BROWSER TEST SKIPPED: no Chromium at %s (apt-get install chromium)\n%s", strings.Repeat("#", 72), chromiumPath, strings.Repeat("#", 72))
	}
	// The networking flags keep Chromium from calling home on a closed
	// network; root needs --no-sandbox. Its own temporary directory (the
	// org.chromium.Chromium.* singleton directory, which a killed browser
	// leaves behind) goes under the test's, removed with it.
	ctx, cancel := chromedp.NewContext(context.Background(), chromedp.WithAllocatorOptions(
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Env("TMPDIR="+t.TempDir()),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("window-size", "1100,900"),
	))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// artifactsDir is where the screenshots go: $CONSENTGATE_ARTIFACTS, or
// artifacts/ at the repository root (git-ignored).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CONSENTGATE_ARTIFACTS")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "artifacts")
	}
	dir, _ = filepath.Abs(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(artifactsDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// chromeStep runs actions with a bound, so a page that never comes fails the test
// instead of hanging it.
func chromeStep(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// chromeText is the visible text of the first element matching css.
func chromeText(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("browser: text of %s: %v", css, err)
	}
	return s
}

// TestBrowserConsentDashboardRevoke is the customer's whole story in real
// headless Chromium, by keyboard: log in, approve two of three accounts,
// see the consent on the dashboard, see the app's reads in its history,
// stop it, and the app's next call and its refresh are refused. SQLite
// only: the pages are the same on either database, and TestRevocationPaths
// covers the revocation on PostgreSQL.
func TestBrowserConsentDashboardRevoke(t *testing.T) {
	ctx := newChrome(t)
	s := testutil.Start(t, store.SQLite, testutil.Options{})
	fr := testutil.DemoFlow()
	requestURI, verifier := s.Push(t, fr)

	// The app's redirect_uri has no listener: catch the navigation to it
	// and answer it from here, keeping the URL with the code.
	chromeStep(t, ctx, "intercept the callback", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: testutil.DemoRedirectURI + "*"}}})
		return err
	}))
	// Subscribed before the navigation, bounded so a missing redirect fails.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	paused := chromedp.Events(wctx, fetch.RequestPaused)

	authorize := s.URL + "/oauth2/authorize?" + url.Values{"client_id": {fr.ClientID}, "request_uri": {requestURI}}.Encode()
	chromeStep(t, ctx, "log in",
		chromedp.Navigate(authorize),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "alice-password-1\r"), // Enter submits
		chromedp.WaitVisible(chromedp.CSS(`form[action="/consent"]`)),
	)
	if h1 := chromeText(t, ctx, "h1"); h1 != "Allow Demo Budget Planner to see your data?" {
		t.Fatalf("consent screen heading %q", h1)
	}
	screenshot(t, ctx, "consent-screen.png")
	// Space ticks a focused checkbox; Enter on the focused button submits.
	chromeStep(t, ctx, "approve two accounts",
		chromedp.SendKeys(chromedp.ID("account-0"), " "),
		chromedp.SendKeys(chromedp.ID("account-2"), " "),
		chromedp.SendKeys(chromedp.CSS(`button[value="approve"]`), "\r"),
	)
	var callback string
	for ev, err := range paused {
		if err != nil {
			t.Fatalf("waiting for the redirect to the app: %v", err)
		}
		callback = ev.Request.URL
		chromeStep(t, ctx, "answer the callback", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: 200,
				ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "text/html"}},
				Body:            []byte("<!doctype html><title>Demo app</title><h1>Back in the app</h1>")})
			return err
		}))
		break
	}
	cb, err := url.Parse(callback)
	if err != nil || cb.Query().Get("code") == "" || cb.Query().Get("iss") != s.URL {
		t.Fatalf("redirect to the app: %q", callback)
	}
	r := s.Exchange(t, fr, cb.Query().Get("code"), verifier)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %s", r.StatusCode, r.Body)
	}
	var tok testutil.Tokens
	r.JSON(t, &tok)

	// The app reads: the accounts list, a balance and transactions.
	var accts struct {
		Data []account `json:"data"`
	}
	s.Get(t, "/v1/accounts", tok.AccessToken).JSON(t, &accts)
	if len(accts.Data) != 2 {
		t.Fatalf("the app sees %d accounts, want the 2 approved", len(accts.Data))
	}
	a := accts.Data[0]
	for _, p := range []string{"/v1/accounts/" + a.AccountID + "/balances", "/v1/accounts/" + a.AccountID + "/transactions?limit=5"} {
		if r := s.Get(t, p, tok.AccessToken); r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", p, r.StatusCode)
		}
	}

	chromeStep(t, ctx, "open the dashboard", chromedp.Navigate(s.URL+"/dashboard"), chromedp.WaitVisible(chromedp.ID("active-title")))
	active := chromeText(t, ctx, `section[aria-labelledby="active-title"]`)
	for _, want := range []string{"Demo Budget Planner", "Budgeting and money management", accts.Data[0].DisplayName,
		accts.Data[1].DisplayName, "Active", "Last read your data"} {
		if !strings.Contains(active, want) {
			t.Errorf("dashboard lacks %q:\n%s", want, active)
		}
	}
	screenshot(t, ctx, "dashboard.png")

	chromeStep(t, ctx, "open the history", chromedp.Click(chromedp.CSS(`a[href="/dashboard/consents/`+tok.GrantID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("table.history")))
	history := chromeText(t, ctx, "table.history")
	name := a.DisplayName
	for _, want := range []string{"Read your list of accounts", "Read the balance of " + name, "Read the transactions of " + name,
		"You gave your permission", "Allowed"} {
		if !strings.Contains(history, want) {
			t.Errorf("history lacks %q:\n%s", want, history)
		}
	}
	screenshot(t, ctx, "consent-history.png")

	chromeStep(t, ctx, "stop access", chromedp.SendKeys(chromedp.CSS("button.danger"), "\r"), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if n := chromeText(t, ctx, ".notice"); !strings.Contains(n, "Demo Budget Planner can no longer see your data.") {
		t.Fatalf("confirmation: %q", n)
	}
	screenshot(t, ctx, "consent-revoked.png")

	expectLocked(t, s, tok, "revoked")
	if in := introspect(t, s, tok.AccessToken); in["active"] != false {
		t.Errorf("introspection after revocation: %v", in)
	}
}
