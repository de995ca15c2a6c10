package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// Issue 14 item 1: a provider client whose --institution does not exist is
// not registered at all, so the same --id can be used again once the
// institution is right.
func TestClientCreateInstitutionAllOrNothing(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			dbURL := testdb.URL(t, d)
			t.Setenv("CONSENTGATE_SECRET", cliSecret)
			create := func(institution string) (int, string, string) {
				return runCLI("client", "create", "--db", dbURL, "--id", "prov", "--name", "Provider",
					"--grant-type", "client_credentials", "--scope", "provider:write", "--institution", institution)
			}
			code, out, errb := create("typo")
			if code != 1 || out != "" || !strings.Contains(errb, `unknown institution "typo"`) || !strings.Contains(errb, "nothing was registered") {
				t.Fatalf("unknown institution: exit %d, stdout %q, stderr %q", code, out, errb)
			}
			db, err := store.Open(dbURL, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var n int64
			if err := db.Raw(`SELECT count(*) FROM oauth_clients WHERE id = 'prov'`).Scan(&n).Error; err != nil || n != 0 {
				t.Fatalf("orphan client rows: %d %v", n, err)
			}

			file := filepath.Join(t.TempDir(), "bank.jsonl")
			if err := os.WriteFile(file, []byte(`{"record_type":"institution","id":"bank-a","name":"Bank A"}`+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if code, out, errb := runCLI("import", "--db", dbURL, file); code != 0 {
				t.Fatalf("import: %d %s %s", code, out, errb)
			}
			code, out, errb = create("bank-a")
			var got map[string]string
			if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got["client_id"] != "prov" || got["client_secret"] == "" {
				t.Fatalf("retry with the same id: exit %d %s %s", code, out, errb)
			}
			var inst string
			if err := db.Raw(`SELECT institution_id FROM provider_clients WHERE client_id = 'prov'`).Scan(&inst).Error; err != nil || inst != "bank-a" {
				t.Errorf("provider mapping: %q %v", inst, err)
			}
		})
	}
}

// Issue 14 item 3: a scope none of the client's purposes allows is refused
// at registration, naming what the purposes do allow, instead of failing
// every PAR later with invalid_scope.
func TestClientCreateRefusesScopesPurposesCannotUse(t *testing.T) {
	dbURL := testdb.URL(t, store.SQLite)
	t.Setenv("CONSENTGATE_SECRET", cliSecret)
	base := []string{"client", "create", "--db", dbURL, "--name", "App", "--redirect-uri", "https://app.example/cb"}
	code, out, errb := runCLI(append(base, "--scope", "accounts:read transactions:read", "--purpose", "account_verification")...)
	if code != 1 || out != "" || !strings.Contains(errb, `scope "transactions:read"`) ||
		!strings.Contains(errb, "account_verification allows accounts:read balances:read") {
		t.Fatalf("transactions:read for account_verification: exit %d, stdout %q, stderr %q", code, out, errb)
	}
	// One purpose that allows it is enough, and offline_access needs none.
	if code, out, errb := runCLI(append(base, "--scope", "accounts:read transactions:read offline_access",
		"--purpose", "account_verification", "--purpose", "tax_preparation")...); code != 0 {
		t.Errorf("a purpose allows every scope: exit %d %s %s", code, out, errb)
	}
	// Machine clients' scopes are not purpose scopes.
	if code, out, errb := runCLI("client", "create", "--db", dbURL, "--name", "Auditor", "--grant-type", "client_credentials",
		"--scope", "audit:read"); code != 0 {
		t.Errorf("auditor client: exit %d %s %s", code, out, errb)
	}
	// A data scope on a client without purposes can never be used.
	code, _, errb = runCLI("client", "create", "--db", dbURL, "--name", "Machine", "--grant-type", "client_credentials",
		"--scope", "accounts:read")
	if code != 1 || !strings.Contains(errb, "needs a purpose") {
		t.Errorf("data scope without purposes: exit %d %s", code, errb)
	}
}
