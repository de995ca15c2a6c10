package server

import (
	"net/url"
	"os"
	"strconv"
	"testing"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// TestPgBouncerPath runs in make test's pgbouncer pass
// (scripts/with-pgbouncer, docs/scaling.md "Connection pooling
// (pgbouncer)"): it checks that the PostgreSQL tests of that pass really
// reach the cluster through pgbouncer, in transaction mode, with pgx's
// exec mode (no named prepared statements), so the two-node tests run
// beside it prove the server works behind it.
func TestPgBouncerPath(t *testing.T) {
	bouncer := os.Getenv("CONSENTGATE_TEST_PGBOUNCER_URL")
	if bouncer == "" {
		t.Skip("not the pgbouncer pass (scripts/with-pgbouncer sets CONSENTGATE_TEST_PGBOUNCER_URL)")
	}
	if got := os.Getenv(testdb.EnvPostgresURL); got != bouncer {
		t.Fatalf("%s = %q, want the pgbouncer URL %q: the PostgreSQL tests would bypass it", testdb.EnvPostgresURL, got, bouncer)
	}
	u, err := url.Parse(bouncer)
	if err != nil {
		t.Fatal(err)
	}
	if mode := u.Query().Get("default_query_exec_mode"); mode != "exec" && mode != "simple_protocol" {
		t.Fatalf("default_query_exec_mode %q: pgbouncer in transaction mode needs exec or simple_protocol", mode)
	}
	db, err := store.Open(testdb.URL(t, store.Postgres), store.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var serverPort int
	if err := db.Raw(`SELECT inet_server_port()`).Scan(&serverPort).Error; err != nil {
		t.Fatal(err)
	}
	if strconv.Itoa(serverPort) == u.Port() {
		t.Fatalf("the server answers on %d, the port the tests dialled: no pgbouncer in between", serverPort)
	}
	t.Logf("through pgbouncer: client port %s, server port %d", u.Port(), serverPort)
}
