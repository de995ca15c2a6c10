package server_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

type account struct {
	AccountID       string `json:"account_id"`
	InstitutionID   string `json:"institution_id"`
	InstitutionName string `json:"institution_name"`
	Type            string `json:"type"`
	DisplayName     string `json:"display_name"`
	MaskedNumber    string `json:"masked_number"`
	Currency        string `json:"currency"`
	Status          string `json:"status"`
}

type transaction struct {
	TransactionID string  `json:"transaction_id"`
	AccountID     string  `json:"account_id"`
	Status        string  `json:"status"`
	TransactedAt  string  `json:"transacted_at"`
	BookedAt      *string `json:"booked_at"`
	Amount        string  `json:"amount"`
	Currency      string  `json:"currency"`
	CardLast4     string  `json:"card_last4"`
}

type txPage struct {
	Data       []transaction `json:"data"`
	NextCursor *string       `json:"next_cursor"`
}

// eachDialect runs a test body against a fresh demo server on SQLite and,
// under make test, on PostgreSQL.
func eachDialect(t *testing.T, fn func(t *testing.T, s *testutil.Server)) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			fn(t, testutil.Start(t, d, testutil.Options{}))
		})
	}
}

// TestWalkthrough is the README's walkthrough: an app gets a consent-scoped
// token from alice and reads her accounts, balances and card transactions.
func TestWalkthrough(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		// RFC 8414 metadata.
		var meta map[string]any
		r := s.Get(t, "/.well-known/oauth-authorization-server", "")
		if r.StatusCode != http.StatusOK {
			t.Fatalf("metadata: %d", r.StatusCode)
		}
		r.JSON(t, &meta)
		// The demo registers demo-aggregator, exempt from PAR (SPEC §9), so
		// the server no longer claims PAR is required of everyone.
		if meta["issuer"] != s.URL || meta["require_pushed_authorization_requests"] != false ||
			meta["authorization_response_iss_parameter_supported"] != true {
			t.Fatalf("metadata: %v", meta)
		}

		fr := testutil.DemoFlow()
		requestURI, verifier := s.Push(t, fr)
		loc := s.Consent(t, s.NewBrowser(), fr, requestURI)
		q := loc.Query()
		if !strings.HasPrefix(loc.String(), fr.RedirectURI) || q.Get("code") == "" || q.Get("iss") != s.URL || q.Get("state") == "" {
			t.Fatalf("authorization response %s", loc)
		}
		r = s.Exchange(t, fr, q.Get("code"), verifier)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("token: %d %s", r.StatusCode, r.Body)
		}
		var tok testutil.Tokens
		r.JSON(t, &tok)
		if tok.AccessToken == "" || tok.RefreshToken == "" || tok.GrantID == "" || !strings.EqualFold(tok.TokenType, "bearer") ||
			tok.ExpiresIn <= 0 || tok.ExpiresIn > 300 {
			t.Fatalf("tokens: %+v", tok)
		}

		// Accounts: all three of alice's, as she ticked them all.
		var accts struct {
			Data       []account `json:"data"`
			NextCursor *string   `json:"next_cursor"`
		}
		r = s.Get(t, "/v1/accounts", tok.AccessToken, "x-fapi-interaction-id", "walkthrough-1")
		if r.StatusCode != http.StatusOK || r.Header.Get("x-fapi-interaction-id") != "walkthrough-1" {
			t.Fatalf("accounts: %d %v %s", r.StatusCode, r.Header, r.Body)
		}
		r.JSON(t, &accts)
		if len(accts.Data) != 3 || accts.NextCursor != nil {
			t.Fatalf("accounts: %s", r.Body)
		}
		types := []string{}
		var card account
		for _, a := range accts.Data {
			types = append(types, a.Type)
			if len(a.MaskedNumber) != 8 || !strings.HasPrefix(a.MaskedNumber, "****") || a.InstitutionName != "First Demo Bank" {
				t.Errorf("account shape: %+v", a)
			}
			if a.Type == "credit_card" {
				card = a
			}
		}
		slices.Sort(types)
		if !slices.Equal(types, []string{"checking", "credit_card", "savings"}) {
			t.Fatalf("account types %v", types)
		}
		if r := s.Get(t, "/v1/accounts", tok.AccessToken); r.Header.Get("x-fapi-interaction-id") == "" {
			t.Error("no interaction id generated")
		}

		r = s.Get(t, "/v1/accounts/"+card.AccountID, tok.AccessToken)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("account: %d %s", r.StatusCode, r.Body)
		}
		var bal struct {
			Data struct {
				AccountID   string  `json:"account_id"`
				Current     string  `json:"current"`
				Available   string  `json:"available"`
				CreditLimit *string `json:"credit_limit"`
			} `json:"data"`
		}
		r = s.Get(t, "/v1/accounts/"+card.AccountID+"/balances", tok.AccessToken)
		r.JSON(t, &bal)
		if r.StatusCode != http.StatusOK || bal.Data.AccountID != card.AccountID || bal.Data.CreditLimit == nil {
			t.Fatalf("card balances: %d %s", r.StatusCode, r.Body)
		}

		// Every card transaction over the last 400 days, page by page, newest first.
		from := time.Now().UTC().AddDate(0, 0, -399).Format("2006-01-02")
		seen := map[string]bool{}
		pending := 0
		var last string
		path := "/v1/accounts/" + card.AccountID + "/transactions?limit=100&from=" + from
		for page := 0; ; page++ {
			if page > 100 {
				t.Fatal("pagination does not end")
			}
			r = s.Get(t, path, tok.AccessToken)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("transactions: %d %s", r.StatusCode, r.Body)
			}
			var p txPage
			r.JSON(t, &p)
			for _, tx := range p.Data {
				if seen[tx.TransactionID] {
					t.Fatalf("transaction %s twice", tx.TransactionID)
				}
				seen[tx.TransactionID] = true
				if last != "" && tx.TransactedAt > last {
					t.Fatalf("not newest first: %s after %s", tx.TransactedAt, last)
				}
				last = tx.TransactedAt
				if tx.Status == "pending" {
					pending++
					if tx.BookedAt != nil {
						t.Errorf("pending %s has booked_at", tx.TransactionID)
					}
				}
				if tx.AccountID != card.AccountID || len(tx.CardLast4) > 4 {
					t.Errorf("transaction shape: %+v", tx)
				}
			}
			if p.NextCursor == nil {
				break
			}
			path = "/v1/accounts/" + card.AccountID + "/transactions?limit=100&from=" + from + "&cursor=" + url.QueryEscape(*p.NextCursor)
		}
		if len(seen) < 100 || pending == 0 {
			t.Fatalf("card transactions: %d (pending %d)", len(seen), pending)
		}

		// Introspection tells the resource owner, grant and purpose.
		var intro map[string]any
		r = s.PostForm(t, "/oauth2/introspect", fr.ClientID, fr.ClientSecret, url.Values{"token": {tok.AccessToken}})
		r.JSON(t, &intro)
		if intro["active"] != true || intro["grant_id"] != tok.GrantID || intro["purpose"] != fr.Purpose ||
			intro["sub"] == "" || intro["client_id"] != fr.ClientID {
			t.Fatalf("introspection: %s", r.Body)
		}

		// Refresh rotates; reusing the old refresh token kills the grant.
		r = s.Refresh(t, fr, tok.RefreshToken)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("refresh: %d %s", r.StatusCode, r.Body)
		}
		var tok2 testutil.Tokens
		r.JSON(t, &tok2)
		if tok2.RefreshToken == tok.RefreshToken || tok2.GrantID != tok.GrantID {
			t.Fatalf("refresh tokens: %+v", tok2)
		}
		if r := s.Get(t, "/v1/accounts", tok2.AccessToken); r.StatusCode != http.StatusOK {
			t.Fatalf("new access token: %d", r.StatusCode)
		}
		r = s.Refresh(t, fr, tok.RefreshToken)
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.Body), "invalid_grant") {
			t.Fatalf("refresh reuse: %d %s", r.StatusCode, r.Body)
		}
		for _, at := range []string{tok.AccessToken, tok2.AccessToken} {
			r := s.Get(t, "/v1/accounts", at)
			if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("after reuse detection: %d %v", r.StatusCode, r.Header)
			}
		}
		if r := s.Refresh(t, fr, tok2.RefreshToken); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("refresh of a killed grant: %d %s", r.StatusCode, r.Body)
		}
		r = s.PostForm(t, "/oauth2/introspect", fr.ClientID, fr.ClientSecret, url.Values{"token": {tok2.AccessToken}})
		if !strings.Contains(string(r.Body), `"active":false`) {
			t.Fatalf("introspection after reuse: %s", r.Body)
		}
	})
}

// TestRevocation: revoking the refresh token ends the grant at once.
func TestRevocation(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		fr := testutil.DemoFlow()
		tok := s.Authorize(t, fr)
		r := s.PostForm(t, "/oauth2/revoke", fr.ClientID, fr.ClientSecret, url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}})
		if r.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.StatusCode, r.Body)
		}
		if r := s.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("after revoke: %d", r.StatusCode)
		}
		var g map[string]any
		req := s.NewRequest(t, http.MethodGet, "/oauth2/grants/"+tok.GrantID, nil)
		req.SetBasicAuth(fr.ClientID, fr.ClientSecret)
		r = s.Do(t, req)
		r.JSON(t, &g)
		if r.StatusCode != http.StatusOK || g["status"] != "revoked" {
			t.Fatalf("grant after revoke: %d %s", r.StatusCode, r.Body)
		}
	})
}

// TestOperations covers the operational endpoints.
func TestOperations(t *testing.T) {
	s := testutil.Start(t, store.SQLite, testutil.Options{})
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := s.Get(t, p, ""); r.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", p, r.StatusCode)
		}
	}
	if r := s.Get(t, "/metrics", ""); !strings.Contains(string(r.Body), "consentgate_http_requests_total") {
		t.Error("metrics lack the request counter")
	}
}
