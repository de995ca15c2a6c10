package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/store"
)

// env is a provider behind a gin router on a fresh database: PostgreSQL
// when CONSENTGATE_TEST_POSTGRES_URL is set, SQLite otherwise.
type env struct {
	t      *testing.T
	p      *Provider
	h      http.Handler
	clock  *testClock
	events *eventLog
}

func newEnv(t *testing.T) *env {
	t.Helper()
	gin.SetMode(gin.TestMode)
	var db *store.DB
	if os.Getenv(postgresURLEnv) != "" {
		db = openPostgres(t)
	} else {
		db = openSQLite(t)
	}
	seedPeople(t, db)
	e := &env{t: t, clock: newClock(), events: &eventLog{}}
	e.p = newTestProvider(t, db, e.clock, e.events)
	r := gin.New()
	e.p.Register(r)
	e.h = r
	return e
}

// do sends a request through the router.
func (e *env) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// post sends a form with HTTP Basic client authentication (skipped when
// clientID is "").
func (e *env) post(path, clientID, secret string, form url.Values) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	return e.do(req)
}

func (e *env) get(path string) *httptest.ResponseRecorder {
	return e.do(httptest.NewRequest(http.MethodGet, path, nil))
}

// jsonBody decodes a response body.
func jsonBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return m
}

// wantOAuthError checks an RFC 6749 error answer.
func wantOAuthError(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) map[string]any {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	m := jsonBody(t, rec)
	if m["error"] != code {
		t.Fatalf("error = %v, want %s; body %s", m["error"], code, rec.Body)
	}
	return m
}

// flow is one client's authorization request.
type flow struct {
	clientID, secret, redirect string
	scope, purpose             string
	extra                      url.Values
	verifier                   string
	state                      string
}

func appFlow() *flow {
	return &flow{clientID: appID, secret: appSecret, redirect: appRedirect,
		scope: "accounts:read balances:read transactions:read offline_access", purpose: "personal_finance_management",
		verifier: strings.Repeat("v", 43), state: "state-0123456789"}
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (f *flow) parForm() url.Values {
	form := url.Values{
		"response_type": {"code"}, "client_id": {f.clientID}, "redirect_uri": {f.redirect},
		"scope": {f.scope}, "state": {f.state}, "purpose": {f.purpose},
		"code_challenge": {s256(f.verifier)}, "code_challenge_method": {"S256"},
	}
	for k, v := range f.extra {
		form[k] = v
	}
	return form
}

// push sends the PAR and returns the request_uri.
func (e *env) push(f *flow) string {
	e.t.Helper()
	rec := e.post("/oauth2/par", f.clientID, f.secret, f.parForm())
	if rec.Code != http.StatusCreated {
		e.t.Fatalf("PAR: %d %s", rec.Code, rec.Body)
	}
	m := jsonBody(e.t, rec)
	uri, _ := m["request_uri"].(string)
	if exp, _ := m["expires_in"].(float64); !strings.HasPrefix(uri, requestURIPrefix) || exp <= 0 || exp > 60 {
		e.t.Fatalf("PAR answer %v", m)
	}
	return uri
}

func (e *env) authorizeURL(clientID, requestURI string) string {
	return "/oauth2/authorize?" + url.Values{"client_id": {clientID}, "request_uri": {requestURI}}.Encode()
}

// challenge follows /oauth2/authorize to the consent screen's challenge.
func (e *env) challenge(clientID, requestURI string) string {
	e.t.Helper()
	rec := e.get(e.authorizeURL(clientID, requestURI))
	if rec.Code != http.StatusSeeOther {
		e.t.Fatalf("authorize: %d %s", rec.Code, rec.Body)
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || loc.Path != "/consent" || loc.Query().Get("challenge") == "" {
		e.t.Fatalf("authorize redirect %q", rec.Header().Get("Location"))
	}
	return loc.Query().Get("challenge")
}

// finish records a decision and returns the redirect to the client.
func (e *env) finish(challenge string, d Decision) *url.URL {
	e.t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/consent", nil)
	if err := e.p.FinishAuthorization(context.Background(), rec, req, challenge, d); err != nil {
		e.t.Fatalf("finish: %v", err)
	}
	if rec.Code != http.StatusSeeOther {
		e.t.Fatalf("finish: %d %s", rec.Code, rec.Body)
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	return loc
}

// code runs PAR, authorize and approval by alice and returns the code.
func (e *env) code(f *flow, accounts ...string) string {
	e.t.Helper()
	if len(accounts) == 0 {
		accounts = []string{accAlice1}
	}
	loc := e.finish(e.challenge(f.clientID, e.push(f)), Decision{Approve: true, CustomerID: custAlice, AccountIDs: accounts})
	if c := loc.Query().Get("code"); c != "" {
		return c
	}
	e.t.Fatalf("no code in %s", loc)
	return ""
}

func (e *env) exchange(f *flow, clientID, secret, code string) *httptest.ResponseRecorder {
	return e.post("/oauth2/token", clientID, secret, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {f.redirect}, "code_verifier": {f.verifier},
	})
}

// tokens is a token endpoint answer.
type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
	GrantID      string `json:"grant_id"`
}

func (e *env) tokens(rec *httptest.ResponseRecorder) tokens {
	e.t.Helper()
	if rec.Code != http.StatusOK {
		e.t.Fatalf("token: %d %s", rec.Code, rec.Body)
	}
	var tk tokens
	if err := json.Unmarshal(rec.Body.Bytes(), &tk); err != nil {
		e.t.Fatal(err)
	}
	return tk
}

// authorize runs the whole flow for f and returns the tokens.
func (e *env) authorize(f *flow, accounts ...string) tokens {
	e.t.Helper()
	return e.tokens(e.exchange(f, f.clientID, f.secret, e.code(f, accounts...)))
}

func (e *env) refresh(clientID, secret, rt string) *httptest.ResponseRecorder {
	return e.post("/oauth2/token", clientID, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

func (e *env) introspect(clientID, secret, token string) map[string]any {
	e.t.Helper()
	rec := e.post("/oauth2/introspect", clientID, secret, url.Values{"token": {token}})
	if rec.Code != http.StatusOK {
		e.t.Fatalf("introspect: %d %s", rec.Code, rec.Body)
	}
	return jsonBody(e.t, rec)
}

func (e *env) active(token string) bool {
	e.t.Helper()
	return e.introspect(appID, appSecret, token)["active"] == true
}

// bearer authenticates a data API call with the access token.
func (e *env) bearer(header string) (*Access, error) {
	req := httptest.NewRequest(http.MethodGet, "/v1/accounts", nil)
	if header != "" {
		req.Header.Set("Authorization", header)
	}
	return e.p.AuthenticateAccess(context.Background(), req)
}

func (e *env) consent(id string) *consent.Consent {
	e.t.Helper()
	c, err := e.p.consents.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func httptestRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func httptestRequest(target string) *http.Request {
	return httptest.NewRequest(http.MethodGet, target, nil)
}
