package consent

import (
	"context"
	"time"
)

// Store is the storage consents need.
type Store interface {
	// Create records a new consent awaiting the customer's decision.
	Create(ctx context.Context, c *Consent) error
	// Get returns the consent with its accounts, or ErrNotFound.
	Get(ctx context.Context, id string) (*Consent, error)
	// Authorize records the customer's approval of an awaiting consent for
	// the given accounts; it lasts from now for the consent's duration.
	Authorize(ctx context.Context, id, customerID string, accountIDs []string, now time.Time) (*Consent, error)
	// Reject records the customer's refusal of an awaiting consent.
	Reject(ctx context.Context, id, customerID string, now time.Time) error
	// Revoke ends an authorized consent; it reports whether it changed
	// anything (revoking twice is not an error).
	Revoke(ctx context.Context, id, by string, now time.Time) (bool, error)
	// ListByCustomer returns the customer's consents, newest first.
	ListByCustomer(ctx context.Context, customerID string) ([]*Consent, error)
	// ExpireDue marks authorized consents whose expiry has passed as expired
	// and returns them.
	ExpireDue(ctx context.Context, now time.Time) ([]*Consent, error)
}
