package accounts

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/consentgate/consentgate/internal/store"
)

// On PostgreSQL transactions is partitioned by month of transacted_at
// (migration 00140, docs/scaling.md "Partitioned transactions"): its
// primary key is (id, transacted_at), and transaction_ids keeps the id
// alone unique and says which transacted_at, hence which month, an id's
// row is stored under. Every write by id goes through it; SQLite keeps
// one unpartitioned table with id as its primary key.

// Partition window of EnsurePartitions: the months that get their own
// partition around the current one. Rows outside it live in
// transactions_default.
const (
	PartitionMonthsBack  = 24
	PartitionMonthsAhead = 3
)

// EnsurePartitions creates the monthly partitions of transactions from
// PartitionMonthsBack months before now to PartitionMonthsAhead after it
// that are missing, moving their rows out of the default partition, and
// returns how many it created. It does the work once per month per store
// (the server's housekeeping sweep calls it every 30 seconds); on SQLite
// it does nothing.
func (s *SQLStore) EnsurePartitions(ctx context.Context, now time.Time) (int, error) {
	if s.db.Dialect != store.Postgres {
		return 0, nil
	}
	month := int64(now.UTC().Year())*12 + int64(now.UTC().Month())
	if s.partitionedMonth.Load() == month {
		return 0, nil
	}
	var created int
	err := s.sql.QueryRowContext(ctx, `SELECT transactions_ensure_partitions($1, $2, $3)`,
		store.Micros(now), PartitionMonthsBack, PartitionMonthsAhead).Scan(&created)
	if err != nil {
		return 0, fmt.Errorf("accounts.EnsurePartitions: %w", err)
	}
	s.partitionedMonth.Store(month)
	return created, nil
}

// txByIDPG reads transactions by id on PostgreSQL: each id's key in
// transaction_ids, then its row in the one partition of that key. The
// lateral subquery is kept apart (OFFSET 0) so that its condition on
// transacted_at is a parameter of each key's probe, which prunes every
// other month at run time; flattened, the planner would filter on id in
// every month instead.
func txByIDPG(hidden TxFields) string {
	return "SELECT " + txSelect("t.", hidden) + ` FROM transaction_ids k
		CROSS JOIN LATERAL (SELECT * FROM transactions x
			WHERE x.id = k.id AND x.transacted_at = k.transacted_at OFFSET 0) t`
}

// txRule is the condition an update of an existing transaction must meet.
type txRule int

const (
	// ruleSameAccount: a transaction never moves to another account (the
	// bulk loader and Store.UpsertTransactions).
	ruleSameAccount txRule = iota
	// ruleIngest: also, a booked transaction never returns to pending and
	// keeps its amount and currency (Bulk.UpsertTransactions).
	ruleIngest
)

// pgClaimIDs locks the ids of a batch in transaction_ids, inserting the
// new ones; it returns the stored transacted_at of the ids that existed.
// The no-op update of an existing id takes its row lock, so a concurrent
// writer of the same id waits for this transaction to end, and returns
// the key its row is stored under.
const pgClaimIDs = `INSERT INTO transaction_ids (id, transacted_at)
	SELECT * FROM unnest($1::text[], $2::bigint[])
	ON CONFLICT (id) DO UPDATE SET transacted_at = transaction_ids.transacted_at
	RETURNING id, transacted_at, xmax <> 0`

// pgInsertTxs inserts the new rows of a batch (their ids claimed).
const pgInsertTxs = `INSERT INTO transactions (` + txColumns + `, created_seq)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],
		$7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[])`

// pgUpdateTxs updates the existing rows of a batch, found under their
// stored key (old_at), under the rule, and moves the keys of rows whose
// transacted_at changed; it returns how many rows it updated. An UPDATE
// that changes transacted_at moves the row to its new month. $14 and $15
// bound the stored keys, so that only their months are planned at all.
func pgUpdateTxs(rule txRule) string {
	cond := ""
	if rule == ruleIngest {
		cond = ` AND (t.status = 'pending' OR (u.status = 'booked'
			AND t.amount_minor = u.amount_minor AND t.currency = u.currency))`
	}
	return `WITH upd AS (
		UPDATE transactions t SET status = u.status, transacted_at = u.transacted_at, booked_at = u.booked_at,
			amount_minor = u.amount_minor, currency = u.currency, description = u.description,
			merchant_name = u.merchant_name, mcc = u.mcc, card_last4 = u.card_last4
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],
			$7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::bigint[])
			AS u(id, account_id, status, transacted_at, booked_at, amount_minor, currency, description,
				merchant_name, mcc, card_last4, created_seq, old_at)
		WHERE t.transacted_at BETWEEN $14 AND $15 AND t.id = u.id AND t.transacted_at = u.old_at
			AND t.account_id = u.account_id` + cond + `
		RETURNING t.id, t.transacted_at
	), moved AS (
		UPDATE transaction_ids k SET transacted_at = upd.transacted_at
		FROM upd WHERE k.id = upd.id AND k.transacted_at <> upd.transacted_at
	)
	SELECT count(*) FROM upd`
}

// pgQuerier is a PostgreSQL connection or transaction, from database/sql
// (Bulk) or pgx (Load).
type pgQuerier interface {
	claim(args ...any) (map[string]*int64, error)
	count(q string, args ...any) (int64, error)
}

type sqlQuerier struct {
	ctx  context.Context
	conn interface {
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}
}

func (q sqlQuerier) claim(args ...any) (map[string]*int64, error) {
	rows, err := q.conn.QueryContext(q.ctx, pgClaimIDs, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanClaims(rows)
}

// claimRows is what scanClaims reads: database/sql's and pgx's rows alike.
type claimRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// scanClaims reads pgClaimIDs' rows: the stored key of each id that
// existed before the claim.
func scanClaims(rows claimRows) (map[string]*int64, error) {
	out := map[string]*int64{}
	for rows.Next() {
		var (
			id      string
			at      int64
			existed bool
		)
		if err := rows.Scan(&id, &at, &existed); err != nil {
			return nil, err
		}
		if existed {
			out[id] = &at
		}
	}
	return out, rows.Err()
}

func (q sqlQuerier) count(s string, args ...any) (n int64, err error) {
	err = q.conn.QueryRowContext(q.ctx, s, args...).Scan(&n)
	return n, err
}

type pgxQuerier struct {
	ctx context.Context
	tx  pgx.Tx
}

func (q pgxQuerier) claim(args ...any) (map[string]*int64, error) {
	rows, err := q.tx.Query(q.ctx, pgClaimIDs, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanClaims(rows)
}

func (q pgxQuerier) count(s string, args ...any) (n int64, err error) {
	err = q.tx.QueryRow(q.ctx, s, args...).Scan(&n)
	return n, err
}

// pgUpsertTxs creates or updates txs (ids unique within txs) on the
// partitioned table: claim the ids, then insert the new rows and update
// the existing ones. Rows are taken in id order, so two batches lock shared ids in the
// same order. A row the rule refuses fails the call with ErrConflict.
func pgUpsertTxs(q pgQuerier, txs []Transaction, rule txRule) error {
	txs = slices.Clone(txs)
	slices.SortFunc(txs, func(a, b Transaction) int { return cmp.Compare(a.ID, b.ID) })
	ids, transacted := make([]string, len(txs)), make([]int64, len(txs))
	for i, t := range txs {
		ids[i], transacted[i] = t.ID, store.Micros(t.TransactedAt)
	}
	existing, err := q.claim(ids, transacted)
	if err != nil {
		return err
	}
	var inserts, updates []Transaction
	var oldAt []int64
	for _, t := range txs {
		if at, ok := existing[t.ID]; ok {
			updates = append(updates, t)
			oldAt = append(oldAt, *at)
		} else {
			inserts = append(inserts, t)
		}
	}
	if len(inserts) > 0 {
		n, err := q.count("WITH ins AS ("+pgInsertTxs+" RETURNING 1) SELECT count(*) FROM ins", txArrays(inserts)...)
		if err != nil {
			return err
		}
		if n != int64(len(inserts)) {
			return fmt.Errorf("inserted %d of %d new transactions", n, len(inserts))
		}
	}
	if len(updates) == 0 {
		return nil
	}
	args := append(txArrays(updates), oldAt, slices.Min(oldAt), slices.Max(oldAt))
	written, err := q.count(pgUpdateTxs(rule), args...)
	if err != nil {
		return err
	}
	if written != int64(len(updates)) {
		return fmt.Errorf("a transaction changed account, status or booked amount concurrently: %w", ErrConflict)
	}
	return nil
}

// txArrays is txs as the twelve array parameters of pgInsertTxs.
func txArrays(txs []Transaction) []any {
	n := len(txs)
	var (
		ids, accountIDs, statuses, currencies = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		descriptions, merchants, mccs, last4s = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		transacted, amounts, created          = make([]int64, n), make([]int64, n), make([]int64, n)
		booked                                = make([]*int64, n)
	)
	for i, t := range txs {
		ids[i], accountIDs[i], statuses[i], currencies[i] = t.ID, t.AccountID, t.Status, t.Currency
		descriptions[i], merchants[i], mccs[i], last4s[i] = t.Description, t.MerchantName, t.MCC, t.CardLast4
		transacted[i], amounts[i], booked[i] = store.Micros(t.TransactedAt), t.Amount, store.MicrosPtr(t.BookedAt)
		created[i] = t.CreatedSeq
	}
	return []any{ids, accountIDs, statuses, transacted, booked, amounts, currencies, descriptions, merchants, mccs, last4s, created}
}

// pgDeletePending deletes the pending transactions among ids and their
// keys, and returns how many it deleted.
const pgDeletePending = `WITH gone AS (
		DELETE FROM transactions t USING transaction_ids k
		WHERE k.id = ANY($1) AND t.id = k.id AND t.transacted_at = k.transacted_at AND t.status = 'pending'
		RETURNING t.id
	), keys AS (
		DELETE FROM transaction_ids WHERE id IN (SELECT id FROM gone)
	)
	SELECT count(*) FROM gone`
