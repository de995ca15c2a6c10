// Package consent is the customer's permission for one app: which data
// (scopes), which accounts, for what purpose, how far back and until when.
// A consent is an OAuth grant; its id is fosite's request id (the grant_id).
// This package holds the lifecycle rules and the storage they need; it does
// not speak HTTP or OAuth.
package consent

import (
	"slices"
	"time"
)

// Status is where a consent is in its lifecycle (SPEC §5).
type Status string

// The consent statuses.
const (
	AwaitingAuthorization Status = "awaiting_authorization"
	Authorized            Status = "authorized"
	Rejected              Status = "rejected"
	Revoked               Status = "revoked"
	Expired               Status = "expired"
)

// Consent is one grant.
type Consent struct {
	ID          string
	ClientID    string
	CustomerID  string // empty until the customer decides
	Status      Status
	Scopes      []string
	Purpose     string
	HistoryDays int           // how far back transactions may be read
	Duration    time.Duration // how long it lasts once authorized
	AccountIDs  []string      // the accounts the customer selected
	CreatedAt   time.Time
	// AuthorizedAt and ExpiresAt are set when the customer approves.
	AuthorizedAt *time.Time
	ExpiresAt    *time.Time
	RevokedAt    *time.Time
	RevokedBy    string // "customer", "client" or "reuse_detected"
	UpdatedAt    time.Time
}

// StatusAt is the status as of now: an authorized consent past its expiry
// is expired even before the expiry sweep records it.
func (c *Consent) StatusAt(now time.Time) Status {
	if c.Status == Authorized && c.ExpiresAt != nil && !now.Before(*c.ExpiresAt) {
		return Expired
	}
	return c.Status
}

// Active reports whether data may be served under the consent at now.
func (c *Consent) Active(now time.Time) bool { return c.StatusAt(now) == Authorized }

// HasScope reports whether the consent grants scope.
func (c *Consent) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// HasAccount reports whether the customer selected the account.
func (c *Consent) HasAccount(id string) bool { return slices.Contains(c.AccountIDs, id) }

// HistoryStart is the earliest transaction time the consent allows at now.
func (c *Consent) HistoryStart(now time.Time) time.Time {
	return now.Add(-time.Duration(c.HistoryDays) * 24 * time.Hour)
}
