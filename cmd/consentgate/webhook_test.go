package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// TestWebhookCommand registers, lists and removes an app's webhook URL
// through the CLI, and refuses bad input.
func TestWebhookCommand(t *testing.T) {
	dbURL := testdb.URL(t, store.SQLite)
	t.Setenv("CONSENTGATE_SECRET", cliSecret) // client create hashes the secret with it
	if code, out, errb := runCLI("client", "create", "--db", dbURL, "--id", "app", "--name", "App",
		"--redirect-uri", "https://app.example/cb", "--scope", "accounts:read", "--purpose", "account_verification"); code != 0 {
		t.Fatalf("client create: %d %s %s", code, out, errb)
	}
	for _, bad := range [][]string{
		{"webhook"},
		{"webhook", "set", "--db", dbURL, "--client-id", "app"},
		{"webhook", "set", "--db", dbURL, "--client-id", "app", "--url", "ftp://app.example/x"},
		{"webhook", "set", "--db", dbURL, "--client-id", "nobody", "--url", "https://app.example/hook"},
		{"webhook", "remove", "--db", dbURL, "--client-id", "app"}, // none registered yet
		{"webhook", "deliveries", "--db", dbURL, "--limit", "0"},
		{"webhook", "frobnicate", "--db", dbURL},
	} {
		if code, _, _ := runCLI(bad...); code == 0 {
			t.Errorf("%v: exit 0, want an error", bad)
		}
	}
	code, out, errb := runCLI("webhook", "set", "--db", dbURL, "--client-id", "app", "--url", "https://app.example/hook")
	if code != 0 || !strings.Contains(out, "https://app.example/hook") {
		t.Fatalf("webhook set: %d %s %s", code, out, errb)
	}
	db, err := store.Open(dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var url string
	if err := db.Raw(`SELECT url FROM client_webhooks WHERE client_id = 'app'`).Scan(&url).Error; err != nil || url != "https://app.example/hook" {
		t.Fatalf("stored URL %q, %v", url, err)
	}
	for _, q := range []string{
		`INSERT INTO consents (id, client_id, status, scopes, purpose, history_days, duration_seconds, created_at, updated_at)
		 VALUES ('g1', 'app', 'revoked', 'accounts:read', 'account_verification', 0, 60, 1, 1)`,
		`INSERT INTO webhook_deliveries (id, client_id, grant_id, event, term_expires_at, body, attempts, delivered_at, last_status, created_at)
		 VALUES ('d1', 'app', 'g1', 'consent.revoked', 0, '{}', 2, 1800000000000000, 204, 1700000000000000)`,
	} {
		if err := db.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	code, out, errb = runCLI("webhook", "deliveries", "--db", dbURL, "--client-id", "app")
	var d map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil || d["id"] != "d1" || d["state"] != "delivered" ||
		d["attempts"] != float64(2) || d["last_status"] != float64(204) || d["delivered_at"] != "2027-01-15T08:00:00Z" {
		t.Fatalf("deliveries: %d %s %s", code, out, errb)
	}
	if _, out, _ := runCLI("webhook", "deliveries", "--db", dbURL, "--client-id", "other"); out != "" {
		t.Fatalf("deliveries of another app: %q", out)
	}
	if code, out, _ := runCLI("webhook", "remove", "--db", dbURL, "--client-id", "app"); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("webhook remove: %d %s", code, out)
	}
}
