package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/consentgate/consentgate/internal/consent"
)

// Access is what a valid access token lets its bearer do.
type Access struct {
	GrantID, ClientID, CustomerID string // CustomerID "" for client_credentials tokens
	Scopes                        []string
	Purpose                       string           // the consent's purpose ("" for client_credentials)
	Consent                       *consent.Consent // nil for client_credentials
	TokenExpiresAt                time.Time
}

// TokenError is an RFC 6750 bearer token error.
type TokenError struct {
	Status      int
	Code        string // invalid_token | insufficient_scope
	Description string
}

// Error implements error.
func (e *TokenError) Error() string { return e.Code + ": " + e.Description }

func invalidToken(desc string) *TokenError {
	return &TokenError{Status: http.StatusUnauthorized, Code: "invalid_token", Description: desc}
}

// AuthenticateAccess authenticates a data API call by its bearer access
// token. Only the Authorization header counts (never query or body), only
// access tokens (never refresh tokens), and the consent is read from the
// database on every call, so a revocation on any node takes effect at once.
// Every token problem is a *TokenError with status 401 and code
// invalid_token; a failure to read the consent is returned as is (a 5xx,
// not the client's fault).
func (p *Provider) AuthenticateAccess(ctx context.Context, r *http.Request) (*Access, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return nil, invalidToken("A bearer access token is required in the Authorization header.")
	}
	tu, ar, err := p.oauth.IntrospectToken(ctx, token, fosite.AccessToken, &Session{})
	if errors.Is(err, ErrStorage) {
		return nil, fmt.Errorf("oauth.AuthenticateAccess: %w", err)
	}
	if err != nil || tu != fosite.AccessToken {
		return nil, invalidToken("The access token is unknown, expired or revoked.")
	}
	sess, _ := ar.GetSession().(*Session)
	if sess == nil {
		return nil, invalidToken("The access token is unknown, expired or revoked.")
	}
	a := &Access{
		GrantID: sess.GrantID, ClientID: ar.GetClient().GetID(), CustomerID: sess.Subject,
		Scopes: slices.Clone(ar.GetGrantedScopes()), TokenExpiresAt: sess.GetExpiresAt(fosite.AccessToken),
	}
	if sess.GrantID == "" {
		return a, nil // client_credentials: no consent behind it
	}
	c, err := p.consents.Get(ctx, sess.GrantID)
	if errors.Is(err, consent.ErrNotFound) {
		return nil, invalidToken("The grant of this access token does not exist.")
	} else if err != nil {
		return nil, fmt.Errorf("oauth.AuthenticateAccess: %w", err)
	}
	if !c.Active(p.now()) || c.ClientID != a.ClientID || c.CustomerID != a.CustomerID {
		return nil, invalidToken("The grant of this access token is no longer authorized.")
	}
	a.Consent, a.Purpose = c, c.Purpose
	return a, nil
}
