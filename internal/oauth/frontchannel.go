package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/consentgate/consentgate/internal/consent"
)

// parExemptClient returns the client named by id when it is registered as
// exempt from PAR; nil (and no error) for any other or unknown client,
// which then meets the PAR rule.
func (p *Provider) parExemptClient(ctx context.Context, id string) (*Client, error) {
	if id == "" {
		return nil, nil
	}
	c, err := p.store.client(ctx, id)
	switch {
	case errors.Is(err, fosite.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case !c.PAROptional:
		return nil, nil
	}
	return c, nil
}

// handleFrontChannel is GET /oauth2/authorize without a request_uri, from a
// client exempt from PAR (RFC 9126 §6, SPEC §10): the request's parameters
// come from the URL. Everything a pushed request must satisfy still holds
// (checkPAR): exact redirect_uri, PKCE S256, a purpose the client is
// registered for (its default purpose when the request names none), scopes
// the purpose allows; a prohibited purpose is refused and audited as
// purpose.blocked.
//
// The redirect_uri is checked for an exact match before anything else, so
// no error is ever sent to a URI the client did not register: fosite would
// accept a loopback URI on another port (RFC 8252 §7.3) and redirect its
// own errors there. After that check, refusals go back to the client as
// error redirects (RFC 6749 §4.1.2.1).
func (p *Provider) handleFrontChannel(c *gin.Context, client *Client) {
	r := c.Request
	ctx := r.Context()
	q := r.URL.Query()
	if ru := q.Get("redirect_uri"); ru == "" || !slices.Contains(client.RedirectURIs, ru) {
		p.writeAuthorizeError(ctx, c.Writer, fosite.NewAuthorizeRequest(),
			fosite.ErrInvalidRequest.WithHint("redirect_uri is required and must exactly match a redirect URI registered for the client; nothing was sent to it."))
		return
	}
	if q.Get(paramPurpose) == "" && client.DefaultPurpose != "" {
		q.Set(paramPurpose, client.DefaultPurpose)
	}
	clean := r.Clone(context.WithValue(ctx, frontChannelKey{}, true))
	clean.URL.RawQuery = q.Encode()
	clean.Form, clean.PostForm, clean.Body = nil, nil, http.NoBody
	clean.Header.Del("Content-Type")
	ar, err := p.oauth.NewAuthorizeRequest(clean.Context(), clean)
	if err != nil {
		p.writeAuthorizeError(ctx, c.Writer, ar, answer(err))
		return
	}
	if client.Suspended() {
		p.writeAuthorizeError(ctx, c.Writer, ar, suspendedError())
		return
	}
	terms, err := p.checkPAR(ctx, ar, client)
	if err != nil {
		p.writeAuthorizeError(ctx, c.Writer, ar, answer(err))
		return
	}
	if err := p.parDPoP(c, client, ar.GetRequestForm()); err != nil {
		p.writeAuthorizeError(ctx, c.Writer, ar, answer(err))
		return
	}
	if terms.replaces != nil {
		// The renewed authorization, its code and tokens belong to the same grant.
		ar.SetID(terms.replaces.ID)
	} else if err := p.consents.Create(ctx, &consent.Consent{
		ID: ar.GetID(), ClientID: client.ID, Scopes: ar.GetRequestedScopes(), Purpose: terms.purpose,
		HistoryDays: terms.policy.MaxHistoryDays, Duration: terms.duration, CreatedAt: p.now(),
	}); err != nil {
		p.writeAuthorizeError(ctx, c.Writer, ar, p.serverError(ctx, "authorize: create consent", err))
		return
	}
	p.emit(ctx, Event{Type: EventConsentRequested, ClientID: client.ID, GrantID: ar.GetID(),
		Purpose: terms.purpose, Scopes: ar.GetRequestedScopes()})
	challenge := randomToken(32)
	if err := p.store.saveChallenge(ctx, challenge, ar, p.now().Add(challengeLifespan)); err != nil {
		p.writeAuthorizeError(ctx, c.Writer, ar, p.serverError(ctx, "authorize: save challenge", err))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, "/consent?challenge="+url.QueryEscape(challenge))
}
