package accounts

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/consentgate/consentgate/internal/store"
)

// PostedQuery selects one page of an account's transactions in posting
// order, as the FDX API serves them: the pending ones first (they have no
// posting time yet; newest transacted first), then the booked ones newest
// booked first, filtered on BookedAt.
type PostedQuery struct {
	AccountID string
	// CustomerID, when set, reads the page only if the account is this
	// customer's; otherwise PostedTransactions fails with ErrNotFound.
	CustomerID string
	// From and To bound BookedAt of booked transactions and TransactedAt
	// of pending ones, inclusive.
	From, To time.Time
	// NotBefore is the history window: nothing transacted earlier is read,
	// whenever it was booked.
	NotBefore time.Time
	Limit     int
	// After continues from the last row of the previous page (keyset).
	After *PostedKey
	// Hidden are optional fields the caller may not see: never read, left
	// empty (SPEC §12).
	Hidden TxFields
}

// PostedKey is the keyset position of a transaction in posting order.
type PostedKey struct {
	Pending bool      // in the pending part (At is TransactedAt) or the booked part (At is BookedAt)
	At      time.Time // TransactedAt of a pending transaction, BookedAt of a booked one
	ID      string
}

// PostedReader reads transactions in posting order (SQLStore implements it).
type PostedReader interface {
	// PostedTransactions returns up to q.Limit transactions and, when more
	// remain, the key to continue from.
	PostedTransactions(ctx context.Context, q PostedQuery) ([]Transaction, *PostedKey, error)
}

var _ PostedReader = (*SQLStore)(nil)

// PostedTransactions implements PostedReader. Each part is one keyset walk
// of a partial index (pending: on transacted_at, 00060; booked: on
// booked_at, 00082); a page that ends the pending part goes on into the
// booked part.
func (s *SQLStore) PostedTransactions(ctx context.Context, q PostedQuery) ([]Transaction, *PostedKey, error) {
	if q.Limit <= 0 {
		return nil, nil, fmt.Errorf("accounts.PostedTransactions: %w: limit %d must be positive", ErrInvalid, q.Limit)
	}
	var out []Transaction
	if q.After == nil || q.After.Pending {
		page, err := s.postedPart(ctx, q, true, q.Limit+1)
		if err != nil {
			return nil, nil, err
		}
		out = page
		q.After = nil // the booked part starts at its beginning
	}
	if len(out) <= q.Limit {
		page, err := s.postedPart(ctx, q, false, q.Limit+1-len(out))
		if err != nil {
			return nil, nil, err
		}
		out = append(out, page...)
	}
	if len(out) == 0 && q.CustomerID != "" {
		if _, err := s.Get(ctx, q.CustomerID, q.AccountID); err != nil {
			return nil, nil, err
		}
	}
	var next *PostedKey
	if len(out) > q.Limit {
		out = out[:q.Limit]
		last := out[len(out)-1]
		next = &PostedKey{Pending: last.Status == StatusPending, At: last.TransactedAt, ID: last.ID}
		if last.BookedAt != nil {
			next.At = *last.BookedAt
		}
	}
	return out, next, nil
}

// postedPart reads up to limit rows of one part, after q.After when it
// points into this part.
func (s *SQLStore) postedPart(ctx context.Context, q PostedQuery, pending bool, limit int) ([]Transaction, error) {
	query, args := postedPageSQL(q, pending, limit)
	rows, err := s.sql.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("accounts.PostedTransactions: %w", err)
	}
	defer rows.Close()
	out := make([]Transaction, 0, min(limit, 512))
	for rows.Next() {
		var (
			t      Transaction
			at     int64
			booked sql.NullInt64
		)
		if err := rows.Scan(&t.ID, &t.AccountID, &t.Status, &at, &booked, &t.Amount, &t.Currency, &t.Description,
			&t.MerchantName, &t.MCC, &t.CardLast4); err != nil {
			return nil, fmt.Errorf("accounts.PostedTransactions: %w", err)
		}
		t.TransactedAt = store.FromMicros(at)
		if booked.Valid {
			bt := store.FromMicros(booked.Int64)
			t.BookedAt = &bt
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("accounts.PostedTransactions: %w", err)
	}
	return out, nil
}

// postedPageSQL builds the query of one part, shaped like txPageSQL: the
// cursor moves the range's upper bound down so the index walk starts there.
func postedPageSQL(q PostedQuery, pending bool, limit int) (string, []any) {
	col, status := "booked_at", "booked"
	if pending {
		col, status = "transacted_at", "pending"
	}
	upper := q.To
	if q.After != nil && q.After.At.Before(upper) {
		upper = q.After.At
	}
	args := []any{q.AccountID, store.Micros(q.From), store.Micros(upper), store.Micros(q.NotBefore)}
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	account := "$1"
	if q.CustomerID != "" {
		// As in txPageSQL: one constant to both planners.
		account = "(SELECT a.id FROM accounts a WHERE a.id = $1 AND a.customer_id = " + param(q.CustomerID) + ")"
	}
	var b strings.Builder
	// The status is written into the statement so that the partial index
	// of that status serves it (see txPageSQL).
	b.WriteString("SELECT " + txSelect("", q.Hidden) + " FROM transactions WHERE account_id = " + account +
		" AND status = '" + status + "' AND " + col + " BETWEEN $2 AND $3 AND transacted_at >= $4")
	if q.After != nil {
		at := store.Micros(q.After.At)
		b.WriteString(" AND (" + col + " < " + param(at) + " OR (" + col + " = " + param(at) + " AND id < " + param(q.After.ID) + "))")
	}
	b.WriteString(" ORDER BY " + col + " DESC, id DESC LIMIT " + param(limit))
	return b.String(), args
}
