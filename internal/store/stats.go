package store

import (
	"context"
	"fmt"
)

// Grown-table statistics (PostgreSQL).
//
// pgx prepares every statement once per pooled connection, and after five
// executions PostgreSQL may keep a generic plan for it, costed on the
// table's statistics as they were then. A table that was tiny when a plan
// was made (a fresh deployment's oauth_tokens, a few rows) gets a
// sequential scan, and keeps it while the table grows a hundredfold: every
// token check then reads the whole table. Only new statistics (ANALYZE, or
// VACUUM updating pg_class) invalidate those plans, and autovacuum looks
// at most once a minute. RefreshGrownStats closes that window: a table
// whose live rows have more than doubled since its statistics were taken
// is analyzed now, which replans it on every connection of every node.
//
// It looks only at the tables every authenticated request reads by key
// (hotTables): the queues and logs (audit_pending, the audit tables) change
// size all the time and are read in ranges, where autovacuum's pace is
// enough, and an ANALYZE replans every cached statement of the table.

// hotTables are the tables of the token check, introspection, the token
// endpoint and PAR.
var hotTables = []string{"oauth_tokens", "oauth_clients", "consents", "consent_accounts", "oauth_par_requests"}

// grownTablesQuery lists those of the current schema's tables named in $2 with over
// grownMinRows live rows, more than twice what their statistics say.
// n_live_tup is kept by the statistics system as rows are written, at no
// cost to the writers.
const grownTablesQuery = `SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
	WHERE s.schemaname = current_schema() AND s.relname = ANY($2) AND s.n_live_tup > $1 AND s.n_live_tup > 2 * GREATEST(c.reltuples, 0)
	ORDER BY s.relname`

// grownMinRows: below this many rows any plan is fast enough.
const grownMinRows = 1000

// RefreshGrownStats analyzes every hot table whose live rows have more
// than doubled since its statistics were taken, and returns their names. On
// SQLite it does nothing: its planner keeps no plans on statistics it
// does not have.
func (db *DB) RefreshGrownStats(ctx context.Context) ([]string, error) {
	if db.Dialect != Postgres {
		return nil, nil
	}
	var grown []string
	if err := db.WithContext(ctx).Raw(grownTablesQuery, grownMinRows, hotTables).Scan(&grown).Error; err != nil {
		return nil, fmt.Errorf("store: find grown tables: %w", err)
	}
	for _, t := range grown {
		// The name comes from the catalog; quoted as an identifier all the same.
		if err := db.WithContext(ctx).Exec(`ANALYZE ` + quoteIdent(t)).Error; err != nil {
			return nil, fmt.Errorf("store: analyze %s: %w", t, err)
		}
	}
	return grown, nil
}

// quoteIdent quotes name as a PostgreSQL identifier.
func quoteIdent(name string) string {
	out := []byte{'"'}
	for i := range len(name) {
		if name[i] == '"' {
			out = append(out, '"')
		}
		out = append(out, name[i])
	}
	return string(append(out, '"'))
}
