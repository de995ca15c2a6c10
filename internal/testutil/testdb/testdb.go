// Package testdb gives tests fresh, migrated databases: always an embedded
// SQLite file, and a PostgreSQL database too when the suite runs under
// scripts/with-postgres (CONSENTGATE_TEST_POSTGRES_URL). One test body runs
// on both, so the store suites cannot drift apart. Test code only.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/consentgate/consentgate/internal/store"
)

// EnvPostgresURL names the server tests create their databases on.
const EnvPostgresURL = "CONSENTGATE_TEST_POSTGRES_URL"

// Dialects lists the dialects this run covers.
func Dialects() []store.Dialect {
	if os.Getenv(EnvPostgresURL) != "" {
		return []store.Dialect{store.SQLite, store.Postgres}
	}
	return []store.Dialect{store.SQLite}
}

// Each runs fn as a subtest on a fresh database of every dialect.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range Dialects() {
		t.Run(string(d), func(t *testing.T) {
			fn(t, Open(t, d))
		})
	}
}

// URL returns the URL of a new, empty database of dialect d, dropped when
// the test ends.
func URL(t testing.TB, d store.Dialect) string {
	t.Helper()
	switch d {
	case store.SQLite:
		return "sqlite:" + t.TempDir() + "/consentgate.db"
	case store.Postgres:
		base := os.Getenv(EnvPostgresURL)
		if base == "" {
			t.Skip("PostgreSQL not available (run the suite through make test)")
		}
		name := "cg_" + randomHex(8)
		admin, err := store.Open(base, store.Options{MaxOpenConns: 2})
		if err != nil {
			t.Fatalf("testdb: open admin: %v", err)
		}
		if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
			t.Fatalf("testdb: create database: %v", err)
		}
		t.Cleanup(func() {
			admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			_ = admin.Close()
		})
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("testdb: %s: %v", EnvPostgresURL, err)
		}
		u.Path = "/" + name
		return u.String()
	}
	t.Fatalf("testdb: unknown dialect %q", d)
	return ""
}

// Open returns a fresh migrated database of dialect d, closed at cleanup.
func Open(t testing.TB, d store.Dialect) *store.DB {
	t.Helper()
	db, err := store.Open(URL(t, d), store.Options{})
	if err != nil {
		t.Fatalf("testdb: open %s: %v", d, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(context.Background(), nil); err != nil {
		t.Fatalf("testdb: migrate %s: %v", d, err)
	}
	return db
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("testdb: random: %v", err))
	}
	return hex.EncodeToString(b)
}
