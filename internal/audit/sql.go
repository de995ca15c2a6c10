package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/store"
)

// eventColumns is the column list every query selects and every insert
// writes, in the order scanEvent and insertEvents use.
const eventColumns = "seq, event_id, occurred_at, type, outcome, reason, client_id, customer_id, grant_id, account_id, method, path, status, purpose, scopes, interaction_id, prev_hash, hash"

const nColumns = 18

// rowsPerInsert is the number of rows of one multi-row INSERT. PostgreSQL
// gains from few round trips (250 × 18 parameters stays far below its 65535
// limit). SQLite has no round trip, and its driver binds parameters in time
// quadratic in their number: 16 rows was the fastest size measured.
func rowsPerInsert(d store.Dialect) int {
	if d == store.Postgres {
		return 250
	}
	return 16
}

// rowScanner is *sql.Rows or *sql.Row.
type rowScanner interface{ Scan(dest ...any) error }

// scanEvent reads one row of eventColumns into ev and returns the stored
// space-joined scopes; ev.Scopes is left for the caller to split (Verify
// hashes the stored string as is and never needs the slice).
func scanEvent(r rowScanner, ev *Event) (scopes string, err error) {
	var occurred int64
	var typ, outcome string
	err = r.Scan(&ev.Seq, &ev.EventID, &occurred, &typ, &outcome, &ev.Reason, &ev.ClientID, &ev.CustomerID,
		&ev.GrantID, &ev.AccountID, &ev.Method, &ev.Path, &ev.Status, &ev.Purpose, &scopes,
		&ev.InteractionID, &ev.PrevHash, &ev.Hash)
	if err != nil {
		return "", err
	}
	ev.OccurredAt = store.FromMicros(occurred)
	ev.Type, ev.Outcome = Type(typ), Outcome(outcome)
	return scopes, nil
}

// chainHead is the last link of the chain: seq 0 and GenesisHash when empty.
type chainHead struct {
	Seq  int64
	Hash string
}

// lockHead reads the chain head inside tx and holds it until tx ends. Only
// integrators take it, and they already take turns on an advisory lock; the
// row lock is the second fence. SQLite needs no row lock: store opens it
// with _txlock=immediate, so the write transaction is exclusive from BEGIN.
func lockHead(tx *gorm.DB, d store.Dialect) (chainHead, error) {
	q := `SELECT seq, hash FROM audit_head WHERE id = 1`
	if d == store.Postgres {
		q += ` FOR UPDATE`
	}
	var h chainHead
	if err := tx.Raw(q).Row().Scan(&h.Seq, &h.Hash); err != nil {
		return h, fmt.Errorf("lock audit head: %w", err)
	}
	return h, nil
}

// readHead returns the committed chain head without locking it.
func readHead(ctx context.Context, db *store.DB) (chainHead, error) {
	var h chainHead
	if err := db.WithContext(ctx).Raw(`SELECT seq, hash FROM audit_head WHERE id = 1`).Row().Scan(&h.Seq, &h.Hash); err != nil {
		return h, fmt.Errorf("read audit head: %w", err)
	}
	return h, nil
}

// appendBatch chains evs after the locked head, inserts them, grows the
// Merkle tree by their leaves and moves the head, all inside tx: the batch
// commits whole or not at all. It fills in Seq, PrevHash and Hash of each
// element. Only the integrator calls it (one at a time: see integrate).
func appendBatch(tx *gorm.DB, d store.Dialect, evs []Event) error {
	return appendBatchAt(tx, d, evs, time.Now())
}

// appendBatchAt is appendBatch with the integrator's clock: the batch's
// logged_at is now, or the previous event's if that is later, so logged_at
// never decreases along seq (each monthly partition is one seq range).
func appendBatchAt(tx *gorm.DB, d store.Dialect, evs []Event, now time.Time) error {
	head, err := lockHead(tx, d)
	if err != nil {
		return err
	}
	size, err := storedTreeSize(tx)
	if err != nil {
		return err
	}
	switch {
	case i64(size) > head.Seq:
		return fmt.Errorf("audit tree has %d leaves but the chain head is at seq %d", size, head.Seq)
	case i64(size) < head.Seq:
		if err := backfillTree(tx, d, size, head.Seq); err != nil {
			return err
		}
	}
	var h hasher
	prev := head.Hash
	for i := range evs {
		evs[i].Seq = head.Seq + int64(i) + 1
		evs[i].PrevHash = prev
		if evs[i].Hash, err = h.hash(prev, &evs[i], strings.Join(evs[i].Scopes, " ")); err != nil {
			return err
		}
		prev = evs[i].Hash
	}
	var lastLogged int64
	if err := tx.Raw(`SELECT COALESCE(MAX(logged_at), 0) FROM audit_events WHERE seq = ?`, head.Seq).Row().Scan(&lastLogged); err != nil {
		return fmt.Errorf("audit head's logged_at: %w", err)
	}
	loggedAt := max(store.Micros(now), lastLogged)
	step := rowsPerInsert(d)
	if d == store.Postgres {
		step = len(evs) // one statement of arrays (insertEventsPG)
	}
	for start := 0; start < len(evs); start += step {
		if err := insertLogged(tx, d, evs[start:min(start+step, len(evs))], loggedAt); err != nil {
			return err
		}
	}
	if err := growTree(tx, d, u64(head.Seq), evs); err != nil {
		return err
	}
	last := evs[len(evs)-1]
	res := tx.Exec(`UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, last.Seq, last.Hash)
	if res.Error != nil {
		return fmt.Errorf("move audit head: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("move audit head: %d rows", res.RowsAffected)
	}
	return nil
}

// insertLogged inserts evs; on PostgreSQL, when no partition holds their
// logged_at yet, it creates that month's partition and retries (inside a
// savepoint, so the batch's transaction survives the first attempt).
func insertLogged(tx *gorm.DB, d store.Dialect, evs []Event, loggedAt int64) error {
	if d != store.Postgres {
		return insertEvents(tx, d, evs, loggedAt)
	}
	if err := tx.Exec(`SAVEPOINT audit_insert`).Error; err != nil {
		return fmt.Errorf("insert audit events: %w", err)
	}
	err := insertEvents(tx, d, evs, loggedAt)
	if err == nil || !strings.Contains(err.Error(), "no partition of relation") {
		return err
	}
	if err := tx.Exec(`ROLLBACK TO SAVEPOINT audit_insert`).Error; err != nil {
		return fmt.Errorf("insert audit events: %w", err)
	}
	month := time.UnixMicro(loggedAt).UTC()
	from := time.Date(month.Year(), month.Month(), 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 1, 0)
	if err := tx.Exec(fmt.Sprintf(`CREATE TABLE IF NOT EXISTS audit_events_%s PARTITION OF audit_events FOR VALUES FROM (%d) TO (%d)`,
		from.Format("200601"), store.Micros(from), store.Micros(to))).Error; err != nil {
		return fmt.Errorf("create audit partition for %s: %w", from.Format("2006-01"), err)
	}
	return insertEvents(tx, d, evs, loggedAt)
}

// insertEventsPG writes evs with one INSERT over unnest of one array a
// column: the same statement text whatever the batch's size (parsed once a
// connection) and 19 parameters to bind instead of 19 a row.
func insertEventsPG(tx *gorm.DB, evs []Event, loggedAt int64) error {
	var (
		seqs, occurred                                  = make([]int64, len(evs)), make([]int64, len(evs))
		status                                          = make([]int32, len(evs))
		ids, types, outcomes, reasons, clients, custs   = make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs))
		grants, accts, methods, paths, purposes, scopes = make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs))
		interactions, prevs, hashes                     = make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs))
	)
	for i := range evs {
		e := &evs[i]
		seqs[i], ids[i], occurred[i], types[i], outcomes[i] = e.Seq, e.EventID, store.Micros(e.OccurredAt), string(e.Type), string(e.Outcome)
		reasons[i], clients[i], custs[i], grants[i], accts[i] = e.Reason, e.ClientID, e.CustomerID, e.GrantID, e.AccountID
		methods[i], paths[i], status[i], purposes[i], scopes[i] = e.Method, e.Path, int32(e.Status), e.Purpose, strings.Join(e.Scopes, " ") // #nosec G115 -- an HTTP status
		interactions[i], prevs[i], hashes[i] = e.InteractionID, e.PrevHash, e.Hash
	}
	const q = `INSERT INTO audit_events (` + eventColumns + `, logged_at)
		SELECT u.*, $19::bigint FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::integer[], $14::text[], $15::text[], $16::text[],
			$17::text[], $18::text[]) AS u`
	if _, err := tx.Statement.ConnPool.ExecContext(tx.Statement.Context, q, seqs, ids, occurred, types, outcomes, reasons, clients,
		custs, grants, accts, methods, paths, status, purposes, scopes, interactions, prevs, hashes, loggedAt); err != nil {
		return fmt.Errorf("insert audit events: %w", err)
	}
	return nil
}

// insertEvents writes evs with one INSERT, all with logged_at: arrays on
// PostgreSQL, a multi-row VALUES list on SQLite.
func insertEvents(tx *gorm.DB, d store.Dialect, evs []Event, loggedAt int64) error {
	if d == store.Postgres {
		return insertEventsPG(tx, evs, loggedAt)
	}
	var sb strings.Builder
	sb.Grow(64 + len(evs)*(2*nColumns+3))
	sb.WriteString(`INSERT INTO audit_events (` + eventColumns + `, logged_at) VALUES `)
	args := make([]any, 0, len(evs)*(nColumns+1))
	for i := range evs {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
		e := &evs[i]
		args = append(args, e.Seq, e.EventID, store.Micros(e.OccurredAt), string(e.Type), string(e.Outcome),
			e.Reason, e.ClientID, e.CustomerID, e.GrantID, e.AccountID, e.Method, e.Path, e.Status,
			e.Purpose, strings.Join(e.Scopes, " "), e.InteractionID, e.PrevHash, e.Hash, loggedAt)
	}
	if err := tx.Exec(sb.String(), args...).Error; err != nil {
		return fmt.Errorf("insert audit events: %w", err)
	}
	return nil
}
