package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/consent"
)

// seedGrants puts the fake accounts into the database (consents link to
// them) and gives alice an active, a revoked and an expired consent, and
// bob an active one.
func seedGrants(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO institutions (id, name, created_at) VALUES ('inst', 'First Demo Bank', 0)`,
		`INSERT INTO oauth_clients (id, name, redirect_uris, grant_types, scopes, purposes, auth_method, created_at) VALUES
		 ('demo-pfm', 'Pocket Budget', '[]', '[]', '[]', '[]', 'client_secret_basic', 0),
		 ('other-app', 'Other App', '[]', '[]', '[]', '[]', 'client_secret_basic', 0)`,
	} {
		if err := e.db.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range testAccounts {
		if err := e.db.Exec(`INSERT INTO accounts (id, customer_id, institution_id, type, display_name, last4, currency, status, created_at)
			VALUES (?, ?, 'inst', ?, ?, ?, 'USD', 'open', 0)`, a.ID, a.CustomerID, a.Type, a.DisplayName, a.Last4).Error; err != nil {
			t.Fatal(err)
		}
	}
	day := 24 * time.Hour
	for _, g := range []struct {
		id, client, customer string
		accts                []string
		at                   time.Time
		d                    time.Duration
		revokedBy            string
	}{
		{"g-active", "demo-pfm", "cus_alice", []string{"acc_alice_checking", "acc_alice_credit_card"}, testNow.Add(-10 * day), 365 * day, ""},
		{"g-old", "other-app", "cus_alice", []string{"acc_alice_checking"}, testNow.Add(-40 * day), 90 * day, "client"},
		{"g-exp", "other-app", "cus_alice", []string{"acc_alice_credit_card"}, testNow.Add(-40 * day), 30 * day, ""},
		{"g-bob", "demo-pfm", "cus_bob", []string{"acc_bob_checking"}, testNow.Add(-day), 365 * day, ""},
	} {
		c := &consent.Consent{ID: g.id, ClientID: g.client, Scopes: []string{"accounts:read", "balances:read", "transactions:read"},
			Purpose: "personal_finance_management", HistoryDays: 730, Duration: g.d, CreatedAt: g.at}
		if err := e.grants.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		if _, err := e.grants.Authorize(ctx, g.id, g.customer, g.accts, g.at); err != nil {
			t.Fatal(err)
		}
		if g.revokedBy != "" {
			if _, err := e.grants.Revoke(ctx, g.id, g.revokedBy, g.at.Add(day)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func (e *env) status(t *testing.T, id string) consent.Status {
	t.Helper()
	g, err := e.grants.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return g.StatusAt(testNow)
}

// section returns the HTML of the <section> whose heading has id.
func section(t *testing.T, body, id string) string {
	t.Helper()
	i := strings.Index(body, `aria-labelledby="`+id+`"`)
	if i < 0 {
		t.Fatalf("no section %s in:\n%s", id, body)
	}
	rest := body[i:]
	return rest[:strings.Index(rest, "</section>")]
}

func TestDashboardListsConsents(t *testing.T) {
	e := newEnv(t)
	seedGrants(t, e)
	read := testNow.Add(-2 * time.Hour)
	e.hist.add("g-active", AccessEvent{OccurredAt: read, Type: "data.access", Outcome: "allowed", Path: "/v1/accounts", Status: 200})
	b := e.browser()
	b.login("alice", "alice-password-1", "")
	resp, body := b.get("/dashboard")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("dashboard: %d", resp.StatusCode)
	}
	active, past := section(t, body, "active-title"), section(t, body, "past-title")
	for _, want := range []string{"Pocket Budget", "Budgeting and money management", "Everyday Checking (Checking account ****4821)",
		"Rewards Card (Credit card ****7719)", "Your balances", "Your card transactions", "Active", "Allowed on", "23 October 2026",
		"Ends on", "23 October 2027", read.Format("2 January 2006, 15:04:05 UTC"), `action="/dashboard/consents/g-active/revoke"`,
		`href="/dashboard/consents/g-active"`, "Stop access now<span class=\"visually-hidden\"> for Pocket Budget</span>"} {
		if !strings.Contains(active, want) {
			t.Errorf("active section lacks %q:\n%s", want, active)
		}
	}
	for _, want := range []string{"Stopped by the app", "Stopped on", "24 September 2026", "Ended: the time you allowed ran out",
		"Ended on", "23 October 2026", "Never"} {
		if !strings.Contains(past, want) {
			t.Errorf("past section lacks %q:\n%s", want, past)
		}
	}
	if strings.Contains(past, "/revoke") || strings.Contains(body, "g-bob") || strings.Contains(body, "Bob") {
		t.Errorf("dashboard shows a revoke button for an ended consent or bob's consent:\n%s", body)
	}
}

func TestDashboardHistoryPages(t *testing.T) {
	e := newEnv(t)
	seedGrants(t, e)
	start := testNow.Add(-30 * time.Hour)
	for i := range 25 {
		e.hist.add("g-active", AccessEvent{OccurredAt: start.Add(time.Duration(i) * time.Hour), Type: "data.access", Outcome: "allowed",
			AccountID: "acc_alice_checking", Path: "/v1/accounts/acc_alice_checking/balances", Status: 200})
	}
	e.hist.add("g-bob", AccessEvent{OccurredAt: testNow, Type: "data.access", Outcome: "allowed", Path: "/v1/accounts"})
	e.hist.add("g-active", AccessEvent{OccurredAt: testNow.Add(-time.Minute), Type: "data.access", Outcome: "denied",
		Reason: "purpose_not_consented", AccountID: "acc_alice_credit_card", Path: "/v1/accounts/acc_alice_credit_card/transactions", Status: 403})
	b := e.browser()
	b.login("alice", "alice-password-1", "")
	resp, body := b.get("/dashboard/consents/g-active")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("details: %d", resp.StatusCode)
	}
	rows := strings.Count(body, "<tr>") - 1 // minus the header row
	if rows != historyPageSize {
		t.Fatalf("first page has %d rows, want %d", rows, historyPageSize)
	}
	first := strings.Index(body, "Read the transactions of Rewards Card (Credit card ****7719)")
	if first < 0 || !strings.Contains(body, "Refused: the app wanted to use your data for something you did not agree to") ||
		!strings.Contains(body, "Read the balance of Everyday Checking (Checking account ****4821)") || first > strings.Index(body, "Read the balance") {
		t.Fatalf("history words or order wrong:\n%s", body)
	}
	if strings.Contains(body, "Newest entries") {
		t.Error("first page links to itself")
	}
	older := regexp.MustCompile(`href="(/dashboard/consents/g-active\?before=\d+#history)">Older entries`).FindStringSubmatch(body)
	if older == nil {
		t.Fatalf("no link to older entries:\n%s", body)
	}
	resp, body = b.get(strings.ReplaceAll(older[1], "#history", ""))
	if resp.StatusCode != http.StatusOK || strings.Count(body, "<tr>")-1 != 6 || strings.Contains(body, ">Older entries</a>") ||
		!strings.Contains(body, `href="/dashboard/consents/g-active#history">Newest entries`) || strings.Contains(body, "list of accounts") {
		t.Fatalf("second page: %d, %d rows\n%s", resp.StatusCode, strings.Count(body, "<tr>")-1, body)
	}
	// Bob's grant is not alice's: the same answer as for no grant at all.
	for _, id := range []string{"g-bob", "nope"} {
		if resp, body := b.get("/dashboard/consents/" + id); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "Pocket Budget") {
			t.Errorf("%s: %d, want 404", id, resp.StatusCode)
		}
	}
	if resp, _ := e.browser().get("/dashboard/consents/g-active"); resp.StatusCode != http.StatusSeeOther ||
		resp.Header.Get("Location") != "/login?return_to=%2Fdashboard%2Fconsents%2Fg-active" {
		t.Errorf("logged out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestDashboardRevoke: a forged form, another customer's grant and a
// logged-out request change nothing; the real button stops the consent and
// comes back with a confirmation.
func TestDashboardRevoke(t *testing.T) {
	e := newEnv(t)
	seedGrants(t, e)
	b := e.browser()
	b.login("alice", "alice-password-1", "")
	_, body := b.get("/dashboard")
	token := csrfFrom(t, body)

	cases := []struct {
		name   string
		b      *browser
		path   string
		form   url.Values
		status int
	}{
		{"no CSRF token", b, "/dashboard/consents/g-active/revoke", url.Values{}, http.StatusForbidden},
		{"forged CSRF token", b, "/dashboard/consents/g-active/revoke", url.Values{"csrf_token": {"forged"}}, http.StatusForbidden},
		{"another customer's grant", b, "/dashboard/consents/g-bob/revoke", url.Values{"csrf_token": {token}}, http.StatusNotFound},
		{"unknown grant", b, "/dashboard/consents/nope/revoke", url.Values{"csrf_token": {token}}, http.StatusNotFound},
		{"logged out", e.browser(), "/dashboard/consents/g-active/revoke", url.Values{"csrf_token": {token}}, http.StatusSeeOther},
	}
	for _, tc := range cases {
		resp, _ := tc.b.post(tc.path, tc.form)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
		if tc.status == http.StatusSeeOther && !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
			t.Errorf("%s: redirected to %q, want the login page", tc.name, resp.Header.Get("Location"))
		}
	}
	if st, bob := e.status(t, "g-active"), e.status(t, "g-bob"); st != consent.Authorized || bob != consent.Authorized || len(e.apps.revoked) != 0 {
		t.Fatalf("refused requests changed something: alice %s, bob %s, revoked %v", st, bob, e.apps.revoked)
	}

	resp, _ := b.post("/dashboard/consents/g-active/revoke", url.Values{"csrf_token": {token}, "from": {"dashboard"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard?revoked=g-active" {
		t.Fatalf("revoke: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if st := e.status(t, "g-active"); st != consent.Revoked {
		t.Fatalf("after revoke: %s", st)
	}
	_, body = b.get(resp.Header.Get("Location"))
	if !strings.Contains(body, `role="status"`) || !strings.Contains(body, "Pocket Budget can no longer see your data.") ||
		!strings.Contains(section(t, body, "past-title"), "Stopped by you") || strings.Contains(section(t, body, "active-title"), "Pocket Budget") {
		t.Fatalf("dashboard after revoke:\n%s", body)
	}
	// Revoking again (a second click, a reload) is harmless.
	if resp, _ := b.post("/dashboard/consents/g-active/revoke", url.Values{"csrf_token": {token}, "from": {"details"}}); resp.StatusCode != http.StatusSeeOther ||
		resp.Header.Get("Location") != "/dashboard/consents/g-active?revoked=1" {
		t.Fatalf("second revoke: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body = b.get("/dashboard/consents/g-active?revoked=1")
	if !strings.Contains(body, "Pocket Budget can no longer see your data.") || strings.Contains(body, "/revoke") {
		t.Fatalf("details after revoke:\n%s", body)
	}
	// The notice only confirms a revoked consent of the customer's own.
	if _, body := b.get("/dashboard?revoked=g-bob"); strings.Contains(body, `role="status"`) {
		t.Fatal("notice for another customer's grant")
	}
}

// TestDashboardPageStructure checks the pages with an empty dashboard too,
// and that unknown app names and account ids are said in words.
func TestDashboardPageStructure(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("bob", "bob-password-1", "")
	_, body := b.get("/dashboard")
	if !strings.Contains(body, "No app can see your data right now.") || strings.Contains(body, "past-title") {
		t.Fatalf("empty dashboard:\n%s", body)
	}
	seedGrants(t, e)
	if err := e.db.Exec(`UPDATE consents SET client_id = 'other-app' WHERE id = 'g-bob'`).Error; err != nil {
		t.Fatal(err)
	}
	delete(e.apps.names, "other-app")
	e.hist.add("g-bob", AccessEvent{OccurredAt: testNow, Type: "data.access", Outcome: "denied", Reason: "account_not_found",
		Path: "/v1/accounts/acc_alice_checking", Status: 404})
	e.hist.add("g-bob", AccessEvent{OccurredAt: testNow, Type: "consent.revoked", Outcome: "allowed", Reason: "customer"})
	_, body = b.get("/dashboard/consents/g-bob")
	for _, want := range []string{"An app that is no longer registered", "Read the details of an account you did not share",
		"Refused: you did not share this account", "Permission stopped by you", fmt.Sprintf(`datetime="%s"`, testNow.Format(time.RFC3339))} {
		if !strings.Contains(body, want) {
			t.Errorf("details lack %q", want)
		}
	}
}

// TestHistoryWordsUserinfo: a userinfo read (OpenID Connect) is said in
// words on the consent's history, not as "Other data".
func TestHistoryWordsUserinfo(t *testing.T) {
	v := describeEvent(AccessEvent{OccurredAt: testNow, Type: "data.access", Outcome: "allowed", Path: "/userinfo", Status: 200}, nil)
	if !strings.Contains(v.What, "sign-in identity") || v.Result != "Allowed" {
		t.Errorf("userinfo read described as %+v", v)
	}
}
