package server_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
)

// lenderFlow registers a lender app for credit_underwriting on s and
// returns dave's flow with it.
func lenderFlow(t *testing.T, s *testutil.Server) testutil.FlowRequest {
	t.Helper()
	id, secret, err := s.Node.Provider().CreateClient(t.Context(), oauth.ClientSpec{Name: "Demo Lender",
		RedirectURIs: []string{testutil.DemoRedirectURI}, GrantTypes: []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken},
		Scopes: []string{"accounts:read", "balances:read", "transactions:read"}, Purposes: []string{"credit_underwriting"}})
	if err != nil {
		t.Fatal(err)
	}
	fr := daveFlow()
	fr.ClientID, fr.ClientSecret = id, secret
	fr.Scopes, fr.Purpose = []string{"accounts:read", "transactions:read"}, "credit_underwriting"
	return fr
}

// TestPurposeShapedFields: a credit-underwriting consent never sees a
// description, merchant name or card digits, on the transactions page or
// in sync, while it sees amounts, dates, status and the MCC (SPEC §12).
// The store's queries do not name those columns
// (accounts.TestHiddenFieldsNotSelected).
func TestPurposeShapedFields(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		feed := newSyncFeed(t, s)
		now := time.Now().UTC()
		feed.post(t, "/v1/provider/transactions",
			tx("u-1", "a-1", "booked", "-20.00", now.Add(-2*time.Hour)),
			tx("u-2", "a-1", "pending", "-3.50", now.Add(-time.Hour)))
		fr := lenderFlow(t, s)
		tok := s.Authorize(t, fr)
		var list struct {
			Data []struct {
				AccountID string `json:"account_id"`
			}
		}
		s.Get(t, "/v1/accounts", tok.AccessToken).JSON(t, &list)
		acct := list.Data[0].AccountID
		for _, path := range []string{"/v1/accounts/" + acct + "/transactions", "/v1/accounts/" + acct + "/transactions/sync"} {
			r := s.Get(t, path, tok.AccessToken)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d %s", path, r.StatusCode, r.Body)
			}
			for _, secret := range []string{"Card payment", "Shop ", "4242"} {
				if bytes.Contains(r.Body, []byte(secret)) {
					t.Errorf("%s shows %q to a credit underwriter: %s", path, secret, r.Body)
				}
			}
			for _, want := range []string{`"description":null`, `"merchant_name":null`, `"card_last4":null`,
				`"merchant_category_code":"5411"`, `"amount":"-20.00"`, `"status":"booked"`} {
				if !bytes.Contains(r.Body, []byte(want)) {
					t.Errorf("%s lacks %s: %s", path, want, r.Body)
				}
			}
		}
		// FDX omits what the purpose may not see (SPEC §12).
		fdxPath := "/fdx/v6/accounts/" + acct + "/transactions"
		r := s.Get(t, fdxPath, tok.AccessToken)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", fdxPath, r.StatusCode, r.Body)
		}
		for _, hidden := range []string{"Card payment", "Shop ", "4242", `"description"`, `"payee"`, `"cardNumberDisplay"`} {
			if bytes.Contains(r.Body, []byte(hidden)) {
				t.Errorf("%s shows %s to a credit underwriter: %s", fdxPath, hidden, r.Body)
			}
		}
		for _, want := range []string{`"category":"5411"`, `"debitCreditMemo":"DEBIT"`, `"status":"POSTED"`, `"status":"PENDING"`} {
			if !bytes.Contains(r.Body, []byte(want)) {
				t.Errorf("%s lacks %s: %s", fdxPath, want, r.Body)
			}
		}
		// The budgeting app of the same customer sees them all.
		pfm := s.Authorize(t, daveFlow())
		if r := s.Get(t, "/v1/accounts/"+acct+"/transactions", pfm.AccessToken); !bytes.Contains(r.Body, []byte("Shop u-1")) {
			t.Errorf("personal_finance_management lost the merchant: %s", r.Body)
		}
	})
}

// TestBrowserConsentSaysWhatIsNotSeen: the consent screen of a
// credit-underwriting request tells the customer, in real Chromium, what
// the lender will not see.
func TestBrowserConsentSaysWhatIsNotSeen(t *testing.T) {
	ctx := newChrome(t)
	s := testutil.Start(t, store.SQLite, testutil.Options{})
	newSyncFeed(t, s)
	fr := lenderFlow(t, s)
	requestURI, _ := s.Push(t, fr)
	authorize := s.URL + "/oauth2/authorize?" + url.Values{"client_id": {fr.ClientID}, "request_uri": {requestURI}}.Encode()
	chromeStep(t, ctx, "log in",
		chromedp.Navigate(authorize),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "dave"),
		chromedp.SendKeys(chromedp.ID("password"), "dave-password-1\r"),
		chromedp.WaitVisible(chromedp.ID("not-seen")),
	)
	text := chromeText(t, ctx, "#not-seen")
	for _, want := range []string{"will not see", "the description of each payment", "the names of the shops you pay",
		"which of your cards you paid with"} {
		if !strings.Contains(text, want) {
			t.Errorf("the consent screen does not say %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "what kind of shop") {
		t.Errorf("the consent screen says the lender will not see the merchant category, which it does:\n%s", text)
	}
	screenshot(t, ctx, "consent-not-seen.png")
}
