// Package httpapi is consentgate's JSON surface for third-party apps: the
// middleware every request goes through (interaction id, security headers,
// panic recovery, access log), problem+json errors (RFC 9457), the
// consent-gated data API of SPEC §3 and the auditor API of SPEC §6.
//
// It translates between HTTP and the domain and decides nothing on its own:
// token validity comes from the authorization server (Authenticator), consent
// rules from package consent, purpose rules from package purpose. It must
// never read customer data before the token, the consent, the purpose and the
// scope of the call have been checked, never reveal whether an account
// outside the consent exists, and never send a data call's answer (data or
// refusal) before its data.access event is committed to the audit log.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/purpose"
)

// Principal is the caller of a data endpoint as the authorization server
// vouches for it.
type Principal struct {
	GrantID    string
	ClientID   string
	CustomerID string   // "" for client_credentials tokens
	Scopes     []string // the token's granted scopes
	Purpose    string   // the consent's purpose ("" for client_credentials)
	// Consent is the grant, loaded fresh for this request; nil for
	// client_credentials tokens, which carry no customer's permission.
	Consent *consent.Consent
}

// Authenticator validates the access token of a request.
type Authenticator interface {
	// Authenticate reads the request's access token, validates it and loads
	// its consent live (a revocation must show on the next request), or,
	// when ctx has an open store.Deferred slot, may answer from the state
	// it read last and leave the check of that state in the slot, for the
	// commit of the call's event. Token problems are returned as
	// *TokenError.
	Authenticate(ctx context.Context, r *http.Request) (*Principal, error)
}

// TokenError is an RFC 6750 error: sent with a WWW-Authenticate challenge.
type TokenError struct {
	Status      int    // 401 unless set
	Code        string // invalid_token (default), insufficient_scope, invalid_dpop_proof, use_dpop_nonce
	Description string // safe to show the client
	// Scheme is the challenge's scheme: "DPoP" (RFC 9449 §7.1) or, when
	// empty, the scheme the request used (Bearer unless it used DPoP).
	Scheme string
	Nonce  string   // a fresh DPoP nonce for the DPoP-Nonce header, if any
	Algs   []string // DPoP: the proof algorithms accepted
}

// Error implements error.
func (e *TokenError) Error() string { return e.Code + ": " + e.Description }

// UsageCounter counts the calls a consent makes without the customer
// present, per account, resource and UTC day, across every node.
type UsageCounter interface {
	// CountUnattended adds one call on u and returns the day's count with it.
	CountUnattended(ctx context.Context, consentID string, u consent.Usage, now time.Time) (int, error)
	// UncountUnattended takes back a counted call that was not served.
	UncountUnattended(ctx context.Context, consentID string, u consent.Usage, now time.Time) error
}

// RateLimiter limits each client's requests (SPEC §11).
type RateLimiter interface {
	// Allow counts one request of clientID and returns how long it must
	// wait when it is over its limit (0: admitted).
	Allow(ctx context.Context, clientID string) (time.Duration, error)
}

// Deps are what the data API needs.
type Deps struct {
	Accounts accounts.Store
	Auth     Authenticator
	// Audit records one data.access event per call, allowed or refused,
	// before its answer is sent (no audit, no data). Required.
	Audit audit.Recorder
	// Usage counts unattended calls per consent and day. Required.
	Usage UsageCounter
	// Sync reads the accounts' change sequences (GET …/transactions/sync);
	// nil leaves the route out.
	Sync SyncStore
	// CursorKey authenticates sync cursors: the same on every node and
	// across restarts (derived from the server secret), or cursors break.
	// nil: a random key, for a single process.
	CursorKey []byte
	Purposes  *purpose.Table   // nil: purpose.Default()
	Logger    *slog.Logger     // refused purposes are logged here as security events; nil: discard
	Now       func() time.Time // nil: time.Now
	Limiter   RateLimiter      // per-client rate limit; nil: none
	// ServedAgain is called for every call served a second time because
	// the token state it was answered from changed before its event
	// committed (audit_access.go); nil: not counted.
	ServedAgain func()
}
