package oauth

import "context"

// EventSink lets the audit log hear OAuth events; the provider calls it
// when set. It must not block for long: it runs inside the request.
type EventSink interface {
	OAuthEvent(ctx context.Context, e Event)
}

// Event types the provider emits (SPEC §6).
const (
	EventTokenIssued       = "token.issued"
	EventTokenRefreshed    = "token.refreshed"
	EventTokenRevoked      = "token.revoked"
	EventConsentRequested  = "consent.requested"
	EventConsentAuthorized = "consent.authorized"
	EventConsentRejected   = "consent.rejected"
	EventConsentRevoked    = "consent.revoked"
	EventPurposeBlocked    = "purpose.blocked"
)

// Event outcomes.
const (
	OutcomeAllowed = "allowed"
	OutcomeDenied  = "denied"
)

// Event is one OAuth event for the audit log.
type Event struct {
	Type    string // one of the Event* constants
	Outcome string // allowed | denied
	Reason  string
	// ClientID, CustomerID, GrantID and Purpose are "" when not known.
	ClientID, CustomerID, GrantID, Purpose string
	Scopes                                 []string
}

func (p *Provider) emit(ctx context.Context, e Event) {
	if p.events == nil {
		return
	}
	if e.Outcome == "" {
		e.Outcome = OutcomeAllowed
	}
	p.events.OAuthEvent(ctx, e)
}
