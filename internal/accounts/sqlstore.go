package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/store"
)

// SQLStore implements Store on the shared database with portable SQL
// (SQLite and PostgreSQL).
type SQLStore struct {
	db *store.DB
	// sql serves the read path straight through database/sql: the data
	// API's reads skip gorm's statement builder and its reflective row
	// scanning, which cost more than the database itself on a page of 100
	// transactions. Their SQL uses $n placeholders, which both drivers
	// take as positional parameters.
	sql *sql.DB
	now func() time.Time // stamps created_at, which no query reads
	// partitionedMonth is the month (year*12+month) EnsurePartitions last
	// completed.
	partitionedMonth atomic.Int64
}

var _ Store = (*SQLStore)(nil)

// NewSQLStore returns a Store on db.
func NewSQLStore(db *store.DB) *SQLStore { return &SQLStore{db: db, sql: db.SQL(), now: time.Now} }

const accountSelect = `SELECT a.id, a.customer_id, a.institution_id, i.name, a.type, a.display_name, a.last4, a.currency, a.status
	FROM accounts a JOIN institutions i ON i.id = a.institution_id`

func (s *SQLStore) accounts(ctx context.Context, op, where string, args ...any) ([]Account, error) {
	rows, err := s.sql.QueryContext(ctx, accountSelect+" WHERE "+where+" ORDER BY a.id", args...)
	if err != nil {
		return nil, fmt.Errorf("accounts.%s: %w", op, err)
	}
	defer rows.Close()
	out := []Account{}
	for rows.Next() {
		var a Account
		if err := rows.Scan(&a.ID, &a.CustomerID, &a.InstitutionID, &a.InstitutionName, &a.Type, &a.DisplayName,
			&a.Last4, &a.Currency, &a.Status); err != nil {
			return nil, fmt.Errorf("accounts.%s: %w", op, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("accounts.%s: %w", op, err)
	}
	return out, nil
}

// ListByCustomer implements Store.
func (s *SQLStore) ListByCustomer(ctx context.Context, customerID string) ([]Account, error) {
	return s.accounts(ctx, "ListByCustomer", "a.customer_id = $1", customerID)
}

// ListByIDs implements Store.
func (s *SQLStore) ListByIDs(ctx context.Context, customerID string, ids []string) ([]Account, error) {
	if len(ids) == 0 {
		return []Account{}, nil // "IN ()" is not valid SQL
	}
	var in strings.Builder
	args := make([]any, 0, len(ids)+1)
	args = append(args, customerID)
	for i, id := range ids {
		if i > 0 {
			in.WriteString(", ")
		}
		in.WriteString("$" + strconv.Itoa(i+2))
		args = append(args, id)
	}
	return s.accounts(ctx, "ListByIDs", "a.customer_id = $1 AND a.id IN ("+in.String()+")", args...)
}

// Get implements Store.
func (s *SQLStore) Get(ctx context.Context, customerID, id string) (*Account, error) {
	as, err := s.accounts(ctx, "Get", "a.customer_id = $1 AND a.id = $2", customerID, id)
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return nil, ErrNotFound
	}
	return &as[0], nil
}

// Balance implements Store.
func (s *SQLStore) Balance(ctx context.Context, accountID string) (*Balance, error) {
	var (
		b           Balance
		creditLimit sql.NullInt64
		asOf        int64
	)
	err := s.sql.QueryRowContext(ctx, `SELECT b.account_id, a.currency, b.current_minor, b.available_minor,
		b.credit_limit_minor, b.as_of
		FROM balances b JOIN accounts a ON a.id = b.account_id WHERE b.account_id = $1`, accountID).
		Scan(&b.AccountID, &b.Currency, &b.Current, &b.Available, &creditLimit, &asOf)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("accounts.Balance: %w", err)
	}
	if creditLimit.Valid {
		b.CreditLimit = &creditLimit.Int64
	}
	b.AsOf = store.FromMicros(asOf)
	return &b, nil
}

const txColumns = "id, account_id, status, transacted_at, booked_at, amount_minor, currency, description, merchant_name, mcc, card_last4"

// Transactions implements Store. The query is shaped for the two indexes on
// (account_id[, status], transacted_at DESC, id DESC): equality on the
// leading columns, a range on transacted_at and the keyset condition, so
// both planners walk the index in order and stop after limit+1 rows.
func (s *SQLStore) Transactions(ctx context.Context, q TxQuery) ([]Transaction, *TxKey, error) {
	if q.Limit <= 0 {
		return nil, nil, fmt.Errorf("accounts.Transactions: %w: limit %d must be positive", ErrInvalid, q.Limit)
	}
	query, args := txPageSQL(q)
	out, err := s.txPage(ctx, query, args, q)
	if err != nil {
		return nil, nil, fmt.Errorf("accounts.Transactions: %w", err)
	}
	if len(out) == 0 && q.CustomerID != "" {
		// No rows: no transactions in range, or not the customer's account.
		if _, err := s.Get(ctx, q.CustomerID, q.AccountID); err != nil {
			return nil, nil, err
		}
	}
	var next *TxKey
	if len(out) > q.Limit {
		out = out[:q.Limit]
		last := out[len(out)-1]
		next = &TxKey{TransactedAt: last.TransactedAt, ID: last.ID}
	}
	return out, next, nil
}

// txPageSQL builds the page query of Transactions: one row more than the
// limit tells whether another page exists without a COUNT. A cursor moves
// the range's upper bound down to its own time, so that the index walk
// starts at the cursor, however deep, instead of at the window's end: the
// OR that breaks ties between equal times is left as a filter on the few
// rows at that instant.
func txPageSQL(q TxQuery) (string, []any) {
	var b strings.Builder
	upper := q.To
	if q.After != nil && q.After.TransactedAt.Before(upper) {
		upper = q.After.TransactedAt
	}
	args := []any{q.AccountID, store.Micros(q.From), store.Micros(upper)}
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	account := "$1"
	if q.CustomerID != "" {
		// The account's id if it is the customer's, else NULL (no rows). An
		// uncorrelated scalar subquery is one constant to both planners, so
		// the index walk keeps its equality on account_id (an EXISTS made
		// SQLite sort the page).
		account = "(SELECT a.id FROM accounts a WHERE a.id = $1 AND a.customer_id = " + param(q.CustomerID) + ")"
	}
	b.WriteString("SELECT " + txSelect("", q.Hidden) + " FROM transactions WHERE account_id = " + account + " AND transacted_at BETWEEN $2 AND $3")
	// The status is written into the statement, never bound: only then can
	// a planner with a cached (generic) plan use the partial index of
	// pending transactions. Only the two known statuses are ever written.
	switch q.Status {
	case StatusPending:
		b.WriteString(" AND status = 'pending'")
	case StatusBooked:
		b.WriteString(" AND status = 'booked'")
	case "":
	default:
		b.WriteString(" AND status = " + param(q.Status)) // matches nothing: the CHECK allows only the two
	}
	if q.After != nil {
		at := store.Micros(q.After.TransactedAt)
		b.WriteString(" AND (transacted_at < " + param(at) + " OR (transacted_at = " + param(at) + " AND id < " + param(q.After.ID) + "))")
	}
	b.WriteString(" ORDER BY transacted_at DESC, id DESC LIMIT " + param(q.Limit+1))
	return b.String(), args
}

// UpsertInstitution implements Store.
func (s *SQLStore) UpsertInstitution(ctx context.Context, in Institution) error {
	if in.ID == "" || in.Name == "" {
		return fmt.Errorf("accounts.UpsertInstitution: %w: id and name are required", ErrInvalid)
	}
	err := s.db.WithContext(ctx).Exec(`INSERT INTO institutions (id, name, created_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name`, in.ID, in.Name, store.Micros(s.now())).Error
	if err != nil {
		return fmt.Errorf("accounts.UpsertInstitution: %w", err)
	}
	return nil
}

// UpsertAccount implements Store. An existing account keeps its customer:
// the update is conditional on it, so moving an account fails with
// ErrConflict instead of silently handing its consents to someone else.
func (s *SQLStore) UpsertAccount(ctx context.Context, a Account) error {
	if err := validateAccount(a); err != nil {
		return fmt.Errorf("accounts.UpsertAccount: %w", err)
	}
	res := s.db.WithContext(ctx).Exec(`INSERT INTO accounts
		(id, customer_id, institution_id, type, display_name, last4, currency, status, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET institution_id = excluded.institution_id, type = excluded.type,
			display_name = excluded.display_name, last4 = excluded.last4, currency = excluded.currency,
			status = excluded.status
		WHERE accounts.customer_id = excluded.customer_id`,
		a.ID, a.CustomerID, a.InstitutionID, a.Type, a.DisplayName, a.Last4, a.Currency, a.Status, store.Micros(s.now()))
	if res.Error != nil {
		return fmt.Errorf("accounts.UpsertAccount %s: %w", a.ID, res.Error)
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("accounts.UpsertAccount %s: %w", a.ID, ErrConflict)
	}
	return nil
}

// UpsertBalance implements Store.
func (s *SQLStore) UpsertBalance(ctx context.Context, b Balance) error {
	if b.AccountID == "" || b.AsOf.IsZero() {
		return fmt.Errorf("accounts.UpsertBalance: %w: account id and as_of are required", ErrInvalid)
	}
	err := s.db.WithContext(ctx).Exec(`INSERT INTO balances (account_id, current_minor, available_minor, credit_limit_minor, as_of)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (account_id) DO UPDATE SET current_minor = excluded.current_minor,
			available_minor = excluded.available_minor, credit_limit_minor = excluded.credit_limit_minor,
			as_of = excluded.as_of`,
		b.AccountID, b.Current, b.Available, b.CreditLimit, store.Micros(b.AsOf)).Error
	if err != nil {
		return fmt.Errorf("accounts.UpsertBalance %s: %w", b.AccountID, err)
	}
	return nil
}

// upsertChunkRows bounds one INSERT statement: 11 parameters a row keeps a
// chunk far below SQLite's 32766 bound-parameter limit (and PostgreSQL's
// 65535) while still amortising the round trip.
const upsertChunkRows = 500

// UpsertTransactions implements Store. The whole batch commits or none of it
// does. Repeated ids in one batch collapse to the last occurrence (PostgreSQL
// refuses to update one row twice in a statement). A transaction never moves
// to another account: that fails the batch with ErrConflict.
func (s *SQLStore) UpsertTransactions(ctx context.Context, txs []Transaction) error {
	if len(txs) == 0 {
		return nil
	}
	last := make(map[string]int, len(txs))
	for i, t := range txs {
		if err := validateTransaction(t); err != nil {
			return fmt.Errorf("accounts.UpsertTransactions: %w", err)
		}
		last[t.ID] = i
	}
	batch := make([]Transaction, 0, len(last))
	for i, t := range txs {
		if last[t.ID] == i {
			batch = append(batch, t)
		}
	}
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if s.db.Dialect == store.Postgres {
			// The partitioned table (partitions.go); created_seq is not
			// this path's to write.
			for i := range batch {
				batch[i].CreatedSeq = 0
			}
			return pgUpsertTxs(sqlQuerier{ctx: ctx, conn: tx.Statement.ConnPool}, batch, ruleSameAccount)
		}
		for start := 0; start < len(batch); start += upsertChunkRows {
			chunk := batch[start:min(start+upsertChunkRows, len(batch))]
			if err := upsertTxChunk(tx, chunk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("accounts.UpsertTransactions: %w", err)
	}
	return nil
}

func upsertTxChunk(tx *gorm.DB, chunk []Transaction) error {
	var sql strings.Builder
	sql.WriteString("INSERT INTO transactions (" + txColumns + ") VALUES ")
	args := make([]any, 0, len(chunk)*11)
	sql.WriteString(store.Placeholders(len(chunk), 11))
	for _, t := range chunk {
		args = append(args, t.ID, t.AccountID, t.Status, store.Micros(t.TransactedAt), store.MicrosPtr(t.BookedAt),
			t.Amount, t.Currency, t.Description, t.MerchantName, t.MCC, t.CardLast4)
	}
	sql.WriteString(` ON CONFLICT (id) DO UPDATE SET status = excluded.status, transacted_at = excluded.transacted_at,
		booked_at = excluded.booked_at, amount_minor = excluded.amount_minor, currency = excluded.currency,
		description = excluded.description, merchant_name = excluded.merchant_name, mcc = excluded.mcc,
		card_last4 = excluded.card_last4
		WHERE transactions.account_id = excluded.account_id`)
	res := tx.Exec(sql.String(), args...)
	if res.Error != nil {
		return res.Error
	}
	// Every row is either inserted or updated unless the WHERE above refused
	// to move one to another account.
	if res.RowsAffected != int64(len(chunk)) {
		return fmt.Errorf("a transaction id in the batch belongs to another account: %w", ErrConflict)
	}
	return nil
}

func validateAccount(a Account) error {
	switch {
	case a.ID == "" || a.CustomerID == "" || a.InstitutionID == "":
		return fmt.Errorf("%w: account id, customer id and institution id are required", ErrInvalid)
	case a.Type != TypeChecking && a.Type != TypeSavings && a.Type != TypeCreditCard:
		return fmt.Errorf("%w: account %s: type %q is not checking, savings or credit_card", ErrInvalid, a.ID, a.Type)
	case len(a.Last4) != 4 || !allDigits(a.Last4):
		return fmt.Errorf("%w: account %s: last4 must be exactly four digits", ErrInvalid, a.ID)
	case !validCurrency(a.Currency):
		return fmt.Errorf("%w: account %s: currency %q is not an ISO 4217 code", ErrInvalid, a.ID, a.Currency)
	case a.Status != "open" && a.Status != "closed":
		return fmt.Errorf("%w: account %s: status %q is not open or closed", ErrInvalid, a.ID, a.Status)
	case a.DisplayName == "":
		return fmt.Errorf("%w: account %s: display name is required", ErrInvalid, a.ID)
	}
	return nil
}

func validateTransaction(t Transaction) error {
	switch {
	case t.ID == "" || t.AccountID == "":
		return fmt.Errorf("%w: transaction id and account id are required", ErrInvalid)
	case !utf8.ValidString(t.ID) || len(t.ID) > 128:
		return fmt.Errorf("%w: transaction id %q must be UTF-8 and at most 128 bytes", ErrInvalid, t.ID)
	case t.Status != StatusBooked && t.Status != StatusPending:
		return fmt.Errorf("%w: transaction %s: status %q is not booked or pending", ErrInvalid, t.ID, t.Status)
	case t.Status == StatusBooked && t.BookedAt == nil:
		return fmt.Errorf("%w: transaction %s: a booked transaction needs booked_at", ErrInvalid, t.ID)
	case t.Status == StatusPending && t.BookedAt != nil:
		return fmt.Errorf("%w: transaction %s: a pending transaction has no booked_at", ErrInvalid, t.ID)
	case t.TransactedAt.IsZero():
		return fmt.Errorf("%w: transaction %s: transacted_at is required", ErrInvalid, t.ID)
	case !validCurrency(t.Currency):
		return fmt.Errorf("%w: transaction %s: currency %q is not an ISO 4217 code", ErrInvalid, t.ID, t.Currency)
	case t.CardLast4 != "" && (len(t.CardLast4) != 4 || !allDigits(t.CardLast4)):
		// Four digits at most is all the schema allows: never a full card number.
		return fmt.Errorf("%w: transaction %s: card_last4 must be four digits or empty", ErrInvalid, t.ID)
	}
	return nil
}
