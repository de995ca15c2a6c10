// Package accounts holds the data consentgate guards: institutions, the
// customers' accounts, balances and card transactions, and the queries the
// data API runs over them. It knows nothing of consents or tokens: callers
// decide which accounts and how far back a request may see, this package
// only reads and writes exactly what it is asked. It never stores a full card
// number: only the last four digits.
package accounts

import (
	"context"
	"errors"
	"time"
)

// Account types.
const (
	TypeChecking   = "checking"
	TypeSavings    = "savings"
	TypeCreditCard = "credit_card"
)

// Transaction statuses.
const (
	StatusBooked  = "booked"
	StatusPending = "pending"
)

// ErrNotFound is returned for an unknown account.
var ErrNotFound = errors.New("account not found")

// ErrInvalid is wrapped by errors for data that breaks the model's rules
// (unknown type or status, a booked transaction without booked_at, ...);
// loaders can show such errors to whoever sent the data.
var ErrInvalid = errors.New("invalid account data")

// ErrConflict is wrapped when an upsert would move an existing account to
// another customer or an existing transaction to another account: ids are
// permanent, and a consent names accounts by id.
var ErrConflict = errors.New("id already belongs to another owner")

// Institution is a bank whose data consentgate serves.
type Institution struct {
	ID   string
	Name string
}

// Account is one customer account.
type Account struct {
	ID              string
	CustomerID      string
	InstitutionID   string
	InstitutionName string
	Type            string // checking | savings | credit_card
	DisplayName     string
	Last4           string // last four digits of the account or card number
	Currency        string // ISO 4217
	Status          string // open | closed
}

// Balance is an account's balance, in minor units.
type Balance struct {
	AccountID   string
	Currency    string
	Current     int64
	Available   int64
	CreditLimit *int64 // only for credit cards
	AsOf        time.Time
}

// Transaction is one card transaction, in minor units (negative: money out).
type Transaction struct {
	ID           string
	AccountID    string
	Status       string // booked | pending
	TransactedAt time.Time
	BookedAt     *time.Time // nil while pending
	Amount       int64
	Currency     string
	Description  string
	MerchantName string
	MCC          string // ISO 18245 merchant category code
	CardLast4    string
	// CreatedSeq is the account's change ordinal the transaction was added
	// at (docs/sync.md); written on insert only, 0 for bulk-loaded rows.
	CreatedSeq int64
}

// TxQuery selects one page of an account's transactions, newest first.
type TxQuery struct {
	AccountID string
	// CustomerID, when set, reads the page only if the account is this
	// customer's (checked in the page query itself); otherwise
	// Transactions fails with ErrNotFound.
	CustomerID string
	From, To   time.Time // inclusive bounds on TransactedAt
	Status     string    // "" for any
	Limit      int
	// After continues from the last row of the previous page (keyset).
	After *TxKey
	// Hidden are optional fields the caller may not see: never read, left
	// empty in the result.
	Hidden TxFields
}

// TxKey is the keyset position of a transaction in newest-first order.
type TxKey struct {
	TransactedAt time.Time
	ID           string
}

// Store is the storage the data API and the loaders need.
type Store interface {
	// ListByCustomer returns the customer's accounts ordered by id.
	ListByCustomer(ctx context.Context, customerID string) ([]Account, error)
	// ListByIDs returns the accounts with the given ids that belong to
	// customerID, ordered by id; unknown or foreign ids are left out.
	ListByIDs(ctx context.Context, customerID string, ids []string) ([]Account, error)
	// Get returns one account of customerID, or ErrNotFound (also when it
	// belongs to someone else).
	Get(ctx context.Context, customerID, id string) (*Account, error)
	// Balance returns the account's balance, or ErrNotFound.
	Balance(ctx context.Context, accountID string) (*Balance, error)
	// Transactions returns up to q.Limit transactions and, when more
	// remain, the key to continue from.
	Transactions(ctx context.Context, q TxQuery) ([]Transaction, *TxKey, error)

	// UpsertInstitution creates or renames an institution.
	UpsertInstitution(ctx context.Context, in Institution) error
	// UpsertAccount creates or updates an account.
	UpsertAccount(ctx context.Context, a Account) error
	// UpsertBalance creates or replaces an account's balance.
	UpsertBalance(ctx context.Context, b Balance) error
	// UpsertTransactions creates or updates transactions in one batch.
	UpsertTransactions(ctx context.Context, txs []Transaction) error
}
