package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// A plan cached while oauth_tokens was tiny scans the whole table after it
// has grown; RefreshGrownStats analyzes the grown table, and the same
// prepared statement on the same connection is replanned with its index.
func TestRefreshGrownStats(t *testing.T) {
	db := testdb.Open(t, store.Postgres)
	ctx := context.Background()
	conn, err := db.SQL().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	plan := func() string {
		t.Helper()
		rows, err := conn.QueryContext(ctx, `EXPLAIN EXECUTE tok('access_token', 'nope')`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, l)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\n")
	}
	// Autovacuum would analyze the grown table on its own sooner or later
	// (under a loaded make test, sometimes before the plan is looked at):
	// this is about the refresh, so it stays out of this test database.
	exec(`ALTER TABLE oauth_tokens SET (autovacuum_enabled = false)`)
	exec(`INSERT INTO oauth_tokens VALUES ('access_token', 'seed', 'r', 'c', '', true, 0, 0, '{}', NULL)`)
	exec(`ANALYZE oauth_tokens`)
	exec(`PREPARE tok(text, text) AS SELECT request_id FROM oauth_tokens WHERE kind = $1 AND signature_hash = $2`)
	for range 6 { // past the five custom plans: the generic plan is kept
		exec(`EXECUTE tok('access_token', 'nope')`)
	}
	exec(`INSERT INTO oauth_tokens SELECT 'access_token', md5(i::text), 'r' || i, 'c', '', true, 0, 0, '{}', NULL
		FROM generate_series(1, 20000) i`)
	if p := plan(); !strings.Contains(p, "Seq Scan") {
		t.Fatalf("before the refresh the cached plan should still be the tiny table's sequential scan, got:\n%s", p)
	}
	// The statistics system counts the new rows when the inserting
	// transaction's report reaches it (at most a second later).
	var grown []string
	for range 50 {
		if grown, err = db.RefreshGrownStats(ctx); err != nil {
			t.Fatal(err)
		}
		if len(grown) > 0 {
			break
		}
		exec(`SELECT pg_sleep(0.1)`)
	}
	if !slices.Contains(grown, "oauth_tokens") {
		t.Fatalf("grown tables %v, want oauth_tokens among them", grown)
	}
	if p := plan(); strings.Contains(p, "Seq Scan") || !strings.Contains(p, "oauth_tokens_pkey") {
		t.Fatalf("after the refresh the statement should use the primary key, got:\n%s", p)
	}
	if again, err := db.RefreshGrownStats(ctx); err != nil || slices.Contains(again, "oauth_tokens") {
		t.Fatalf("a second refresh analyzed %v (err %v): analyzed tables are not grown any more", again, err)
	}
}
