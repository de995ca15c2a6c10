package oauth

import (
	"maps"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/consentgate/consentgate/internal/consent"
)

// Session is what fosite carries from the customer's decision into the code
// and every token of the grant. It is stored as JSON inside each token row.
//
// It is fosite's openid.DefaultSession (Subject, ExpiresAt and the id_token
// claims and headers, whose JSON names the session always had) plus the
// grant: fosite's OpenID Connect handlers read the id_token claims from it.
// Subject is the internal customer id ("" for client_credentials tokens);
// the id_token's sub is the pairwise subject the client sees.
type Session struct {
	openid.DefaultSession
	// GrantID is the consent id (= fosite request id); "" for
	// client_credentials tokens, which have no consent.
	GrantID string `json:"grant_id,omitempty"`
	// Purpose is the consented purpose, bound to every token of the grant.
	Purpose string `json:"purpose,omitempty"`
	// JKT is the SHA-256 thumbprint of the DPoP key (RFC 9449) the code or
	// the tokens are bound to; "" when they are not sender-constrained.
	// Refreshing keeps it, so no token of a grant escapes its key.
	JKT string `json:"jkt,omitempty"`

	// consent is the grant as read with the access token in this request
	// (never stored: it is not part of the token's record).
	consent *consent.Consent
}

var (
	_ fosite.Session = (*Session)(nil)
	_ openid.Session = (*Session)(nil)
)

// GetExpiresAt implements fosite.Session; the zero time means "not set".
func (s *Session) GetExpiresAt(key fosite.TokenType) time.Time {
	if s == nil {
		return time.Time{}
	}
	return s.ExpiresAt[key]
}

// GetSubject implements fosite.Session.
func (s *Session) GetSubject() string {
	if s == nil {
		return ""
	}
	return s.Subject
}

// Clone implements fosite.Session with a deep copy, so a refreshed grant's
// new expiry times never leak into the session they were copied from.
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := *s
	c.ExpiresAt = maps.Clone(s.ExpiresAt)
	if s.Claims != nil {
		claims := *s.Claims
		claims.Audience = slices.Clone(claims.Audience)
		claims.AuthenticationMethodsReferences = slices.Clone(claims.AuthenticationMethodsReferences)
		claims.Extra = maps.Clone(claims.Extra)
		c.Claims = &claims
	}
	if s.Headers != nil {
		c.Headers = &jwt.Headers{Extra: maps.Clone(s.Headers.Extra)}
	}
	c.consent = nil // belongs to the request that read it
	return &c
}

// capExpiry makes sure no token of the session outlives until (the
// consent's expiry). A zero refresh expiry means "unlimited" to fosite, so it
// is capped as well.
func (s *Session) capExpiry(until time.Time) {
	for k, exp := range s.ExpiresAt {
		if exp.After(until) {
			s.ExpiresAt[k] = until
		}
	}
	if s.GetExpiresAt(fosite.RefreshToken).IsZero() {
		s.SetExpiresAt(fosite.RefreshToken, until)
	}
}
