package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/consentgate/consentgate/internal/store"
)

// LoadBatch is one batch of a bulk load (Load): the accounts and balances
// of some customers and their transactions.
type LoadBatch struct {
	Accounts     []Account
	Balances     []Balance
	Transactions []Transaction
}

// Load writes a batch in one database transaction, several times faster
// than the Upsert methods for large data sets (the demo generator's ten
// million transactions): PostgreSQL gets the transactions through COPY,
// SQLite through one prepared multi-row statement reused on one connection.
// The rules are those of the Upsert methods: rows are validated, an
// existing account keeps its customer and an existing transaction its
// account (ErrConflict), rows that exist are updated. Transaction ids must
// be unique within the batch, and the accounts' customers must exist.
func (s *SQLStore) Load(ctx context.Context, b LoadBatch) error {
	if err := validateBatch(b); err != nil {
		return fmt.Errorf("accounts.Load: %w", err)
	}
	conn, err := s.db.SQL().Conn(ctx)
	if err != nil {
		return fmt.Errorf("accounts.Load: %w", err)
	}
	defer conn.Close()
	created := store.Micros(s.now())
	if s.db.Dialect == store.Postgres {
		err = conn.Raw(func(dc any) error {
			c, ok := dc.(*stdlib.Conn)
			if !ok {
				return fmt.Errorf("unexpected PostgreSQL driver connection %T", dc)
			}
			return pgx.BeginFunc(ctx, c.Conn(), func(tx pgx.Tx) error { return loadPG(ctx, tx, b, created) })
		})
	} else {
		err = loadSQLite(ctx, conn, b, created)
	}
	if err != nil {
		return fmt.Errorf("accounts.Load: %w", err)
	}
	return nil
}

func validateBatch(b LoadBatch) error {
	for _, a := range b.Accounts {
		if err := validateAccount(a); err != nil {
			return err
		}
	}
	for _, bal := range b.Balances {
		if bal.AccountID == "" || bal.AsOf.IsZero() {
			return fmt.Errorf("%w: balance: account id and as_of are required", ErrInvalid)
		}
	}
	seen := make(map[string]struct{}, len(b.Transactions))
	for _, t := range b.Transactions {
		if err := validateTransaction(t); err != nil {
			return err
		}
		if _, dup := seen[t.ID]; dup {
			return fmt.Errorf("%w: transaction %s appears twice in the batch", ErrInvalid, t.ID)
		}
		seen[t.ID] = struct{}{}
	}
	return nil
}

// The upserts of Load, in both dialects' shared syntax; the conditions are
// those of UpsertAccount and UpsertTransactions.
const (
	loadAccountSQL = `INSERT INTO accounts
		(id, customer_id, institution_id, type, display_name, last4, currency, status, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (id) DO UPDATE SET institution_id = excluded.institution_id, type = excluded.type,
			display_name = excluded.display_name, last4 = excluded.last4, currency = excluded.currency,
			status = excluded.status
		WHERE accounts.customer_id = excluded.customer_id`
	loadBalanceSQL = `INSERT INTO balances (account_id, current_minor, available_minor, credit_limit_minor, as_of)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (account_id) DO UPDATE SET current_minor = excluded.current_minor,
			available_minor = excluded.available_minor, credit_limit_minor = excluded.credit_limit_minor,
			as_of = excluded.as_of`
	loadTxConflictSQL = ` ON CONFLICT (id) DO UPDATE SET status = excluded.status, transacted_at = excluded.transacted_at,
		booked_at = excluded.booked_at, amount_minor = excluded.amount_minor, currency = excluded.currency,
		description = excluded.description, merchant_name = excluded.merchant_name, mcc = excluded.mcc,
		card_last4 = excluded.card_last4
		WHERE transactions.account_id = excluded.account_id`
)

func accountArgs(a Account, created int64) []any {
	return []any{a.ID, a.CustomerID, a.InstitutionID, a.Type, a.DisplayName, a.Last4, a.Currency, a.Status, created}
}

func balanceArgs(b Balance) []any {
	return []any{b.AccountID, b.Current, b.Available, b.CreditLimit, store.Micros(b.AsOf)}
}

func txArgs(t Transaction) []any {
	return []any{t.ID, t.AccountID, t.Status, store.Micros(t.TransactedAt), store.MicrosPtr(t.BookedAt),
		t.Amount, t.Currency, t.Description, t.MerchantName, t.MCC, t.CardLast4}
}

var txColumnList = strings.Split(strings.ReplaceAll(txColumns, " ", ""), ",")

// loadPG writes the batch on one PostgreSQL transaction. The transactions
// go straight into the table with COPY, and their keys into
// transaction_ids (partitions.go), which has no ON CONFLICT: when one of
// them exists already, the COPY is rolled back to a savepoint and the
// batch goes through the upsert of the partitioned table instead.
func loadPG(ctx context.Context, tx pgx.Tx, b LoadBatch, created int64) error {
	batch := &pgx.Batch{}
	for _, a := range b.Accounts {
		batch.Queue(loadAccountSQL, accountArgs(a, created)...).Exec(func(ct pgconn.CommandTag) error {
			if ct.RowsAffected() != 1 {
				return fmt.Errorf("account %s: %w", a.ID, ErrConflict)
			}
			return nil
		})
	}
	for _, bal := range b.Balances {
		batch.Queue(loadBalanceSQL, balanceArgs(bal)...)
	}
	if batch.Len() > 0 {
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return err
		}
	}
	if len(b.Transactions) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
		_, err := sp.CopyFrom(ctx, pgx.Identifier{"transaction_ids"}, []string{"id", "transacted_at"},
			pgx.CopyFromSlice(len(b.Transactions), func(i int) ([]any, error) {
				t := &b.Transactions[i]
				return []any{t.ID, store.Micros(t.TransactedAt)}, nil
			}))
		if err != nil {
			return err
		}
		_, err = sp.CopyFrom(ctx, pgx.Identifier{"transactions"}, txColumnList,
			pgx.CopyFromSlice(len(b.Transactions), func(i int) ([]any, error) { return txArgs(b.Transactions[i]), nil }))
		return err
	})
	if err == nil || !store.IsUniqueViolation(err) {
		return err
	}
	if err := pgUpsertTxs(pgxQuerier{ctx: ctx, tx: tx}, b.Transactions, ruleSameAccount); err != nil {
		if errors.Is(err, ErrConflict) {
			return fmt.Errorf("a transaction id in the batch belongs to another account: %w", ErrConflict)
		}
		return err
	}
	return nil
}

// sqliteLoadRows is how many transactions one SQLite statement carries.
// The driver compiles a statement on every execution (it keeps no
// prepared statements), so more rows a statement amortise the compile; but
// it also binds parameters in time quadratic in their number, 11 a row.
const sqliteLoadRows = 32

// loadSQLite writes the batch on conn in one IMMEDIATE transaction (the
// DSN's _txlock). For the batch, synchronous is NORMAL (in WAL mode a crash
// cannot corrupt the database, it can only lose the last batches, which a
// generator writes again) and the page cache is large enough for the
// indexes being filled; the connection gets its own settings back before
// it returns to the pool.
func loadSQLite(ctx context.Context, conn *sql.Conn, b LoadBatch, created int64) (err error) {
	var sync, cache int
	if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return err
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536"); err != nil {
		return err
	}
	defer func() {
		_, rerr := conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA synchronous = %d; PRAGMA cache_size = %d", sync, cache))
		if rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	for _, a := range b.Accounts {
		res, err := tx.ExecContext(ctx, loadAccountSQL, accountArgs(a, created)...)
		if err := wrote(res, err, 1); err != nil {
			return fmt.Errorf("account %s: %w", a.ID, err)
		}
	}
	for _, bal := range b.Balances {
		if _, err := tx.ExecContext(ctx, loadBalanceSQL, balanceArgs(bal)...); err != nil {
			return err
		}
	}
	if err := loadSQLiteTxs(ctx, tx, b.Transactions); err != nil {
		return err
	}
	return tx.Commit()
}

func loadSQLiteTxs(ctx context.Context, tx *sql.Tx, txs []Transaction) error {
	full := txInsertSQL(sqliteLoadRows)
	args := make([]any, 0, sqliteLoadRows*11)
	for start := 0; start < len(txs); start += sqliteLoadRows {
		chunk := txs[start:min(start+sqliteLoadRows, len(txs))]
		q := full
		if len(chunk) < sqliteLoadRows {
			q = txInsertSQL(len(chunk))
		}
		args = args[:0]
		for _, t := range chunk {
			args = append(args, txArgs(t)...)
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err := wrote(res, err, len(chunk)); err != nil {
			return err
		}
	}
	return nil
}

// txInsertSQL is the upsert of n transactions.
func txInsertSQL(n int) string {
	row := "(?" + strings.Repeat(", ?", 10) + ")"
	return "INSERT INTO transactions (" + txColumns + ") VALUES " +
		strings.TrimSuffix(strings.Repeat(row+", ", n), ", ") + loadTxConflictSQL
}

// wrote checks that a statement inserted or updated n rows: fewer means
// its WHERE refused to move a row to another owner.
func wrote(res sql.Result, err error, n int) error {
	if err != nil {
		return err
	}
	got, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if got != int64(n) {
		return fmt.Errorf("a row of the batch belongs to another owner: %w", ErrConflict)
	}
	return nil
}
