package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/consentgate/consentgate/internal/consent"
)

// TestFullFlow walks PAR → authorize → consent → code → token → introspect
// → data API authentication → refresh → reuse detection.
func TestFullFlow(t *testing.T) {
	e := newEnv(t)
	f := appFlow()
	uri := e.push(f)
	ch := e.challenge(appID, uri)

	pd, err := e.p.PendingAuthorization(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	if pd.ClientID != appID || pd.ClientName != "Budget App" || pd.Purpose != "personal_finance_management" ||
		pd.HistoryDays != 730 || pd.Duration != 365*24*time.Hour || len(pd.Scopes) != 4 || pd.GrantID == "" {
		t.Errorf("pending = %+v", pd)
	}
	if c := e.consent(pd.GrantID); c.Status != consent.AwaitingAuthorization || c.ClientID != appID {
		t.Errorf("consent after PAR = %+v", c)
	}

	loc := e.finish(ch, Decision{Approve: true, CustomerID: custAlice, AccountIDs: []string{accAlice1, accAlice2}})
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != appRedirect {
		t.Fatalf("redirected to %s", loc)
	}
	q := loc.Query()
	if q.Get("code") == "" || q.Get("state") != f.state || q.Get("iss") != "https://as.example" || q.Has("error") {
		t.Fatalf("redirect query = %v (RFC 9207 iss required)", q)
	}
	if _, err := e.p.PendingAuthorization(context.Background(), ch); !errors.Is(err, ErrUnknownChallenge) {
		t.Errorf("challenge still pending after decision: %v", err)
	}

	tk := e.tokens(e.exchange(f, appID, appSecret, q.Get("code")))
	if tk.AccessToken == "" || tk.RefreshToken == "" || tk.GrantID != pd.GrantID || tk.ExpiresIn <= 0 || tk.ExpiresIn > 300 ||
		!strings.EqualFold(tk.TokenType, "bearer") {
		t.Fatalf("tokens = %+v", tk)
	}

	in := e.introspect(appID, appSecret, tk.AccessToken)
	// SPEC §10: the client sees its pairwise subject, never the customer id.
	sub := e.p.subjects.Subject(appID, custAlice)
	if sub == custAlice || len(sub) < 7 {
		t.Fatalf("pairwise subject %q", sub)
	}
	want := map[string]any{"active": true, "client_id": appID, "sub": sub, "grant_id": pd.GrantID,
		"purpose": "personal_finance_management", "token_type": "Bearer"}
	for k, v := range want {
		if in[k] != v {
			t.Errorf("introspection %s = %v, want %v", k, in[k], v)
		}
	}
	if in["scope"] != f.scope || in["exp"] == nil || in["iat"] == nil {
		t.Errorf("introspection = %v", in)
	}
	// exp − iat is the 300 s lifetime exactly: fosite rounds its expiry
	// up and iat was truncated, which reported 301 s (issue 15).
	if exp, iat := in["exp"].(float64), in["iat"].(float64); exp-iat != 300 {
		t.Errorf("introspection exp - iat = %v, want 300", exp-iat)
	}
	if got := e.introspect(otherID, otherSecret, tk.AccessToken); got["active"] != false || len(got) != 1 {
		t.Errorf("another client introspecting: %v, want only active=false", got)
	}

	a, err := e.bearer("bearer " + tk.AccessToken) // RFC 6750: scheme is case-insensitive
	if err != nil {
		t.Fatal(err)
	}
	if a.GrantID != pd.GrantID || a.CustomerID != custAlice || a.ClientID != appID || a.Purpose != "personal_finance_management" ||
		a.Consent == nil || !slices.Equal(a.Consent.AccountIDs, []string{accAlice1, accAlice2}) || len(a.Scopes) != 4 ||
		time.Until(a.TokenExpiresAt) <= 0 {
		t.Errorf("access = %+v", a)
	}

	if len(e.events.find(EventConsentRequested)) != 1 || len(e.events.find(EventConsentAuthorized)) != 1 ||
		len(e.events.find(EventTokenIssued)) != 1 {
		t.Errorf("events = %+v", e.events.events)
	}

	// Refresh rotates; the old refresh token is then spent.
	tk2 := e.tokens(e.refresh(appID, appSecret, tk.RefreshToken))
	if tk2.RefreshToken == "" || tk2.RefreshToken == tk.RefreshToken || tk2.GrantID != pd.GrantID {
		t.Fatalf("refreshed = %+v", tk2)
	}
	if len(e.events.find(EventTokenRefreshed)) != 1 {
		t.Error("no token.refreshed event")
	}
	if !e.active(tk2.AccessToken) {
		t.Fatal("refreshed access token inactive")
	}

	// Reuse of the rotated refresh token ends the whole grant.
	wantOAuthError(t, e.refresh(appID, appSecret, tk.RefreshToken), http.StatusBadRequest, "invalid_grant")
	c := e.consent(pd.GrantID)
	if c.Status != consent.Revoked || c.RevokedBy != "reuse_detected" {
		t.Errorf("consent after reuse = %s by %q", c.Status, c.RevokedBy)
	}
	if e.active(tk2.AccessToken) || e.active(tk2.RefreshToken) {
		t.Error("tokens of a reused grant still active")
	}
	wantOAuthError(t, e.refresh(appID, appSecret, tk2.RefreshToken), http.StatusBadRequest, "invalid_grant")
	var te *TokenError
	if _, err := e.bearer("Bearer " + tk2.AccessToken); !errors.As(err, &te) || te.Status != 401 || te.Code != "invalid_token" {
		t.Errorf("data API after reuse: %v", err)
	}
	if len(e.events.find(EventConsentRevoked)) != 1 {
		t.Error("no consent.revoked event")
	}
}

func TestMetadata(t *testing.T) {
	e := newEnv(t)
	rec := e.get("/.well-known/oauth-authorization-server")
	if rec.Code != http.StatusOK {
		t.Fatal(rec.Code)
	}
	m := jsonBody(t, rec)
	for _, k := range []string{"issuer", "authorization_endpoint", "token_endpoint", "pushed_authorization_request_endpoint",
		"require_pushed_authorization_requests", "introspection_endpoint", "revocation_endpoint", "jwks_uri",
		"grant_management_endpoint", "scopes_supported", "response_types_supported", "grant_types_supported",
		"code_challenge_methods_supported", "token_endpoint_auth_methods_supported",
		"authorization_response_iss_parameter_supported", "purposes_supported"} {
		if _, ok := m[k]; !ok {
			t.Errorf("metadata lacks %s", k)
		}
	}
	if m["issuer"] != "https://as.example" || m["jwks_uri"] != "https://as.example/jwks" ||
		m["require_pushed_authorization_requests"] != true || m["authorization_response_iss_parameter_supported"] != true {
		t.Errorf("metadata = %v", m)
	}
	if p, _ := m["purposes_supported"].([]any); len(p) != 5 {
		t.Errorf("purposes_supported = %v", m["purposes_supported"])
	}
	if cm, _ := m["code_challenge_methods_supported"].([]any); len(cm) != 1 || cm[0] != "S256" {
		t.Errorf("code_challenge_methods_supported = %v", cm)
	}
	// Only the id_token key (the provider's own): no other keys were given.
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	rec = e.get("/jwks")
	if err := json.Unmarshal(rec.Body.Bytes(), &jwks); rec.Code != http.StatusOK || err != nil || len(jwks.Keys) != 1 ||
		jwks.Keys[0]["alg"] != "ES256" || jwks.Keys[0]["kid"] != e.p.idKey().Public.KeyID || jwks.Keys[0]["d"] != nil {
		t.Errorf("jwks: %d %s", rec.Code, rec.Body)
	}
}

// TestPARRejects pins the checks made before a pushed request is stored.
func TestPARRejects(t *testing.T) {
	e := newEnv(t)
	existing := e.authorize(appFlow()).GrantID
	other := appFlow()
	other.clientID, other.secret, other.redirect = otherID, otherSecret, otherRedir
	othersGrant := e.authorize(other).GrantID

	cases := []struct {
		name     string
		edit     func(f *flow)
		status   int
		code     string
		descHas  string
		blocked  bool
		clientID string
		secret   string
	}{
		{name: "missing PKCE (RFC 7636 §4.4.1)", edit: func(f *flow) { f.extra = url.Values{"code_challenge": {""}} },
			status: 400, code: "invalid_request", descHas: "code_challenge"},
		{name: "plain PKCE refused", edit: func(f *flow) { f.extra = url.Values{"code_challenge_method": {"plain"}} },
			status: 400, code: "invalid_request", descHas: "S256"},
		{name: "redirect_uri not registered", edit: func(f *flow) { f.redirect = "https://evil.example/cb" },
			status: 400, code: "invalid_request"},
		{name: "loopback redirect_uri on another port", edit: func(f *flow) { f.redirect = "http://127.0.0.1:9999/callback" },
			status: 400, code: "invalid_request"},
		{name: "response_type token", edit: func(f *flow) { f.extra = url.Values{"response_type": {"token"}} },
			status: 400, code: "unsupported_response_type"},
		{name: "unknown scope", edit: func(f *flow) { f.scope = "accounts:read payments:write" }, status: 400, code: "invalid_scope"},
		{name: "prohibited purpose", edit: func(f *flow) { f.purpose = "advertising" },
			status: 400, code: "invalid_request", descHas: "prohibited", blocked: true},
		{name: "prohibited purpose in disguise", edit: func(f *flow) { f.purpose = "Targeted-Advertising" },
			status: 400, code: "invalid_request", descHas: "prohibited", blocked: true},
		{name: "purpose the client is not registered for", edit: func(f *flow) { f.purpose = "credit_underwriting" },
			status: 400, code: "invalid_request", descHas: "not registered"},
		{name: "unknown purpose", edit: func(f *flow) { f.purpose = "astrology" }, status: 400, code: "invalid_request"},
		{name: "missing purpose", edit: func(f *flow) { f.purpose = "" }, status: 400, code: "invalid_request", descHas: "purpose"},
		{name: "scope the purpose does not allow", edit: func(f *flow) { f.purpose = "account_verification" },
			status: 400, code: "invalid_scope", descHas: "transactions:read"},
		{name: "no data scope", edit: func(f *flow) { f.scope = "offline_access" }, status: 400, code: "invalid_scope"},
		{name: "request object (JAR)", edit: func(f *flow) { f.extra = url.Values{"request": {"eyJhbGciOiJub25lIn0.e30."}} },
			status: 400, code: "invalid_request", descHas: "request"},
		{name: "bad consent_duration", edit: func(f *flow) { f.extra = url.Values{"consent_duration": {"-5"}} },
			status: 400, code: "invalid_request", descHas: "consent_duration"},
		{name: "unsupported grant_management_action", edit: func(f *flow) {
			f.extra = url.Values{"grant_management_action": {"merge"}, "grant_id": {existing}}
		}, status: 400, code: "invalid_request"},
		{name: "grant_id without action", edit: func(f *flow) { f.extra = url.Values{"grant_id": {existing}} },
			status: 400, code: "invalid_request"},
		{name: "replace another client's grant", edit: func(f *flow) {
			f.extra = url.Values{"grant_management_action": {"replace"}, "grant_id": {othersGrant}}
		}, status: 400, code: "invalid_request", descHas: "no grant"},
		{name: "replace an unknown grant", edit: func(f *flow) {
			f.extra = url.Values{"grant_management_action": {"replace"}, "grant_id": {"nope"}}
		}, status: 400, code: "invalid_request"},
		{name: "wrong secret", edit: func(*flow) {}, clientID: appID, secret: "wrong", status: 401, code: "invalid_client"},
		{name: "client_credentials-only client", edit: func(*flow) {}, clientID: auditorID, secret: auditorSec,
			status: 400, code: "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := appFlow()
			c.edit(f)
			id, secret := f.clientID, f.secret
			if c.clientID != "" {
				id, secret = c.clientID, c.secret
			}
			form := f.parForm()
			form.Set("client_id", id)
			blockedBefore := len(e.events.find(EventPurposeBlocked))
			consentsBefore := countConsents(t, e)
			m := wantOAuthError(t, e.post("/oauth2/par", id, secret, form), c.status, c.code)
			if desc, _ := m["error_description"].(string); !strings.Contains(desc, c.descHas) {
				t.Errorf("error_description %q lacks %q", desc, c.descHas)
			}
			if got := len(e.events.find(EventPurposeBlocked)) - blockedBefore; (got == 1) != c.blocked {
				t.Errorf("purpose.blocked events: %d", got)
			}
			if countConsents(t, e) != consentsBefore {
				t.Error("a refused PAR created a consent")
			}
		})
	}

	t.Run("client_secret_post refused", func(t *testing.T) {
		form := appFlow().parForm()
		form.Set("client_secret", appSecret)
		wantOAuthError(t, e.post("/oauth2/par", "", "", form), 401, "invalid_client")
	})
}

func countConsents(t *testing.T, e *env) int64 {
	var n int64
	if err := e.p.store.db.Raw(`SELECT count(*) FROM consents`).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// TestConsentDuration pins consent_duration: capped by the purpose policy,
// and tokens never outlive the consent.
func TestConsentDuration(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		purpose, scope, asked string
		want                  time.Duration
	}{
		{"personal_finance_management", "accounts:read offline_access", "", 365 * 24 * time.Hour},
		{"personal_finance_management", "accounts:read offline_access", "3600", time.Hour},
		{"personal_finance_management", "accounts:read offline_access", "999999999999999", 365 * 24 * time.Hour},
		{"account_verification", "accounts:read offline_access", "99999999", 30 * 24 * time.Hour},
	} {
		f := appFlow()
		f.purpose, f.scope = c.purpose, c.scope
		if c.asked != "" {
			f.extra = url.Values{"consent_duration": {c.asked}}
		}
		pd, err := e.p.PendingAuthorization(context.Background(), e.challenge(appID, e.push(f)))
		if err != nil {
			t.Fatal(err)
		}
		if pd.Duration != c.want {
			t.Errorf("%s asking %q: duration %s, want %s", c.purpose, c.asked, pd.Duration, c.want)
		}
	}

	f := appFlow()
	f.extra = url.Values{"consent_duration": {"120"}}
	tk := e.authorize(f)
	cons := e.consent(tk.GrantID)
	in := e.introspect(appID, appSecret, tk.RefreshToken)
	exp, _ := in["exp"].(float64)
	// The consent's expiry is on the test's frozen clock; fosite stamps
	// token lifetimes on the wall clock, which has moved on since the test
	// began (by more than half a second on a loaded machine), so the cap is
	// the consent's expiry in wall-clock terms, to the second.
	limit := cons.ExpiresAt.Add(time.Since(e.clock.Now()) + time.Second).Unix()
	if in["active"] != true || int64(exp) > limit {
		t.Errorf("refresh token expires %v, after the consent (%s, %d on the wall clock)", in["exp"], cons.ExpiresAt, limit)
	}
}

// TestAuthorizeRejects pins GET /oauth2/authorize: only pushed requests,
// each once, before it expires; never a redirect to an unverified URI.
func TestAuthorizeRejects(t *testing.T) {
	e := newEnv(t)
	noRedirect := func(t *testing.T, path string) {
		t.Helper()
		rec := e.get(path)
		if rec.Code != http.StatusBadRequest || rec.Header().Get("Location") != "" {
			t.Fatalf("%s: %d Location=%q %s", path, rec.Code, rec.Header().Get("Location"), rec.Body)
		}
	}
	t.Run("not pushed", func(t *testing.T) {
		f := appFlow()
		noRedirect(t, "/oauth2/authorize?"+f.parForm().Encode())
	})
	t.Run("unknown request_uri", func(t *testing.T) {
		noRedirect(t, e.authorizeURL(appID, requestURIPrefix+"nope"))
	})
	t.Run("request_uri reused", func(t *testing.T) {
		uri := e.push(appFlow())
		e.challenge(appID, uri)
		noRedirect(t, e.authorizeURL(appID, uri))
	})
	t.Run("request_uri expired", func(t *testing.T) {
		uri := e.push(appFlow())
		e.clock.Advance(61 * time.Second)
		noRedirect(t, e.authorizeURL(appID, uri))
	})
	t.Run("request object", func(t *testing.T) {
		uri := e.push(appFlow())
		noRedirect(t, e.authorizeURL(appID, uri)+"&request=x")
	})
	t.Run("client_id mismatch goes back to the pushing client with iss", func(t *testing.T) {
		uri := e.push(appFlow())
		rec := e.get(e.authorizeURL(otherID, uri))
		loc, _ := url.Parse(rec.Header().Get("Location"))
		if rec.Code != http.StatusSeeOther || loc == nil || !strings.HasPrefix(loc.String(), appRedirect) ||
			loc.Query().Get("error") != "invalid_request" || loc.Query().Get("iss") != "https://as.example" {
			t.Fatalf("%d %q", rec.Code, rec.Header().Get("Location"))
		}
	})
	t.Run("parameters added to the browser URL are ignored", func(t *testing.T) {
		f := appFlow()
		uri := e.push(f)
		extra := url.Values{"redirect_uri": {"https://evil.example/cb"}, "state": {"forged-state"},
			"grant_management_action": {"replace"}, "scope": {"accounts:read"}}
		rec := e.get(e.authorizeURL(appID, uri) + "&" + extra.Encode())
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		ch, _ := url.Parse(rec.Header().Get("Location"))
		loc := e.finish(ch.Query().Get("challenge"), Decision{Approve: true, CustomerID: custAlice, AccountIDs: []string{accAlice1}})
		if !strings.HasPrefix(loc.String(), appRedirect) || loc.Query().Get("state") != f.state {
			t.Fatalf("redirect %s", loc)
		}
		tk := e.tokens(e.exchange(f, appID, appSecret, loc.Query().Get("code")))
		if tk.Scope != f.scope {
			t.Errorf("scope %q, want the pushed %q", tk.Scope, f.scope)
		}
	})
}

// TestDecisions pins FinishAuthorization's answers.
func TestDecisions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	t.Run("deny", func(t *testing.T) {
		f := appFlow()
		ch := e.challenge(appID, e.push(f))
		pd, _ := e.p.PendingAuthorization(ctx, ch)
		loc := e.finish(ch, Decision{Approve: false, CustomerID: custAlice})
		q := loc.Query()
		if q.Get("error") != "access_denied" || q.Get("state") != f.state || q.Get("iss") != "https://as.example" || q.Has("code") {
			t.Fatalf("deny redirect %s", loc)
		}
		if c := e.consent(pd.GrantID); c.Status != consent.Rejected {
			t.Errorf("consent %s", c.Status)
		}
		if len(e.events.find(EventConsentRejected)) != 1 {
			t.Error("no consent.rejected event")
		}
	})
	t.Run("bad approvals keep the challenge", func(t *testing.T) {
		ch := e.challenge(appID, e.push(appFlow()))
		rec := httptestRecorder()
		if err := e.p.FinishAuthorization(ctx, rec, nil, ch, Decision{Approve: true, CustomerID: custAlice}); !errors.Is(err, ErrNoAccounts) {
			t.Errorf("no account: %v", err)
		}
		err := e.p.FinishAuthorization(ctx, rec, nil, ch, Decision{Approve: true, CustomerID: custAlice, AccountIDs: []string{accBob1}})
		if !errors.Is(err, consent.ErrForeignAccount) {
			t.Errorf("foreign account: %v", err)
		}
		if rec.Code != 200 || rec.Body.Len() != 0 || len(rec.Header()) != 0 {
			t.Errorf("a refused approval wrote a response: %d", rec.Code)
		}
		loc := e.finish(ch, Decision{Approve: true, CustomerID: custAlice, AccountIDs: []string{accAlice2, accAlice2}})
		if loc.Query().Get("code") == "" {
			t.Fatalf("approval after corrections: %s", loc)
		}
		if err := e.p.FinishAuthorization(ctx, rec, nil, ch, Decision{Approve: true, CustomerID: custAlice, AccountIDs: []string{accAlice1}}); !errors.Is(err, ErrUnknownChallenge) {
			t.Errorf("second decision: %v", err)
		}
	})
}

// TestCodeRules pins the authorization code grant's refusals.
func TestCodeRules(t *testing.T) {
	e := newEnv(t)
	t.Run("replay revokes what the code issued (RFC 6749 §4.1.2)", func(t *testing.T) {
		f := appFlow()
		code := e.code(f)
		tk := e.tokens(e.exchange(f, appID, appSecret, code))
		wantOAuthError(t, e.exchange(f, appID, appSecret, code), 400, "invalid_grant")
		if e.active(tk.AccessToken) || e.active(tk.RefreshToken) {
			t.Error("tokens of a replayed code still active")
		}
		if len(e.events.find(EventTokenRevoked)) == 0 {
			t.Error("no token.revoked event for the replay")
		}
	})
	t.Run("another client cannot redeem the code", func(t *testing.T) {
		f := appFlow()
		code := e.code(f)
		wantOAuthError(t, e.exchange(f, otherID, otherSecret, code), 400, "invalid_grant")
		e.tokens(e.exchange(f, appID, appSecret, code)) // still the app's to redeem
	})
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		f := appFlow()
		code := e.code(f)
		g := *f
		g.verifier = strings.Repeat("w", 43)
		wantOAuthError(t, e.exchange(&g, appID, appSecret, code), 400, "invalid_grant")
	})
	t.Run("missing PKCE verifier", func(t *testing.T) {
		f := appFlow()
		code := e.code(f)
		wantOAuthError(t, e.post("/oauth2/token", appID, appSecret, url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {f.redirect}}), 400, "invalid_grant")
	})
	t.Run("no offline_access, no refresh token", func(t *testing.T) {
		f := appFlow()
		f.scope = "accounts:read"
		if tk := e.authorize(f); tk.RefreshToken != "" || tk.AccessToken == "" {
			t.Errorf("tokens %+v", tk)
		}
	})
	t.Run("consent revoked before redemption", func(t *testing.T) {
		f := appFlow()
		code := e.code(f)
		in := e.p.store
		var grant string
		if err := in.db.Raw(`SELECT request_id FROM oauth_tokens WHERE kind = 'authorize_code' ORDER BY requested_at DESC LIMIT 1`).Scan(&grant).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := e.p.consents.Revoke(context.Background(), grant, "customer", e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		wantOAuthError(t, e.exchange(f, appID, appSecret, code), 400, "invalid_grant")
	})
	t.Run("unsupported grant type (RFC 6749 §5.2)", func(t *testing.T) {
		wantOAuthError(t, e.post("/oauth2/token", appID, appSecret, url.Values{"grant_type": {"password"},
			"username": {"alice"}, "password": {"x"}}), 400, "unsupported_grant_type")
	})
	t.Run("unauthenticated", func(t *testing.T) {
		f := appFlow()
		wantOAuthError(t, e.post("/oauth2/token", "", "", url.Values{"grant_type": {"authorization_code"}, "code": {"x"},
			"client_id": {appID}, "redirect_uri": {f.redirect}}), 401, "invalid_client")
	})
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t)
	for _, scope := range []string{"audit:read", ""} {
		tk := e.tokens(e.post("/oauth2/token", auditorID, auditorSec, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}))
		if tk.Scope != "audit:read" || tk.RefreshToken != "" || tk.GrantID != "" {
			t.Errorf("scope %q: %+v", scope, tk)
		}
		a, err := e.bearer("Bearer " + tk.AccessToken)
		if err != nil || a.ClientID != auditorID || a.Consent != nil || a.GrantID != "" || a.CustomerID != "" ||
			!slices.Equal(a.Scopes, []string{"audit:read"}) {
			t.Errorf("access %+v, %v", a, err)
		}
		in := e.introspect(auditorID, auditorSec, tk.AccessToken)
		if in["active"] != true || in["grant_id"] != nil || in["sub"] != nil {
			t.Errorf("introspection %v", in)
		}
	}
	// Each client_credentials token is a request of its own, with a
	// time-ordered id (its index grows at the edge), never shown to clients.
	var ids []string
	if err := e.p.store.db.Raw(`SELECT request_id FROM oauth_tokens WHERE client_id = ? AND kind = 'access_token' ORDER BY requested_at, request_id`,
		auditorID).Scan(&ids).Error; err != nil || len(ids) != 2 || ids[0] == ids[1] {
		t.Fatalf("request ids %v, %v: want two", ids, err)
	}
	for _, id := range ids {
		if u, err := uuid.Parse(id); err != nil || u.Version() != 7 {
			t.Errorf("request id %q: want a UUIDv7", id)
		}
	}
	wantOAuthError(t, e.post("/oauth2/token", auditorID, auditorSec, url.Values{"grant_type": {"client_credentials"}, "scope": {"accounts:read"}}),
		400, "invalid_scope")
	wantOAuthError(t, e.post("/oauth2/token", appID, appSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"accounts:read"}}),
		400, "unauthorized_client")
}

func TestAuthenticateAccessHeader(t *testing.T) {
	e := newEnv(t)
	tk := e.authorize(appFlow())
	for _, h := range []string{"", "Basic " + tk.AccessToken, "Bearer", "Bearer ", "Bearer " + tk.RefreshToken,
		"Bearer " + tk.AccessToken + " x", "Bearer nonsense", "DPoP " + tk.AccessToken} {
		var te *TokenError
		if _, err := e.bearer(h); !errors.As(err, &te) || te.Status != 401 || te.Code != "invalid_token" {
			t.Errorf("%q: %v", h, err)
		}
	}
	// A token in the query string is never looked at.
	req := httptestRequest("/v1/accounts?access_token=" + url.QueryEscape(tk.AccessToken))
	if _, err := e.p.AuthenticateAccess(context.Background(), req); err == nil {
		t.Error("query token accepted")
	}
	if _, err := e.bearer("Bearer " + tk.AccessToken); err != nil {
		t.Errorf("valid token: %v", err)
	}
	e.clock.Advance(366 * 24 * time.Hour) // consent expired, token not yet swept
	if _, err := e.bearer("Bearer " + tk.AccessToken); err == nil {
		t.Error("token of an expired consent accepted")
	}
}

// TestMetadataPARExemption: require_pushed_authorization_requests turns
// false once a client exempt from PAR is registered (RFC 9126 §6, SPEC §2),
// read from the database so every node says the same, in both documents.
func TestMetadataPARExemption(t *testing.T) {
	e := newEnv(t)
	required := func(path string) any {
		var m map[string]any
		rec := e.get(path)
		if err := json.Unmarshal(rec.Body.Bytes(), &m); rec.Code != http.StatusOK || err != nil {
			t.Fatalf("%s: %d %v", path, rec.Code, err)
		}
		return m["require_pushed_authorization_requests"]
	}
	if required("/.well-known/oauth-authorization-server") != true || required("/.well-known/openid-configuration") != true {
		t.Fatal("PAR not required with no exempt client")
	}
	if _, _, err := e.p.CreateClient(context.Background(), ClientSpec{ID: "front", Name: "Front", RedirectURIs: []string{appRedirect},
		Scopes: []string{"openid", "accounts:read"}, Purposes: []string{"personal_finance_management"},
		PAROptional: true, DefaultPurpose: "personal_finance_management"}); err != nil {
		t.Fatal(err)
	}
	if required("/.well-known/oauth-authorization-server") != false || required("/.well-known/openid-configuration") != false {
		t.Fatal("PAR still claimed required with an exempt client registered")
	}
	// Registration rules for the new metadata.
	for _, bad := range []ClientSpec{
		{Name: "x", RedirectURIs: []string{appRedirect}, Scopes: []string{"accounts:read"}, Purposes: []string{"personal_finance_management"},
			DefaultPurpose: "credit_underwriting"},
		{Name: "x", GrantTypes: []string{GrantClientCredentials}, Scopes: []string{ScopeAuditRead}, PAROptional: true},
	} {
		if _, _, err := e.p.CreateClient(context.Background(), bad); err == nil {
			t.Errorf("registered %+v", bad)
		}
	}
}
