package accounts

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/store"
)

// Bulk is the accounts tables as seen from inside a write transaction that
// the caller opened (store.DB.Tx): the loaders (package ingest) read the
// current state of a whole batch, check it against their rules and write it
// back, all in that one transaction, so a batch commits or fails as a unit.
// It does not validate: callers hand it rows they checked.
type Bulk struct {
	tx  *gorm.DB
	now int64 // created_at of new rows
	// The transaction's connection, for statements with thousands of
	// values: gorm's SQL builder costs more than the database on them.
	ctx  context.Context
	conn gorm.ConnPool
	pg   bool
}

// Bulk binds the store's bulk operations to tx, a transaction on the same
// database.
func (s *SQLStore) Bulk(tx *gorm.DB) *Bulk {
	return &Bulk{tx: tx, now: store.Micros(s.now()), ctx: tx.Statement.Context, conn: tx.Statement.ConnPool,
		pg: tx.Dialector.Name() == string(store.Postgres)}
}

// queryIDs runs selectFrom (a SELECT … FROM … without WHERE) for the rows
// whose column col is among ids, and calls scan on each. PostgreSQL gets
// the ids as one array parameter; SQLite as an IN list.
func (b *Bulk) queryIDs(selectFrom, col string, ids []string, scan func(*sql.Rows) error) error {
	n := lookupChunk
	if b.pg {
		n = pgLookupChunk
	}
	return inChunks(ids, n, func(chunk []string) error {
		var (
			q    string
			args []any
		)
		if b.pg {
			q, args = selectFrom+" WHERE "+col+" = ANY($1)", []any{chunk}
		} else {
			q = selectFrom + " WHERE " + col + " IN (" + strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",") + ")"
			args = make([]any, len(chunk))
			for i, id := range chunk {
				args[i] = id
			}
		}
		rows, err := b.conn.QueryContext(b.ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// Statement sizes. PostgreSQL gets a whole batch's ids or rows as array
// parameters. SQLite gets lists of bound parameters, kept short: the
// driver binds parameters in time quadratic in their number per statement,
// and in-process round trips cost next to nothing.
const (
	// pgLookupChunk bounds the ids of one PostgreSQL array parameter.
	pgLookupChunk = 5000
	// lookupChunk bounds the ids of one SQLite IN list.
	lookupChunk = 200
	// bulkChunkRows bounds the rows of one multi-row INSERT.
	bulkChunkRows = 100
)

// inChunks calls fn with consecutive slices of ids of at most n.
func inChunks(ids []string, n int, fn func([]string) error) error {
	for start := 0; start < len(ids); start += n {
		if err := fn(ids[start:min(start+n, len(ids))]); err != nil {
			return err
		}
	}
	return nil
}

// InstitutionName returns the name of institution id and whether it exists.
func (b *Bulk) InstitutionName(id string) (string, bool, error) {
	var names []string
	if err := b.tx.Raw(`SELECT name FROM institutions WHERE id = ?`, id).Scan(&names).Error; err != nil {
		return "", false, fmt.Errorf("accounts.Bulk.InstitutionName: %w", err)
	}
	if len(names) == 0 {
		return "", false, nil
	}
	return names[0], true, nil
}

// UpsertInstitution creates or renames an institution.
func (b *Bulk) UpsertInstitution(in Institution) error {
	err := b.tx.Exec(`INSERT INTO institutions (id, name, created_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name`, in.ID, in.Name, b.now).Error
	if err != nil {
		return fmt.Errorf("accounts.Bulk.UpsertInstitution: %w", err)
	}
	return nil
}

// AccountsByID returns the existing accounts among ids, by id. The
// institution name is left empty.
func (b *Bulk) AccountsByID(ids []string) (map[string]Account, error) {
	out := make(map[string]Account, len(ids))
	err := b.queryIDs(`SELECT id, customer_id, institution_id, type, display_name, last4, currency, status FROM accounts`, "id", ids,
		func(rows *sql.Rows) error {
			var a Account
			if err := rows.Scan(&a.ID, &a.CustomerID, &a.InstitutionID, &a.Type, &a.DisplayName, &a.Last4, &a.Currency, &a.Status); err != nil {
				return err
			}
			out[a.ID] = a
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("accounts.Bulk.AccountsByID: %w", err)
	}
	return out, nil
}

// UpsertAccounts creates or updates accounts. Like UpsertAccount, an update
// never moves an account to another customer or institution: such a row
// fails the call with ErrConflict.
func (b *Bulk) UpsertAccounts(as []Account) error {
	for start := 0; start < len(as); start += bulkChunkRows {
		chunk := as[start:min(start+bulkChunkRows, len(as))]
		var sql strings.Builder
		sql.WriteString("INSERT INTO accounts (id, customer_id, institution_id, type, display_name, last4, currency, status, created_at) VALUES ")
		args := make([]any, 0, len(chunk)*9)
		sql.WriteString(store.Placeholders(len(chunk), 9))
		for _, a := range chunk {
			args = append(args, a.ID, a.CustomerID, a.InstitutionID, a.Type, a.DisplayName, a.Last4, a.Currency, a.Status, b.now)
		}
		sql.WriteString(` ON CONFLICT (id) DO UPDATE SET type = excluded.type, display_name = excluded.display_name,
			last4 = excluded.last4, currency = excluded.currency, status = excluded.status
			WHERE accounts.customer_id = excluded.customer_id AND accounts.institution_id = excluded.institution_id`)
		res := b.tx.Exec(sql.String(), args...)
		if res.Error != nil {
			return fmt.Errorf("accounts.Bulk.UpsertAccounts: %w", res.Error)
		}
		if res.RowsAffected != int64(len(chunk)) {
			return fmt.Errorf("accounts.Bulk.UpsertAccounts: an account id belongs to another customer or institution: %w", ErrConflict)
		}
	}
	return nil
}

// BalancesByAccount returns the stored balances of the given accounts, by
// account id.
func (b *Bulk) BalancesByAccount(accountIDs []string) (map[string]Balance, error) {
	out := make(map[string]Balance, len(accountIDs))
	err := b.queryIDs(`SELECT b.account_id, a.currency, b.current_minor, b.available_minor, b.credit_limit_minor, b.as_of
		FROM balances b JOIN accounts a ON a.id = b.account_id`, "b.account_id", accountIDs,
		func(rows *sql.Rows) error {
			var (
				x     Balance
				limit sql.NullInt64
				asOf  int64
			)
			if err := rows.Scan(&x.AccountID, &x.Currency, &x.Current, &x.Available, &limit, &asOf); err != nil {
				return err
			}
			if limit.Valid {
				x.CreditLimit = &limit.Int64
			}
			x.AsOf = store.FromMicros(asOf)
			out[x.AccountID] = x
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("accounts.Bulk.BalancesByAccount: %w", err)
	}
	return out, nil
}

// UpsertBalances creates or replaces balances. A stored balance newer than
// the one written (a later as_of) is kept: batches that arrive out of order
// never move a balance back in time.
func (b *Bulk) UpsertBalances(bs []Balance) error {
	for start := 0; start < len(bs); start += bulkChunkRows {
		chunk := bs[start:min(start+bulkChunkRows, len(bs))]
		var sql strings.Builder
		sql.WriteString("INSERT INTO balances (account_id, current_minor, available_minor, credit_limit_minor, as_of) VALUES ")
		args := make([]any, 0, len(chunk)*5)
		sql.WriteString(store.Placeholders(len(chunk), 5))
		for _, x := range chunk {
			args = append(args, x.AccountID, x.Current, x.Available, x.CreditLimit, store.Micros(x.AsOf))
		}
		sql.WriteString(` ON CONFLICT (account_id) DO UPDATE SET current_minor = excluded.current_minor,
			available_minor = excluded.available_minor, credit_limit_minor = excluded.credit_limit_minor,
			as_of = excluded.as_of
			WHERE balances.as_of <= excluded.as_of`)
		if err := b.tx.Exec(sql.String(), args...).Error; err != nil {
			return fmt.Errorf("accounts.Bulk.UpsertBalances: %w", err)
		}
	}
	return nil
}

// TransactionsByID returns the existing transactions among ids, by id.
func (b *Bulk) TransactionsByID(ids []string) (map[string]Transaction, error) {
	out := make(map[string]Transaction, len(ids)/8)
	selectFrom, col := "SELECT "+txColumns+" FROM transactions", "id"
	if b.pg {
		selectFrom, col = txByIDPG(0), "k.id"
	}
	err := b.queryIDs(selectFrom, col, ids, func(rows *sql.Rows) error {
		var (
			t                  Transaction
			transacted, amount int64
			booked             sql.NullInt64
		)
		if err := rows.Scan(&t.ID, &t.AccountID, &t.Status, &transacted, &booked, &amount, &t.Currency, &t.Description,
			&t.MerchantName, &t.MCC, &t.CardLast4); err != nil {
			return err
		}
		t.TransactedAt, t.Amount = store.FromMicros(transacted), amount
		if booked.Valid {
			t.BookedAt = store.FromMicrosPtr(&booked.Int64)
		}
		out[t.ID] = t
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("accounts.Bulk.TransactionsByID: %w", err)
	}
	return out, nil
}

// txUpsertConflict is the update of UpsertTransactions, conditional on the
// rules a loader checked against the state it read.
const txUpsertConflict = ` ON CONFLICT (id) DO UPDATE SET status = excluded.status, transacted_at = excluded.transacted_at,
	booked_at = excluded.booked_at, amount_minor = excluded.amount_minor, currency = excluded.currency,
	description = excluded.description, merchant_name = excluded.merchant_name, mcc = excluded.mcc,
	card_last4 = excluded.card_last4
	WHERE transactions.account_id = excluded.account_id
		AND (transactions.status = 'pending' OR (excluded.status = 'booked'
			AND transactions.amount_minor = excluded.amount_minor AND transactions.currency = excluded.currency))`

// UpsertTransactions creates or updates transactions; ids must be unique
// within txs. The update is conditional on the rules a loader checked
// against the state it read, so that a concurrent writer cannot slip past
// them: a transaction stays on its account, a booked one never returns to
// pending, and a booked one keeps its amount and currency. A row refused by
// that condition fails the call with ErrConflict (the caller should roll
// back and retry).
func (b *Bulk) UpsertTransactions(txs []Transaction) error {
	if len(txs) == 0 {
		return nil
	}
	var err error
	if b.pg {
		err = b.upsertTransactionsPG(txs)
	} else {
		err = b.upsertTransactionsValues(txs)
	}
	if err != nil {
		return fmt.Errorf("accounts.Bulk.UpsertTransactions: %w", err)
	}
	return nil
}

// upsertTransactionsPG writes the whole batch in two statements of array
// parameters on the partitioned table (partitions.go).
func (b *Bulk) upsertTransactionsPG(txs []Transaction) error {
	return pgUpsertTxs(sqlQuerier{ctx: b.ctx, conn: b.conn}, txs, ruleIngest)
}

// upsertTransactionsValues is the multi-row VALUES form, for SQLite.
func (b *Bulk) upsertTransactionsValues(txs []Transaction) error {
	for start := 0; start < len(txs); start += bulkChunkRows {
		chunk := txs[start:min(start+bulkChunkRows, len(txs))]
		var sql strings.Builder
		sql.Grow(64 + len(chunk)*40 + len(txUpsertConflict))
		sql.WriteString("INSERT INTO transactions (" + txColumns + ", created_seq) VALUES ")
		args := make([]any, 0, len(chunk)*12)
		sql.WriteString(store.Placeholders(len(chunk), 12))
		for _, t := range chunk {
			var booked any
			if p := store.MicrosPtr(t.BookedAt); p != nil {
				booked = *p
			}
			args = append(args, t.ID, t.AccountID, t.Status, store.Micros(t.TransactedAt), booked,
				t.Amount, t.Currency, t.Description, t.MerchantName, t.MCC, t.CardLast4, t.CreatedSeq)
		}
		sql.WriteString(txUpsertConflict)
		res, err := b.conn.ExecContext(b.ctx, sql.String(), args...)
		if err := checkAffected(res, err, len(chunk)); err != nil {
			return err
		}
	}
	return nil
}

// checkAffected turns a statement that did not insert or update every row
// into ErrConflict.
func checkAffected(res sql.Result, err error, want int) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != int64(want) {
		return fmt.Errorf("a transaction changed account, status or booked amount concurrently: %w", ErrConflict)
	}
	return nil
}

// DeletePendingTransactions deletes pending transactions (reversed before
// they were booked). An id that is not a pending transaction fails the
// call with ErrConflict: booked transactions are never deleted.
func (b *Bulk) DeletePendingTransactions(ids []string) error {
	if b.pg {
		return inChunks(ids, pgLookupChunk, func(chunk []string) error {
			var n int
			if err := b.conn.QueryRowContext(b.ctx, pgDeletePending, chunk).Scan(&n); err != nil {
				return fmt.Errorf("accounts.Bulk.DeletePendingTransactions: %w", err)
			}
			if n != len(chunk) {
				return fmt.Errorf("accounts.Bulk.DeletePendingTransactions: a transaction to reverse is no longer pending: %w", ErrConflict)
			}
			return nil
		})
	}
	return inChunks(ids, lookupChunk, func(chunk []string) error {
		res := b.tx.Exec(`DELETE FROM transactions WHERE id IN ? AND status = 'pending'`, chunk)
		if res.Error != nil {
			return fmt.Errorf("accounts.Bulk.DeletePendingTransactions: %w", res.Error)
		}
		if res.RowsAffected != int64(len(chunk)) {
			return fmt.Errorf("accounts.Bulk.DeletePendingTransactions: a transaction to reverse is no longer pending: %w", ErrConflict)
		}
		return nil
	})
}
