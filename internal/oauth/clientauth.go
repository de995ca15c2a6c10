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
// a weaker method than its registration, and never sends two.
func (p *Provider) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	if c, ok := ctx.Value(authenticatedKey{}).(*Client); ok {
		return c, nil
	}
	_, _, basic := r.BasicAuth()
	assertion := form.Get("client_assertion_type") != "" || form.Get("client_assertion") != ""
	switch {
	case form.Get("client_secret") != "":
		// FAPI 2.0 allows no secret in the body (client_secret_post).
		return nil, fosite.ErrInvalidClient.WithHint("client_secret_post is not supported; use private_key_jwt or HTTP Basic authentication (client_secret_basic).")
	case assertion && basic:
		return nil, fosite.ErrInvalidClient.WithHint("Use one client authentication method per request, not both HTTP Basic and a client assertion.")
	case assertion:
		return p.authenticatePrivateKeyJWT(ctx, r, form)
	case basic:
		return p.authenticateSecretBasic(ctx, r, form)
	}
	return nil, fosite.ErrInvalidClient.WithHint("Client authentication is required: a client assertion (private_key_jwt) or HTTP Basic credentials (client_secret_basic).")
}

// authenticatedKey marks a context whose request's client a handler has
// already authenticated. The token endpoint authenticates before checking
// DPoP, and fosite asks again inside NewAccessRequest: the second answer
// must come from here, since a client assertion's jti is already spent.
type authenticatedKey struct{}

// withClient returns ctx carrying c as the request's authenticated client.
func withClient(ctx context.Context, c *Client) context.Context {
	return context.WithValue(ctx, authenticatedKey{}, c)
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
	c, err := p.clientForSecret(ctx, id, secret)
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, fosite.ErrInvalidClient.WithHint("Client authentication failed.")
	} else if err != nil {
		return nil, p.serverError(ctx, "client lookup", err)
	}
	if c.AuthMethod != AuthClientSecretBasic {
		return nil, fosite.ErrInvalidClient.WithHintf("This client is registered for %s, not client_secret_basic.", c.AuthMethod)
	}
	if !p.secretMatches(ctx, c, secret) {
		return nil, fosite.ErrInvalidClient.WithHint("Client authentication failed.")
	}
	return c, nil
}
