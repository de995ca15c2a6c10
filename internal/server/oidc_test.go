package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/consentgate/consentgate/internal/testutil"
)

// The demo aggregator of SPEC §9: PAR-exempt, OpenID Connect.
const (
	aggregatorID       = "demo-aggregator"
	aggregatorSecret   = "demo-aggregator-secret" // #nosec G101 -- the public demo fixture of SPEC §9
	aggregatorRedirect = "http://127.0.0.1:8766/callback"
)

// aggregatorScopes is what the aggregator asks for under its default
// purpose (personal_finance_management).
var aggregatorScopes = []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess,
	"accounts:read", "balances:read", "transactions:read"}

// relyingParty is demo-aggregator as an aggregator's own code would be: a
// coreos/go-oidc relying party with golang.org/x/oauth2, configured by
// discovery. Every answer the server gives it is checked against
// openapi.yaml.
type relyingParty struct {
	s        *testutil.Server
	ctx      context.Context // carries the validating HTTP client
	provider *oidc.Provider
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// rpLogin is what a completed aggregator login hands over: the tokens and
// the verified id_token. The FDX calls start from here.
type rpLogin struct {
	Token      *oauth2.Token
	RawIDToken string
	IDToken    *oidc.IDToken
}

// specTransport checks every answer from the server under test against
// openapi.yaml, as testutil does for its own requests.
type specTransport struct {
	t    testing.TB
	base string
}

func (st specTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(req.URL.String(), st.base+"/") {
		testutil.Spec(st.t).Check(st.t, req, resp.StatusCode, resp.Header, body)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// newRelyingParty discovers the server (/.well-known/openid-configuration)
// and configures demo-aggregator's client from it.
func newRelyingParty(t *testing.T, s *testutil.Server) *relyingParty {
	t.Helper()
	hc := &http.Client{Transport: specTransport{t: t, base: s.URL}, Timeout: 20 * time.Second}
	ctx := oidc.ClientContext(context.Background(), hc)
	provider, err := oidc.NewProvider(ctx, s.URL)
	if err != nil {
		t.Fatalf("OpenID Connect discovery: %v", err)
	}
	ep := provider.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader // client_secret_basic
	return &relyingParty{
		s: s, ctx: ctx, provider: provider,
		conf: oauth2.Config{ClientID: aggregatorID, ClientSecret: aggregatorSecret, RedirectURL: aggregatorRedirect,
			Endpoint: ep, Scopes: aggregatorScopes},
		verifier: provider.Verifier(&oidc.Config{ClientID: aggregatorID}),
	}
}

// authURL is a front-channel authorization request with PKCE (and nonce,
// when given): the URL and the PKCE verifier.
func (rp *relyingParty) authURL(state, nonce string, opts ...oauth2.AuthCodeOption) (string, string) {
	verifier := oauth2.GenerateVerifier()
	opts = append(opts, oauth2.S256ChallengeOption(verifier))
	if nonce != "" {
		opts = append(opts, oidc.Nonce(nonce))
	}
	return rp.conf.AuthCodeURL(state, opts...), verifier
}

// finish checks the redirect back to the app, redeems its code and
// verifies the id_token against jwks_uri (go-oidc's verifier: signature,
// iss, aud, exp) and the nonce.
func (rp *relyingParty) finish(t *testing.T, callback *url.URL, state, nonce, verifier string) rpLogin {
	t.Helper()
	q := callback.Query()
	if !strings.HasPrefix(callback.String(), aggregatorRedirect+"?") || q.Get("state") != state ||
		q.Get("iss") != rp.s.URL || q.Get("code") == "" {
		t.Fatalf("redirect to the aggregator: %s", callback)
	}
	tok, err := rp.conf.Exchange(rp.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("the token response of an openid grant has no id_token")
	}
	idt, err := rp.verifier.Verify(rp.ctx, raw)
	if err != nil {
		t.Fatalf("id_token does not verify against jwks_uri: %v", err)
	}
	if idt.Nonce != nonce {
		t.Fatalf("id_token nonce %q, the request sent %q", idt.Nonce, nonce)
	}
	return rpLogin{Token: tok, RawIDToken: raw, IDToken: idt}
}

// loginInChromium runs the front-channel request in real Chromium: alice
// logs in, approves every account, and the browser comes back to the
// aggregator's redirect_uri (intercepted: nothing listens there).
func (rp *relyingParty) loginInChromium(t *testing.T, chrome context.Context, nonce string) rpLogin {
	t.Helper()
	state := "state-" + nonce
	authURL, verifier := rp.authURL(state, nonce)
	chromeStep(t, chrome, "intercept the aggregator's callback", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: aggregatorRedirect + "*"}}})
		return err
	}))
	wctx, cancel := context.WithTimeout(chrome, time.Minute)
	defer cancel()
	paused := chromedp.Events(wctx, fetch.RequestPaused)
	chromeStep(t, chrome, "log in",
		chromedp.Navigate(authURL),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "alice-password-1\r"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/consent"]`)),
	)
	if h1 := chromeText(t, chrome, "h1"); h1 != "Allow Demo Aggregator to see your data?" {
		t.Fatalf("consent screen heading %q", h1)
	}
	if who := chromeText(t, chrome, "#aggregator-note"); !strings.Contains(who, "data aggregator") {
		t.Errorf("the consent screen does not say an aggregator is asking: %q", who)
	}
	what := chromeText(t, chrome, `section[aria-labelledby="what-title"]`)
	for _, want := range []string{"Your sign-in identity", "Your name", "Your email address", "Your balances"} {
		if !strings.Contains(what, want) {
			t.Errorf("consent screen lacks %q:\n%s", want, what)
		}
	}
	chromeStep(t, chrome, "approve every account",
		chromedp.SendKeys(chromedp.ID("account-0"), " "),
		chromedp.SendKeys(chromedp.ID("account-1"), " "),
		chromedp.SendKeys(chromedp.ID("account-2"), " "),
		chromedp.SendKeys(chromedp.CSS(`button[value="approve"]`), "\r"),
	)
	var callback string
	for ev, err := range paused {
		if err != nil {
			t.Fatalf("waiting for the redirect to the aggregator: %v", err)
		}
		callback = ev.Request.URL
		chromeStep(t, chrome, "answer the callback", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: 200,
				ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "text/html"}},
				Body:            []byte("<!doctype html><title>Aggregator</title><h1>Connected</h1>")})
			return err
		}))
		break
	}
	cb, err := url.Parse(callback)
	if err != nil {
		t.Fatalf("callback %q: %v", callback, err)
	}
	return rp.finish(t, cb, state, nonce, verifier)
}

// loginOverHTTP is the same front-channel login with testutil's cookie-jar
// browser (for the runs that need no pixels).
func (rp *relyingParty) loginOverHTTP(t *testing.T, nonce string) rpLogin {
	t.Helper()
	state := "http-" + strings.Repeat("s", 8)
	authURL, verifier := rp.authURL(state, nonce)
	fr := testutil.FlowRequest{ClientID: aggregatorID, ClientSecret: aggregatorSecret, RedirectURI: aggregatorRedirect,
		Username: "alice", Password: "alice-password-1"}
	return rp.finish(t, rp.s.ConsentAt(t, rp.s.NewBrowser(), fr, authURL), state, nonce, verifier)
}

// fdxJourney is the FDX part of the aggregator's journey (SPEC §10): every
// response is validated against openapi.yaml by testutil.
func fdxJourney(t *testing.T, s *testutil.Server, token, sub string) {
	t.Helper()
	present := []string{"x-fapi-customer-ip-address", "198.51.100.7"}
	var cust struct{ CustomerID string }
	s.Get(t, "/fdx/v6/customers/current", token, present...).JSON(t, &cust)
	if cust.CustomerID != sub {
		t.Errorf("FDX customerId %q, id_token sub %q: want the same pairwise subject", cust.CustomerID, sub)
	}
	var list struct{ Accounts []fdxAccount }
	s.Get(t, "/fdx/v6/accounts", token, present...).JSON(t, &list)
	if len(list.Accounts) != 3 {
		t.Fatalf("FDX accounts %+v, want the 3 alice granted", list.Accounts)
	}
	for _, a := range list.Accounts {
		var detail fdxAccount
		s.Get(t, "/fdx/v6/accounts/"+a.AccountID, token, present...).JSON(t, &detail)
		if detail.AccountID != a.AccountID || detail.CurrentBalance == nil {
			t.Errorf("FDX account %+v has no balances under balances:read", detail)
		}
		var all []fdxTx
		offset := ""
		for pages := 1; ; pages++ {
			q := url.Values{"limit": {"200"}, "startTime": {time.Now().UTC().AddDate(0, 0, -700).Format(time.DateOnly)}}
			if offset != "" {
				q.Set("offset", offset)
			}
			var page struct {
				Page         *struct{ NextOffset string }
				Transactions []fdxTx
			}
			s.Get(t, "/fdx/v6/accounts/"+a.AccountID+"/transactions?"+q.Encode(), token, present...).JSON(t, &page)
			all = append(all, page.Transactions...)
			if page.Page == nil {
				break
			}
			if page.Page.NextOffset == "" || pages > 100 {
				t.Fatalf("%s: page %d has page %+v", a.AccountType, pages, page.Page)
			}
			offset = page.Page.NextOffset
		}
		if len(all) > 0 {
			checkFDXTransactions(t, a, all)
		}
		if a.AccountType == "CREDITCARD" && len(all) < 500 {
			t.Errorf("the card has %d FDX transactions, the demo has at least 500", len(all))
		}
	}
}

// jwtClaims are the id_token's registered claims as numbers.
type jwtClaims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Exp      int64  `json:"exp"`
	Iat      int64  `json:"iat"`
	AuthTime int64  `json:"auth_time"`
	Nonce    string `json:"nonce"`
	AtHash   string `json:"at_hash"`
}

func idTokenParts(t *testing.T, raw string) (header map[string]any, claims jwtClaims) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("id_token is not a compact JWS: %q", raw)
	}
	for i, dst := range []any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

// TestAggregatorOpenIDConnectJourney is issue 15's done-when journey as far
// as OpenID Connect goes, on both databases: a real relying party
// (coreos/go-oidc) discovers the server, sends a front-channel request with
// PKCE and nonce for demo-aggregator, alice logs in and consents in
// Chromium, the code is redeemed, the id_token verified against jwks_uri
// with its nonce, and userinfo read. Then what the journey must also hold:
// pairwise subjects everywhere and stable, exact lifetimes, an id_token on
// refresh, and the audit log with the internal customer id.
func TestAggregatorOpenIDConnectJourney(t *testing.T) {
	chrome := newChrome(t)
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		rp := newRelyingParty(t, s)

		// Discovery says what SPEC §10 promises.
		var disco map[string]any
		s.Get(t, "/.well-known/openid-configuration", "").JSON(t, &disco)
		if disco["userinfo_endpoint"] != s.URL+"/userinfo" || disco["require_pushed_authorization_requests"] != false ||
			!slices.Equal(toStrings(disco["subject_types_supported"]), []string{"pairwise"}) ||
			!slices.Contains(toStrings(disco["id_token_signing_alg_values_supported"]), "ES256") {
			t.Errorf("openid-configuration = %v", disco)
		}
		for _, sc := range []string{"openid", "profile", "email", "identity:read", "account_numbers:read"} {
			if !slices.Contains(toStrings(disco["scopes_supported"]), sc) {
				t.Errorf("scopes_supported lacks %s", sc)
			}
		}
		// demo-aggregator is PAR-exempt, so the RFC 8414 document says so too.
		var meta map[string]any
		s.Get(t, "/.well-known/oauth-authorization-server", "").JSON(t, &meta)
		if meta["require_pushed_authorization_requests"] != false {
			t.Errorf("oauth-authorization-server require_pushed_authorization_requests = %v", meta["require_pushed_authorization_requests"])
		}

		// The journey.
		login := rp.loginInChromium(t, chrome, "n-0S6_WzA2Mj")
		header, claims := idTokenParts(t, login.RawIDToken)
		sub := login.IDToken.Subject
		if header["alg"] != "ES256" || header["kid"] == nil || header["kid"] == "" {
			t.Errorf("id_token header %v", header)
		}
		if claims.Iss != s.URL || !slices.Equal(login.IDToken.Audience, []string{aggregatorID}) || len(sub) < 7 ||
			sub == "cus_alice" || claims.AuthTime == 0 || claims.AuthTime > claims.Iat || claims.AtHash == "" {
			t.Errorf("id_token claims %+v aud %v", claims, login.IDToken.Audience)
		}
		if claims.Exp-claims.Iat != 300 {
			t.Errorf("id_token exp - iat = %d, want the 300 s lifetime exactly", claims.Exp-claims.Iat)
		}
		if err := login.IDToken.VerifyAccessToken(login.Token.AccessToken); err != nil {
			t.Errorf("at_hash: %v", err)
		}

		ui, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(login.Token))
		if err != nil {
			t.Fatalf("userinfo: %v", err)
		}
		var uiClaims struct {
			Name  string `json:"name"`
			Email string `json:"email"`
		}
		if err := ui.Claims(&uiClaims); err != nil {
			t.Fatal(err)
		}
		if ui.Subject != sub || uiClaims.Name != "Alice Anders" || uiClaims.Email != "alice.anders@example.com" {
			t.Errorf("userinfo sub %q name %q email %q; id_token sub %q", ui.Subject, uiClaims.Name, uiClaims.Email, sub)
		}

		// The aggregator reads FDX with the same token: its customerId is the
		// id_token's subject, every account it was granted, each with its
		// balances, and every transaction page to the end.
		fdxJourney(t, s, login.Token.AccessToken, sub)
		// POST works the same (OpenID Connect Core §5.3.1).
		req := s.NewRequest(t, http.MethodPost, "/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+login.Token.AccessToken)
		var posted map[string]any
		if r := s.Do(t, req); r.StatusCode != http.StatusOK {
			t.Errorf("POST /userinfo: %d %s", r.StatusCode, r.Body)
		} else if r.JSON(t, &posted); posted["sub"] != sub {
			t.Errorf("POST /userinfo = %v", posted)
		}

		// Introspection shows the same pairwise subject and exp - iat = 300.
		var in map[string]any
		s.PostForm(t, "/oauth2/introspect", aggregatorID, aggregatorSecret, url.Values{"token": {login.Token.AccessToken}}).JSON(t, &in)
		exp, _ := in["exp"].(float64)
		iat, _ := in["iat"].(float64)
		if in["active"] != true || in["sub"] != sub || exp-iat != 300 {
			t.Errorf("introspection = %v (want sub %s, exp - iat = 300)", in, sub)
		}

		// A refresh carries a new id_token for the same subject.
		refreshed, err := rp.conf.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: login.Token.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		raw, _ := refreshed.Extra("id_token").(string)
		ridt, err := rp.verifier.Verify(rp.ctx, raw)
		if err != nil || ridt.Subject != sub {
			t.Fatalf("refreshed id_token: %v (sub %v)", err, ridt)
		}
		if _, rc := idTokenParts(t, raw); rc.Exp-rc.Iat != 300 {
			t.Errorf("refreshed id_token exp - iat = %d", rc.Exp-rc.Iat)
		}

		// Pairwise: the same for every consent of this client (a second
		// login, without a nonce: none in the id_token), different for
		// another client.
		again := rp.loginOverHTTP(t, "")
		if again.IDToken.Subject != sub {
			t.Errorf("a second consent of the same client has subject %q, want %q", again.IDToken.Subject, sub)
		}
		if _, c := idTokenParts(t, again.RawIDToken); c.Nonce != "" {
			t.Errorf("id_token of a request without nonce carries nonce %q", c.Nonce)
		}
		pfm := s.Authorize(t, testutil.DemoFlow())
		var pin map[string]any
		s.PostForm(t, "/oauth2/introspect", testutil.DemoClientID, testutil.DemoClientSecret, url.Values{"token": {pfm.AccessToken}}).JSON(t, &pin)
		if other, _ := pin["sub"].(string); other == "" || other == sub || other == "cus_alice" {
			t.Errorf("demo-pfm sees alice as %q, demo-aggregator as %q: want two different opaque subjects", other, sub)
		}

		// The audit log keeps the internal id: the userinfo reads are
		// data.access events of cus_alice.
		auditor := auditorToken(t, s)
		var page struct {
			Data []auditEvent `json:"data"`
		}
		s.Get(t, "/v1/audit/events?"+url.Values{"type": {"data.access"}, "client_id": {aggregatorID}}.Encode(), auditor).JSON(t, &page)
		reads := 0
		for _, ev := range page.Data {
			if ev.Path == "/userinfo" && ev.Outcome == "allowed" && ev.CustomerID == "cus_alice" {
				reads++
			}
		}
		if reads != 2 {
			t.Errorf("%d allowed userinfo reads of cus_alice in the audit log, want 2: %+v", reads, page.Data)
		}

		// A token without openid gets no userinfo: 403 insufficient_scope.
		if r := s.Get(t, "/userinfo", pfm.AccessToken); r.StatusCode != http.StatusForbidden ||
			!strings.Contains(r.Header.Get("WWW-Authenticate"), "insufficient_scope") {
			t.Errorf("userinfo with a token without openid: %d %s", r.StatusCode, r.Header.Get("WWW-Authenticate"))
		}
	})
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestAggregatorFrontChannelRefusals pins what a front-channel request
// (SPEC §10) still must satisfy, on both databases. Refusals after the
// redirect_uri is verified go back to the app as error redirects with state
// and iss (RFC 6749 §4.1.2.1, RFC 9207); a redirect_uri that is not
// registered, and a client that is not exempt from PAR, are answered here
// and nothing is sent anywhere.
func TestAggregatorFrontChannelRefusals(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		_, challenge := testutil.PKCE()
		base := func() url.Values {
			return url.Values{"response_type": {"code"}, "client_id": {aggregatorID}, "redirect_uri": {aggregatorRedirect},
				"scope": {strings.Join(aggregatorScopes, " ")}, "state": {"st-refusal"}, "nonce": {"n-refusal"},
				"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		}
		cases := []struct {
			name   string
			change func(q url.Values)
			// error is the error code of the redirect back to the app; ""
			// means no redirect: a 400 answered here.
			error, descHas string
		}{
			{"PKCE missing (RFC 7636, FAPI 2.0)", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") },
				"invalid_request", "code_challenge"},
			{"PKCE plain refused", func(q url.Values) {
				q.Set("code_challenge_method", "plain")
				q.Set("code_challenge", strings.Repeat("a", 43))
			},
				"invalid_request", "S256"},
			{"prohibited purpose (SPEC §4)", func(q url.Values) { q.Set("purpose", "advertising") }, "invalid_request", "prohibited"},
			{"purpose the client is not registered for", func(q url.Values) { q.Set("purpose", "credit_underwriting") },
				"invalid_request", "not registered"},
			{"scope the purpose does not allow", func(q url.Values) {
				q.Set("purpose", "account_verification")
				q.Set("scope", "openid accounts:read transactions:read")
			}, "invalid_scope", "transactions:read"},
			{"no data scope", func(q url.Values) { q.Set("scope", "openid profile") }, "invalid_scope", "data scope"},
			{"response_type token", func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type", ""},
			{"prompt=none (the consent screen is always shown)", func(q url.Values) { q.Set("prompt", "none") }, "invalid_request", "prompt=none"},
			{"max_age", func(q url.Values) { q.Set("max_age", "60") }, "invalid_request", "max_age"},
			{"redirect_uri on another loopback port (RFC 8252 leniency refused)", func(q url.Values) {
				q.Set("redirect_uri", "http://127.0.0.1:9999/callback")
			}, "", "redirect_uri"},
			{"redirect_uri not registered", func(q url.Values) { q.Set("redirect_uri", "https://attacker.example/cb") }, "", "redirect_uri"},
			{"redirect_uri missing", func(q url.Values) { q.Del("redirect_uri") }, "", "redirect_uri"},
			{"client not exempt from PAR", func(q url.Values) {
				q.Set("client_id", testutil.DemoClientID)
				q.Set("redirect_uri", testutil.DemoRedirectURI)
				q.Set("scope", "accounts:read")
				q.Set("purpose", "personal_finance_management")
			}, "", "Pushed Authorization Requests"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				q := base()
				tc.change(q)
				r := s.NewBrowser().Get(t, "/oauth2/authorize?"+q.Encode())
				if tc.error == "" {
					if r.StatusCode != http.StatusBadRequest || r.Header.Get("Location") != "" || !strings.Contains(string(r.Body), tc.descHas) {
						t.Fatalf("want 400 with no redirect mentioning %q; got %d Location=%q %s", tc.descHas, r.StatusCode, r.Header.Get("Location"), r.Body)
					}
					return
				}
				loc, err := r.Location()
				if r.StatusCode != http.StatusSeeOther || err != nil {
					t.Fatalf("want an error redirect; got %d %s", r.StatusCode, r.Body)
				}
				got := loc.Query()
				if !strings.HasPrefix(loc.String(), q.Get("redirect_uri")+"?") || got.Get("error") != tc.error ||
					got.Get("state") != "st-refusal" || got.Get("iss") != s.URL || !strings.Contains(got.Get("error_description"), tc.descHas) {
					t.Fatalf("redirect %s; want error %s mentioning %q", loc, tc.error, tc.descHas)
				}
			})
		}

		// The prohibited purpose was audited as purpose.blocked.
		var page struct {
			Data []auditEvent `json:"data"`
		}
		s.Get(t, "/v1/audit/events?"+url.Values{"type": {"purpose.blocked"}, "client_id": {aggregatorID}}.Encode(),
			auditorToken(t, s)).JSON(t, &page)
		if len(page.Data) != 1 || page.Data[0].Purpose != "advertising" || page.Data[0].Outcome != "denied" ||
			page.Data[0].Reason != "purpose_prohibited" {
			t.Errorf("purpose.blocked events of the aggregator: %+v", page.Data)
		}

		// The default purpose stands in for a missing one, and an explicit
		// one the client is registered for is honoured.
		for _, p := range []string{"", "account_verification"} {
			q := base()
			q.Set("scope", "openid accounts:read")
			if p != "" {
				q.Set("purpose", p)
			}
			r := s.NewBrowser().Get(t, "/oauth2/authorize?"+q.Encode())
			if loc, _ := r.Location(); r.StatusCode != http.StatusSeeOther || loc == nil || !strings.HasPrefix(loc.Path, "/consent") {
				t.Fatalf("purpose %q: %d %v %s", p, r.StatusCode, loc, r.Body)
			}
		}
	})
}
