// Package audit is consentgate's tamper-evident access log (SPEC §6): the
// one place that appends events, chains them with SHA-256, signs periodic
// checkpoints, verifies the chain, and answers the auditor's and the
// dashboard's queries. Every other package records events through the small
// Recorder interface.
//
// It must not speak HTTP (handlers translate its errors and values), must not
// update or delete an event once written, and must never report an event as
// recorded before the transaction holding it has committed: callers gate data
// responses on Append returning nil ("no audit, no data"). The encoding the
// hashes cover is documented in docs/audit.md so outside tools can recompute
// the chain.
package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Type is an event type of SPEC §6.
type Type string

// The event types of SPEC §6.
const (
	DataAccess        Type = "data.access"
	TokenIssued       Type = "token.issued"
	TokenRefreshed    Type = "token.refreshed"
	TokenRevoked      Type = "token.revoked"
	ConsentRequested  Type = "consent.requested"
	ConsentAuthorized Type = "consent.authorized"
	ConsentRejected   Type = "consent.rejected"
	ConsentRevoked    Type = "consent.revoked"
	ConsentExpired    Type = "consent.expired"
	PurposeBlocked    Type = "purpose.blocked"
	// ProviderWrite is a data provider's batch (SPEC §7: every write is
	// audited); an addition to the SPEC §6 list.
	ProviderWrite Type = "provider.write"
	// Client lifecycle events (SPEC §11): the bank's operators and dynamic
	// registration acting on an app's registration.
	ClientRegistered    Type = "client.registered"
	ClientUpdated       Type = "client.updated"
	ClientSuspended     Type = "client.suspended"
	ClientReinstated    Type = "client.reinstated"
	ClientSecretRotated Type = "client.secret_rotated"
	ClientDeleted       Type = "client.deleted"
	// ClientViewed is an operator's read of the client list or of one
	// client (SPEC §11: every operator call is audited).
	ClientViewed Type = "client.viewed"
)

// Types lists every event type, in SPEC order, then ours.
func Types() []Type {
	return []Type{DataAccess, TokenIssued, TokenRefreshed, TokenRevoked, ConsentRequested,
		ConsentAuthorized, ConsentRejected, ConsentRevoked, ConsentExpired, PurposeBlocked, ProviderWrite,
		ClientRegistered, ClientUpdated, ClientSuspended, ClientReinstated, ClientSecretRotated, ClientDeleted, ClientViewed}
}

// Valid reports whether t is one of the SPEC event types.
func (t Type) Valid() bool {
	for _, k := range Types() {
		if t == k {
			return true
		}
	}
	return false
}

// Outcome says whether the audited action was allowed or refused.
type Outcome string

// The outcomes of SPEC §6.
const (
	Allowed Outcome = "allowed"
	Denied  Outcome = "denied"
)

// Valid reports whether o is allowed or denied.
func (o Outcome) Valid() bool { return o == Allowed || o == Denied }

// Event is one audit log entry with the fields of SPEC §6. Absent strings are
// "" and an absent status is 0: the log never stores NULL, so the canonical
// encoding has one form per value.
type Event struct {
	Seq           int64     // position in the log, from 1, assigned at integration
	EventID       string    // UUID, assigned by Append
	OccurredAt    time.Time // UTC, microsecond precision; Append sets now when zero
	Type          Type
	Outcome       Outcome
	Reason        string // short machine-readable reason, e.g. "purpose_prohibited"
	ClientID      string
	CustomerID    string
	GrantID       string
	AccountID     string
	Method        string // HTTP method of a data call
	Path          string // request path of a data call (no query string)
	Status        int    // HTTP status answered, 0 when not an HTTP call
	Purpose       string
	Scopes        []string
	InteractionID string // x-fapi-interaction-id, the correlation id
	PrevHash      string // hex SHA-256 of the previous event (64 '0' for seq 1)
	Hash          string // hex SHA-256(prev_hash ‖ canonical(event))
}

// Recorder is what other packages need from the audit log: record one event
// and return it as durably committed (with EventID), or fail with an error
// wrapping ErrUnavailable, in which case the caller must not serve data.
type Recorder interface {
	Record(ctx context.Context, ev Event) (Event, error)
}

// RowsRecorder is a Recorder that also commits an event with the rows it
// records and under a precondition (Writer.AppendWith). A recorder that
// is not one (a test's) makes its callers write the two apart, or read
// live instead of deferring a check.
type RowsRecorder interface {
	Recorder
	AppendWith(ctx context.Context, ev Event, with Rows) (Event, error)
}

// ErrUnavailable is wrapped by every error that means "the event was not
// durably recorded"; such errors are *apperr.E with code audit_unavailable.
var ErrUnavailable = errors.New("audit log unavailable")

// GenesisHash is the prev_hash of the first event: 32 zero bytes, in hex.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// maxField bounds every stored string (bytes). A request path or reason is
// attacker-influenced; an unbounded one would bloat the log and its exports.
const maxField = 1024

// clean makes s storable in both dialects and canonical: valid UTF-8 (invalid
// bytes and NUL, which PostgreSQL TEXT refuses, become U+FFFD) and at most
// maxField bytes, cut at a rune boundary. Without it, one hostile path could
// fail a whole group-commit batch and deny service to its other requests.
func clean(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	if len(s) > maxField {
		cut := maxField
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// normalize validates ev and brings it to the form that is hashed and stored.
func normalize(ev Event, now time.Time) (Event, error) {
	if !ev.Type.Valid() {
		return ev, fmt.Errorf("audit: unknown event type %q", ev.Type)
	}
	if !ev.Outcome.Valid() {
		return ev, fmt.Errorf("audit: unknown outcome %q", ev.Outcome)
	}
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = now
	}
	ev.OccurredAt = ev.OccurredAt.UTC().Truncate(time.Microsecond)
	for _, p := range []*string{&ev.Reason, &ev.ClientID, &ev.CustomerID, &ev.GrantID, &ev.AccountID,
		&ev.Method, &ev.Path, &ev.Purpose, &ev.InteractionID} {
		*p = clean(*p)
	}
	// Scopes are stored space-joined; splitting here makes that round-trip
	// exactly (no empty or space-containing elements).
	ev.Scopes = strings.Fields(clean(strings.Join(ev.Scopes, " ")))
	ev.Seq, ev.PrevHash, ev.Hash = 0, "", ""
	return ev, nil
}
