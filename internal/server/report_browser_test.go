package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
)

// TestBrowserAuditReport renders the auditor's report of a live server's
// log in real headless Chromium: the file opens from disk with no network,
// its charts are drawn, its figures are the report's, and a screenshot
// lands in artifacts/audit-report.png. SQLite only: the report's figures are
// checked on both databases by cmd/consentgate's TestAuditReport.
func TestBrowserAuditReport(t *testing.T) {
	s := testutil.Start(t, store.SQLite, testutil.Options{})
	tok := s.Authorize(t, testutil.DemoFlow())
	for range 4 {
		s.Get(t, "/v1/accounts", tok.AccessToken)
	}
	s.Get(t, "/v1/accounts/acc_nope/balances", tok.AccessToken)
	if _, err := s.Node.AuditCheckpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	rep, err := audit.NewReader(s.DB).ActivityReport(context.Background(), now.Add(-72*time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Calls < 5 || rep.Refusals < 1 {
		t.Fatalf("report: %d calls, %d refused", rep.Calls, rep.Refusals)
	}
	path := filepath.Join(t.TempDir(), "report.html")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	ctx := newChrome(t)
	chromeStep(t, ctx, "open the report", chromedp.Navigate("file://"+path), chromedp.WaitVisible(chromedp.CSS(`#by-app svg rect.refused`)))
	if got := chromeText(t, ctx, `[data-calls]`); strings.TrimSpace(got) != strconv.FormatInt(rep.Calls, 10) {
		t.Errorf("calls shown %q, report %d", got, rep.Calls)
	}
	if got := chromeText(t, ctx, `#by-app tbody tr td`); got != testutil.DemoClientID {
		t.Errorf("first app %q", got)
	}
	if got := chromeText(t, ctx, `#evidence pre`); !strings.Contains(got, "/audit\n") {
		t.Errorf("evidence: %q", got)
	}
	screenshot(t, ctx, "audit-report.png")
}
