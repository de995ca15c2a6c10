package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/ory/fosite"

	"github.com/consentgate/consentgate/internal/consent"
)

// When fosite's revocation of a reused refresh token's family collides
// with a concurrent request on the same family (a deadlock or lock
// conflict between two losers of a rotation race), fosite answers
// invalid_request "retry". A retry can only find the token used: the
// answer is invalid_grant and the grant ends, as for any reuse. A conflict
// while the presented token is still active stays retryable.
func TestReplayedConflictIsReuse(t *testing.T) {
	e := newEnv(t)
	f := appFlow()
	tk := e.authorize(f, "acc-alice-1")
	tk2 := e.tokens(e.refresh(appID, appSecret, tk.RefreshToken)) // tk's refresh token is now rotated
	ctx := context.Background()
	// What fosite returns when its reuse revocation hits a lock conflict.
	collided := fosite.ErrInvalidRequest.WithWrap(fosite.ErrSerializationFailure).
		WithHint("Failed to refresh token because of multiple concurrent requests using the same token. Please retry the request.")
	form := func(rt string) url.Values { return url.Values{"refresh_token": {rt}} }
	owner := func(rt string) *tokenOwner {
		o, err := e.p.presentedGrant(ctx, GrantRefreshToken, form(rt))
		if err != nil || o == nil {
			t.Fatalf("lookup: %v %v", o, err)
		}
		return o
	}

	// The live token with a conflict: left to the client to retry.
	live := owner(tk2.RefreshToken)
	if err := e.p.replayed(ctx, live, GrantRefreshToken, form(tk2.RefreshToken), collided); !errors.Is(err, fosite.ErrInvalidRequest) {
		t.Errorf("conflict on a live token: %v, want it unchanged", err)
	}
	if c := e.consent(tk.GrantID); c.Status != consent.Authorized {
		t.Fatalf("a conflict on a live token ended the grant: %s", c.Status)
	}

	// The rotated token with a conflict: reuse.
	err := e.p.replayed(ctx, owner(tk.RefreshToken), GrantRefreshToken, form(tk.RefreshToken), collided)
	var rfc *fosite.RFC6749Error
	if !errors.As(err, &rfc) || rfc.ErrorField != "invalid_grant" || rfc.CodeField != http.StatusBadRequest {
		t.Errorf("conflict on a rotated token: %v, want invalid_grant", err)
	}
	if c := e.consent(tk.GrantID); c.Status != consent.Revoked || c.RevokedBy != "reuse_detected" {
		t.Errorf("grant after the collided reuse: %s by %q", c.Status, c.RevokedBy)
	}
	if e.active(tk2.AccessToken) || e.active(tk2.RefreshToken) {
		t.Error("tokens of the grant still active")
	}

	// Active when first looked up, rotated by the time fosite looked: the
	// same. (Here: looked up before the grant ended above.)
	e2 := newEnv(t)
	tk = e2.authorize(f, "acc-alice-1")
	before, err := e2.p.presentedGrant(ctx, GrantRefreshToken, form(tk.RefreshToken))
	if err != nil || !before.Active {
		t.Fatalf("lookup: %+v %v", before, err)
	}
	e2.tokens(e2.refresh(appID, appSecret, tk.RefreshToken))
	if err := e2.p.replayed(ctx, before, GrantRefreshToken, form(tk.RefreshToken), collided); !errors.As(err, &rfc) || rfc.ErrorField != "invalid_grant" {
		t.Errorf("conflict on a token rotated since the lookup: %v, want invalid_grant", err)
	}
	if c := e2.consent(tk.GrantID); c.Status != consent.Revoked {
		t.Errorf("grant after the collided reuse: %s", c.Status)
	}
}
