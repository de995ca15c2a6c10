package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"

	sqlite3 "github.com/ncruces/go-sqlite3"
	ncdriver "github.com/ncruces/go-sqlite3/driver"
)

// SQLite runs on github.com/ncruces/go-sqlite3: the SQLite C library
// translated to Go (wasm2go), so the build stays pure Go. Its database/sql
// driver keeps a statement only as long as database/sql does, which for a
// query without Prepare is one execution; the wrapper below keeps each
// connection's statements prepared instead, so a hot query is compiled
// once per connection, not once per call. It also rewrites PostgreSQL's
// "$N" placeholders (which the domain packages share between dialects) to
// SQLite's "?N": SQLite numbers "$N" parameters in order of appearance,
// not by N, and the driver binds by position.

// sqliteStmtCache bounds the statements kept per connection; past it the
// least recently used one is finalized.
const sqliteStmtCache = 64

// sqliteDSN turns a path (optionally with URI parameters of its own) into
// the driver's "file:" URI carrying the connection settings: busy_timeout
// first (the driver applies pragmas in order), WAL so readers run beside
// the writer, foreign keys (off by default in SQLite), synchronous=FULL
// (a commit is durable when it returns), temporary files in memory (a
// multi-row INSERT in a transaction keeps a statement journal, which would
// otherwise be a file opened, written and closed in every commit), and
// BEGIN IMMEDIATE for write transactions so that a transaction never fails
// to upgrade its lock.
func sqliteDSN(path string) string {
	query := ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i+1:]
	}
	if !strings.HasPrefix(path, "file:") {
		path = "file:" + strings.NewReplacer("%", "%25", "#", "%23").Replace(path)
	}
	params := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_pragma=temp_store(memory)&_txlock=immediate"
	if query != "" {
		params += "&" + query
	}
	return path + "?" + params
}

// openSQLite opens the pool of wrapped driver connections.
func openSQLite(dsn string) (*sql.DB, error) {
	c, err := (&ncdriver.SQLite{}).OpenConnector(dsn)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(sqliteConnector{c}), nil
}

type sqliteConnector struct{ driver.Connector }

func (c sqliteConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	nc, ok := dc.(ncdriver.Conn)
	if !ok {
		_ = dc.Close()
		return nil, errors.New("store: unexpected SQLite driver connection")
	}
	return &sqliteConn{Conn: nc, stmts: make(map[string]*sqliteStmt)}, nil
}

// sqliteConn is one driver connection with its prepared statements.
// database/sql uses a connection from one goroutine at a time.
type sqliteConn struct {
	ncdriver.Conn
	stmts map[string]*sqliteStmt
	tick  uint64
}

var (
	_ driver.ExecerContext      = (*sqliteConn)(nil)
	_ driver.NamedValueChecker  = (*sqliteConn)(nil)
	_ driver.ConnPrepareContext = (*sqliteConn)(nil)
	_ driver.ConnBeginTx        = (*sqliteConn)(nil)
)

// ExecContext runs a statement without arguments directly (the driver
// then accepts several statements at once); with arguments, database/sql
// goes through PrepareContext.
func (c *sqliteConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if len(args) != 0 {
		return nil, driver.ErrSkip
	}
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, nil)
}

// CheckNamedValue leaves argument checks to the statement.
func (c *sqliteConn) CheckNamedValue(*driver.NamedValue) error { return nil }

func (c *sqliteConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext hands out the connection's statement for query, prepared
// on first use. A statement still in use (an open result set of the same
// query) is not shared: the caller gets one of its own, finalized when
// closed.
func (c *sqliteConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.tick++
	if s, ok := c.stmts[query]; ok && !s.busy {
		s.busy, s.used = true, c.tick
		return s, nil
	}
	ds, err := c.Conn.PrepareContext(ctx, sqliteParams(query))
	if err != nil {
		return nil, err
	}
	s := &sqliteStmt{stmt: ds.(sqliteDriverStmt), conn: c, query: query, busy: true, used: c.tick}
	if _, ok := c.stmts[query]; ok {
		s.conn = nil // the cached one is busy: this one is not kept
		return s, nil
	}
	if len(c.stmts) >= sqliteStmtCache {
		c.evict()
	}
	c.stmts[query] = s
	return s, nil
}

// evict finalizes the least recently used idle statement.
func (c *sqliteConn) evict() {
	var old *sqliteStmt
	for _, s := range c.stmts {
		if !s.busy && (old == nil || s.used < old.used) {
			old = s
		}
	}
	if old != nil {
		delete(c.stmts, old.query)
		_ = old.stmt.Close()
	}
}

// Close finalizes the kept statements, then closes the connection.
func (c *sqliteConn) Close() error {
	var errs []error
	for q, s := range c.stmts {
		delete(c.stmts, q)
		errs = append(errs, s.stmt.Close())
	}
	return errors.Join(append(errs, c.Conn.Close())...)
}

// sqliteDriverStmt is what the driver's statements implement.
type sqliteDriverStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
	driver.NamedValueChecker
}

// sqliteStmt is a kept statement; Close returns it to its connection.
type sqliteStmt struct {
	stmt  sqliteDriverStmt
	conn  *sqliteConn // nil: not kept, finalized on Close
	query string
	busy  bool
	used  uint64
}

var (
	_ driver.StmtExecContext   = (*sqliteStmt)(nil)
	_ driver.StmtQueryContext  = (*sqliteStmt)(nil)
	_ driver.NamedValueChecker = (*sqliteStmt)(nil)
)

// Close releases the statement. Its result set, closed first by
// database/sql, has already reset it (ending its read of the database)
// and cleared its bindings.
func (s *sqliteStmt) Close() error {
	if s.conn == nil {
		return s.stmt.Close()
	}
	s.busy = false
	return nil
}

func (s *sqliteStmt) NumInput() int { return s.stmt.NumInput() }

func (s *sqliteStmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.stmt.Exec(args) //nolint:staticcheck // database/sql calls ExecContext; Exec completes driver.Stmt
}

func (s *sqliteStmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.stmt.Query(args) //nolint:staticcheck // as Exec
}

func (s *sqliteStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.stmt.ExecContext(ctx, args)
}

func (s *sqliteStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.stmt.QueryContext(ctx, args)
}

func (s *sqliteStmt) CheckNamedValue(v *driver.NamedValue) error { return s.stmt.CheckNamedValue(v) }

// sqliteParams rewrites "$N" placeholders to "?N" outside string literals,
// quoted identifiers and comments. A query without "$" is returned as is.
func sqliteParams(query string) string {
	if strings.IndexByte(query, '$') < 0 {
		return query
	}
	b := []byte(query)
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\'', '"', '`':
			q := b[i]
			for i++; i < len(b) && b[i] != q; i++ {
			}
		case '[':
			for i++; i < len(b) && b[i] != ']'; i++ {
			}
		case '-':
			if i+1 < len(b) && b[i+1] == '-' {
				for i += 2; i < len(b) && b[i] != '\n'; i++ {
				}
			}
		case '/':
			if i+1 < len(b) && b[i+1] == '*' {
				for i += 2; i+1 < len(b) && (b[i] != '*' || b[i+1] != '/'); i++ {
				}
				i++
			}
		case '$':
			if i+1 < len(b) && b[i+1] >= '0' && b[i+1] <= '9' {
				b[i] = '?'
			}
		}
	}
	return string(b)
}

// sqliteErrorIs reports whether err carries one of the SQLite codes.
func sqliteErrorIs(err error, codes ...error) bool {
	for _, c := range codes {
		if errors.Is(err, c) {
			return true
		}
	}
	return false
}

var (
	sqliteUnique = []error{sqlite3.CONSTRAINT_UNIQUE, sqlite3.CONSTRAINT_PRIMARYKEY}
	sqliteBusy   = []error{sqlite3.BUSY, sqlite3.LOCKED}
)
