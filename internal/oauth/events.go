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

// TxEventSink is an EventSink that can also commit an event in the same
// transaction as the rows the event records (the server's audit log does).
// OAuthEventWith returns ok false, having written nothing, when it cannot.
type TxEventSink interface {
	OAuthEventWith(ctx context.Context, e Event, rows EventRows) (ok bool, err error)
}

// EventRows are rows of one table an event records: len(Columns) Values a
// row. Table and Columns are constants of this package.
type EventRows struct {
	Table   string
	Columns []string
	Values  []any
	// Require, when set, is a condition the event and its rows commit
	// under, checked in their transaction: while it returns no row nothing
	// is written and OAuthEventWith returns an error wrapping
	// ErrClientChanged.
	Require *Condition
}

// issueEvent is a token endpoint request's token.issued event, known
// before fosite stores the token: the store commits the access token row
// with it (createToken) when the sink can, and the handler then emits it
// no more.
type issueEvent struct {
	ev       Event
	sink     TxEventSink
	recorded bool
}

type issueEventKey struct{}

// withIssueEvent is ctx carrying e for the access token the request will
// store, when the provider's sink can commit the two together.
func (p *Provider) withIssueEvent(ctx context.Context, e Event) (context.Context, *issueEvent) {
	sink, ok := p.events.(TxEventSink)
	if !ok {
		return ctx, nil
	}
	if e.Outcome == "" {
		e.Outcome = OutcomeAllowed
	}
	ie := &issueEvent{ev: e, sink: sink}
	return context.WithValue(ctx, issueEventKey{}, ie), ie
}

// recordWith commits the request's issue event with rows, once: ok false
// when there is none (or it was recorded already, or the sink cannot), and
// the caller writes alone.
func recordWith(ctx context.Context, rows EventRows) (bool, error) {
	ie, _ := ctx.Value(issueEventKey{}).(*issueEvent)
	if ie == nil || ie.recorded {
		return false, nil
	}
	ok, err := ie.sink.OAuthEventWith(ctx, ie.ev, rows)
	ie.recorded = ok && err == nil
	return ok, err
}
