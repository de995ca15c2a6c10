package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/httpapi"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
)

// raw sends a request as a hostile client would: no openapi check (413,
// 414 and 431 are transport answers, not API responses), body read whole.
func raw(t *testing.T, method, u, ctype, body string, mod func(*http.Request)) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if mod != nil {
		mod(req)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// TestHostileRequests: every malformed or oversized request is answered
// 4xx in the endpoint's error format, refused before it changes anything,
// and the node goes on serving a normal client. On both databases:
// PostgreSQL refuses NUL and invalid UTF-8 in text, so a byte that slips
// through to a query is a 500 there and nothing on SQLite.
func TestHostileRequests(t *testing.T) {
	eachDialect(t, hostileRequests)
}

func hostileRequests(t *testing.T, s *testutil.Server) {
	fr := testutil.DemoFlow()
	tok := s.Authorize(t, fr)
	const form = "application/x-www-form-urlencoded"
	basic := func(r *http.Request) { r.SetBasicAuth(fr.ClientID, fr.ClientSecret) }
	_, challenge := testutil.PKCE()
	par := testutil.PARForm(fr, "st", challenge).Encode()
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok.AccessToken) }

	cases := []struct {
		name, method, path, ctype, body string
		mod                             func(*http.Request)
		status                          int
		code                            string // OAuth error, or problem code outside /oauth2
	}{
		// RFC 6749 §3.1: parameters must not be included more than once.
		{"PAR with scope twice", "POST", "/oauth2/par", form, par + "&scope=accounts:read", basic, 400, "invalid_request"},
		{"PAR with purpose twice", "POST", "/oauth2/par", form, par + "&purpose=personal_finance_management", basic, 400, "invalid_request"},
		{"PAR with client_id in query and body", "POST", "/oauth2/par?client_id=demo-pfm", form, par, basic, 400, "invalid_request"},
		{"token with grant_type twice", "POST", "/oauth2/token", form, "grant_type=refresh_token&grant_type=client_credentials&refresh_token=" + tok.RefreshToken, basic, 400, "invalid_request"},
		{"introspect with token twice", "POST", "/oauth2/introspect", form, "token=a&token=" + tok.AccessToken, basic, 400, "invalid_request"},
		{"revoke with token twice", "POST", "/oauth2/revoke", form, "token=x&token=" + tok.RefreshToken, basic, 400, "invalid_request"},
		{"authorize with request_uri twice", "GET", "/oauth2/authorize?client_id=demo-pfm&request_uri=a&request_uri=b", "", "", nil, 400, "invalid_request"},
		// NUL bytes and invalid UTF-8.
		{"NUL in client_id", "POST", "/oauth2/token", form, "grant_type=client_credentials&client_id=demo%00pfm", basic, 400, "invalid_request"},
		{"invalid UTF-8 in PAR state", "POST", "/oauth2/par", form, strings.Replace(par, "state=st", "state=%ff%fe", 1), basic, 400, "invalid_request"},
		{"NUL in a data query", "GET", "/v1/accounts?status=%00", "", "", bearer, 400, "invalid_request"},
		{"invalid UTF-8 in a login form", "POST", "/login", form, "username=%c3%28&password=x", nil, 400, "invalid_request"},
		{"NUL in a grant id", "GET", "/oauth2/grants/%00", "", "", basic, 404, "not_found"},
		{"invalid UTF-8 in a grant id", "DELETE", "/oauth2/grants/%ff", "", "", basic, 404, "not_found"},
		{"invalid UTF-8 in a dashboard path", "GET", "/dashboard/consents/%ff%fe", "", "", nil, 404, "not_found"},
		{"invalid UTF-8 in an account id", "GET", "/v1/accounts/%ff", "", "", bearer, 404, "account_not_found"},
		{"NUL in an account id", "GET", "/v1/accounts/a%00/transactions", "", "", bearer, 404, "account_not_found"},
		{"invalid UTF-8 in Data-Purpose", "GET", "/v1/accounts", "", "", func(r *http.Request) {
			bearer(r)
			r.Header.Set("Data-Purpose", "personal_finance_management\xff")
		}, 403, "purpose_not_consented"},
		// Sizes.
		{"OAuth form over 64 KiB", "POST", "/oauth2/par", form, par + "&x=" + strings.Repeat("a", httpapi.MaxOAuthBody), basic, 413, "invalid_request"},
		{"login form over 1 MiB", "POST", "/login", form, "username=" + strings.Repeat("a", httpapi.MaxBody), nil, 413, "payload_too_large"},
		{"query over 4 KiB", "GET", "/v1/accounts?q=" + strings.Repeat("a", httpapi.MaxQueryBytes), "", "", bearer, 414, "invalid_request"},
		{"too many header fields", "GET", "/v1/accounts", "", "", func(r *http.Request) {
			bearer(r)
			for i := range httpapi.MaxHeaderFields {
				r.Header.Add("X-Pad-"+strconv.Itoa(i), "1")
			}
		}, 431, "invalid_request"},
		{"headers over 32 KiB", "GET", "/v1/accounts", "", "", func(r *http.Request) {
			r.Header.Set("X-Pad", strings.Repeat("a", 40<<10))
		}, 431, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, h, body := raw(t, c.method, s.URL+c.path, c.ctype, c.body, c.mod)
			if status != c.status {
				t.Fatalf("status %d, want %d: %s", status, c.status, body)
			}
			if c.code == "" {
				return // net/http's own answer
			}
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("body is not JSON: %s %q", h.Get("Content-Type"), body)
			}
			got := m["code"]
			if strings.HasPrefix(c.path, "/oauth2") {
				got = m["error"]
			} else if !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("content type %q", h.Get("Content-Type"))
			}
			if got != c.code {
				t.Fatalf("code %v, want %s: %s", got, c.code, body)
			}
		})
	}

	t.Run("NUL in a header (net/http refuses it; no client library sends it)", func(t *testing.T) {
		c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET /v1/accounts HTTP/1.1\r\nHost: x\r\nData-Purpose: a\x00b\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		if !strings.HasPrefix(line, "HTTP/1.1 400") {
			t.Fatalf("answer %q", line)
		}
	})
	t.Run("a refused duplicate does not spend the code", func(t *testing.T) {
		requestURI, verifier := s.Push(t, fr)
		code := s.Consent(t, s.NewBrowser(), fr, requestURI).Query().Get("code")
		body := url.Values{"grant_type": {"authorization_code"}, "code": {code, code}, "redirect_uri": {fr.RedirectURI},
			"code_verifier": {verifier}}.Encode()
		if status, _, b := raw(t, "POST", s.URL+"/oauth2/token", form, body, basic); status != 400 {
			t.Fatalf("duplicate code: %d %s", status, b)
		}
		if r := s.Exchange(t, fr, code, verifier); r.StatusCode != http.StatusOK {
			t.Fatalf("the code after a refused duplicate: %d %s", r.StatusCode, r.Body)
		}
	})
	if r := s.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusOK {
		t.Fatalf("after the hostile requests a normal call gets %d", r.StatusCode)
	}
}

// TestSlowloris: connections that trickle their headers a byte at a time,
// or send nothing, are closed once ReadHeaderTimeout (5 s) has passed,
// while a normal client is served all along.
func TestSlowloris(t *testing.T) {
	s := testutil.Start(t, store.SQLite, testutil.Options{})
	tok := s.Authorize(t, testutil.DemoFlow())
	addr := strings.TrimPrefix(s.URL, "http://")
	timeout := s.Node.HTTPServer().ReadHeaderTimeout
	const conns = 50
	start := time.Now()
	closedAfter := make(chan time.Duration, conns)
	var wg sync.WaitGroup
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		wg.Go(func() {
			// Half trickle a request, half stay silent.
			if i%2 == 0 {
				go func() {
					for _, b := range []byte("GET /v1/accounts HTTP/1.1\r\nHost: x\r\nX-Slow: ") {
						if _, err := c.Write([]byte{b}); err != nil {
							return
						}
						time.Sleep(200 * time.Millisecond)
					}
					for {
						if _, err := c.Write([]byte("a")); err != nil {
							return
						}
						time.Sleep(200 * time.Millisecond)
					}
				}()
			}
			_ = c.SetReadDeadline(time.Now().Add(3 * timeout))
			_, _ = io.Copy(io.Discard, bufio.NewReader(c)) // returns when the server closes
			closedAfter <- time.Since(start)
		})
	}
	// A normal client is served while the slow ones hold their connections.
	for i := 0; time.Since(start) < timeout; i++ {
		if r := s.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusOK {
			t.Fatalf("normal call %d during the attack: %d", i, r.StatusCode)
		}
		time.Sleep(250 * time.Millisecond)
	}
	wg.Wait()
	close(closedAfter)
	var slowest time.Duration
	for d := range closedAfter {
		slowest = max(slowest, d)
	}
	if slowest > timeout+2*time.Second {
		t.Fatalf("a slow connection stayed open %s (ReadHeaderTimeout %s)", slowest, timeout)
	}
	t.Logf("%d slow connections all closed within %s (ReadHeaderTimeout %s)", conns, slowest.Round(time.Millisecond), timeout)
}
