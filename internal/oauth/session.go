package oauth

import (
	"maps"
	"time"

	"github.com/ory/fosite"

	"github.com/consentgate/consentgate/internal/consent"
)

// Session is what fosite carries from the customer's decision into the code
// and every token of the grant. It is stored as JSON inside each token row.
type Session struct {
	// Subject is the customer id ("" for client_credentials tokens).
	Subject string `json:"subject"`
	// GrantID is the consent id (= fosite request id); "" for
	// client_credentials tokens, which have no consent.
	GrantID string `json:"grant_id,omitempty"`
	// Purpose is the consented purpose, bound to every token of the grant.
	Purpose string `json:"purpose,omitempty"`
	// JKT is the SHA-256 thumbprint of the DPoP key (RFC 9449) the code or
	// the tokens are bound to; "" when they are not sender-constrained.
	// Refreshing keeps it, so no token of a grant escapes its key.
	JKT       string                         `json:"jkt,omitempty"`
	ExpiresAt map[fosite.TokenType]time.Time `json:"expires_at,omitempty"`

	// consent is the grant as read with the access token in this request
	// (never stored: it is not part of the token's record).
	consent *consent.Consent
}

var _ fosite.Session = (*Session)(nil)

// SetExpiresAt implements fosite.Session.
func (s *Session) SetExpiresAt(key fosite.TokenType, exp time.Time) {
	if s.ExpiresAt == nil {
		s.ExpiresAt = map[fosite.TokenType]time.Time{}
	}
	s.ExpiresAt[key] = exp
}

// GetExpiresAt implements fosite.Session; the zero time means "not set".
func (s *Session) GetExpiresAt(key fosite.TokenType) time.Time {
	if s == nil {
		return time.Time{}
	}
	return s.ExpiresAt[key]
}

// GetUsername implements fosite.Session; customers are known by id only.
func (s *Session) GetUsername() string { return "" }

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
