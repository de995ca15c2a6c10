package oauth

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/consentgate/consentgate/internal/consent"
)

// TestRevokeRotatedRefreshToken: revoking a refresh token that a refresh
// has already rotated still ends the grant (SPEC §2, RFC 7009 §2.1), with
// the access token issued before the rotation. Found by make chaos: fosite
// answered 200 and revoked nothing, so that access token kept working.
func TestRevokeRotatedRefreshToken(t *testing.T) {
	e := newEnv(t)
	tk := e.authorize(appFlow())
	if rec := e.refresh(appID, appSecret, tk.RefreshToken); rec.Code != http.StatusOK {
		t.Fatalf("refresh: %d %s", rec.Code, rec.Body)
	}
	if rec := e.post("/oauth2/revoke", appID, appSecret, url.Values{"token": {tk.RefreshToken}}); rec.Code != http.StatusOK {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
	}
	if c := e.consent(tk.GrantID); c.Status != consent.Revoked {
		t.Fatalf("consent %s after revoking its rotated refresh token", c.Status)
	}
	if e.active(tk.AccessToken) {
		t.Fatal("the access token from before the rotation still works")
	}
}

// TestConcurrentRefreshEndsGrant: refresh requests that lose the rotation
// race to a concurrent one presented a token that was rotated under them:
// that is reuse (SPEC §2), so the grant ends, the winner's new tokens
// included, and every loser gets invalid_grant, never a "retry".
func TestConcurrentRefreshEndsGrant(t *testing.T) {
	e := newEnv(t)
	tk := e.authorize(appFlow())
	ok, failed := race(8, func() int {
		rec := e.refresh(appID, appSecret, tk.RefreshToken)
		var m struct {
			Error string `json:"error"`
		}
		if _ = json.Unmarshal(rec.Body.Bytes(), &m); rec.Code != http.StatusOK && m.Error != "invalid_grant" {
			t.Errorf("loser answered %d %s", rec.Code, rec.Body)
		}
		return rec.Code
	})
	if ok > 1 || failed > 0 {
		t.Fatalf("%d refreshes won, %d server errors", ok, failed)
	}
	if c := e.consent(tk.GrantID); c.Status != consent.Revoked {
		t.Fatalf("consent %s after 8 concurrent uses of one refresh token", c.Status)
	}
}
