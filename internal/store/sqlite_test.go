package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func TestSQLiteParams(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"SELECT ? WHERE a = ?", "SELECT ? WHERE a = ?"},
		{"SELECT $3 WHERE a = $1 AND b = $12", "SELECT ?3 WHERE a = ?1 AND b = ?12"},
		{"SELECT json_extract(d, '$.a'), '$1', \"$2\" FROM t WHERE x = $1", "SELECT json_extract(d, '$.a'), '$1', \"$2\" FROM t WHERE x = ?1"},
		{"SELECT 'it''s $1', $2", "SELECT 'it''s $1', ?2"},
		{"SELECT $1 -- not $2\n, $3 /* nor $4 */ , $5", "SELECT ?1 -- not $2\n, ?3 /* nor $4 */ , ?5"},
		{"SELECT $a, $", "SELECT $a, $"},
	} {
		if got := sqliteParams(c.in); got != c.want {
			t.Errorf("sqliteParams(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSQLiteDSN(t *testing.T) {
	const settings = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_pragma=temp_store(memory)&_txlock=immediate"
	for _, c := range []struct{ in, want string }{
		{"consentgate.db", "file:consentgate.db?" + settings},
		{"/tmp/a#b%c.db", "file:/tmp/a%23b%25c.db?" + settings},
		{"/tmp/x.db?_pragma=cache_size(-1000)", "file:/tmp/x.db?" + settings + "&_pragma=cache_size(-1000)"},
		{"file:/tmp/x.db?mode=rwc", "file:/tmp/x.db?" + settings + "&mode=rwc"},
	} {
		if got := sqliteDSN(c.in); got != c.want {
			t.Errorf("sqliteDSN(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func openTestSQLite(t *testing.T, name string, maxOpen int) *DB {
	t.Helper()
	db, err := Open("sqlite:"+filepath.Join(t.TempDir(), name), Options{MaxOpenConns: maxOpen})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestSQLiteSettings: every connection runs in WAL mode with foreign keys,
// synchronous=FULL, temporary files in memory and the busy timeout, whatever the path looks like.
func TestSQLiteSettings(t *testing.T) {
	db := openTestSQLite(t, "odd #name% .db", 1)
	for pragma, want := range map[string]string{
		"journal_mode": "wal", "foreign_keys": "1", "synchronous": "2", "busy_timeout": "10000", "temp_store": "2",
	} {
		var got string
		if err := db.SQL().QueryRow("PRAGMA " + pragma).Scan(&got); err != nil || got != want {
			t.Errorf("PRAGMA %s = %q, %v; want %q", pragma, got, err, want)
		}
	}
}

// TestSQLiteBeginImmediate: a write transaction takes the write lock when
// it begins, so a second one waits (here: until its context ends) instead
// of failing later to upgrade a read lock.
func TestSQLiteBeginImmediate(t *testing.T) {
	db := openTestSQLite(t, "lock.db", 2)
	ctx := context.Background()
	tx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if tx2, err := db.SQL().BeginTx(short, nil); err == nil {
		_ = tx2.Rollback()
		t.Fatal("a second write transaction began while the first held the write lock")
	}
}

// TestSQLiteStatements: "$N" parameters bind by number whatever their
// order in the text, a statement in use is not shared with a second use of
// the same query on the connection, errors keep their codes, and each
// connection keeps at most sqliteStmtCache statements.
func TestSQLiteStatements(t *testing.T) {
	db := openTestSQLite(t, "stmts.db", 1)
	ctx := context.Background()
	var got string
	if err := db.SQL().QueryRowContext(ctx, "SELECT $3 || $1 || $2", "a", "b", "c").Scan(&got); err != nil || got != "cab" {
		t.Errorf("SELECT $3 || $1 || $2 = %q, %v; want cab", got, err)
	}
	if err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)").Error; err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := db.Exec("INSERT INTO t (id, v) VALUES ($1, $2)", i, fmt.Sprint("v", i)).Error; err != nil {
			t.Fatal(err)
		}
	}
	err := db.Exec("INSERT INTO t (id, v) VALUES ($1, $2)", 9, "v1").Error
	if !IsUniqueViolation(err) {
		t.Errorf("duplicate insert: %v, want a unique violation", err)
	}

	conn, err := db.SQL().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const q = "SELECT v FROM t WHERE id >= $1 ORDER BY id"
	outer, err := conn.QueryContext(ctx, q, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Close()
	inner := func(v string) []string { // the same query while outer is open
		rows, err := conn.QueryContext(ctx, q, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var w string
			if err := rows.Scan(&w); err != nil {
				t.Fatal(err)
			}
			out = append(out, v+w)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	var pairs []string
	for outer.Next() {
		var v string
		if err := outer.Scan(&v); err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, inner(v)...)
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(pairs) != "[v0v2 v1v2 v2v2]" {
		t.Errorf("nested uses of one query = %v, want [v0v2 v1v2 v2v2]", pairs)
	}

	for i := range 2 * sqliteStmtCache {
		if err := conn.QueryRowContext(ctx, fmt.Sprintf("SELECT %d + $1", i), 1).Scan(new(int)); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.Raw(func(dc any) error {
		c := dc.(*sqliteConn)
		if n := len(c.stmts); n > sqliteStmtCache {
			return fmt.Errorf("%d statements kept, want at most %d", n, sqliteStmtCache)
		}
		if n := len(c.stmts); n < sqliteStmtCache {
			return fmt.Errorf("%d statements kept, want the cache full (%d)", n, sqliteStmtCache)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	// The connection still answers once statements have been evicted.
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM t WHERE id >= $1", 0).Scan(&n); err != nil || n != 3 {
		t.Errorf("count = %d, %v; want 3", n, err)
	}
	if _, err := conn.ExecContext(ctx, "SELECT 1; SELECT 2"); err != nil {
		t.Errorf("several statements without arguments: %v", err)
	}
}
