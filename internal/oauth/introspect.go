package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"
)

// introspection is the RFC 7662 answer, with the grant and purpose the
// token is bound to. fosite's own writer knows neither, so it is built here.
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Sub       string `json:"sub,omitempty"` // the customer's pairwise subject for this client
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	GrantID   string `json:"grant_id,omitempty"`
	Purpose   string `json:"purpose,omitempty"`
	TokenType string `json:"token_type,omitempty"` // "Bearer" or "DPoP" for access tokens
	TokenUse  string `json:"token_use,omitempty"`  // access_token | refresh_token
	// Cnf is the key a DPoP-bound token is bound to (RFC 9449 §6.2).
	Cnf *confirmation `json:"cnf,omitempty"`
}

// confirmation is the RFC 7800 cnf claim with a JWK thumbprint.
type confirmation struct {
	JKT string `json:"jkt"`
}

// handleIntrospect is POST /oauth2/introspect (RFC 7662). A client may only
// introspect its own tokens: anything else, like a dead or unknown token,
// is {"active": false}, so introspection reveals nothing about other
// clients' grants.
func (p *Provider) handleIntrospect(c *gin.Context) {
	r := limitBody(c)
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		p.oauth.WriteAccessError(ctx, c.Writer, nil, fosite.ErrInvalidRequest.WithHint("The request body could not be parsed."))
		return
	}
	ctx = p.prefetchIntrospected(ctx, r)
	client, err := p.oauth.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		p.oauth.WriteAccessError(ctx, c.Writer, nil, answer(err))
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		p.oauth.WriteAccessError(ctx, c.Writer, nil, fosite.ErrInvalidRequest.WithHint("The token parameter is required."))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	out := introspection{}
	tu, ar, err := p.oauth.IntrospectToken(ctx, token, fosite.TokenUse(r.PostForm.Get("token_type_hint")), &Session{})
	if errors.Is(err, ErrStorage) {
		// An outage must not read as "inactive": a resource server would
		// treat a live token as revoked.
		p.log.ErrorContext(ctx, "oauth: introspect", "error", err)
		p.oauth.WriteAccessError(ctx, c.Writer, nil, fosite.ErrTemporarilyUnavailable)
		return
	}
	// A suspended app's tokens are refused everywhere, so they are not
	// active (the row that came with the token says so, read live).
	if err != nil || ar.GetClient().GetID() != client.GetID() || suspended(ar.GetClient()) {
		c.JSON(http.StatusOK, out)
		return
	}
	sess, _ := ar.GetSession().(*Session)
	out = introspection{
		Active: true, Scope: strings.Join(ar.GetGrantedScopes(), " "), ClientID: ar.GetClient().GetID(),
		Iat: ar.GetRequestedAt().Unix(), TokenUse: string(tu),
	}
	if sess != nil {
		// The client sees its pairwise subject, never the internal id.
		out.Sub, out.GrantID, out.Purpose = p.subjectFor(out.ClientID, sess.Subject), sess.GrantID, sess.Purpose
		if sess.JKT != "" {
			out.Cnf = &confirmation{JKT: sess.JKT}
		}
		if exp := sess.GetExpiresAt(tu); !exp.IsZero() {
			out.Exp = exp.Unix()
		}
	}
	if tu == fosite.AccessToken {
		out.TokenType = "Bearer"
		if out.Cnf != nil {
			out.TokenType = SchemeDPoP
		}
	}
	c.JSON(http.StatusOK, out)
}

// suspended reports whether a token's client is suspended (or not one of
// ours, which never happens).
func suspended(c fosite.Client) bool {
	k, ok := c.(*Client)
	return !ok || k.Suspended()
}

// prefetchIntrospected reads the introspected access token first, when the
// request authenticates with HTTP Basic: the token's row comes with its
// client's registration (getToken), and a client introspecting its own
// token (the only kind of answer that can be active) is then authenticated
// against that row, secret checked as always, and fosite's read of the
// token uses the same row. One read by primary key answers the request
// instead of two; both rows are read live, in this request, so a
// revocation or suspension shows as before. Anything else (another
// client's token, a refresh token, an unknown token, a failed read) goes
// the usual way, and the usual reads say what is wrong.
func (p *Provider) prefetchIntrospected(ctx context.Context, r *http.Request) context.Context {
	token := r.PostForm.Get("token")
	rawID, _, basic := r.BasicAuth()
	if !basic || token == "" || fosite.TokenUse(r.PostForm.Get("token_type_hint")) == fosite.RefreshToken {
		return ctx
	}
	sig := p.strategy.AccessTokenSignature(ctx, token)
	if sig == "" {
		return ctx
	}
	row, err := p.store.getToken(ctx, kindAccess, sig)
	if err != nil {
		return ctx
	}
	ctx = withTokenRow(ctx, kindAccess, sig, row)
	if id, err := url.QueryUnescape(rawID); err == nil && id == row.Client.ID {
		ctx = withClientRow(ctx, row.Client)
	}
	return ctx
}
