package oauth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/consent"
)

func TestRevoke(t *testing.T) {
	e := newEnv(t)
	revoke := func(clientID, secret, token string) *httptest.ResponseRecorder {
		return e.post("/oauth2/revoke", clientID, secret, url.Values{"token": {token}})
	}
	t.Run("refresh token ends the grant (SPEC §2)", func(t *testing.T) {
		tk := e.authorize(appFlow())
		if rec := revoke(appID, appSecret, tk.RefreshToken); rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if c := e.consent(tk.GrantID); c.Status != consent.Revoked || c.RevokedBy != "client" {
			t.Errorf("consent %s by %q", c.Status, c.RevokedBy)
		}
		if e.active(tk.AccessToken) || e.active(tk.RefreshToken) {
			t.Error("tokens still active")
		}
		wantOAuthError(t, e.refresh(appID, appSecret, tk.RefreshToken), 400, "invalid_grant")
	})
	t.Run("access token ends the tokens, not the consent", func(t *testing.T) {
		tk := e.authorize(appFlow())
		if rec := revoke(appID, appSecret, tk.AccessToken); rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if e.active(tk.AccessToken) {
			t.Error("access token still active")
		}
		if c := e.consent(tk.GrantID); c.Status != consent.Authorized {
			t.Errorf("consent %s", c.Status)
		}
	})
	t.Run("another client's token is left alone", func(t *testing.T) {
		tk := e.authorize(appFlow())
		if rec := revoke(otherID, otherSecret, tk.RefreshToken); rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if !e.active(tk.AccessToken) || e.consent(tk.GrantID).Status != consent.Authorized {
			t.Error("another client revoked the grant")
		}
	})
	t.Run("unknown token is fine, bad client is not (RFC 7009 §2.2)", func(t *testing.T) {
		if rec := revoke(appID, appSecret, "nonsense"); rec.Code != http.StatusOK {
			t.Errorf("unknown token: %d", rec.Code)
		}
		wantOAuthError(t, revoke(appID, "wrong", "nonsense"), 401, "invalid_client")
	})
}

func TestGrantManagement(t *testing.T) {
	e := newEnv(t)
	tk := e.authorize(appFlow(), accAlice2, accAlice1)
	path := "/oauth2/grants/" + tk.GrantID
	req := func(method, clientID, secret string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		if clientID != "" {
			r.SetBasicAuth(clientID, secret)
		}
		return e.do(r)
	}
	rec := req(http.MethodGet, appID, appSecret)
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	g := jsonBody(t, rec)
	if g["grant_id"] != tk.GrantID || g["status"] != "authorized" || g["client_id"] != appID ||
		g["purpose"] != "personal_finance_management" {
		t.Errorf("grant %v", g)
	}
	if ids, _ := g["account_ids"].([]any); len(ids) != 2 || ids[0] != accAlice1 {
		t.Errorf("account_ids %v", g["account_ids"])
	}
	if sc, _ := g["scopes"].([]any); len(sc) != 4 {
		t.Errorf("scopes %v", g["scopes"])
	}
	for _, k := range []string{"created_at", "expires_at"} {
		s, _ := g[k].(string)
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			t.Errorf("%s = %v: %v", k, g[k], err)
		}
	}
	wantOAuthError(t, req(http.MethodGet, otherID, otherSecret), 404, "not_found")
	wantOAuthError(t, req(http.MethodDelete, otherID, otherSecret), 404, "not_found")
	wantOAuthError(t, req(http.MethodGet, "", ""), 401, "invalid_client")
	if e.consent(tk.GrantID).Status != consent.Authorized {
		t.Fatal("another client's DELETE changed the grant")
	}
	if rec := req(http.MethodDelete, appID, appSecret); rec.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	if c := e.consent(tk.GrantID); c.Status != consent.Revoked || c.RevokedBy != "client" {
		t.Errorf("consent %s by %q", c.Status, c.RevokedBy)
	}
	if e.active(tk.AccessToken) || e.active(tk.RefreshToken) {
		t.Error("tokens of a deleted grant still active")
	}
	if g := jsonBody(t, req(http.MethodGet, appID, appSecret)); g["status"] != "revoked" {
		t.Errorf("after delete: %v", g)
	}
	if rec := req(http.MethodDelete, appID, appSecret); rec.Code != http.StatusNoContent {
		t.Errorf("second delete: %d", rec.Code)
	}
	wantOAuthError(t, e.do(httptest.NewRequest(http.MethodGet, "/oauth2/grants/unknown", nil)), 401, "invalid_client")
}

// TestReplaceGrant pins grant_management_action=replace: same grant id, new
// terms and accounts, old tokens ended; refusing leaves the grant as it was.
func TestReplaceGrant(t *testing.T) {
	e := newEnv(t)
	old := e.authorize(appFlow(), accAlice1)
	replace := appFlow()
	replace.scope = "accounts:read balances:read offline_access"
	replace.purpose = "account_verification"
	replace.extra = url.Values{"grant_management_action": {"replace"}, "grant_id": {old.GrantID}}

	// Refused renewal: the grant and its tokens stay.
	loc := e.finish(e.challenge(appID, e.push(replace)), Decision{Approve: false, CustomerID: custAlice})
	if loc.Query().Get("error") != "access_denied" {
		t.Fatalf("deny: %s", loc)
	}
	if c := e.consent(old.GrantID); c.Status != consent.Authorized || !e.active(old.AccessToken) {
		t.Fatalf("refused renewal changed the grant: %s", c.Status)
	}

	// Another customer cannot renew alice's grant.
	loc = e.finish(e.challenge(appID, e.push(replace)), Decision{Approve: true, CustomerID: custBob, AccountIDs: []string{accBob1}})
	if loc.Query().Get("error") != "access_denied" {
		t.Fatalf("bob renewing alice's grant: %s", loc)
	}

	tk := e.authorize(replace, accAlice2)
	if tk.GrantID != old.GrantID {
		t.Fatalf("renewed grant id %q, want %q", tk.GrantID, old.GrantID)
	}
	c := e.consent(old.GrantID)
	if c.Status != consent.Authorized || c.Purpose != "account_verification" || len(c.Scopes) != 3 ||
		len(c.AccountIDs) != 1 || c.AccountIDs[0] != accAlice2 || c.Duration != 30*24*time.Hour {
		t.Errorf("renewed consent %+v", c)
	}
	if e.active(old.AccessToken) || e.active(old.RefreshToken) {
		t.Error("tokens of the replaced terms still active")
	}
	a, err := e.bearer("Bearer " + tk.AccessToken)
	if err != nil || a.Purpose != "account_verification" || a.GrantID != old.GrantID {
		t.Errorf("new token: %+v %v", a, err)
	}
	e.tokens(e.refresh(appID, appSecret, tk.RefreshToken))
}
