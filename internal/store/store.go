// Package store opens the database (embedded SQLite or PostgreSQL), applies
// the versioned migrations and runs transactions. It knows nothing of the
// domain: domain packages define the storage they need and implement it on
// the *gorm.DB this package hands out.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/pressly/goose/v3"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/consentgate/consentgate/migrations"
)

// Dialect names the SQL dialect of an open database.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is an open database with its dialect.
type DB struct {
	*gorm.DB
	Dialect Dialect
}

// Options tune the connection pool.
type Options struct {
	// MaxOpenConns bounds the pool (0: a dialect default).
	MaxOpenConns int
	// Lazy opens the pool without connecting: the first query connects.
	// For a read replica that may be down when the node starts.
	Lazy bool
}

// Open connects to url: "sqlite:PATH" (or a bare path) or "postgres://…".
func Open(url string, opts Options) (*DB, error) {
	var (
		dialector gorm.Dialector
		dialect   Dialect
	)
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		dialect = Postgres
		dialector = postgres.New(postgres.Config{DSN: url})
	default:
		dialect = SQLite
		path := strings.TrimPrefix(url, "sqlite:")
		if path == "" {
			return nil, fmt.Errorf("store.Open: empty sqlite path in %q", url)
		}
		sqlDB, err := openSQLite(sqliteDSN(path))
		if err != nil {
			return nil, fmt.Errorf("store.Open %s: %w", dialect, err)
		}
		// glebarez/sqlite supplies only gorm's SQLite dialect here; the
		// connections are ncruces/go-sqlite3's (sqlite.go).
		dialector = &sqlite.Dialector{Conn: sqlDB}
	}
	gdb, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		PrepareStmt:            false,
		NowFunc:                func() time.Time { return time.Now().UTC() },
		DisableAutomaticPing:   opts.Lazy,
	})
	if err != nil {
		return nil, fmt.Errorf("store.Open %s: %w", dialect, err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, fmt.Errorf("store.Open: %w", err)
	}
	maxOpen := opts.MaxOpenConns
	if maxOpen <= 0 {
		maxOpen = 20
		if dialect == SQLite {
			maxOpen = 8
		}
	}
	sqlDB.SetMaxOpenConns(maxOpen)
	sqlDB.SetMaxIdleConns(maxOpen)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	return &DB{DB: gdb, Dialect: dialect}, nil
}

// SQL returns the underlying *sql.DB.
func (db *DB) SQL() *sql.DB {
	s, _ := db.DB.DB() // cannot fail once Open succeeded
	return s
}

// Close closes the pool.
func (db *DB) Close() error { return db.SQL().Close() }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.SQL().PingContext(ctx) }

// Migrate applies every pending migration of the database's dialect.
func (db *DB) Migrate(ctx context.Context, log *slog.Logger) error {
	sub, err := fs.Sub(migrations.FS, string(db.Dialect))
	if err != nil {
		return fmt.Errorf("store.Migrate: %w", err)
	}
	gooseDialect := goose.DialectSQLite3
	if db.Dialect == Postgres {
		gooseDialect = goose.DialectPostgres
	}
	p, err := goose.NewProvider(gooseDialect, db.SQL(), sub)
	if err != nil {
		return fmt.Errorf("store.Migrate: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("store.Migrate: %w", err)
	}
	for _, r := range results {
		if log != nil {
			log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
		}
	}
	return nil
}

// Analyze refreshes the planner's statistics after a bulk load, on
// PostgreSQL. Servers already running cache a generic plan per prepared
// statement and pooled connection; one made while a table was small goes
// on scanning it after a load made it large, until autovacuum analyzes the
// table (within a minute, or later under load). ANALYZE also invalidates
// those plans at once. SQLite plans every statement as it is prepared, from
// the schema alone (no statistics are kept), so it has nothing to refresh.
func (db *DB) Analyze(ctx context.Context) error {
	if db.Dialect != Postgres {
		return nil
	}
	if err := db.WithContext(ctx).Exec("ANALYZE").Error; err != nil {
		return fmt.Errorf("store.Analyze: %w", err)
	}
	return nil
}

// Tx runs fn in one transaction, committed when fn returns nil.
func (db *DB) Tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return db.WithContext(ctx).Transaction(fn)
}

// IsUniqueViolation reports whether err is a unique/primary key conflict.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, gorm.ErrDuplicatedKey) || sqliteErrorIs(err, sqliteUnique...) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505") || strings.Contains(msg, "duplicate key value")
}

// IsSerializationFailure reports whether err is a lock conflict or
// serialization failure that the caller may retry.
func IsSerializationFailure(err error) bool {
	if err == nil {
		return false
	}
	if sqliteErrorIs(err, sqliteBusy...) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "SQLSTATE 40001") || strings.Contains(msg, "SQLSTATE 40P01") ||
		strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}

// Placeholders is the VALUES list of a multi-row INSERT: rows groups of
// cols "?" each, "(?, ?), (?, ?)".
func Placeholders(rows, cols int) string {
	group := "(" + strings.Repeat("?, ", cols-1) + "?)"
	return strings.Repeat(group+", ", rows-1) + group
}

// NumberParams is query with its ? placeholders numbered, $1, $2, …, for
// PostgreSQL's driver when the query bypasses gorm. The query is the
// caller's constant: a ? inside a string literal would be numbered too.
func NumberParams(query string) string {
	n := strings.Count(query, "?")
	if n == 0 {
		return query
	}
	b := make([]byte, 0, len(query)+2*n)
	i := 0
	for j := 0; j < len(query); j++ {
		if query[j] != '?' {
			b = append(b, query[j])
			continue
		}
		i++
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(i), 10)
	}
	return string(b)
}
