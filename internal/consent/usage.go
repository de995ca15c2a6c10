package consent

import (
	"context"
	"fmt"
	"time"
)

// Resources of the unattended daily limits (SPEC §12): each has its own
// count per consent, account and UTC day.
const (
	ResourceAccounts     = "accounts"     // the list of accounts (account "")
	ResourceAccount      = "account"      // one account's details
	ResourceBalances     = "balances"     // an account's balances
	ResourceTransactions = "transactions" // an account's transaction pages
	ResourceSync         = "sync"         // an account's transaction sync
	// The FDX API (/fdx/v6) counts its reads against the same resources as
	// /v1 where they are the same data (the list of accounts, an account,
	// its transactions), so speaking FDX never doubles an app's budget, and
	// against its own for the data only FDX serves.
	ResourceCustomer        = "customer"         // the customer's identifier (account "")
	ResourceContact         = "contact"          // an account's holders' contact details
	ResourcePaymentNetworks = "payment_networks" // an account's payment numbers
)

// Usage names what an unattended call reads: a resource, of an account
// ("" for the list of accounts).
type Usage struct {
	Resource  string
	AccountID string
}

// CountUnattended counts one call made without the customer present under
// consent id on u, on the UTC day of now, and returns the day's count
// including it. One atomic upsert: concurrent calls on any node each get
// their own number, so a daily limit cannot be overrun by racing.
func (s *SQLStore) CountUnattended(ctx context.Context, id string, u Usage, now time.Time) (int, error) {
	day := now.UTC().Unix() / 86400
	var n []int
	err := s.db.WithContext(ctx).Raw(`INSERT INTO consent_usage_resource (consent_id, day, resource, account_id, unattended)
		VALUES (?, ?, ?, ?, 1)
		ON CONFLICT (consent_id, day, resource, account_id) DO UPDATE SET unattended = consent_usage_resource.unattended + 1
		RETURNING unattended`, id, day, u.Resource, u.AccountID).Scan(&n).Error
	if err != nil || len(n) != 1 {
		return 0, fmt.Errorf("consent.CountUnattended: %v", err)
	}
	return n[0], nil
}

// UncountUnattended takes back one call counted by CountUnattended on the
// same day: a call that was refused or not served does not use up the
// allowance (only served calls count).
func (s *SQLStore) UncountUnattended(ctx context.Context, id string, u Usage, now time.Time) error {
	day := now.UTC().Unix() / 86400
	err := s.db.WithContext(ctx).Exec(`UPDATE consent_usage_resource SET unattended = unattended - 1
		WHERE consent_id = ? AND day = ? AND resource = ? AND account_id = ? AND unattended > 0`,
		id, day, u.Resource, u.AccountID).Error
	if err != nil {
		return fmt.Errorf("consent.UncountUnattended: %w", err)
	}
	return nil
}
