package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/purpose"
)

func TestLoginSuccessRotatesSession(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	resp, body := b.get("/login")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /login: %d", resp.StatusCode)
	}
	var setCookie string
	for _, c := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, cookieName+"=") {
			setCookie = c
		}
	}
	for _, attr := range []string{"Path=/", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(setCookie, attr) {
			t.Errorf("cookie %q lacks %s", setCookie, attr)
		}
	}
	if strings.Contains(setCookie, "Secure") {
		t.Errorf("cookie %q is Secure although Deps.Secure is false", setCookie)
	}
	for _, field := range []string{`name="username"`, `name="password"`, `name="csrf_token"`, `name="return_to"`, `autocomplete="current-password"`} {
		if !strings.Contains(body, field) {
			t.Errorf("login form lacks %s", field)
		}
	}
	anonymous := b.sessionID()
	if anonymous == "" {
		t.Fatal("no anonymous session cookie for the login form")
	}

	loc := b.login("alice", "alice-password-1", "/consent?challenge=ch-pfm")
	if loc != "/consent?challenge=ch-pfm" {
		t.Fatalf("Location = %q, want the return_to", loc)
	}
	// Session fixation: the id changes at login and the old one is dead.
	loggedIn := b.sessionID()
	if loggedIn == "" || loggedIn == anonymous {
		t.Fatalf("session id not rotated at login: before %q after %q", anonymous, loggedIn)
	}
	if _, err := e.id.Session(context.Background(), anonymous); !errors.Is(err, identity.ErrNoSession) {
		t.Fatalf("pre-login session still valid: %v", err)
	}
	resp, body = b.get("/dashboard")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Alice Example") || !strings.Contains(body, "Your connected apps") ||
		!strings.Contains(body, `action="/logout"`) || !strings.Contains(body, "Everyday Checking") || strings.Contains(body, "Bob&#39;s Checking") {
		t.Fatalf("dashboard after login: %d\n%s", resp.StatusCode, body)
	}
	// Logged in, /login goes straight on.
	if resp, _ := b.get("/login"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard" {
		t.Fatalf("GET /login when logged in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := b.get("/"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard" {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestLoginFailureSaysNothingAboutTheUser(t *testing.T) {
	e := newEnv(t)
	var bodies []string
	for _, tc := range []struct{ user, pass string }{{"alice", "wrong"}, {"nobody", "alice-password-1"}} {
		b := e.browser()
		_, body := b.get("/login")
		before := b.sessionID()
		resp, body := b.post("/login", url.Values{"csrf_token": {csrfFrom(t, body)}, "username": {tc.user}, "password": {tc.pass}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: status %d, want 401", tc.user, resp.StatusCode)
		}
		for _, want := range []string{"The username or password is not right.", `role="alert"`, `value="` + tc.user + `"`, `aria-describedby="login-error"`, `id="login-error"`} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: page lacks %s", tc.user, want)
			}
		}
		if strings.Contains(body, tc.pass) {
			t.Errorf("%s: the password was echoed back", tc.user)
		}
		if b.sessionID() != before {
			t.Errorf("%s: session changed on a failed login", tc.user)
		}
		if resp, _ := b.get("/dashboard"); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("%s: dashboard reachable after failed login: %d", tc.user, resp.StatusCode)
		}
		bodies = append(bodies, strings.ReplaceAll(body, `value="`+tc.user+`"`, ""))
	}
	a, b := csrfRE.ReplaceAllString(bodies[0], ""), csrfRE.ReplaceAllString(bodies[1], "")
	if a != b {
		t.Fatal("wrong password and unknown user give different pages")
	}
}

func TestLoginThrottled(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	_, body := b.get("/login")
	token := csrfFrom(t, body)
	for i := range 5 {
		resp, _ := b.post("/login", url.Values{"csrf_token": {token}, "username": {"alice"}, "password": {"guess"}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i+1, resp.StatusCode)
		}
	}
	resp, body := b.post("/login", url.Values{"csrf_token": {token}, "username": {"alice"}, "password": {"alice-password-1"}})
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("6th attempt: %d, want 429", resp.StatusCode)
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 800 || secs > 900 {
		t.Fatalf("Retry-After = %q, want about 900 seconds", resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(body, "too many failed attempts") || !strings.Contains(body, "15 minutes") {
		t.Fatalf("429 page does not explain the wait:\n%s", body)
	}
	if resp, _ := b.get("/dashboard"); resp.StatusCode != http.StatusSeeOther {
		t.Fatal("throttled login with the right password logged in")
	}
}

func TestLoginCSRF(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	_, body := b.get("/login")
	token := csrfFrom(t, body)
	other := e.browser()
	_, otherBody := other.get("/login")

	for name, form := range map[string]url.Values{
		"missing token":           {"username": {"alice"}, "password": {"alice-password-1"}},
		"wrong token":             {"csrf_token": {token[:len(token)-1] + "x"}, "username": {"alice"}, "password": {"alice-password-1"}},
		"another session's token": {"csrf_token": {csrfFrom(t, otherBody)}, "username": {"alice"}, "password": {"alice-password-1"}},
	} {
		resp, page := b.post("/login", form)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "This form has expired") {
			t.Errorf("%s: %d, want 403", name, resp.StatusCode)
		}
	}
	// No cookie at all.
	fresh := e.browser()
	if resp, _ := fresh.post("/login", url.Values{"csrf_token": {token}, "username": {"alice"}, "password": {"alice-password-1"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("no session cookie: %d, want 403", resp.StatusCode)
	}
	var loggedIn int64
	e.db.Raw(`SELECT COUNT(*) FROM login_sessions WHERE customer_id IS NOT NULL`).Scan(&loggedIn)
	if loggedIn != 0 {
		t.Fatalf("%d logged-in sessions after forged logins", loggedIn)
	}
	var failures int64
	e.db.Raw(`SELECT COUNT(*) FROM login_throttle`).Scan(&failures)
	if failures != 0 {
		t.Fatal("a forged login reached the password check")
	}
}

// return_to must never send the browser to another site after login.
func TestLoginReturnToOpenRedirect(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ returnTo, want string }{
		{"/consent?challenge=abc", "/consent?challenge=abc"},
		{"/dashboard", "/dashboard"},
		{"//evil.example/x", "/dashboard"},
		{"https://evil.example/", "/dashboard"},
		{"/\\evil.example", "/dashboard"},
		{"\\\\evil.example", "/dashboard"},
		{"/\t/evil.example", "/dashboard"},
		{"/\n/evil.example", "/dashboard"},
		{" /evil", "/dashboard"},
		{"javascript:alert(1)", "/dashboard"},
		{"evil.example", "/dashboard"},
		{"", "/dashboard"},
	} {
		b := e.browser()
		_, body := b.get("/login?return_to=" + url.QueryEscape(tc.returnTo))
		if tc.want == "/dashboard" && tc.returnTo != "" && strings.Contains(body, "evil") {
			t.Errorf("return_to %q kept in the login form", tc.returnTo)
		}
		resp, _ := b.post("/login", url.Values{"csrf_token": {csrfFrom(t, body)}, "username": {"alice"}, "password": {"alice-password-1"}, "return_to": {tc.returnTo}})
		if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != tc.want {
			t.Errorf("return_to %q: %d Location %q, want %q", tc.returnTo, resp.StatusCode, got, tc.want)
		}
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice", "alice-password-1", "")
	sid := b.sessionID()
	_, body := b.get("/dashboard")
	token := csrfFrom(t, body)

	if resp, _ := b.post("/logout", url.Values{"csrf_token": {"forged"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout with a wrong token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := b.post("/logout", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without a token: %d, want 403", resp.StatusCode)
	}
	if _, err := e.id.Session(context.Background(), sid); err != nil {
		t.Fatalf("forged logout ended the session: %v", err)
	}
	resp, _ := b.post("/logout", url.Values{"csrf_token": {token}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("logout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := e.id.Session(context.Background(), sid); !errors.Is(err, identity.ErrNoSession) {
		t.Fatalf("session alive after logout: %v", err)
	}
	if b.sessionID() != "" {
		t.Fatal("cookie not cleared at logout")
	}
	if resp, _ := b.get("/dashboard"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?return_to=%2Fdashboard" {
		t.Fatalf("dashboard after logout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestStatic(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	resp, body := b.get("/static/style.css")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !strings.Contains(body, ":focus-visible") {
		t.Fatalf("style.css: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, p := range []string{"/static/", "/static/missing.css", "/static/../web.go", "/static/%2e%2e/web.go"} {
		if resp, _ := b.get(p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestSecureCookieAndRequiredDeps(t *testing.T) {
	e := newEnv(t)
	if _, err := New(Deps{Identity: e.id, Authorizer: e.auth, Accounts: &fakeAccounts{}}); err == nil {
		t.Fatal("New accepted Deps without Purposes")
	}
	if _, err := New(Deps{Identity: e.id, Authorizer: e.auth, Accounts: &fakeAccounts{}, Purposes: purpose.Default()}); err == nil {
		t.Fatal("New accepted Deps without the dashboard's Grants, Apps and History")
	}
	h, err := New(Deps{Identity: e.id, Authorizer: e.auth, Accounts: &fakeAccounts{}, Purposes: purpose.Default(),
		Grants: e.grants, Apps: e.apps, History: e.hist, Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	h.Register(r)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/login", nil))
	if c := rec.Header().Get("Set-Cookie"); !strings.Contains(c, "; Secure") || !strings.Contains(c, "HttpOnly") {
		t.Fatalf("Secure deps: cookie %q lacks Secure or HttpOnly", c)
	}
}
