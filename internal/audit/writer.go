package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/store"
)

// WriterOptions tune group commit.
type WriterOptions struct {
	// MaxBatch bounds the events committed in one transaction (default 256,
	// at most 1000).
	MaxBatch int
	// MaxDelay is how long a batch waits for more events after its first one
	// (default 0: take whatever is queued at that moment and commit at once).
	// Batches form by themselves under load: events that arrive while one
	// batch commits make up the next.
	MaxDelay time.Duration
	// Linger, when set (and MaxDelay is not), lets a batch wait for more
	// events only under concurrency: when the previous batch held at least
	// lingerFrom events, the next one waits up to Linger until it holds as
	// many as that one did. Under a steady load of many clients, batches
	// then stay large instead of splitting into small commits; a lone
	// request, and a light load, commit at once as with no delay.
	Linger time.Duration
	// Timeout bounds one batch transaction, lock wait included (default 5s).
	Timeout time.Duration
	// Logger receives failed batches (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock for events without OccurredAt (default time.Now).
	Now func() time.Time
}

// Writer appends events with group commit: one goroutine takes every queued
// event, commits them to audit_pending in one transaction, and releases each
// waiting Append when that transaction commits. Durability costs one commit
// per batch, not one per request, and takes no lock other writers wait on:
// the integrator (Integrate) gives committed events their seq and hashes
// later. Safe for concurrent use; any number of Writers, in one process or
// on many nodes, may share one database.
type Writer struct {
	db   *store.DB
	opts WriterOptions

	mu     sync.RWMutex // held shared while sending, exclusively by Close
	closed bool
	reqs   chan *request
	done   chan struct{}
	// batch writes one batch inside its transaction: insertPending. The
	// node benchmark swaps in appendBatch to measure the old design (every
	// batch chained under the head row lock) in the same run.
	batch func(tx *gorm.DB, d store.Dialect, evs []Event) error
	// direct: batch is insertPending, so a batch of one statement may
	// skip the explicit transaction (write).
	direct bool

	events, batches, failed atomic.Int64
}

// WriterStats count a writer's work since it started.
type WriterStats struct {
	Events  int64 // events committed
	Batches int64 // transactions committed; Events/Batches is the mean batch size
	Failed  int64 // events whose batch failed
}

// Stats returns the writer's counters (for metrics and benchmarks).
func (w *Writer) Stats() WriterStats {
	return WriterStats{Events: w.events.Load(), Batches: w.batches.Load(), Failed: w.failed.Load()}
}

var _ RowsRecorder = (*Writer)(nil)

type request struct {
	ctx context.Context
	ev  Event
	// with is what ev records, inserted in the same transaction
	// (AppendWith); empty for a plain Append.
	with Rows
	res  chan result // buffered: the committer never blocks on a waiter
	// refused: with.Require returned no row in the batch's transaction,
	// so neither ev nor its rows were written.
	refused bool
}

type result struct {
	ev  Event
	err error
}

var errClosed = errors.New("audit writer closed")

// NewWriter starts a writer on db; Close stops it.
func NewWriter(db *store.DB, opts WriterOptions) *Writer {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	opts.MaxBatch = min(opts.MaxBatch, 1000)
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	w := &Writer{db: db, opts: opts, reqs: make(chan *request, 4*opts.MaxBatch), done: make(chan struct{}), batch: insertPending, direct: true}
	go w.run()
	return w
}

// Append records ev and returns it as committed, with EventID and
// OccurredAt set; Seq, PrevHash and Hash stay empty until the integrator
// places the event in the log (find it by EventID). It blocks until the
// batch holding ev commits. Any error other
// than an invalid event wraps ErrUnavailable (an *apperr.E with code
// audit_unavailable): the event may not be in the log, and the caller must
// not serve the data it guards. If ctx ends first, Append returns such an
// error even though the event may still commit later: a log entry for a
// response that was never sent is the safe side of the race.
func (w *Writer) Append(ctx context.Context, ev Event) (Event, error) {
	return w.AppendWith(ctx, ev, Rows{})
}

// Rows are rows of one table that an event records (AppendWith): Values
// holds len(Columns) values a row, row after row. Table and Columns are
// the caller's constants, never input.
type Rows struct {
	Table   string
	Columns []string
	Values  []any
	// Require, when set, is what the event and its rows are written under
	// (see Precondition).
	Require *Precondition
}

// Precondition is a query that returns a row while an event and the rows
// it records may be written (AppendWith): a token row, say, only while its
// client is still at the revision the caller read. The writer runs it in
// the batch's transaction just before the inserts, or, for a batch whose
// events record no rows (a data call's event under its token's state),
// just before the batch's one INSERT (a batch runs each distinct query and
// arguments once); when it returns no row, that event and its rows are
// left out of the batch, the rest commit, and AppendWith returns an error
// wrapping ErrPrecondition. Query is the caller's constant with ?
// placeholders, never input.
type Precondition struct {
	Query string
	Args  []any
}

// ErrPrecondition is what AppendWith returns, having written nothing, for
// an event whose Rows.Require returned no row.
var ErrPrecondition = errors.New("audit: the event's precondition no longer holds")

// AppendWith is Append with the rows that ev records: they are inserted in
// the transaction of ev's batch, so the event and its rows commit together
// or not at all (a token row and its token.issued event: one commit instead
// of two in a row). The rows of one table from every event of a batch go in
// multi-row statements. If an insert fails the whole batch fails and every
// waiter in it gets the error, as when the database fails: with must only
// hold rows that cannot conflict (fresh random keys). An empty with is
// Append.
func (w *Writer) AppendWith(ctx context.Context, ev Event, with Rows) (Event, error) {
	if len(with.Values) > 0 && (with.Table == "" || len(with.Columns) == 0 || len(with.Values)%len(with.Columns) != 0) {
		return Event{}, fmt.Errorf("audit: rows for %q: %d values for %d columns", with.Table, len(with.Values), len(with.Columns))
	}
	ev, err := normalize(ev, w.opts.Now())
	if err != nil {
		return Event{}, err
	}
	// Time-ordered (UUIDv7): event_id's unique index in audit_pending and
	// audit_events then grows at its right edge, one page for a batch,
	// instead of a random leaf page (and its WAL write) per event.
	ev.EventID = uuid.Must(uuid.NewV7()).String()
	r := &request{ctx: ctx, ev: ev, with: with, res: make(chan result, 1)}

	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return Event{}, unavailable(errClosed)
	}
	select {
	case w.reqs <- r:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return Event{}, unavailable(ctx.Err())
	}

	select {
	case res := <-r.res:
		return res.ev, res.err
	case <-ctx.Done():
		return Event{}, unavailable(ctx.Err())
	}
}

// Record implements Recorder.
func (w *Writer) Record(ctx context.Context, ev Event) (Event, error) { return w.Append(ctx, ev) }

// Close stops accepting events, commits the ones already queued, and returns
// when the writer goroutine has finished.
func (w *Writer) Close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.reqs)
	}
	w.mu.Unlock()
	<-w.done
	return nil
}

func (w *Writer) run() {
	defer close(w.done)
	batch := make([]*request, 0, w.opts.MaxBatch)
	prev := 0 // the previous batch's size
	for first := range w.reqs {
		batch = w.collect(append(batch[:0], first), prev)
		prev = len(batch)
		w.commit(batch)
		clear(batch) // let finished requests be collected
	}
}

// lingerFrom is the smallest previous batch after which a batch lingers
// (WriterOptions.Linger): below it the load is light enough that waiting
// would only add latency.
const lingerFrom = 4

// collect adds queued requests to batch until it is full, the queue is empty
// and MaxDelay (if any) has passed, or the writer is closing. With Linger,
// after a previous batch of prev >= lingerFrom requests, it waits up to
// Linger for a batch of prev.
func (w *Writer) collect(batch []*request, prev int) []*request {
	var deadline <-chan time.Time
	wait := w.opts.MaxBatch // the size a batch waits for, until deadline
	switch {
	case w.opts.MaxDelay > 0:
		t := time.NewTimer(w.opts.MaxDelay)
		defer t.Stop()
		deadline = t.C
	case w.opts.Linger > 0 && prev >= lingerFrom:
		wait = min(prev, wait)
		t := time.NewTimer(w.opts.Linger)
		defer t.Stop()
		deadline = t.C
	}
	for len(batch) < w.opts.MaxBatch {
		select {
		case r, ok := <-w.reqs:
			if !ok {
				return batch
			}
			batch = append(batch, r)
			continue
		default:
		}
		if deadline == nil || len(batch) >= wait {
			return batch
		}
		select {
		case r, ok := <-w.reqs:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		case <-deadline:
			return batch
		}
	}
	return batch
}

// commit appends the batch in one transaction and answers every waiter:
// all succeed with their committed event, or all fail. A failed batch is not
// retried piecemeal, which could reorder it against a later batch.
func (w *Writer) commit(batch []*request) {
	// Events whose caller already gave up are left out: that caller has
	// answered 503, so the log must not claim the access happened.
	live := make([]*request, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.res <- result{err: unavailable(err)}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	evs := make([]Event, len(live))
	for i, r := range live {
		evs[i] = r.ev
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.Timeout)
	defer cancel()
	err := w.write(ctx, evs, live)
	refused := 0
	for _, r := range live {
		if r.refused {
			refused++
		}
	}
	if err != nil {
		w.failed.Add(int64(len(live)))
		w.opts.Logger.Error("audit batch not committed", "events", len(live), "err", err)
		err = unavailable(err)
	} else {
		w.events.Add(int64(len(live) - refused))
		w.batches.Add(1)
	}
	for i, r := range live {
		switch {
		case err != nil:
			r.res <- result{err: err}
		case r.refused:
			r.res <- result{err: fmt.Errorf("%w (%s)", ErrPrecondition, r.with.Table)}
		default:
			r.res <- result{ev: evs[i]}
		}
	}
}

// write commits evs. A batch that fits one INSERT is sent as that one
// statement, which is its own transaction (autocommit: committed, on
// PostgreSQL with synchronous_commit on and on SQLite with synchronous
// FULL, durably, before the driver returns): one round trip instead of
// BEGIN, INSERT, COMMIT. A larger batch, or the node benchmark's chained
// design, runs in an explicit transaction, all or nothing as before.
func (w *Writer) write(ctx context.Context, evs []Event, live []*request) error {
	if withRows(live) {
		// Rows recorded with their events (AppendWith) commit in the same
		// transaction as the events, or not at all, under their
		// preconditions checked in that transaction.
		return w.db.Tx(ctx, func(tx *gorm.DB) error {
			keep, keepEvs, err := checkPreconditions(func(p *Precondition) (bool, error) {
				return returnsRow(ctx, tx.Statement.ConnPool, w.db.Dialect, p)
			}, live, evs)
			if err != nil || len(keep) == 0 {
				return err
			}
			if err := w.batch(tx, w.db.Dialect, keepEvs); err != nil {
				return err
			}
			return insertRows(tx, w.db.Dialect, keep)
		})
	}
	// Preconditions of events without rows (a data call answered from a
	// remembered token state) are checked just before the insert, each
	// by its own statement: what they guard is an answer, which may rest
	// on any instant between its request and its event's commit, not a
	// row that must not outlive a change; so the batch keeps its one
	// INSERT instead of BEGIN, the checks, INSERT, COMMIT.
	keep, evs, err := checkPreconditions(func(p *Precondition) (bool, error) {
		return returnsRow(ctx, w.db.SQL(), w.db.Dialect, p)
	}, live, evs)
	if err != nil || len(keep) == 0 {
		return err
	}
	if w.direct && len(evs) <= rowsPerInsert(w.db.Dialect) {
		query, args := pendingInsert(w.db.Dialect, evs)
		if _, err := w.db.SQL().ExecContext(ctx, query, args...); err != nil {
			return fmt.Errorf("insert pending audit events: %w", err)
		}
		return nil
	}
	return w.db.Tx(ctx, func(tx *gorm.DB) error { return w.batch(tx, w.db.Dialect, evs) })
}

// withRows reports whether any request of the batch carries rows to
// insert with its event.
func withRows(batch []*request) bool {
	for _, r := range batch {
		if len(r.with.Values) > 0 {
			return true
		}
	}
	return false
}

// checkPreconditions runs, by holds, each distinct precondition of the
// batch's requests once, marks the requests whose precondition returned no
// row as refused, and returns the others with their events (evs[i] is
// batch[i]'s).
func checkPreconditions(holds func(*Precondition) (bool, error), batch []*request, evs []Event) ([]*request, []Event, error) {
	required := false
	for _, r := range batch {
		r.refused = false
		required = required || r.with.Require != nil
	}
	if !required {
		return batch, evs, nil
	}
	seen := map[string]bool{}
	keep, keepEvs := make([]*request, 0, len(batch)), make([]Event, 0, len(evs))
	for i, r := range batch {
		if p := r.with.Require; p != nil {
			key := fmt.Sprintf("%s\x00%#v", p.Query, p.Args)
			ok, done := seen[key]
			if !done {
				var err error
				if ok, err = holds(p); err != nil {
					return nil, nil, fmt.Errorf("audit: check an event's precondition: %w", err)
				}
				seen[key] = ok
			}
			if !ok {
				r.refused = true
				continue
			}
		}
		keep, keepEvs = append(keep, r), append(keepEvs, evs[i])
	}
	return keep, keepEvs, nil
}

// querier is a pool, a connection or a transaction (gorm.ConnPool).
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// returnsRow reports whether p's query returns a row on q, straight
// through database/sql (its ? numbered for PostgreSQL's driver).
func returnsRow(ctx context.Context, q querier, d store.Dialect, p *Precondition) (bool, error) {
	query := p.Query
	if d == store.Postgres {
		query = store.NumberParams(query)
	}
	rows, err := q.QueryContext(ctx, query, p.Args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	ok := rows.Next()
	return ok, rows.Err()
}

// unavailable wraps cause as the audit_unavailable error callers answer 503
// with; errors.Is finds both ErrUnavailable and cause in it.
func unavailable(cause error) error {
	return &apperr.E{
		Code: apperr.AuditUnavailable,
		Msg:  "The audit log could not record this request, so no data was returned. Retry later.",
		Err:  fmt.Errorf("%w: %w", ErrUnavailable, cause),
	}
}

// sqliteRowsPerStatement bounds the rows of one SQLite statement: its
// driver binds parameters in time quadratic in their number.
const sqliteRowsPerStatement = 32

// insertRows inserts the rows the batch's events record (AppendWith), the
// rows of one table and column list in multi-row statements.
func insertRows(tx *gorm.DB, d store.Dialect, batch []*request) error {
	type group struct {
		rows    Rows
		perStmt int
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, r := range batch {
		if len(r.with.Values) == 0 {
			continue
		}
		key := r.with.Table + "(" + strings.Join(r.with.Columns, ",") + ")"
		g := byKey[key]
		if g == nil {
			g = &group{rows: Rows{Table: r.with.Table, Columns: r.with.Columns}, perStmt: 256}
			if d == store.SQLite {
				g.perStmt = sqliteRowsPerStatement
			}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.rows.Values = append(g.rows.Values, r.with.Values...)
	}
	for _, g := range groups {
		cols := len(g.rows.Columns)
		row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
		for start := 0; start < len(g.rows.Values); start += cols * g.perStmt {
			vals := g.rows.Values[start:min(start+cols*g.perStmt, len(g.rows.Values))]
			n := len(vals) / cols
			q := "INSERT INTO " + g.rows.Table + " (" + strings.Join(g.rows.Columns, ", ") + ") VALUES " +
				strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
			if err := tx.Exec(q, vals...).Error; err != nil {
				return fmt.Errorf("audit: insert the rows the events record into %s: %w", g.rows.Table, err)
			}
		}
	}
	return nil
}
