package oauth

import (
	"errors"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"
)

// handleRevoke is POST /oauth2/revoke (RFC 7009). It is fosite's
// NewRevocationRequest with one addition: the authenticated client is kept,
// so that revoking one's own live refresh token also revokes the grant (the
// consent) it belongs to (SPEC §2). Revoking an access token ends the
// grant's tokens (fosite revokes the family) but leaves the consent.
func (p *Provider) handleRevoke(c *gin.Context) {
	r := limitBody(c)
	ctx := r.Context()
	w := c.Writer
	if err := r.ParseForm(); err != nil || len(r.PostForm) == 0 {
		p.oauth.WriteRevocationResponse(ctx, w, fosite.ErrInvalidRequest.WithHint("The request body could not be parsed."))
		return
	}
	client, err := p.oauth.AuthenticateClient(ctx, r, r.PostForm)
	if errors.Is(err, ErrStorage) {
		// fosite's writer would answer 200, as if the token were revoked.
		p.oauth.WriteAccessError(ctx, w, nil, fosite.ErrTemporarilyUnavailable)
		return
	} else if err != nil {
		p.oauth.WriteRevocationResponse(ctx, w, err)
		return
	}
	token, hint := r.PostForm.Get("token"), fosite.TokenType(r.PostForm.Get("token_type_hint"))
	if token == "" {
		p.oauth.WriteRevocationResponse(ctx, w, fosite.ErrInvalidRequest.WithHint("The token parameter is required."))
		return
	}
	// fosite's writer answers 200 to anything but invalid_request and
	// invalid_client; a storage failure must say "try again" (503) instead.
	unavailable := func(op string, err error) {
		p.log.ErrorContext(ctx, "oauth: "+op, "error", err)
		p.oauth.WriteAccessError(ctx, w, nil, fosite.ErrTemporarilyUnavailable)
	}
	refresh, err := p.store.lookupToken(ctx, kindRefresh, p.strategy.RefreshTokenSignature(ctx, token))
	if err != nil {
		unavailable("revoke: lookup", err)
		return
	}
	access, err := p.store.lookupToken(ctx, kindAccess, p.strategy.AccessTokenSignature(ctx, token))
	if err != nil {
		unavailable("revoke: lookup", err)
		return
	}
	handled := false
	for _, h := range p.config.GetRevocationHandlers(ctx) {
		err := h.RevokeToken(ctx, token, hint, client)
		switch {
		case err == nil:
			handled = true
		case errors.Is(err, fosite.ErrUnknownRequest):
		case errors.Is(err, fosite.ErrTemporarilyUnavailable):
			unavailable("revoke", err)
			return
		default:
			// Another client's token: RFC 7009 answers 200 and changes nothing.
			p.oauth.WriteRevocationResponse(ctx, w, err)
			return
		}
	}
	if !handled {
		p.oauth.WriteRevocationResponse(ctx, w, fosite.ErrInvalidRequest)
		return
	}
	switch {
	// A rotated refresh token ends the grant too: fosite finds nothing live
	// to revoke and answers 200, yet the client asked to end access, and
	// the access tokens minted before the rotation would live on.
	case refresh != nil && refresh.ClientID == client.GetID():
		if err := p.endGrant(ctx, refresh.RequestID, client.GetID(), refresh.Subject, "client"); err != nil {
			unavailable("revoke: end grant", err)
			return
		}
	case access != nil && access.ClientID == client.GetID():
		p.emit(ctx, Event{Type: EventTokenRevoked, Reason: "client", ClientID: client.GetID(),
			CustomerID: access.Subject, GrantID: access.RequestID})
	}
	p.oauth.WriteRevocationResponse(ctx, w, nil)
}
