package httpapi

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

var dataPaths = []string{
	"/v1/accounts",
	"/v1/accounts/" + accCard,
	"/v1/accounts/" + accCard + "/balances",
	"/v1/accounts/" + accCard + "/transactions",
}

// Token and consent problems are 401 invalid_token with an RFC 6750
// challenge, on every data endpoint, and read no data.
func TestDataRefusesBadTokens(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, token, descContains string
	}{
		{"no token", "", "No access token"},
		{"unknown token", "nope", "unknown"},
		{"client_credentials token has no consent", "cc", "client_credentials"},
		{"revoked consent", "revoked", "not active"},
		{"expired consent (checked at the instant of the call)", "expired", "not active"},
		{"token subject differs from the consent's customer", "mismatch", "does not match"},
	}
	for _, tt := range tests {
		for _, path := range dataPaths {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				rec := e.do(t, tt.token, path)
				p := problem(t, rec, http.StatusUnauthorized, "invalid_token")
				ch := rec.Header().Get("WWW-Authenticate")
				if !strings.HasPrefix(ch, `Bearer error="invalid_token", error_description="`) || !strings.Contains(ch, tt.descContains) {
					t.Errorf("WWW-Authenticate %q, want an invalid_token challenge mentioning %q", ch, tt.descContains)
				}
				if !strings.Contains(p.Detail, tt.descContains) {
					t.Errorf("detail %q does not mention %q", p.Detail, tt.descContains)
				}
			})
		}
	}
	if n := e.store.reads(); n != 0 {
		t.Errorf("refused calls read the store %d times", n)
	}
}

func TestDataAuthenticatorFailureIsOpaque(t *testing.T) {
	e := newEnv(t)
	rec := e.do(t, "broken", "/v1/accounts")
	p := problem(t, rec, http.StatusInternalServerError, "internal_error")
	if strings.Contains(rec.Body.String(), "10.0.0.7") || p.Detail != serverFault {
		t.Errorf("5xx body leaks internals: %s", rec.Body)
	}
	if !strings.Contains(e.logs.String(), "10.0.0.7") {
		t.Error("the cause of the 500 is not in the log")
	}
}

// A missing scope is 403 insufficient_scope with the scope in the
// challenge; it is decided before anything else about the request.
func TestDataScopes(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, token, path, scope string
	}{
		{"balances without balances:read", "accounts", "/v1/accounts/" + accCard + "/balances", "balances:read"},
		{"transactions without transactions:read", "accounts", "/v1/accounts/" + accCard + "/transactions", "transactions:read"},
		{"token narrower than its consent", "narrow-token", "/v1/accounts/" + accCard + "/transactions", "transactions:read"},
		// account_verification allows no transactions: the scope decides
		// before the (also empty) history window.
		{"purpose without the scope", "verify", "/v1/accounts/" + accCard + "/transactions?from=1999-01-01", "transactions:read"},
		{"purpose policy refuses a scope the token carries", "verify-tx", "/v1/accounts/" + accCard + "/transactions", "transactions:read"},
		// Scope before account: no hint whether the account exists.
		{"scope before account lookup", "accounts", "/v1/accounts/" + accSavings + "/balances", "balances:read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.store.reads()
			rec := e.do(t, tt.token, tt.path)
			problem(t, rec, http.StatusForbidden, "insufficient_scope")
			want := `Bearer error="insufficient_scope", scope="` + tt.scope + `"`
			if got := rec.Header().Get("WWW-Authenticate"); got != want {
				t.Errorf("WWW-Authenticate %q, want %q", got, want)
			}
			if e.store.reads() != before {
				t.Error("a call refused for its scope read the store")
			}
		})
	}
	// The same tokens pass where they have the scope.
	if rec := e.do(t, "accounts", "/v1/accounts/"+accCard); rec.Code != http.StatusOK {
		t.Errorf("accounts:read token on GET account: %d %s", rec.Code, rec.Body)
	}
	if rec := e.do(t, "verify", "/v1/accounts/"+accCard+"/balances"); rec.Code != http.StatusOK {
		t.Errorf("account_verification token on balances: %d %s", rec.Code, rec.Body)
	}
}

// SPEC §4: Data-Purpose absent means the consent's purpose; prohibited
// purposes are refused as such however they are spelled; anything but the
// exact consented purpose, once, is not consented. No data is read.
func TestDataPurposeHeader(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		values []string // nil: header absent
		code   string   // "" → 200
	}{
		{"absent means the consent's purpose", nil, ""},
		{"exactly the consent's purpose", []string{purposePFM}, ""},
		{"prohibited", []string{"advertising"}, "purpose_prohibited"},
		{"prohibited, other case and separators", []string{"Targeted-Advertising"}, "purpose_prohibited"},
		{"prohibited, Cyrillic look-alike", []string{"аdvertising"}, "purpose_prohibited"},
		{"prohibited inside a list", []string{purposePFM + ", data_sale"}, "purpose_prohibited"},
		{"prohibited in a repeated header", []string{purposePFM, "profiling"}, "purpose_prohibited"},
		{"repeated, even when equal", []string{purposePFM, purposePFM}, "purpose_not_consented"},
		{"empty value", []string{""}, "purpose_not_consented"},
		{"other case is not the same purpose", []string{strings.ToUpper(purposePFM)}, "purpose_not_consented"},
		{"trailing space is not normalised away", []string{purposePFM + " "}, "purpose_not_consented"},
		{"another allowed purpose", []string{"credit_underwriting"}, "purpose_not_consented"},
		{"a list containing the purpose", []string{purposePFM + ",fraud_prevention"}, "purpose_not_consented"},
	}
	for _, tt := range tests {
		for _, path := range dataPaths {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				var hdr []string
				for _, v := range tt.values {
					hdr = append(hdr, "Data-Purpose", v)
				}
				before := e.store.reads()
				rec := e.do(t, "pfm", path, hdr...)
				if tt.code == "" {
					if rec.Code != http.StatusOK {
						t.Fatalf("status %d, body %s", rec.Code, rec.Body)
					}
					return
				}
				problem(t, rec, http.StatusForbidden, tt.code)
				if e.store.reads() != before {
					t.Error("a call refused for its purpose read the store")
				}
			})
		}
	}
	// The purpose is checked before the account: a prohibited purpose on an
	// account outside the consent is still purpose_prohibited.
	rec := e.do(t, "pfm", "/v1/accounts/"+accSavings, "Data-Purpose", "marketing")
	problem(t, rec, http.StatusForbidden, "purpose_prohibited")
	if !strings.Contains(e.logs.String(), `"msg":"data call refused","code":"purpose_prohibited"`) {
		t.Error("refused purposes are not logged as security events")
	}
}

func TestAccountsEndpoints(t *testing.T) {
	e := newEnv(t)

	rec := e.do(t, "pfm", "/v1/accounts")
	if !strings.Contains(rec.Body.String(), `"next_cursor":null`) {
		t.Errorf("accounts list without next_cursor: null: %s", rec.Body)
	}
	list := decode[struct{ Data []accountView }](t, rec)
	var ids []string
	for _, a := range list.Data {
		ids = append(ids, a.AccountID)
	}
	// acc-bob is in the consent's list but is not alice's: never shown.
	if want := []string{accCard, accChecking, accNew}; strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("accounts %v, want %v", ids, want)
	}
	wantCard := accountView{AccountID: accCard, InstitutionID: "bank-1", InstitutionName: "First Demo Bank",
		Type: "credit_card", DisplayName: orNull("Card"), MaskedNumber: orNull("****4242"), Currency: "EUR", Status: "open"}
	if !reflect.DeepEqual(list.Data[0], wantCard) {
		t.Errorf("card %+v, want %+v", list.Data[0], wantCard)
	}

	one := decode[struct{ Data accountView }](t, e.do(t, "pfm", "/v1/accounts/"+accCard))
	if !reflect.DeepEqual(one.Data, wantCard) {
		t.Errorf("GET account %+v, want %+v", one.Data, wantCard)
	}

	// Outside the consent, someone else's, or unknown: the same 404, and an
	// account outside the consent is not even looked up.
	gets := e.store.calls["Get"]
	outside := problem(t, e.do(t, "pfm", "/v1/accounts/"+accSavings), http.StatusNotFound, "account_not_found")
	if e.store.calls["Get"] != gets {
		t.Error("an account outside the consent was looked up")
	}
	foreign := problem(t, e.do(t, "pfm", "/v1/accounts/"+accBob), http.StatusNotFound, "account_not_found")
	unknown := problem(t, e.do(t, "pfm", "/v1/accounts/does-not-exist"), http.StatusNotFound, "account_not_found")
	if outside.Detail != unknown.Detail || foreign.Detail != unknown.Detail {
		t.Errorf("404s differ, revealing existence: %q / %q / %q", outside.Detail, foreign.Detail, unknown.Detail)
	}
	for _, sub := range []string{"/balances", "/transactions"} {
		problem(t, e.do(t, "pfm", "/v1/accounts/"+accBob+sub), http.StatusNotFound, "account_not_found")
		problem(t, e.do(t, "pfm", "/v1/accounts/"+accSavings+sub), http.StatusNotFound, "account_not_found")
	}
}

func TestBalancesEndpoint(t *testing.T) {
	e := newEnv(t)
	card := decode[struct{ Data balanceView }](t, e.do(t, "pfm", "/v1/accounts/"+accCard+"/balances"))
	if card.Data.Current != "-123.45" || card.Data.Available != "4876.55" || card.Data.CreditLimit == nil ||
		*card.Data.CreditLimit != "5000.00" || card.Data.AsOf != "2025-06-30T12:00:00Z" || card.Data.Currency != "EUR" {
		t.Errorf("card balances %+v", card.Data)
	}
	rec := e.do(t, "pfm", "/v1/accounts/"+accChecking+"/balances")
	if !strings.Contains(rec.Body.String(), `"credit_limit":null`) {
		t.Errorf("checking balances must have credit_limit null: %s", rec.Body)
	}
	problem(t, e.do(t, "pfm", "/v1/accounts/"+accNew+"/balances"), http.StatusNotFound, "not_found")
}

type txPage struct {
	Data       []transactionView
	NextCursor *string `json:"next_cursor"`
}

// wantTxs are the card's transactions in [from, to], newest first.
func (e *env) wantTxs(from, to time.Time, status string) []string {
	var ids []string
	for _, tx := range e.cardTxs {
		if !tx.TransactedAt.Before(from) && !tx.TransactedAt.After(to) && (status == "" || tx.Status == status) {
			ids = append(ids, tx.ID)
		}
	}
	return ids
}

// walk follows next_cursor from the first page of query to the end.
func (e *env) walk(t *testing.T, token, account string, query url.Values) []transactionView {
	t.Helper()
	var all []transactionView
	seen := map[string]bool{}
	cursor := ""
	for page := 0; ; page++ {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		p := decode[txPage](t, e.do(t, token, "/v1/accounts/"+account+"/transactions?"+q.Encode()))
		if page > 0 && len(p.Data) == 0 {
			t.Fatalf("page %d is empty: the previous next_cursor should have been null", page)
		}
		for _, tx := range p.Data {
			if seen[tx.TransactionID] {
				t.Fatalf("transaction %s on two pages", tx.TransactionID)
			}
			seen[tx.TransactionID] = true
		}
		all = append(all, p.Data...)
		if p.NextCursor == nil {
			return all
		}
		cursor = *p.NextCursor
		if page > 1000 {
			t.Fatal("pagination does not end")
		}
	}
}

func ids(txs []transactionView) []string {
	out := make([]string, len(txs))
	for i, tx := range txs {
		out[i] = tx.TransactionID
	}
	return out
}

func sameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s: got %d transactions, want %d (newest first, no gaps, no duplicates)\n got %.300v\nwant %.300v",
			what, len(got), len(want), got, want)
	}
}

func TestTransactionsWindowAndShape(t *testing.T) {
	e := newEnv(t)

	// Default: the last 90 days, newest first.
	page := decode[txPage](t, e.do(t, "pfm", "/v1/accounts/"+accCard+"/transactions?limit=500"))
	sameIDs(t, "default window", ids(page.Data), e.wantTxs(testNow.Add(-90*24*time.Hour), testNow, ""))
	if page.NextCursor != nil {
		t.Error("next_cursor must be null on the last page")
	}
	refund, booked := page.Data[0], page.Data[len(page.Data)-1]
	wantRefund := transactionView{TransactionID: "tx-refund", AccountID: accCard, Status: "pending",
		TransactedAt: "2025-06-30T11:30:00Z", Amount: "25.00", Currency: "EUR", Description: "Refund",
		MerchantName: orNull("Shop"), MerchantCategoryCode: orNull("5411")}
	if refund.BookedAt != nil || refund.TransactionID != wantRefund.TransactionID || refund.Amount != wantRefund.Amount ||
		refund.TransactedAt != wantRefund.TransactedAt || refund.Status != "pending" || deref(refund.MerchantCategoryCode) != "5411" {
		t.Errorf("newest transaction %+v, want %+v", refund, wantRefund)
	}
	if booked.Status != "booked" || booked.BookedAt == nil || !strings.HasSuffix(*booked.BookedAt, "Z") ||
		!strings.HasPrefix(booked.Amount, "-") || deref(booked.CardLast4) != "4242" || deref(booked.MerchantName) != "Café" {
		t.Errorf("oldest transaction of the window %+v", booked)
	}
	raw := e.do(t, "pfm", "/v1/accounts/"+accCard+"/transactions?limit=1").Body.String()
	if !strings.Contains(raw, `"booked_at":null`) || !strings.Contains(raw, `"card_last4":null`) {
		t.Errorf("a pending transaction must have booked_at null, and one without a card card_last4 null: %s", raw)
	}

	day := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		query    string
		from, to time.Time
		status   string
	}{
		{"a date covers the whole UTC day", "from=2025-05-01&to=2025-05-01", day, day.Add(24*time.Hour - time.Microsecond), ""},
		{"RFC 3339 bounds with an offset, inclusive", "from=2025-05-01T02:00:00%2B02:00&to=2025-05-02T11:00:00Z",
			day, time.Date(2025, 5, 2, 11, 0, 0, 0, time.UTC), ""},
		{"to alone: the 90 days before it", "to=2025-03-01", time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1).Add(-time.Microsecond - 90*24*time.Hour),
			time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC).Add(-time.Microsecond), ""},
		{"pending only", "status=pending", testNow.Add(-90 * 24 * time.Hour), testNow, "pending"},
		{"booked in a window", "status=booked&from=2025-06-01", time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), testNow, "booked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			q.Set("limit", "500")
			want := e.wantTxs(tt.from, tt.to, tt.status)
			if len(want) == 0 {
				t.Fatal("the case selects no transactions; it would prove nothing")
			}
			sameIDs(t, tt.query, ids(e.walk(t, "pfm", accCard, q)), want)
		})
	}
}

func TestTransactionsPagination(t *testing.T) {
	e := newEnv(t)
	from := testNow.Add(-400 * 24 * time.Hour)
	all := e.wantTxs(from, testNow, "")
	for _, tt := range []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"all pages of seven", url.Values{"from": {"2024-05-01"}, "limit": {"7"}}, e.wantTxs(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), testNow, "")},
		{"default window, pages of 13", url.Values{"limit": {"13"}}, e.wantTxs(testNow.Add(-90*24*time.Hour), testNow, "")},
		{"pending, one per page", url.Values{"status": {"pending"}, "limit": {"1"}}, e.wantTxs(testNow.Add(-90*24*time.Hour), testNow, "pending")},
		{"booked, max page size", url.Values{"status": {"booked"}, "from": {from.Format(time.RFC3339)}, "limit": {"500"}}, e.wantTxs(from, testNow, "booked")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sameIDs(t, tt.name, ids(e.walk(t, "pfm", accCard, tt.query)), tt.want)
		})
	}
	if len(all) < 700 {
		t.Fatalf("seed too small: %d", len(all))
	}

	// A window holding exactly two full pages ends with next_cursor null on
	// the second page, not with an empty third one.
	oneDay := "/v1/accounts/" + accCard + "/transactions?from=2025-05-01&to=2025-05-01&limit=2"
	if n := len(e.wantTxs(time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 5, 2, 0, 0, 0, 0, time.UTC).Add(-time.Microsecond), "")); n != 4 {
		t.Fatalf("seed has %d transactions on 2025-05-01, the case needs 4", n)
	}
	p1 := decode[txPage](t, e.do(t, "pfm", oneDay))
	if p1.NextCursor == nil || len(p1.Data) != 2 {
		t.Fatalf("first of two full pages: %d rows, next %v", len(p1.Data), p1.NextCursor)
	}
	p2 := decode[txPage](t, e.do(t, "pfm", oneDay+"&cursor="+*p1.NextCursor))
	if p2.NextCursor != nil || len(p2.Data) != 2 {
		t.Errorf("last full page: %d rows, next_cursor set: %v; want 2 rows and null", len(p2.Data), p2.NextCursor != nil)
	}

	// The page size may change between pages.
	first := decode[txPage](t, e.do(t, "pfm", "/v1/accounts/"+accCard+"/transactions?limit=5"))
	second := decode[txPage](t, e.do(t, "pfm", "/v1/accounts/"+accCard+"/transactions?limit=50&cursor="+*first.NextCursor))
	sameIDs(t, "limit changed between pages", append(ids(first.Data), ids(second.Data)...), all[:55])
}

func TestTransactionsCursorIsBound(t *testing.T) {
	e := newEnv(t)
	base := "/v1/accounts/" + accCard + "/transactions?limit=3&from=2025-06-01"
	first := decode[txPage](t, e.do(t, "pfm", base))
	cur := *first.NextCursor
	if ok := e.do(t, "pfm", base+"&cursor="+cur); ok.Code != http.StatusOK {
		t.Fatalf("the cursor with its own query: %d %s", ok.Code, ok.Body)
	}
	flipped := []byte(cur)
	flipped[len(flipped)/2] ^= 0x01
	for _, tt := range []struct{ name, target string }{
		{"other status", base + "&status=booked&cursor=" + cur},
		{"other from", "/v1/accounts/" + accCard + "/transactions?limit=3&from=2025-06-02&cursor=" + cur},
		{"from left out", "/v1/accounts/" + accCard + "/transactions?limit=3&cursor=" + cur},
		{"other to", base + "&to=2025-06-30&cursor=" + cur},
		{"other account", "/v1/accounts/" + accChecking + "/transactions?limit=3&from=2025-06-01&cursor=" + cur},
		{"garbage", base + "&cursor=not-a-cursor!"},
		{"not base64url", base + "&cursor=" + url.QueryEscape("a+b/c==")},
		{"a flipped character", base + "&cursor=" + string(flipped)},
		{"truncated", base + "&cursor=" + cur[:len(cur)-4]},
		{"too long", base + "&cursor=" + strings.Repeat("A", 400)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			problem(t, e.do(t, "pfm", tt.target), http.StatusBadRequest, "invalid_cursor")
		})
	}
}

func TestTransactionsHistoryWindow(t *testing.T) {
	e := newEnv(t)
	day := 24 * time.Hour
	// A 30-day consent clips the default 90-day window silently.
	sameIDs(t, "30-day consent, default window",
		ids(e.walk(t, "fraud-30", accCard, url.Values{"limit": {"500"}})), e.wantTxs(testNow.Add(-30*day), testNow, ""))
	if rec := e.do(t, "fraud-30", "/v1/accounts/"+accCard+"/transactions?from="+url.QueryEscape(testNow.Add(-29*day).Format(time.RFC3339))); rec.Code != http.StatusOK {
		t.Errorf("from inside the window: %d %s", rec.Code, rec.Body)
	}
	for _, tt := range []struct{ name, token, query string }{
		{"from before a 30-day window", "fraud-30", "from=" + url.QueryEscape(testNow.Add(-31*day).Format(time.RFC3339))},
		{"to before the window", "fraud-30", "to=2025-01-01"},
		{"date before the window", "fraud-30", "from=2025-05-01"},
		{"policy narrower than the consent (90 < 365 days)", "fraud-365", "from=" + testNow.Add(-100*day).Format(time.DateOnly)},
		{"0-day history: no transactions at all", "zero-history", ""},
		{"0-day history with a from", "zero-history", "from=2025-06-30"},
		{"beyond 730 days", "pfm", "from=2023-01-01"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.store.calls["Transactions"]
			problem(t, e.do(t, tt.token, "/v1/accounts/"+accCard+"/transactions?"+tt.query), http.StatusBadRequest, "history_window_exceeded")
			if e.store.calls["Transactions"] != before {
				t.Error("transactions were read for a refused window")
			}
		})
	}
	// The policy's 90 days still work for the 365-day consent.
	if rec := e.do(t, "fraud-365", "/v1/accounts/"+accCard+"/transactions?from="+testNow.Add(-89*day).Format(time.DateOnly)); rec.Code != http.StatusOK {
		t.Errorf("from inside the policy window: %d %s", rec.Code, rec.Body)
	}
}

func TestTransactionsBadParameters(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct{ name, query, mention string }{
		{"from after to", "from=2025-06-02&to=2025-06-01", "from"},
		{"bad from date", "from=2025-13-01", "from"},
		{"bad to", "to=yesterday", "to"},
		{"date-time without zone", "from=2025-06-01T10:00:00", "from"},
		{"unknown status", "status=settled", "status"},
		{"limit 0", "limit=0", "500"},
		{"negative limit", "limit=-1", "500"},
		{"limit over 500", "limit=501", "500"},
		{"non-numeric limit", "limit=ten", "500"},
		{"fractional limit", "limit=1.5", "500"},
		{"repeated limit", "limit=1&limit=2", "limit"},
		{"repeated from", "from=2025-06-01&from=2025-06-02", "from"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := problem(t, e.do(t, "pfm", "/v1/accounts/"+accCard+"/transactions?"+tt.query), http.StatusBadRequest, "invalid_request")
			if !strings.Contains(p.Detail, tt.mention) {
				t.Errorf("detail %q does not name %q", p.Detail, tt.mention)
			}
		})
	}
	for _, limit := range []string{"1", "500"} {
		p := decode[txPage](t, e.do(t, "pfm", "/v1/accounts/"+accCard+"/transactions?limit="+limit))
		if want := map[string]int{"1": 1, "500": len(e.wantTxs(testNow.Add(-90*24*time.Hour), testNow, ""))}[limit]; len(p.Data) != want {
			t.Errorf("limit=%s returned %d", limit, len(p.Data))
		}
	}
	if p := decode[txPage](t, e.do(t, "pfm", "/v1/accounts/"+accCard+"/transactions")); len(p.Data) != defaultTxLimit {
		t.Errorf("default page size %d, want %d", len(p.Data), defaultTxLimit)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
