package accounts

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentgate/consentgate/internal/store"
)

// Change kinds of the per-account change sequence (docs/sync.md).
const (
	ChangeAdded    = "added"
	ChangeModified = "modified"
	ChangeRemoved  = "removed"
)

// Change is one change a provider batch made to a transaction, numbered
// in its account's sequence.
type Change struct {
	AccountID     string
	Seq           int64
	TransactionID string
	Kind          string // added | modified | removed
	TransactedAt  time.Time
}

// ReserveChanges takes the next n ordinals of each account's change
// sequence and returns the first of each. The accounts' head rows stay
// locked until the caller's transaction ends, so writers of one account
// commit their ordinals in order on every node; accounts are taken in id
// order, so two batches never wait on each other in a circle.
func (b *Bulk) ReserveChanges(counts map[string]int) (map[string]int64, error) {
	ids := make([]string, 0, len(counts))
	for id, n := range counts {
		if n > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	first := make(map[string]int64, len(ids))
	for _, id := range ids {
		n := int64(counts[id])
		var last int64
		err := b.conn.QueryRowContext(b.ctx, `INSERT INTO account_change_heads (account_id, last_seq) VALUES ($1, $2)
			ON CONFLICT (account_id) DO UPDATE SET last_seq = account_change_heads.last_seq + excluded.last_seq
			RETURNING last_seq`, id, n).Scan(&last)
		if err != nil {
			return nil, fmt.Errorf("accounts.Bulk.ReserveChanges %s: %w", id, err)
		}
		first[id] = last - n + 1
	}
	return first, nil
}

// RecordChanges appends changes to their accounts' sequences; their
// ordinals come from ReserveChanges in the same transaction.
func (b *Bulk) RecordChanges(changes []Change, now time.Time) error {
	at := store.Micros(now)
	for start := 0; start < len(changes); start += bulkChunkRows {
		chunk := changes[start:min(start+bulkChunkRows, len(changes))]
		var q strings.Builder
		q.WriteString("INSERT INTO transaction_changes (account_id, seq, transaction_id, kind, transacted_at, changed_at) VALUES ")
		args := make([]any, 0, len(chunk)*6)
		for i, c := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			n := len(args)
			fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6)
			args = append(args, c.AccountID, c.Seq, c.TransactionID, c.Kind, store.Micros(c.TransactedAt), at)
		}
		if _, err := b.conn.ExecContext(b.ctx, q.String(), args...); err != nil {
			return fmt.Errorf("accounts.Bulk.RecordChanges: %w", err)
		}
	}
	return nil
}

// SyncQuery asks for one page of an account's changes (docs/sync.md).
type SyncQuery struct {
	AccountID string
	// CustomerID: the page is read only if the account is this customer's
	// (else ErrNotFound).
	CustomerID string
	// From is the start of the history window: nothing older is reported.
	From time.Time
	// Head bounds the page: changes up to this ordinal (ChangeHead).
	Head int64
	// Snapshot walks the transactions as they are now, in the order they
	// were added, after AfterSeq/AfterID; otherwise the change sequence is
	// walked after AfterSeq.
	Snapshot bool
	AfterSeq int64
	AfterID  string
	Limit    int
	Hidden   TxFields
}

// SyncItem is one entry of a sync page: a transaction as it is now (added
// or modified), or the id of a removed one.
type SyncItem struct {
	Kind string
	Tx   Transaction // for removed: only ID and AccountID
	// Seq and ID are the item's position, to continue after it.
	Seq int64
}

// SyncPage is one page of changes.
type SyncPage struct {
	Items []SyncItem
	// More is true when changes up to Head remain after the page.
	More bool
	// NextSeq, NextID are the position after the page.
	NextSeq int64
	NextID  string
}

// ChangeHead returns the latest ordinal of the account's change sequence
// (0 before its first change).
func (s *SQLStore) ChangeHead(ctx context.Context, accountID string) (int64, error) {
	var last int64
	err := s.sql.QueryRowContext(ctx, `SELECT last_seq FROM account_change_heads WHERE account_id = $1`, accountID).Scan(&last)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("accounts.ChangeHead: %w", err)
	}
	return last, nil
}

// Sync returns one page of the account's changes: in a snapshot, the
// transactions of the history window added up to q.Head in (created_seq,
// id) order, which a later change never moves; otherwise the changes
// after q.AfterSeq up to q.Head, each transaction once per page as it is
// now (a transaction added and changed in the page is added; one added
// and removed in the page is left out).
func (s *SQLStore) Sync(ctx context.Context, q SyncQuery) (*SyncPage, error) {
	if q.Limit <= 0 {
		return nil, fmt.Errorf("accounts.Sync: %w: limit %d must be positive", ErrInvalid, q.Limit)
	}
	if q.CustomerID != "" {
		if _, err := s.Get(ctx, q.CustomerID, q.AccountID); err != nil {
			return nil, err
		}
	}
	if q.Snapshot {
		return s.syncSnapshot(ctx, q)
	}
	return s.syncChanges(ctx, q)
}

// syncSnapshotSQL walks the account's transactions in the order they were
// added (transactions_account_created_idx), after a position, up to a head.
func syncSnapshotSQL(hidden TxFields) string {
	return "SELECT " + txSelect("", hidden) + `, created_seq FROM transactions
		WHERE account_id = $1 AND created_seq <= $2 AND created_seq >= $3 AND (created_seq > $3 OR id > $4)
			AND transacted_at >= $5
		ORDER BY created_seq, id LIMIT $6`
}

// byIDSQL reads transactions by primary key; in is a list of $n
// placeholders.
func byIDSQL(hidden TxFields, in string) string {
	return "SELECT " + txSelect("", hidden) + " FROM transactions WHERE id IN (" + in + ")"
}

// syncChangesSQL walks the account's change sequence (its primary key).
const syncChangesSQL = `SELECT seq, transaction_id, kind FROM transaction_changes
	WHERE account_id = $1 AND seq > $2 AND seq <= $3 AND transacted_at >= $4
	ORDER BY seq LIMIT $5`

func (s *SQLStore) syncSnapshot(ctx context.Context, q SyncQuery) (*SyncPage, error) {
	rows, err := s.sql.QueryContext(ctx, syncSnapshotSQL(q.Hidden),
		q.AccountID, q.Head, q.AfterSeq, q.AfterID, store.Micros(q.From), q.Limit+1)
	if err != nil {
		return nil, fmt.Errorf("accounts.Sync: %w", err)
	}
	defer rows.Close()
	page := &SyncPage{NextSeq: q.AfterSeq, NextID: q.AfterID}
	for rows.Next() {
		var (
			t      Transaction
			at     int64
			booked sql.NullInt64
		)
		if err := rows.Scan(&t.ID, &t.AccountID, &t.Status, &at, &booked, &t.Amount, &t.Currency, &t.Description,
			&t.MerchantName, &t.MCC, &t.CardLast4, &t.CreatedSeq); err != nil {
			return nil, fmt.Errorf("accounts.Sync: %w", err)
		}
		t.TransactedAt = store.FromMicros(at)
		if booked.Valid {
			t.BookedAt = store.FromMicrosPtr(&booked.Int64)
		}
		if len(page.Items) == q.Limit {
			page.More = true
			break
		}
		page.Items = append(page.Items, SyncItem{Kind: ChangeAdded, Tx: t, Seq: t.CreatedSeq})
		page.NextSeq, page.NextID = t.CreatedSeq, t.ID
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("accounts.Sync: %w", err)
	}
	return page, nil
}

func (s *SQLStore) syncChanges(ctx context.Context, q SyncQuery) (*SyncPage, error) {
	changes, err := s.changes(ctx, q)
	if err != nil {
		return nil, err
	}
	page := &SyncPage{NextSeq: q.AfterSeq}
	if len(changes) > q.Limit {
		changes, page.More = changes[:q.Limit], true
	}
	if len(changes) == 0 {
		return page, nil
	}
	page.NextSeq = changes[len(changes)-1].Seq
	// Each transaction once: its first kind in the page decides between
	// added and modified, its last whether it is still there.
	type entry struct {
		first, last string
		seq         int64
	}
	byID := map[string]*entry{}
	var order []string
	for _, c := range changes {
		e, ok := byID[c.TransactionID]
		if !ok {
			e = &entry{first: c.Kind}
			byID[c.TransactionID] = e
			order = append(order, c.TransactionID)
		}
		e.last, e.seq = c.Kind, c.Seq
	}
	var live []string
	for _, id := range order {
		if byID[id].last != ChangeRemoved {
			live = append(live, id)
		}
	}
	current, err := s.transactionsByID(ctx, q.AccountID, live, q.From, q.Hidden)
	if err != nil {
		return nil, err
	}
	// In the order of each transaction's last change in the page.
	slices.SortStableFunc(order, func(a, b string) int { return cmp.Compare(byID[a].seq, byID[b].seq) })
	for _, id := range order {
		e := byID[id]
		switch {
		case e.last == ChangeRemoved && e.first == ChangeAdded:
			// Added and removed within the page: the app never saw it.
		case e.last == ChangeRemoved:
			page.Items = append(page.Items, SyncItem{Kind: ChangeRemoved, Tx: Transaction{ID: id, AccountID: q.AccountID}, Seq: e.seq})
		default:
			t, ok := current[id]
			if !ok {
				// Removed after this page's head or moved out of the
				// window: a later change (or none) says so.
				continue
			}
			kind := ChangeModified
			if e.first == ChangeAdded {
				kind = ChangeAdded
			}
			page.Items = append(page.Items, SyncItem{Kind: kind, Tx: t, Seq: e.seq})
		}
	}
	return page, nil
}

// changes reads up to q.Limit+1 entries of the change sequence after
// q.AfterSeq, up to q.Head, within the window.
func (s *SQLStore) changes(ctx context.Context, q SyncQuery) ([]Change, error) {
	rows, err := s.sql.QueryContext(ctx, syncChangesSQL, q.AccountID, q.AfterSeq, q.Head, store.Micros(q.From), q.Limit+1)
	if err != nil {
		return nil, fmt.Errorf("accounts.Sync: %w", err)
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var c Change
		if err := rows.Scan(&c.Seq, &c.TransactionID, &c.Kind); err != nil {
			return nil, fmt.Errorf("accounts.Sync: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("accounts.Sync: %w", err)
	}
	return out, nil
}

// transactionsByID reads the account's transactions among ids within the
// history window, by id. The query looks the ids up by primary key and the
// account and window are checked on the rows read: given the account and a
// time range, a planner may prefer walking the account's whole history.
func (s *SQLStore) transactionsByID(ctx context.Context, accountID string, ids []string, from time.Time, hidden TxFields) (map[string]Transaction, error) {
	out := make(map[string]Transaction, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(ids))
	var in strings.Builder
	for i, id := range ids {
		if i > 0 {
			in.WriteString(", ")
		}
		in.WriteString("$" + strconv.Itoa(i+1))
		args = append(args, id)
	}
	query := byIDSQL(hidden, in.String())
	if s.db.Dialect == store.Postgres {
		query = txByIDPG(hidden) + " WHERE k.id IN (" + in.String() + ")"
	}
	rows, err := s.sql.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("accounts.Sync: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			t      Transaction
			at     int64
			booked sql.NullInt64
		)
		if err := rows.Scan(&t.ID, &t.AccountID, &t.Status, &at, &booked, &t.Amount, &t.Currency, &t.Description,
			&t.MerchantName, &t.MCC, &t.CardLast4); err != nil {
			return nil, fmt.Errorf("accounts.Sync: %w", err)
		}
		t.TransactedAt = store.FromMicros(at)
		if booked.Valid {
			t.BookedAt = store.FromMicrosPtr(&booked.Int64)
		}
		if t.AccountID != accountID || t.TransactedAt.Before(from) {
			continue // another account's id, or before the window
		}
		out[t.ID] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("accounts.Sync: %w", err)
	}
	return out, nil
}
