package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/store"
)

// PaymentNumbers are what a payment network (US ACH) needs to move money to
// or from a deposit account. The account number is a token the bank's core
// maps back to the real account (a tokenized account number): consentgate
// never stores the real one, and a leaked token can be revoked by the bank
// without closing the account.
type PaymentNumbers struct {
	AccountID          string
	RoutingNumber      string // the 9-digit ABA routing transit number
	AccountNumberToken string // 4 to 17 digits, as ACH account numbers
}

// NumberProblem names the field of PaymentNumbers that breaks a rule, by
// the name providers send it under, or "" when none does.
func (n PaymentNumbers) NumberProblem() (field, reason string) {
	switch {
	case len(n.RoutingNumber) != 9 || !allDigits(n.RoutingNumber):
		return "routing_number", "must be the 9-digit ABA routing number"
	case !abaChecksum(n.RoutingNumber):
		return "routing_number", "fails the ABA check digit: not a routing number (check for a typo)"
	case len(n.AccountNumberToken) < 4 || len(n.AccountNumberToken) > 17 || !allDigits(n.AccountNumberToken):
		return "account_number_token", "must be the tokenized account number: 4 to 17 digits (never the real account number)"
	}
	return "", ""
}

// abaChecksum is the routing number check digit rule:
// 3(d1+d4+d7) + 7(d2+d5+d8) + (d3+d6+d9) ≡ 0 (mod 10).
func abaChecksum(s string) bool {
	w := [3]int{3, 7, 1}
	sum := 0
	for i := 0; i < 9; i++ {
		sum += w[i%3] * int(s[i]-'0')
	}
	return sum%10 == 0
}

// IsDeposit reports whether an account of type typ holds deposits
// (checking or savings), as opposed to a card's line of credit.
func IsDeposit(typ string) bool { return typ == TypeChecking || typ == TypeSavings }

// NumberStore reads and writes payment numbers (SQLStore implements it).
type NumberStore interface {
	// PaymentNumbers returns the account's numbers, or ErrNotFound when it
	// has none on record.
	PaymentNumbers(ctx context.Context, accountID string) (*PaymentNumbers, error)
	// UpsertPaymentNumbers creates or replaces a deposit account's numbers.
	UpsertPaymentNumbers(ctx context.Context, n PaymentNumbers) error
}

var _ NumberStore = (*SQLStore)(nil)

// PaymentNumbers implements NumberStore.
func (s *SQLStore) PaymentNumbers(ctx context.Context, accountID string) (*PaymentNumbers, error) {
	n := PaymentNumbers{AccountID: accountID}
	err := s.sql.QueryRowContext(ctx, `SELECT routing_number, account_number_token FROM account_numbers WHERE account_id = $1`,
		accountID).Scan(&n.RoutingNumber, &n.AccountNumberToken)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("accounts.PaymentNumbers: %w", err)
	}
	return &n, nil
}

// UpsertPaymentNumbers implements NumberStore.
func (s *SQLStore) UpsertPaymentNumbers(ctx context.Context, n PaymentNumbers) error {
	return s.db.Tx(ctx, func(tx *gorm.DB) error { return s.Bulk(tx).UpsertPaymentNumbers([]PaymentNumbers{n}) })
}

// PaymentNumbersByAccount returns the numbers on record of the given
// accounts, by account id.
func (b *Bulk) PaymentNumbersByAccount(accountIDs []string) (map[string]PaymentNumbers, error) {
	out := make(map[string]PaymentNumbers, len(accountIDs))
	for start := 0; start < len(accountIDs); start += 200 {
		var rows []struct{ AccountID, RoutingNumber, AccountNumberToken string }
		if err := b.tx.Raw(`SELECT account_id, routing_number, account_number_token FROM account_numbers WHERE account_id IN ?`,
			accountIDs[start:min(start+200, len(accountIDs))]).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("accounts.PaymentNumbersByAccount: %w", err)
		}
		for _, r := range rows {
			out[r.AccountID] = PaymentNumbers(r)
		}
	}
	return out, nil
}

// UpsertPaymentNumbers validates and writes numbers of deposit accounts
// (checking or savings: a card is no payment network's destination).
func (b *Bulk) UpsertPaymentNumbers(ns []PaymentNumbers) error {
	ids := make([]string, len(ns))
	for i, n := range ns {
		ids[i] = n.AccountID
	}
	found, err := b.AccountsByID(ids)
	if err != nil {
		return err
	}
	for _, n := range ns {
		if a, ok := found[n.AccountID]; !ok || !IsDeposit(a.Type) {
			return fmt.Errorf("accounts.UpsertPaymentNumbers %s: %w: not a checking or savings account", n.AccountID, ErrInvalid)
		}
	}
	for start := 0; start < len(ns); start += 100 {
		chunk := ns[start:min(start+100, len(ns))]
		var q strings.Builder
		q.WriteString("INSERT INTO account_numbers (account_id, routing_number, account_number_token, updated_at) VALUES ")
		q.WriteString(store.Placeholders(len(chunk), 4))
		args := make([]any, 0, len(chunk)*4)
		for _, n := range chunk {
			if field, reason := n.NumberProblem(); field != "" {
				return fmt.Errorf("accounts.UpsertPaymentNumbers %s: %w: %s %s", n.AccountID, ErrInvalid, field, reason)
			}
			args = append(args, n.AccountID, n.RoutingNumber, n.AccountNumberToken, b.now)
		}
		q.WriteString(` ON CONFLICT (account_id) DO UPDATE SET routing_number = excluded.routing_number,
			account_number_token = excluded.account_number_token, updated_at = excluded.updated_at`)
		if err := b.tx.Exec(q.String(), args...).Error; err != nil {
			return fmt.Errorf("accounts.UpsertPaymentNumbers: %w", err)
		}
	}
	return nil
}
