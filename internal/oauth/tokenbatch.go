package oauth

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"

	"github.com/consentgate/consentgate/internal/store"
)

// tokenInsert is one oauth_tokens row waiting for its batch to commit.
type tokenInsert struct {
	args []any // tokenInsertColumns, in order
	done chan error
}

const tokenInsertColumns = "kind, signature_hash, request_id, client_id, subject, active, requested_at, expires_at, request_data, access_signature_hash"

// tokenInsertColumnList is tokenInsertColumns as a list (EventRows).
var tokenInsertColumnList = strings.Split(strings.ReplaceAll(tokenInsertColumns, " ", ""), ",")

// tokenBatcher group-commits the token rows that are written outside a
// fosite transaction (client_credentials access tokens, authorization
// codes, PKCE requests): concurrent requests' rows go into the database in
// one transaction, and each request returns when that transaction has
// committed, so a token is never handed out before it is durable. On
// SQLite, where every commit holds the one write lock through an fsync,
// this is what lets the token endpoint scale past one commit per token.
//
// A goroutine drains the queue while there is work and exits when it is
// empty: the batcher needs no lifecycle of its own.
type tokenBatcher struct {
	db *store.DB

	mu       sync.Mutex
	pending  []*tokenInsert
	draining bool
}

// maxTokenBatch bounds the rows of one transaction.
const maxTokenBatch = 256

// insert queues a row and waits for its commit.
func (b *tokenBatcher) insert(ctx context.Context, args ...any) error {
	ins := &tokenInsert{args: args, done: make(chan error, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, ins)
	if !b.draining {
		b.draining = true
		go b.drain()
	}
	b.mu.Unlock()
	select {
	case err := <-ins.done:
		return err
	case <-ctx.Done():
		// The row may still commit: a token nobody received is harmless.
		return ctx.Err()
	}
}

// drain commits what is queued, batch after batch, until nothing is.
// Rows that arrive while a batch commits make up the next one.
func (b *tokenBatcher) drain() {
	for {
		b.mu.Lock()
		n := min(len(b.pending), maxTokenBatch)
		if n == 0 {
			b.draining = false
			b.mu.Unlock()
			return
		}
		batch := b.pending[:n:n]
		b.pending = b.pending[n:]
		b.mu.Unlock()
		err := b.commit(batch)
		for _, ins := range batch {
			ins.done <- err
		}
	}
}

// sqliteTokenRows bounds the rows of one SQLite statement: its driver binds
// parameters in time quadratic in their number.
const sqliteTokenRows = 32

func (b *tokenBatcher) commit(batch []*tokenInsert) error {
	// Not the request's context: its row is in a batch with others.
	ctx := context.Background()
	tx, err := b.db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return dbErr("begin token batch", err)
	}
	chunk := len(batch)
	if b.db.Dialect == store.SQLite {
		chunk = sqliteTokenRows
	}
	for start := 0; start < len(batch); start += chunk {
		rows := batch[start:min(start+chunk, len(batch))]
		if err := b.exec(ctx, tx, rows); err != nil {
			_ = tx.Rollback()
			return dbErr("create tokens", err)
		}
	}
	return dbErr("commit token batch", tx.Commit())
}

// exec inserts rows in one statement: ? placeholders for SQLite, whose
// driver matches them by position cheaply, $n for PostgreSQL.
func (b *tokenBatcher) exec(ctx context.Context, tx *sql.Tx, rows []*tokenInsert) error {
	var q strings.Builder
	q.WriteString("INSERT INTO oauth_tokens (" + tokenInsertColumns + ") VALUES ")
	args := make([]any, 0, len(rows)*10)
	for i, r := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteByte('(')
		for j, a := range r.args {
			if j > 0 {
				q.WriteString(", ")
			}
			args = append(args, a)
			if b.db.Dialect == store.Postgres {
				q.WriteString("$" + strconv.Itoa(len(args)))
			} else {
				q.WriteByte('?')
			}
		}
		q.WriteByte(')')
	}
	_, err := tx.ExecContext(ctx, q.String(), args...)
	return err
}
