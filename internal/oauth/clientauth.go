package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/ory/fosite"
)

// authenticateClient is fosite's ClientAuthenticationStrategy, used by every
// client-authenticated endpoint (PAR, token, introspection, revocation,
// grant management). It dispatches on the method the request uses and then
// insists that it is the one the client registered: a client never chooses
// a weaker method than its registration. Each method is one function, so
// private_key_jwt (and DPoP binding) slot in beside client_secret_basic.
func (p *Provider) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	switch {
	case form.Get("client_assertion_type") != "" || form.Get("client_assertion") != "":
		return nil, fosite.ErrInvalidClient.WithHint("Client authentication with private_key_jwt is not enabled on this server; use client_secret_basic.")
	case form.Get("client_secret") != "":
		// FAPI 2.0 allows no secret in the body (client_secret_post).
		return nil, fosite.ErrInvalidClient.WithHint("client_secret_post is not supported; send the client credentials with HTTP Basic authentication (client_secret_basic).")
	}
	if _, _, ok := r.BasicAuth(); ok {
		return p.authenticateSecretBasic(ctx, r, form)
	}
	return nil, fosite.ErrInvalidClient.WithHint("Client authentication is required: send the client credentials with HTTP Basic authentication (client_secret_basic).")
}

// authenticateSecretBasic checks RFC 6749 §2.3.1 HTTP Basic credentials
// (both parts form-urlencoded before base64).
func (p *Provider) authenticateSecretBasic(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	rawID, rawSecret, _ := r.BasicAuth()
	id, err1 := url.QueryUnescape(rawID)
	secret, err2 := url.QueryUnescape(rawSecret)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fosite.ErrInvalidClient.WithHint("The HTTP Basic credentials are not properly form-encoded.").WithWrap(err)
	}
	if fid := form.Get("client_id"); fid != "" && fid != id {
		return nil, fosite.ErrInvalidClient.WithHint("The client_id parameter does not match the authenticated client.")
	}
	c, err := p.store.client(ctx, id)
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, fosite.ErrInvalidClient.WithHint("Client authentication failed.")
	} else if err != nil {
		return nil, p.serverError(ctx, "client lookup", err)
	}
	if c.AuthMethod != AuthClientSecretBasic {
		return nil, fosite.ErrInvalidClient.WithHintf("This client is registered for %s, not client_secret_basic.", c.AuthMethod)
	}
	if err := p.hasher.Compare(ctx, c.SecretHash, []byte(secret)); err != nil {
		return nil, fosite.ErrInvalidClient.WithHint("Client authentication failed.")
	}
	return c, nil
}
