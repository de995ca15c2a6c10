package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/testutil"
)

// fdxError asserts an FDX error entity: status, FDX code, and consentgate's
// code first in debugMessage.
func fdxError(t *testing.T, r *testutil.Response, status, code int, reason string) {
	t.Helper()
	var e struct {
		Code         int    `json:"code"`
		Message      string `json:"message"`
		DebugMessage string `json:"debugMessage"`
	}
	_ = json.Unmarshal(r.Body, &e)
	if r.StatusCode != status || e.Code != code || e.Message == "" || !strings.HasPrefix(e.DebugMessage, reason+": ") ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("got %d %s %s, want %d FDX %d %s", r.StatusCode, r.Header.Get("Content-Type"), r.Body, status, code, reason)
	}
}

type fdxAccount struct {
	AccountCategory, AccountID, AccountType, AccountNumberDisplay, ProductName, Status string
	CurrentBalance, AvailableBalance, CreditLine, AvailableCredit                      *json.Number
}

type fdxTx struct {
	AccountCategory, TransactionID, PostedTimestamp, TransactionTimestamp string
	Description, DebitCreditMemo, Category, SubCategory, Status           string
	Amount                                                                json.Number
}

// verificationFlow registers an app for account verification (identity and
// account numbers, no transactions) and returns alice's flow for it.
func verificationFlow(t *testing.T, s *testutil.Server) testutil.FlowRequest {
	t.Helper()
	scopes := []string{"accounts:read", "balances:read", "identity:read", "account_numbers:read"}
	id, secret, err := s.Node.Provider().CreateClient(context.Background(), oauth.ClientSpec{
		Name: "Verify App", RedirectURIs: []string{testutil.DemoRedirectURI}, GrantTypes: []string{"authorization_code"},
		Scopes: scopes, Purposes: []string{"account_verification"},
	})
	if err != nil {
		t.Fatal(err)
	}
	fr := testutil.DemoFlow()
	fr.ClientID, fr.ClientSecret, fr.Scopes, fr.Purpose = id, secret, scopes, "account_verification"
	return fr
}

// TestFDX drives the FDX resource API through the real server with tokens
// from the PAR flow: every endpoint, paging to the end, the FDX errors, and
// one data.access audit event per call. Every response is checked against
// openapi.yaml by testutil.
func TestFDX(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		pfm := s.Authorize(t, testutil.DemoFlow())
		vfr := verificationFlow(t, s)
		verify := s.Authorize(t, vfr)
		calls, v1calls := map[string]int{}, map[string]int{} // FDX and /v1 calls per grant
		get := func(tok testutil.Tokens, path string, headers ...string) *testutil.Response {
			t.Helper()
			calls[tok.GrantID]++
			return s.Get(t, path, tok.AccessToken, headers...)
		}

		// customers/current: the pairwise subject, stable per client,
		// different between clients, never the internal id.
		var cust struct{ CustomerID string }
		get(pfm, "/fdx/v6/customers/current").JSON(t, &cust)
		var again, other struct{ CustomerID string }
		second := s.Authorize(t, testutil.DemoFlow())
		get(second, "/fdx/v6/customers/current").JSON(t, &again)
		get(verify, "/fdx/v6/customers/current").JSON(t, &other)
		if len(cust.CustomerID) < 7 || strings.Contains(cust.CustomerID, "alice") || cust.CustomerID != again.CustomerID ||
			cust.CustomerID == other.CustomerID || other.CustomerID == "" {
			t.Fatalf("customerIds: %q, again %q, other client %q", cust.CustomerID, again.CustomerID, other.CustomerID)
		}

		// accounts: checking and savings as deposit accounts, the card as a
		// line of credit.
		var list struct{ Accounts []fdxAccount }
		get(pfm, "/fdx/v6/accounts").JSON(t, &list)
		byType := map[string]fdxAccount{}
		for _, a := range list.Accounts {
			byType[a.AccountType] = a
			if a.CurrentBalance != nil || a.Status != "OPEN" || !strings.HasPrefix(a.AccountNumberDisplay, "****") {
				t.Errorf("descriptor %+v", a)
			}
		}
		checking, savings, card := byType["CHECKING"], byType["SAVINGS"], byType["CREDITCARD"]
		if len(list.Accounts) != 3 || checking.AccountCategory != "DEPOSIT_ACCOUNT" || savings.AccountCategory != "DEPOSIT_ACCOUNT" ||
			card.AccountCategory != "LOC_ACCOUNT" {
			t.Fatalf("accounts %+v", list.Accounts)
		}

		// accounts/{id}: balances with balances:read.
		var acct fdxAccount
		get(pfm, "/fdx/v6/accounts/"+checking.AccountID).JSON(t, &acct)
		if acct.CurrentBalance == nil || acct.AvailableBalance == nil || acct.CreditLine != nil {
			t.Fatalf("checking %+v", acct)
		}
		var cardDetail fdxAccount
		get(pfm, "/fdx/v6/accounts/"+card.AccountID).JSON(t, &cardDetail)
		if cardDetail.CurrentBalance == nil || cardDetail.CreditLine == nil || cardDetail.AvailableCredit == nil || cardDetail.AvailableBalance != nil {
			t.Fatalf("card %+v", cardDetail)
		}

		// Without balances:read the account comes without balances.
		nobal := testutil.DemoFlow()
		nobal.Scopes = []string{"accounts:read", "transactions:read"}
		noBalances := s.Authorize(t, nobal)
		var plain fdxAccount
		get(noBalances, "/fdx/v6/accounts/"+checking.AccountID).JSON(t, &plain)
		if plain.AccountID != checking.AccountID || plain.CurrentBalance != nil || plain.AvailableBalance != nil {
			t.Fatalf("account without balances:read %+v", plain)
		}

		// transactions: every page to the end; the same transactions as /v1
		// over a window wider than alice's history.
		start := time.Now().UTC().AddDate(0, 0, -500).Format(time.DateOnly)
		for _, a := range []fdxAccount{checking, card} {
			var all []fdxTx
			pages, offset := 0, ""
			for {
				q := url.Values{"startTime": {start}, "endTime": {time.Now().UTC().Format(time.DateOnly)}, "limit": {"97"}}
				if offset != "" {
					q.Set("offset", offset)
				}
				var page struct {
					Page         *struct{ NextOffset string }
					Transactions []fdxTx
				}
				get(pfm, "/fdx/v6/accounts/"+a.AccountID+"/transactions?"+q.Encode()).JSON(t, &page)
				pages++
				all = append(all, page.Transactions...)
				if page.Page == nil {
					break
				}
				if len(page.Transactions) != 97 || page.Page.NextOffset == "" || pages > 50 {
					t.Fatalf("page %d: %d transactions, page %+v", pages, len(page.Transactions), page.Page)
				}
				offset = page.Page.NextOffset
			}
			checkFDXTransactions(t, a, all)
			v1, v1Pages := v1TransactionIDs(t, s, pfm, a.AccountID, start)
			v1calls[pfm.GrantID] += v1Pages
			fdx := map[string]bool{}
			for _, tx := range all {
				fdx[strings.TrimSuffix(tx.TransactionID, ".pending")] = true
			}
			if len(fdx) != len(all) || len(fdx) != len(v1) || pages < 2 {
				t.Fatalf("%s: FDX %d transactions (%d distinct) on %d pages, /v1 %d", a.AccountType, len(all), len(fdx), pages, len(v1))
			}
			for id := range v1 {
				if !fdx[id] {
					t.Fatalf("%s: /v1 transaction %s missing from FDX", a.AccountType, id)
				}
			}
		}

		// contact and payment networks, for the verification app.
		var contact struct {
			Holders []struct {
				Type, Relationship string
				Name               struct{ First, Last string }
			}
			Emails     []string
			Addresses  []struct{ Line1, City, Region, PostalCode, Country string }
			Telephones []struct{ Type, Country, Number string }
		}
		get(verify, "/fdx/v6/accounts/"+checking.AccountID+"/contact").JSON(t, &contact)
		if len(contact.Holders) != 1 || contact.Holders[0].Name.First != "Alice" || contact.Holders[0].Name.Last != "Anders" ||
			len(contact.Emails) != 1 || len(contact.Addresses) != 1 || contact.Addresses[0].Country != "US" ||
			len(contact.Telephones) != 1 || contact.Telephones[0].Country != "+1" {
			t.Fatalf("contact %+v", contact)
		}
		var networks struct {
			PaymentNetworks []struct {
				BankID, Identifier, Type string
				TransferIn, TransferOut  bool
			}
		}
		get(verify, "/fdx/v6/accounts/"+savings.AccountID+"/payment-networks").JSON(t, &networks)
		if n := networks.PaymentNetworks; len(n) != 1 || n[0].BankID != "123456780" || n[0].Type != "US_ACH" ||
			n[0].Identifier != "990048150927" || !n[0].TransferIn || !n[0].TransferOut {
			t.Fatalf("payment networks %+v", networks)
		}

		// Refusals, each in the FDX shape.
		tx := "/fdx/v6/accounts/" + checking.AccountID + "/transactions"
		old := time.Now().UTC().AddDate(0, 0, -800).Format(time.DateOnly)
		for _, c := range []struct {
			name   string
			tok    testutil.Tokens
			path   string
			hdr    []string
			status int
			code   int
			reason string
		}{
			{"unknown account", pfm, "/fdx/v6/accounts/acc_nobody", nil, 404, 701, "account_not_found"},
			{"bob's account", pfm, "/fdx/v6/accounts/acc_bob_checking/transactions", nil, 404, 701, "account_not_found"},
			{"not a date", pfm, tx + "?startTime=2025-13-45", nil, 400, 703, "invalid_request"},
			{"reversed dates", pfm, tx + "?startTime=2025-06-30&endTime=2025-06-01", nil, 400, 703, "invalid_request"},
			{"before the history window", pfm, tx + "?startTime=" + old, nil, 400, 703, "history_window_exceeded"},
			{"foreign offset", pfm, tx + "?offset=AAAA", nil, 400, 703, "invalid_cursor"},
			{"bad limit", pfm, tx + "?limit=0", nil, 400, 703, "invalid_request"},
			{"prohibited purpose", pfm, "/fdx/v6/accounts", []string{"Data-Purpose", "advertising"}, 403, 602, "purpose_prohibited"},
			{"another purpose", pfm, "/fdx/v6/accounts", []string{"Data-Purpose", "credit_underwriting"}, 403, 602, "purpose_not_consented"},
			{"contact without identity:read", pfm, "/fdx/v6/accounts/" + checking.AccountID + "/contact", nil, 403, 602, "insufficient_scope"},
			{"numbers without account_numbers:read", pfm, "/fdx/v6/accounts/" + checking.AccountID + "/payment-networks", nil, 403, 602, "insufficient_scope"},
			{"transactions for verification", verify, tx, nil, 403, 602, "insufficient_scope"},
			{"payment networks of a card", verify, "/fdx/v6/accounts/" + card.AccountID + "/payment-networks", nil, 400, 704, "account_type_not_supported"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := get(c.tok, c.path, c.hdr...)
				fdxError(t, r, c.status, c.code, c.reason)
				if c.reason == "insufficient_scope" && !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
					t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
				}
			})
		}

		// The purpose's daily limit of unattended calls holds as on /v1.
		t.Run("unattended calls past the daily limit", func(t *testing.T) {
			fresh := s.Authorize(t, testutil.DemoFlow())
			for i := 1; i <= 4; i++ {
				if r := s.Get(t, "/fdx/v6/accounts", fresh.AccessToken, testutil.CustomerIP, ""); r.StatusCode != http.StatusOK {
					t.Fatalf("unattended call %d: %d %s", i, r.StatusCode, r.Body)
				}
			}
			r := s.Get(t, "/fdx/v6/accounts", fresh.AccessToken, testutil.CustomerIP, "")
			fdxError(t, r, http.StatusTooManyRequests, 602, "access_exceeded")
			if r.Header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
		})

		// One audit event per call, under the FDX path: data.access, or
		// purpose.blocked for a call refused for its Data-Purpose.
		var cc testutil.Tokens
		s.ClientCredentials(t, "demo-auditor", "demo-auditor-secret", "audit:read").JSON(t, &cc)
		for _, tok := range []testutil.Tokens{pfm, verify} {
			var evs struct {
				Data []struct{ Type, Path, Outcome, Reason string }
			}
			s.Get(t, "/v1/audit/events?type=data.access&limit=1000&grant_id="+tok.GrantID, cc.AccessToken).JSON(t, &evs)
			var blocked struct {
				Data []struct{ Type, Path, Outcome, Reason string }
			}
			s.Get(t, "/v1/audit/events?type=purpose.blocked&limit=1000&grant_id="+tok.GrantID, cc.AccessToken).JSON(t, &blocked)
			for _, e := range blocked.Data {
				if !strings.HasPrefix(e.Path, "/fdx/v6/") || e.Outcome != "denied" ||
					(e.Reason != "purpose_prohibited" && e.Reason != "purpose_not_consented") {
					t.Errorf("purpose.blocked event %+v", e)
				}
			}
			if want := map[string]int{pfm.GrantID: 2}[tok.GrantID]; len(blocked.Data) != want {
				t.Errorf("grant %s: %d purpose.blocked events, want %d", tok.GrantID, len(blocked.Data), want)
			}
			evs.Data = append(evs.Data, blocked.Data...)
			fdxEvents := 0
			for _, e := range evs.Data {
				if strings.HasPrefix(e.Path, "/fdx/v6/") {
					fdxEvents++
				}
			}
			if fdxEvents != calls[tok.GrantID] || len(evs.Data) != calls[tok.GrantID]+v1calls[tok.GrantID] {
				t.Errorf("grant %s: %d data.access and purpose.blocked events, %d of them FDX; want %d FDX and %d /v1 calls",
					tok.GrantID, len(evs.Data), fdxEvents, calls[tok.GrantID], v1calls[tok.GrantID])
			}
		}

		// Revoked: 401 with the RFC 6750 challenge, as on /v1.
		req := s.NewRequest(t, http.MethodDelete, "/oauth2/grants/"+pfm.GrantID, nil)
		req.SetBasicAuth(testutil.DemoClientID, testutil.DemoClientSecret)
		if r := s.Do(t, req); r.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE grant: %d %s", r.StatusCode, r.Body)
		}
		r := s.Get(t, "/fdx/v6/accounts", pfm.AccessToken)
		fdxError(t, r, 401, 602, "invalid_token")
		if !strings.Contains(r.Header.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
			t.Fatalf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
		}
	})
}

// checkFDXTransactions checks the FDX rules on one account's walk: pending
// first with their own ids and no postedTimestamp, then posted newest first,
// absolute amounts with their direction, MCC categories.
func checkFDXTransactions(t *testing.T, a fdxAccount, all []fdxTx) {
	t.Helper()
	pending, posted := 0, []string{}
	for i, tx := range all {
		if tx.AccountCategory != a.AccountCategory || strings.HasPrefix(string(tx.Amount), "-") ||
			(tx.DebitCreditMemo != "DEBIT" && tx.DebitCreditMemo != "CREDIT") || tx.Description == "" {
			t.Fatalf("transaction %+v", tx)
		}
		if tx.Category != "" && (tx.SubCategory != "MCC" || len(tx.Category) != 4) {
			t.Fatalf("category %+v", tx)
		}
		switch tx.Status {
		case "PENDING":
			if tx.PostedTimestamp != "" || !strings.HasSuffix(tx.TransactionID, ".pending") || len(posted) > 0 {
				t.Fatalf("pending transaction %d %+v", i, tx)
			}
			pending++
		case "POSTED":
			if tx.PostedTimestamp == "" || strings.HasSuffix(tx.TransactionID, ".pending") {
				t.Fatalf("posted transaction %d %+v", i, tx)
			}
			posted = append(posted, tx.PostedTimestamp)
		default:
			t.Fatalf("status %+v", tx)
		}
	}
	if !sort.SliceIsSorted(posted, func(i, j int) bool { return posted[i] > posted[j] }) || len(posted) == 0 {
		t.Fatalf("posted transactions not newest first (%d)", len(posted))
	}
	if a.AccountType == "CREDITCARD" && pending == 0 {
		t.Fatalf("alice's card has no pending transactions in FDX")
	}
}

// v1TransactionIDs walks /v1 transactions of an account from a date and
// says in how many pages.
func v1TransactionIDs(t *testing.T, s *testutil.Server, tok testutil.Tokens, accountID, from string) (ids map[string]bool, pages int) {
	t.Helper()
	ids = map[string]bool{}
	cursor := ""
	for pages = 1; ; pages++ {
		q := url.Values{"from": {from}, "limit": {strconv.Itoa(500)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Data []struct {
				TransactionID string `json:"transaction_id"`
			} `json:"data"`
			NextCursor *string `json:"next_cursor"`
		}
		s.Get(t, "/v1/accounts/"+accountID+"/transactions?"+q.Encode(), tok.AccessToken).JSON(t, &page)
		for _, d := range page.Data {
			ids[d.TransactionID] = true
		}
		if page.NextCursor == nil {
			return ids, pages
		}
		cursor = *page.NextCursor
	}
}
