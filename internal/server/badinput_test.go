package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/testutil"
)

// oauthError asserts an RFC 6749 §5.2 error answer.
func oauthError(t *testing.T, r *testutil.Response, status int, code string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	if r.StatusCode != status || e.Error != code {
		t.Fatalf("got %d %s, want %d %s", r.StatusCode, r.Body, status, code)
	}
}

// problem asserts an RFC 9457 answer with a SPEC §3 code.
func problem(t *testing.T, r *testutil.Response, status int, code string) {
	t.Helper()
	var p struct {
		Code   string `json:"code"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(r.Body, &p)
	if r.StatusCode != status || p.Code != code || p.Status != status || p.Detail == "" ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("got %d %s %s, want %d %s", r.StatusCode, r.Header.Get("Content-Type"), r.Body, status, code)
	}
	if strings.Contains(string(r.Body), `"data"`) {
		t.Fatalf("error carries data: %s", r.Body)
	}
}

// TestBadAuthorizationRequests: each malformed request is refused with the
// right OAuth error and issues nothing.
func TestBadAuthorizationRequests(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		fr := testutil.DemoFlow()
		_, challenge := testutil.PKCE()
		par := func(mod func(url.Values)) *testutil.Response {
			form := testutil.PARForm(fr, "state-1", challenge)
			mod(form)
			return s.PostForm(t, "/oauth2/par", fr.ClientID, fr.ClientSecret, form)
		}
		cases := []struct {
			name   string
			mod    func(url.Values)
			status int
			code   string
		}{
			{"PKCE missing (RFC 7636 §4.4.1, FAPI 2.0)", func(f url.Values) { f.Del("code_challenge"); f.Del("code_challenge_method") }, 400, "invalid_request"},
			{"PKCE plain refused", func(f url.Values) { f.Set("code_challenge_method", "plain") }, 400, "invalid_request"},
			{"redirect_uri not registered", func(f url.Values) { f.Set("redirect_uri", "http://127.0.0.1:8765/evil") }, 400, "invalid_request"},
			{"unknown scope", func(f url.Values) { f.Set("scope", "accounts:read payments:write") }, 400, "invalid_scope"},
			{"purpose missing", func(f url.Values) { f.Del("purpose") }, 400, "invalid_request"},
			{"purpose prohibited", func(f url.Values) { f.Set("purpose", "advertising") }, 400, "invalid_request"},
			{"purpose not registered for the client", func(f url.Values) { f.Set("purpose", "credit_underwriting") }, 400, "invalid_request"},
			{"scope the purpose does not allow", func(f url.Values) {
				f.Set("purpose", "account_verification")
				f.Set("scope", "accounts:read transactions:read")
			}, 400, "invalid_scope"},
			{"response_type token", func(f url.Values) { f.Set("response_type", "token") }, 400, "unsupported_response_type"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { oauthError(t, par(c.mod), c.status, c.code) })
		}
		t.Run("wrong client secret", func(t *testing.T) {
			r := s.PostForm(t, "/oauth2/par", fr.ClientID, "wrong", testutil.PARForm(fr, "s", challenge))
			oauthError(t, r, http.StatusUnauthorized, "invalid_client")
		})
		t.Run("prohibited purpose names the reason", func(t *testing.T) {
			r := par(func(f url.Values) { f.Set("purpose", "targeted_advertising") })
			if !strings.Contains(string(r.Body), "prohibited") {
				t.Fatalf("error_description does not say prohibited: %s", r.Body)
			}
		})
		t.Run("authorize without PAR", func(t *testing.T) {
			q := testutil.PARForm(fr, "s", challenge)
			r := s.NewBrowser().Get(t, "/oauth2/authorize?"+q.Encode())
			if r.StatusCode == http.StatusSeeOther {
				if loc, _ := r.Location(); loc.Query().Get("code") != "" || loc.Query().Get("error") == "" {
					t.Fatalf("authorize without PAR: %s", loc)
				}
			} else if r.StatusCode != http.StatusBadRequest {
				t.Fatalf("authorize without PAR: %d", r.StatusCode)
			}
		})
		t.Run("request_uri single use", func(t *testing.T) {
			requestURI, _ := s.Push(t, fr)
			b := s.NewBrowser()
			q := "/oauth2/authorize?" + url.Values{"client_id": {fr.ClientID}, "request_uri": {requestURI}}.Encode()
			if r := b.Get(t, q); r.StatusCode != http.StatusSeeOther {
				t.Fatalf("first use: %d %s", r.StatusCode, r.Body)
			}
			if r := b.Get(t, q); r.StatusCode != http.StatusBadRequest {
				t.Fatalf("second use: %d %s", r.StatusCode, r.Body)
			}
		})
		t.Run("request_uri expired", func(t *testing.T) {
			requestURI, _ := s.Push(t, fr)
			s.Clock.Advance(61 * time.Second)
			q := "/oauth2/authorize?" + url.Values{"client_id": {fr.ClientID}, "request_uri": {requestURI}}.Encode()
			if r := s.NewBrowser().Get(t, q); r.StatusCode != http.StatusBadRequest {
				t.Fatalf("expired request_uri: %d %s", r.StatusCode, r.Body)
			}
		})
	})
}

// TestBadTokenRequests: code replay, wrong verifier, another client's code.
func TestBadTokenRequests(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		fr := testutil.DemoFlow()
		code := func() (string, string) {
			requestURI, verifier := s.Push(t, fr)
			return s.Consent(t, s.NewBrowser(), fr, requestURI).Query().Get("code"), verifier
		}
		t.Run("wrong PKCE verifier", func(t *testing.T) {
			c, _ := code()
			other, _ := testutil.PKCE()
			oauthError(t, s.Exchange(t, fr, c, other), 400, "invalid_grant")
		})
		t.Run("code replay revokes what it issued (RFC 6749 §4.1.2)", func(t *testing.T) {
			c, v := code()
			r := s.Exchange(t, fr, c, v)
			if r.StatusCode != 200 {
				t.Fatalf("first exchange: %d %s", r.StatusCode, r.Body)
			}
			var tok testutil.Tokens
			r.JSON(t, &tok)
			oauthError(t, s.Exchange(t, fr, c, v), 400, "invalid_grant")
			if r := s.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("token of a replayed code still works: %d", r.StatusCode)
			}
		})
		t.Run("another client's code", func(t *testing.T) {
			id, secret, err := s.Node.Provider().CreateClient(context.Background(), oauth.ClientSpec{
				Name: "Other app", RedirectURIs: []string{fr.RedirectURI}, GrantTypes: []string{"authorization_code"},
				Scopes: fr.Scopes, Purposes: []string{fr.Purpose},
			})
			if err != nil {
				t.Fatal(err)
			}
			c, v := code()
			other := fr
			other.ClientID, other.ClientSecret = id, secret
			oauthError(t, s.Exchange(t, other, c, v), 400, "invalid_grant")
		})
		t.Run("client_credentials refused for the data app", func(t *testing.T) {
			r := s.ClientCredentials(t, fr.ClientID, fr.ClientSecret, "accounts:read")
			if r.StatusCode == http.StatusOK {
				t.Fatalf("demo-pfm got a client_credentials token: %s", r.Body)
			}
		})
		t.Run("denied consent", func(t *testing.T) {
			deny := fr
			deny.Deny = true
			requestURI, _ := s.Push(t, deny)
			loc := s.Consent(t, s.NewBrowser(), deny, requestURI)
			if loc.Query().Get("error") != "access_denied" || loc.Query().Get("iss") != s.URL || loc.Query().Get("code") != "" {
				t.Fatalf("deny redirect: %s", loc)
			}
		})
	})
}

// TestBadDataRequests: the data API answers every bad request with a clear
// 4xx and never with data it should not serve.
func TestBadDataRequests(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		fr := testutil.DemoFlow()
		var ids []string
		tok := s.Authorize(t, fr)
		var accts struct {
			Data []account `json:"data"`
		}
		s.Get(t, "/v1/accounts", tok.AccessToken).JSON(t, &accts)
		for _, a := range accts.Data {
			ids = append(ids, a.AccountID)
		}
		one := fr
		one.Accounts = ids[:1]
		narrow := s.Authorize(t, one)
		bob := fr
		bob.Username, bob.Password = "bob", "bob-password-1"
		bobTok := s.Authorize(t, bob)
		var bobAccts struct {
			Data []account `json:"data"`
		}
		s.Get(t, "/v1/accounts", bobTok.AccessToken).JSON(t, &bobAccts)

		verify := fr
		verify.Purpose = "account_verification"
		verify.Scopes = []string{"accounts:read"}
		accountsOnly := s.Authorize(t, verify)

		tx := "/v1/accounts/" + ids[0] + "/transactions"
		cases := []struct {
			name, path, token string
			status            int
			code              string
		}{
			{"garbage cursor", tx + "?cursor=not-a-cursor", tok.AccessToken, 400, "invalid_cursor"},
			{"limit over 500", tx + "?limit=501", tok.AccessToken, 400, "invalid_request"},
			{"limit zero", tx + "?limit=0", tok.AccessToken, 400, "invalid_request"},
			{"limit negative", tx + "?limit=-5", tok.AccessToken, 400, "invalid_request"},
			{"limit not a number", tx + "?limit=ten", tok.AccessToken, 400, "invalid_request"},
			{"invalid date", tx + "?from=2026-13-45", tok.AccessToken, 400, "invalid_request"},
			{"from after to", tx + "?from=2026-06-02&to=2026-06-01", tok.AccessToken, 400, "invalid_request"},
			{"bad status", tx + "?status=settled", tok.AccessToken, 400, "invalid_request"},
			{"before the history window", tx + "?from=" + time.Now().AddDate(-3, 0, 0).Format("2006-01-02"), tok.AccessToken, 400, "history_window_exceeded"},
			{"unknown account", "/v1/accounts/acc_nope", tok.AccessToken, 404, "account_not_found"},
			{"unknown account balances", "/v1/accounts/acc_nope/balances", tok.AccessToken, 404, "account_not_found"},
			{"another customer's account", "/v1/accounts/" + bobAccts.Data[0].AccountID, tok.AccessToken, 404, "account_not_found"},
			{"another customer's transactions", "/v1/accounts/" + bobAccts.Data[0].AccountID + "/transactions", tok.AccessToken, 404, "account_not_found"},
			{"account not ticked", "/v1/accounts/" + ids[1], narrow.AccessToken, 404, "account_not_found"},
			{"account not ticked, balances", "/v1/accounts/" + ids[1] + "/balances", narrow.AccessToken, 404, "account_not_found"},
			{"prohibited Data-Purpose", "/v1/accounts", "", 403, "purpose_prohibited"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				token := c.token
				var headers []string
				if c.code == "purpose_prohibited" {
					token, headers = tok.AccessToken, []string{"Data-Purpose", "advertising"}
				}
				problem(t, s.Get(t, c.path, token, headers...), c.status, c.code)
			})
		}
		t.Run("narrow consent lists only the ticked account", func(t *testing.T) {
			var got struct {
				Data []account `json:"data"`
			}
			s.Get(t, "/v1/accounts", narrow.AccessToken).JSON(t, &got)
			if len(got.Data) != 1 || got.Data[0].AccountID != ids[0] {
				t.Fatalf("narrow consent: %+v", got)
			}
		})
		t.Run("missing scope is 403 insufficient_scope", func(t *testing.T) {
			r := s.Get(t, "/v1/accounts/"+ids[0]+"/balances", accountsOnly.AccessToken)
			if r.StatusCode != http.StatusForbidden || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
				t.Fatalf("missing scope: %d %v %s", r.StatusCode, r.Header, r.Body)
			}
		})
		for name, req := range map[string]func() *http.Request{
			"no token": func() *http.Request { return s.NewRequest(t, "GET", "/v1/accounts", nil) },
			"garbage token": func() *http.Request {
				r := s.NewRequest(t, "GET", "/v1/accounts", nil)
				r.Header.Set("Authorization", "Bearer garbage")
				return r
			},
			"token in the query (RFC 6750 §2.3 not supported)": func() *http.Request {
				return s.NewRequest(t, "GET", "/v1/accounts?access_token="+url.QueryEscape(tok.AccessToken), nil)
			},
			"refresh token as access token": func() *http.Request {
				r := s.NewRequest(t, "GET", "/v1/accounts", nil)
				r.Header.Set("Authorization", "Bearer "+tok.RefreshToken)
				return r
			},
		} {
			t.Run(name, func(t *testing.T) {
				r := s.Do(t, req())
				if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("%d %v %s", r.StatusCode, r.Header, r.Body)
				}
			})
		}
		t.Run("access token expires after 300 s", func(t *testing.T) {
			fresh := s.Authorize(t, fr)
			s.Clock.Advance(301 * time.Second)
			if r := s.Get(t, "/v1/accounts", fresh.AccessToken); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("expired token: %d", r.StatusCode)
			}
		})
	})
}
