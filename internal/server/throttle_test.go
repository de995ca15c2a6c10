package server_test

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/consentgate/consentgate/internal/testutil"
)

// sessionCookie is the browser's consentgate session cookie ("" if none).
func sessionCookie(t *testing.T, s *testutil.Server, b *testutil.Browser) string {
	t.Helper()
	u, _ := url.Parse(s.URL)
	for _, c := range b.Cookies(u) {
		if c.Name == "cg_session" {
			return c.Value
		}
	}
	return ""
}

// tryLogin posts the login form once from a fresh page of b.
func tryLogin(t *testing.T, b *testutil.Browser, user, password string) *testutil.Response {
	t.Helper()
	form := testutil.ParseForm(t, b.Get(t, "/login").Body, "/login").Hidden
	form.Set("username", user)
	form.Set("password", password)
	return b.Post(t, "/login", form)
}

// wantThrottled checks a 429 with a Retry-After of about the 15 minute lockout.
func wantThrottled(t *testing.T, r *testutil.Response, what string) {
	t.Helper()
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if r.StatusCode != http.StatusTooManyRequests || err != nil || secs < 800 || secs > 900 {
		t.Fatalf("%s: %d Retry-After %q, want 429 and about 900 s", what, r.StatusCode, r.Header.Get("Retry-After"))
	}
}

// TestLoginThrottlingEndToEnd drives the real login page: five wrong
// passwords lock the username (even the right password then gets 429 with
// Retry-After) without locking others; twenty failures from one address
// lock that address for every username. A successful login gets a new
// session id, so a session planted before login is worth nothing after it.
func TestLoginThrottlingEndToEnd(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		attacker := s.NewBrowser()
		for i := range 5 {
			if r := tryLogin(t, attacker, "alice", "wrong-"+strconv.Itoa(i)); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("wrong password %d: %d", i, r.StatusCode)
			}
		}
		wantThrottled(t, tryLogin(t, s.NewBrowser(), "alice", "alice-password-1"), "alice after 5 failures, right password")
		wantThrottled(t, tryLogin(t, s.NewBrowser(), "ALICE", "alice-password-1"), "a case variant of alice")

		// bob, from the same address, is not locked (5 of the address's 20).
		b := s.NewBrowser()
		b.Get(t, "/login")
		planted := sessionCookie(t, s, b)
		if planted == "" {
			t.Fatal("the login page set no session cookie")
		}
		if r := tryLogin(t, b, "bob", "bob-password-1"); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("bob: %d %s", r.StatusCode, r.Body)
		}
		fresh := sessionCookie(t, s, b)
		if fresh == "" || fresh == planted {
			t.Fatalf("session id not renewed at login (before %q, after %q)", planted, fresh)
		}
		if r := b.Get(t, "/dashboard"); r.StatusCode != http.StatusOK {
			t.Fatalf("dashboard with the new session: %d", r.StatusCode)
		}
		// The victim's pre-login id, which an attacker could have planted,
		// does not open the dashboard.
		req := s.NewRequest(t, http.MethodGet, "/dashboard", nil)
		req.AddCookie(&http.Cookie{Name: "cg_session", Value: planted})
		if r := s.Do(t, req); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("dashboard with the pre-login session id: %d", r.StatusCode)
		}

		// Per address: 15 more failures on made-up names make 20.
		for i := range 15 {
			if r := tryLogin(t, attacker, "nobody-"+strconv.Itoa(i), "x"); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("failure %d on a made-up name: %d", i, r.StatusCode)
			}
		}
		wantThrottled(t, tryLogin(t, s.NewBrowser(), "bob", "bob-password-1"), "bob from a locked address")
	})
}
