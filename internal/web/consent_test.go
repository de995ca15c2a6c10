package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestConsentRequiresLogin(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	resp, _ := b.get("/consent?challenge=ch-pfm")
	want := "/login?return_to=" + url.QueryEscape("/consent?challenge=ch-pfm")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
		t.Fatalf("not logged in: %d Location %q, want 303 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	// Following it round-trips back to the consent screen.
	if loc := b.login("alice", "alice-password-1", "/consent?challenge=ch-pfm"); loc != "/consent?challenge=ch-pfm" {
		t.Fatalf("after login: %q", loc)
	}
	if resp, _ := b.get("/consent?challenge=ch-pfm"); resp.StatusCode != http.StatusOK {
		t.Fatalf("consent after login: %d", resp.StatusCode)
	}
}

func TestConsentScreenSaysWhatIsAsked(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice", "alice-password-1", "")
	resp, body := b.get("/consent?challenge=ch-pfm")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("consent: %d\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{
		"Pocket Budget",
		"Budgeting and money management",
		"To show you your balances and spending in one place and help you budget.",
		"Your account names and numbers (last 4 digits only)",
		"Your balances",
		"Your card transactions",
		"Keep access while you are not using the app",
		"Transactions from the last 90 days",
		"Until 2 November 2027", // testNow + 365 days
		`<input type="checkbox" name="account" value="acc_alice_checking" id="account-0">`,
		`<label for="account-0">`,
		`<input type="checkbox" name="account" value="acc_alice_credit_card" id="account-1">`,
		"Everyday Checking", "Checking account ****4821 · First Demo Bank",
		"Rewards Card", "Credit card ****7719",
		`<button type="submit" name="decision" value="approve">Allow access</button>`,
		`<button type="submit" name="decision" value="deny" class="secondary">Don't allow</button>`,
		`name="challenge" value="ch-pfm"`,
		"Signed in as Alice Example",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if strings.Contains(body, "acc_bob_checking") {
		t.Error("consent page offers another customer's account")
	}
	if strings.Contains(body, `id="not-seen"`) {
		t.Error("a budgeting consent sees every field, yet the page lists fields it will not see")
	}

	// No transactions scope: no history line.
	_, body = b.get("/consent?challenge=ch-verify")
	if strings.Contains(body, "Transactions from the last") || strings.Contains(body, "Your card transactions") {
		t.Error("history shown for a consent without transactions:read")
	}
	if !strings.Contains(body, "Checking that the account is yours") || !strings.Contains(body, "Until 2 December 2026") {
		t.Error("account_verification consent lacks its purpose or date")
	}
}

func TestConsentUnusableChallenge(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice", "alice-password-1", "")
	for _, p := range []string{"/consent?challenge=unknown", "/consent", "/consent?challenge=" + strings.Repeat("x", 600)} {
		resp, body := b.get(p)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "This sign-in link has expired or was already used; go back to the app and start again") {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}

// consentForm logs alice in, opens the consent screen and returns the CSRF
// token of the form.
func consentForm(t *testing.T, e *env, challenge string) (*browser, string) {
	t.Helper()
	b := e.browser()
	b.login("alice", "alice-password-1", "")
	_, body := b.get("/consent?challenge=" + challenge)
	return b, csrfFrom(t, body)
}

func TestConsentApprove(t *testing.T) {
	e := newEnv(t)
	b, token := consentForm(t, e, "ch-pfm")
	resp, _ := b.post("/consent", url.Values{"csrf_token": {token}, "challenge": {"ch-pfm"}, "decision": {"approve"},
		"account": {"acc_alice_credit_card", "acc_alice_checking", "acc_alice_checking"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), appCallback+"?code=") {
		t.Fatalf("approve: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	d, ok := e.auth.decision("ch-pfm")
	if !ok || !d.Approve || d.CustomerID != "cus_alice" || !slices.Equal(d.AccountIDs, []string{"acc_alice_checking", "acc_alice_credit_card"}) {
		t.Fatalf("decision = %+v", d)
	}
	// The challenge is single use: a second submission gets the friendly page.
	resp, body := b.post("/consent", url.Values{"csrf_token": {token}, "challenge": {"ch-pfm"}, "decision": {"approve"}, "account": {"acc_alice_checking"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "expired or was already used") {
		t.Fatalf("resubmission: %d", resp.StatusCode)
	}
}

func TestConsentDeny(t *testing.T) {
	e := newEnv(t)
	b, token := consentForm(t, e, "ch-pfm")
	resp, _ := b.post("/consent", url.Values{"csrf_token": {token}, "challenge": {"ch-pfm"}, "decision": {"deny"}, "account": {"acc_alice_checking"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "error=access_denied") {
		t.Fatalf("deny: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if d, ok := e.auth.decision("ch-pfm"); !ok || d.Approve || d.CustomerID != "cus_alice" || len(d.AccountIDs) != 0 {
		t.Fatalf("decision = %+v", d)
	}
}

func TestConsentApproveNeedsAnAccount(t *testing.T) {
	e := newEnv(t)
	b, token := consentForm(t, e, "ch-pfm")
	resp, body := b.post("/consent", url.Values{"csrf_token": {token}, "challenge": {"ch-pfm"}, "decision": {"approve"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("approve with no account: %d, want 400", resp.StatusCode)
	}
	for _, want := range []string{
		"Choose at least one account to share, or choose Don&#39;t allow.",
		`role="alert"`, `href="#accounts"`, `<fieldset id="accounts" tabindex="-1" aria-describedby="accounts-error">`,
		`id="accounts-error"`, `name="decision" value="approve"`, `<title>Error: `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("re-shown form lacks %q", want)
		}
	}
	if _, ok := e.auth.decision("ch-pfm"); ok {
		t.Fatal("authorizer called without an account")
	}
	// The form still works afterwards.
	resp, _ = b.post("/consent", url.Values{"csrf_token": {csrfFrom(t, body)}, "challenge": {"ch-pfm"}, "decision": {"approve"}, "account": {"acc_alice_checking"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("approve after the error: %d", resp.StatusCode)
	}
}

func TestConsentRefusesForeignAccount(t *testing.T) {
	e := newEnv(t)
	b, token := consentForm(t, e, "ch-pfm")
	for _, accts := range [][]string{{"acc_bob_checking"}, {"acc_alice_checking", "acc_bob_checking"}, {"acc_nonexistent"}} {
		resp, body := b.post("/consent", url.Values{"csrf_token": {token}, "challenge": {"ch-pfm"}, "decision": {"approve"}, "account": accts})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "You can only share your own accounts") {
			t.Fatalf("approve with %v: %d", accts, resp.StatusCode)
		}
		if strings.Contains(body, "acc_bob_checking") {
			t.Fatal("re-shown form echoes the foreign account")
		}
	}
	// The customer's own choice is kept on the re-shown form.
	_, body := b.post("/consent", url.Values{"csrf_token": {token}, "challenge": {"ch-pfm"}, "decision": {"approve"}, "account": {"acc_alice_checking", "acc_bob_checking"}})
	if !strings.Contains(body, `value="acc_alice_checking" id="account-0" checked>`) {
		t.Error("own selection not kept")
	}
	if _, ok := e.auth.decision("ch-pfm"); ok {
		t.Fatal("authorizer called with a foreign account")
	}
}

func TestConsentCSRF(t *testing.T) {
	e := newEnv(t)
	b, token := consentForm(t, e, "ch-pfm")
	_, otherToken := consentForm(t, e, "ch-verify")
	for name, form := range map[string]url.Values{
		"missing":                 {"challenge": {"ch-pfm"}, "decision": {"approve"}, "account": {"acc_alice_checking"}},
		"wrong":                   {"csrf_token": {token + "x"}, "challenge": {"ch-pfm"}, "decision": {"approve"}, "account": {"acc_alice_checking"}},
		"another session's token": {"csrf_token": {otherToken}, "challenge": {"ch-pfm"}, "decision": {"approve"}, "account": {"acc_alice_checking"}},
		"token in the query only": nil,
	} {
		path := "/consent"
		if form == nil {
			path += "?csrf_token=" + url.QueryEscape(token)
			form = url.Values{"challenge": {"ch-pfm"}, "decision": {"deny"}}
		}
		resp, body := b.post(path, form)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Nothing was changed") {
			t.Errorf("%s token: %d, want 403", name, resp.StatusCode)
		}
	}
	// Logged out: the cookie is gone, so the form cannot be verified either.
	if resp, _ := e.browser().post("/consent", url.Values{"csrf_token": {token}, "challenge": {"ch-pfm"}, "decision": {"approve"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("no session: %d, want 403", resp.StatusCode)
	}
	if _, ok := e.auth.decision("ch-pfm"); ok {
		t.Fatal("a forged form reached the authorizer")
	}
	if _, err := e.auth.PendingAuthorization(t.Context(), "ch-pfm"); err != nil {
		t.Fatal("a forged form consumed the challenge")
	}
}

func TestConsentBadDecision(t *testing.T) {
	e := newEnv(t)
	b, token := consentForm(t, e, "ch-pfm")
	resp, body := b.post("/consent", url.Values{"csrf_token": {token}, "challenge": {"ch-pfm"}, "decision": {"maybe"}, "account": {"acc_alice_checking"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Choose Allow access or Don&#39;t allow.") {
		t.Fatalf("decision=maybe: %d", resp.StatusCode)
	}
	if _, ok := e.auth.decision("ch-pfm"); ok {
		t.Fatal("authorizer called for an unknown decision")
	}
}

// TestConsentScreenAggregator: the identity, account number and OpenID
// Connect scopes in plain words, and who is asking when the app is an
// aggregator (issue 15); an app that is not one gets no such note.
func TestConsentScreenAggregator(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice", "alice-password-1", "")
	resp, body := b.get("/consent?challenge=ch-aggregator")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("consent: %d\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{
		`id="aggregator-note"`, "Linker is a data aggregator",
		"Your name, email and address, and your phone number",
		"The numbers needed to send money to this account",
		"Your sign-in identity", "Your name</li>", "Your email address",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if strings.Contains(body, "Other access:") {
		t.Error("a scope of the aggregator has no plain words")
	}
	if _, body := b.get("/consent?challenge=ch-pfm"); strings.Contains(body, "aggregator") {
		t.Error("an app that is not an aggregator is called one")
	}
}
