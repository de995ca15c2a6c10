package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// testOP is a small OpenID Connect provider standing in for the bank's
// IdP: discovery, an authorization endpoint with a login form (the user
// types a username; users maps it to a subject), code + PKCE S256 + nonce,
// a token endpoint with client_secret_basic and single-use codes, and ES256
// id_tokens verified against its JWKS.
type testOP struct {
	srv                    *httptest.Server
	clientID, secret       string
	key                    *ecdsa.PrivateKey
	users                  map[string]string
	mu                     sync.Mutex
	redirectURI            string
	codes                  map[string]opCode
	authorizeSeen, tokened int
}

type opCode struct{ sub, nonce, challenge, redirect string }

var opLoginPage = template.Must(template.New("op").Parse(`<!doctype html><title>Bank IdP</title><h1>Bank login</h1>
<form method="post" action="/authorize/login">
{{range $k, $v := .}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<label for="op-user">Bank user</label><input id="op-user" name="user"><button id="op-go" type="submit">Continue</button></form>`))

func newTestOP(t *testing.T, users map[string]string) *testOP {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	op := &testOP{clientID: "consentgate-at-bank", secret: "idp-client-secret", key: key, users: users, codes: map[string]opCode{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss := op.srv.URL
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "authorization_endpoint": iss + "/authorize",
			"token_endpoint": iss + "/token", "jwks_uri": iss + "/jwks", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"ES256"},
			"code_challenge_methods_supported": []string{"S256"}})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &op.key.PublicKey, KeyID: "op-1", Algorithm: "ES256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		op.mu.Lock()
		op.authorizeSeen++
		redirect := op.redirectURI
		op.mu.Unlock()
		if q.Get("client_id") != op.clientID || q.Get("redirect_uri") != redirect || q.Get("response_type") != "code" ||
			q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" ||
			!strings.Contains(" "+q.Get("scope")+" ", " openid ") {
			http.Error(w, "bad authorization request: "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		_ = opLoginPage.Execute(w, map[string]string{"state": q.Get("state"), "nonce": q.Get("nonce"), "code_challenge": q.Get("code_challenge")})
	})
	mux.HandleFunc("POST /authorize/login", func(w http.ResponseWriter, r *http.Request) {
		sub, ok := op.users[r.PostFormValue("user")]
		if !ok {
			http.Error(w, "unknown bank user", http.StatusUnauthorized)
			return
		}
		code := rand.Text()
		op.mu.Lock()
		op.codes[code] = opCode{sub: sub, nonce: r.PostFormValue("nonce"), challenge: r.PostFormValue("code_challenge"), redirect: op.redirectURI}
		redirect := op.redirectURI
		op.mu.Unlock()
		http.Redirect(w, r, redirect+"?"+url.Values{"code": {code}, "state": {r.PostFormValue("state")}}.Encode(), http.StatusSeeOther)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		op.mu.Lock()
		c, ok := op.codes[r.PostFormValue("code")]
		delete(op.codes, r.PostFormValue("code"))
		op.tokened++
		op.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		switch {
		case id != op.clientID || secret != op.secret:
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		case !ok || r.PostFormValue("grant_type") != "authorization_code" || r.PostFormValue("redirect_uri") != c.redirect ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: op.key, KeyID: "op-1"}}, nil)
		now := time.Now()
		idt, err := jwt.Signed(signer).Claims(map[string]any{"iss": op.srv.URL, "sub": c.sub, "aud": op.clientID,
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "nonce": c.nonce}).Serialize()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 300, "id_token": idt})
	})
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

// start runs a consentgate node that logs customers in at op.
func (op *testOP) start(t *testing.T, d store.Dialect, passwordLogin bool) *testutil.Server {
	return testutil.Start(t, d, testutil.Options{Configure: func(c *config.Config) {
		c.CustomerIDP, c.CustomerIDPClientID, c.CustomerIDPClientSecret = op.srv.URL, op.clientID, op.secret
		c.NoPasswordLogin = !passwordLogin
		op.mu.Lock()
		op.redirectURI = c.Issuer + "/login/idp/callback"
		op.mu.Unlock()
	}})
}

// provideCustomer feeds, as the demo data provider, a customer linked to
// IdP subject sub with one checking account, and returns the account id
// apps see.
func provideCustomer(t *testing.T, s *testutil.Server, id, sub string) {
	t.Helper()
	r := s.ClientCredentials(t, "demo-provider", "demo-provider-secret", "provider:write")
	var tok testutil.Tokens
	r.JSON(t, &tok)
	for _, step := range []struct{ path, body string }{
		{"/v1/provider/customers", `{"records":[{"id":"` + id + `","display_name":"Dana Federated","idp_subject":"` + sub + `"}]}`},
		{"/v1/provider/accounts", `{"records":[{"id":"` + id + `-acc","customer_id":"` + id + `","type":"checking","display_name":"Dana's Checking","last4":"7788","currency":"USD"}]}`},
	} {
		req := s.NewRequest(t, http.MethodPost, step.path, bytes.NewBufferString(step.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		if r := s.Do(t, req); r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", step.path, r.StatusCode, r.Body)
		}
	}
}

// TestCustomerIDPJourney is issue 16 item 5 on SQLite and PostgreSQL: the
// data provider creates a customer with an IdP subject; the customer logs
// in at the bank's IdP in Chromium (code + PKCE + state + nonce), consents,
// and the app reads that customer's data. Then: a subject linked to no
// customer gets a clear page, not a 500; a stale or forged callback is
// refused; with password login off, /login offers only the IdP.
func TestCustomerIDPJourney(t *testing.T) {
	chrome := newChrome(t)
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			op := newTestOP(t, map[string]string{"dana": "bank-sub-4711", "stranger": "bank-sub-0000"})
			s := op.start(t, d, true)
			provideCustomer(t, s, "dana", "bank-sub-4711")

			fr := testutil.DemoFlow()
			fr.Scopes = []string{"accounts:read"}
			requestURI, verifier := s.Push(t, fr)
			authURL := s.URL + "/oauth2/authorize?" + url.Values{"client_id": {fr.ClientID}, "request_uri": {requestURI}}.Encode()
			chromeStep(t, chrome, "intercept the app's callback", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: testutil.DemoRedirectURI + "*"}}})
				return err
			}))
			wctx, cancel := context.WithTimeout(chrome, time.Minute)
			defer cancel()
			paused := chromedp.Events(wctx, fetch.RequestPaused)
			chromeStep(t, chrome, "log in at the bank's IdP and consent",
				chromedp.Navigate(authURL),
				chromedp.WaitVisible(chromedp.ID("idp-login")),
				chromedp.Click(chromedp.ID("idp-login")),
				chromedp.WaitVisible(chromedp.ID("op-user")),
				chromedp.SendKeys(chromedp.ID("op-user"), "dana"),
				chromedp.Click(chromedp.ID("op-go")),
				chromedp.WaitVisible(chromedp.CSS(`form[action="/consent"]`)),
				chromedp.SendKeys(chromedp.ID("account-0"), " "),
				chromedp.SendKeys(chromedp.CSS(`button[value="approve"]`), "\r"),
			)
			var callback string
			for ev, err := range paused {
				if err != nil {
					t.Fatalf("waiting for the redirect to the app: %v", err)
				}
				callback = ev.Request.URL
				chromeStep(t, chrome, "answer the callback", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
					_, err := cdp.Call(ctx, tg, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: 200,
						ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "text/html"}}, Body: []byte("<!doctype html><title>App</title>")})
					return err
				}))
				break
			}
			chromeStep(t, chrome, "stop intercepting", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, fetch.Disable, cdp.Empty{})
				return err
			}))
			cb, err := url.Parse(callback)
			if err != nil || cb.Query().Get("code") == "" {
				t.Fatalf("callback %q: %v", callback, err)
			}
			var tok testutil.Tokens
			if r := s.Exchange(t, fr, cb.Query().Get("code"), verifier); r.StatusCode != http.StatusOK {
				t.Fatalf("token: %d %s", r.StatusCode, r.Body)
			} else {
				r.JSON(t, &tok)
			}
			r := s.Get(t, "/v1/accounts", tok.AccessToken)
			if r.StatusCode != http.StatusOK || !bytes.Contains(r.Body, []byte("Dana's Checking")) || bytes.Contains(r.Body, []byte("alice")) {
				t.Fatalf("the app reads dana's data: %d %s", r.StatusCode, r.Body)
			}
			if op.tokened != 1 {
				t.Errorf("the IdP's token endpoint was called %d times, want 1", op.tokened)
			}

			// A bank login linked to no customer: a clear page, not a 500.
			b := s.NewBrowser()
			start := b.Get(t, "/login/idp")
			loc, _ := url.Parse(start.Header.Get("Location"))
			if start.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), op.srv.URL+"/authorize?") {
				t.Fatalf("/login/idp: %d %s", start.StatusCode, loc)
			}
			q := loc.Query()
			form := url.Values{"user": {"stranger"}, "state": {q.Get("state")}, "nonce": {q.Get("nonce")}, "code_challenge": {q.Get("code_challenge")}}
			resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).PostForm(op.srv.URL+"/authorize/login", form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			back := b.Get(t, resp.Header.Get("Location"))
			if back.StatusCode != http.StatusForbidden || !bytes.Contains(back.Body, []byte("No accounts are linked to this login")) {
				t.Fatalf("unlinked subject: %d %s", back.StatusCode, back.Body)
			}
			if r := b.Get(t, "/dashboard"); r.StatusCode != http.StatusSeeOther {
				t.Errorf("an unlinked bank login opened a session: %d", r.StatusCode)
			}
			// A callback without the browser's state cookie (forged, stale).
			if r := s.NewBrowser().Get(t, "/login/idp/callback?code=x&state=y"); r.StatusCode != http.StatusBadRequest || !bytes.Contains(r.Body, []byte("This login has expired")) {
				t.Fatalf("callback without state: %d %s", r.StatusCode, r.Body)
			}

			// Password login off: /login offers only the IdP and refuses passwords.
			only := op.start(t, d, false)
			lb := only.NewBrowser()
			page := lb.Get(t, "/login")
			if page.StatusCode != http.StatusOK || !bytes.Contains(page.Body, []byte(`id="idp-login"`)) || bytes.Contains(page.Body, []byte(`name="password"`)) {
				t.Fatalf("login page with password login off: %d %s", page.StatusCode, page.Body)
			}
			post := lb.Post(t, "/login", url.Values{"username": {"alice"}, "password": {"alice-password-1"}})
			if post.StatusCode != http.StatusForbidden || !bytes.Contains(post.Body, []byte("Password login is turned off")) {
				t.Fatalf("password POST with password login off: %d %s", post.StatusCode, post.Body)
			}
		})
	}
}
