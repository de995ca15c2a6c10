package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// TestClientLifecycleCommands suspends, shows, reinstates, rotates the
// secret of, ends the grants of and lists a client through the CLI, each
// change audited like the operator API's, and refuses bad input.
func TestClientLifecycleCommands(t *testing.T) {
	dbURL := testdb.URL(t, store.SQLite)
	t.Setenv("CONSENTGATE_SECRET", cliSecret)
	if code, out, errb := runCLI("client", "create", "--db", dbURL, "--id", "app", "--name", "App",
		"--redirect-uri", "https://app.example/cb", "--scope", "accounts:read", "--purpose", "account_verification"); code != 0 {
		t.Fatalf("client create: %d %s %s", code, out, errb)
	}
	for _, bad := range [][]string{
		{"client", "suspend", "--db", dbURL},                            // no id
		{"client", "suspend", "app", "--db", dbURL},                     // no reason
		{"client", "suspend", "nobody", "--db", dbURL, "--reason", "x"}, // unknown client
		{"client", "revoke-grants", "app", "--db", dbURL},               // no reason
		{"client", "frobnicate", "app", "--db", dbURL},                  // unknown command
		{"client", "list", "--db", dbURL, "--limit", "0"},               // bad limit
		{"client", "show", "app", "extra", "--db", dbURL},               // stray argument
	} {
		if code, _, _ := runCLI(bad...); code == 0 {
			t.Errorf("%v: exit 0, want an error", bad)
		}
	}
	run := func(args ...string) map[string]any {
		t.Helper()
		code, out, errb := runCLI(append(args, "--db", dbURL)...)
		var v map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
			t.Fatalf("%v: %d %s %s", args, code, out, errb)
		}
		return v
	}
	if v := run("client", "suspend", "app", "--reason", "chargebacks", "--by", "ops-jane"); v["status"] != "suspended" ||
		v["suspended_by"] != "ops-jane" || v["suspended_reason"] != "chargebacks" {
		t.Fatalf("suspend: %v", v)
	}
	if v := run("client", "show", "app"); v["status"] != "suspended" || v["active_grants"] != float64(0) {
		t.Fatalf("show: %v", v)
	}
	if v := run("client", "reinstate", "app"); v["status"] != "active" || v["suspended_at"] != nil {
		t.Fatalf("reinstate: %v", v)
	}
	if v := run("client", "rotate-secret", "app", "--grace", "1h"); v["client_secret"] == "" || v["previous_secret_expires_at"] == "" {
		t.Fatalf("rotate-secret: %v", v)
	}
	if v := run("client", "revoke-grants", "app", "--reason", "withdrawn"); v["revoked_grants"] != float64(0) {
		t.Fatalf("revoke-grants: %v", v)
	}
	v := run("client", "list", "--limit", "10")
	if data, _ := v["data"].([]any); len(data) != 1 || data[0].(map[string]any)["client_id"] != "app" {
		t.Fatalf("list: %v", v)
	}

	db, err := store.Open(dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var evs []struct{ Type, Reason, ClientID string }
	if err := db.Raw(`SELECT type, reason, client_id FROM audit_events WHERE type LIKE 'client.%' ORDER BY seq`).Scan(&evs).Error; err != nil {
		t.Fatal(err)
	}
	want := []string{"client.suspended", "client.reinstated", "client.secret_rotated"}
	if len(evs) != len(want) {
		t.Fatalf("audit events %+v, want %v", evs, want)
	}
	for i, e := range evs {
		if e.Type != want[i] || e.ClientID != "app" || !strings.HasPrefix(e.Reason, "operator ") {
			t.Errorf("audit event %d = %+v, want %s of app by an operator", i, e, want[i])
		}
	}
	if evs[0].Reason != "operator ops-jane: chargebacks" {
		t.Errorf("suspension reason %q", evs[0].Reason)
	}
}
