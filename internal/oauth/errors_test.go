package oauth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// Issue 14 items 4, 6 and 7: the error_description of a refused pushed
// authorization request says what to fix, first.
func TestPARErrorDescriptions(t *testing.T) {
	e := newEnv(t)
	const generic = "The request is missing a required parameter"
	for _, c := range []struct {
		name  string
		extra url.Values
		want  string // the whole error_description
	}{
		{"missing PKCE", url.Values{"code_challenge": {""}}, "code_challenge is required (PKCE)."},
		{"plain PKCE", url.Values{"code_challenge_method": {"plain"}}, "code_challenge_method must be S256; plain is not allowed."},
		{"missing purpose", url.Values{"purpose": {""}}, "The purpose parameter is required."},
		{"purpose not registered", url.Values{"purpose": {"credit_underwriting"}},
			"The client is not registered for the purpose 'credit_underwriting'."},
		// RFC 7636 §4.2: the challenge is 43 to 128 characters of base64url.
		{"code_challenge too short (RFC 7636 §4.2)", url.Values{"code_challenge": {"abc"}},
			"code_challenge must be 43 to 128 base64url characters (RFC 7636 §4.2: BASE64URL(SHA256(code_verifier)) is 43)."},
		{"code_challenge too long", url.Values{"code_challenge": {strings.Repeat("a", 129)}}, "code_challenge must be 43 to 128"},
		{"code_challenge not base64url", url.Values{"code_challenge": {strings.Repeat("a", 42) + "+"}}, "code_challenge must be 43 to 128"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := appFlow()
			f.extra = c.extra
			before := countConsents(t, e)
			m := wantOAuthError(t, e.post("/oauth2/par", f.clientID, f.secret, f.parForm()), 400, "invalid_request")
			desc, _ := m["error_description"].(string)
			if !strings.HasPrefix(desc, c.want) || strings.Contains(desc, generic) {
				t.Errorf("error_description %q, want %q alone", desc, c.want)
			}
			if countConsents(t, e) != before {
				t.Error("a refused PAR created a consent")
			}
		})
	}
	// A verifier of 128 characters has a 43-character S256 challenge: fine.
	f := appFlow()
	f.verifier = strings.Repeat("~", 128)
	e.push(f)
}

// Issue 14 item 4: a PAR or token request whose body is not a form is told
// so (RFC 6749 §3.2, RFC 9126 §2.1), not about whichever parameter fosite
// happened to check first.
func TestNonFormBodies(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/oauth2/par", "/oauth2/token"} {
		for _, c := range []struct {
			name, contentType, body, want string
		}{
			{"JSON", "application/json", `{"response_type":"code","grant_type":"refresh_token"}`, "application/json, not a form"},
			{"empty", "", "", "The request body is empty"},
			{"no content type", "", "response_type=code", "has no Content-Type"},
		} {
			t.Run(path+" "+c.name, func(t *testing.T) {
				req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(c.body))
				if c.contentType != "" {
					req.Header.Set("Content-Type", c.contentType)
				}
				req.SetBasicAuth(appID, appSecret)
				m := wantOAuthError(t, e.do(req), 400, "invalid_request")
				desc, _ := m["error_description"].(string)
				if !strings.Contains(desc, c.want) || !strings.Contains(desc, "application/x-www-form-urlencoded") {
					t.Errorf("error_description %q lacks %q", desc, c.want)
				}
			})
		}
	}
}

// Issue 14 item 5: once refresh token reuse ended a grant, its other
// refresh tokens are refused saying so, not as "malformed".
func TestRefreshAfterReuseSaysWhy(t *testing.T) {
	e := newEnv(t)
	first := e.authorize(appFlow())
	second := e.tokens(e.refresh(appID, appSecret, first.RefreshToken))
	m := wantOAuthError(t, e.refresh(appID, appSecret, first.RefreshToken), 400, "invalid_grant")
	if desc, _ := m["error_description"].(string); desc != "The refresh token was already used." {
		t.Errorf("reuse: error_description %q", desc)
	}
	// (fosite deletes the reused token itself: nothing is left to say about it.)
	m = wantOAuthError(t, e.refresh(appID, appSecret, second.RefreshToken), 400, "invalid_grant")
	if desc, _ := m["error_description"].(string); !strings.HasPrefix(desc, "The grant was revoked because one of its refresh tokens was used twice") {
		t.Errorf("rotated token: error_description %q", desc)
	}

	// A grant the client revoked says who revoked it.
	other := e.authorize(appFlow())
	if rec := e.post("/oauth2/revoke", appID, appSecret, url.Values{"token": {other.RefreshToken}}); rec.Code != 200 {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
	}
	m = wantOAuthError(t, e.refresh(appID, appSecret, other.RefreshToken), 400, "invalid_grant")
	if desc, _ := m["error_description"].(string); !strings.Contains(desc, "was revoked (by the client)") {
		t.Errorf("revoked by the client: error_description %q", desc)
	}
}
