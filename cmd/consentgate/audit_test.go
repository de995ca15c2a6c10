package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

const cliSecret = "cli-test-secret-0123456789abcdef0123"

// seedLog writes n events (every third one denied) and a signed checkpoint
// to a fresh database and returns its URL and the open database.
func seedLog(t *testing.T, d store.Dialect, n int) (string, *store.DB) {
	t.Helper()
	dbURL := testdb.URL(t, d)
	db, err := store.Open(dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	if err := db.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	w := audit.NewWriter(db, audit.WriterOptions{})
	for i := range n {
		ev := audit.Event{Type: audit.DataAccess, Outcome: audit.Allowed, Reason: "ok", ClientID: "app", Status: 200}
		if i%3 == 2 {
			ev.Outcome, ev.Reason, ev.Status = audit.Denied, "purpose_prohibited", 403
		}
		if _, err := w.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	_ = w.Close()
	if _, err := audit.NewCheckpointer(db, audit.NewSigner([]byte(cliSecret)), audit.CheckpointerOptions{Issuer: "http://cli"}).
		Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	return dbURL, db
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// SPEC §1: audit verify exits 0 on an intact log and 1 naming the first bad
// seq once a row was edited behind the triggers' back.
func TestAuditVerifyCommand(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Setenv("CONSENTGATE_SECRET", cliSecret)
			dbURL, db := seedLog(t, d, 12)
			code, out, errb := runCLI("audit", "verify", "--db", dbURL)
			if code != 0 || !strings.Contains(out, "audit log valid: 12 events") || !strings.Contains(out, "1 signed checkpoints verified") {
				t.Fatalf("intact log: exit %d\n%s%s", code, out, errb)
			}

			// Another secret does not open the key ring: a clear refusal,
			// not a verdict on the log.
			rotated := cliSecret + "-rotated"
			t.Setenv("CONSENTGATE_SECRET", rotated)
			if code, _, errb := runCLI("audit", "verify", "--db", dbURL); code != 1 || !strings.Contains(errb, "CONSENTGATE_SECRET_PREVIOUS") {
				t.Errorf("wrong secret: exit %d %s", code, errb)
			}
			// With the old secret as CONSENTGATE_SECRET_PREVIOUS the ring is
			// re-sealed and the checkpoint signed before still verifies;
			// afterwards the new secret alone is enough.
			t.Setenv("CONSENTGATE_SECRET_PREVIOUS", cliSecret)
			if code, out, errb := runCLI("audit", "verify", "--db", dbURL); code != 0 || !strings.Contains(out, "1 signed checkpoints verified") {
				t.Fatalf("secret rotated: exit %d %s%s", code, out, errb)
			}
			t.Setenv("CONSENTGATE_SECRET_PREVIOUS", "")
			if code, out, errb := runCLI("audit", "verify", "--db", dbURL); code != 0 || !strings.Contains(out, "1 signed checkpoints verified") {
				t.Fatalf("new secret alone: exit %d %s%s", code, out, errb)
			}

			drop := `DROP TRIGGER audit_events_no_update`
			if d == store.Postgres {
				drop = `DROP TRIGGER audit_events_append_only ON audit_events`
			}
			if err := db.Exec(drop).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Exec(`UPDATE audit_events SET outcome = 'allowed', reason = 'ok', status = 200 WHERE seq = 9`).Error; err != nil {
				t.Fatal(err)
			}
			code, out, _ = runCLI("audit", "verify", "--db", dbURL)
			if code != 1 || !strings.Contains(out, "INVALID at seq 9:") || !strings.Contains(out, "8 events verified") {
				t.Errorf("tampered log: exit %d %s", code, out)
			}
			code, out, _ = runCLI("audit", "verify", "--db", dbURL, "--json")
			if code != 1 || !strings.Contains(out, `"first_invalid_seq": 9`) || !strings.Contains(out, `"valid": false`) {
				t.Errorf("tampered log, JSON: exit %d %s", code, out)
			}
		})
	}
}

func TestAuditExportCommand(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			dbURL, _ := seedLog(t, d, 12)
			code, out, errb := runCLI("audit", "export", "--db", dbURL, "--outcome", "denied")
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if code != 0 || len(lines) != 4 || !strings.Contains(lines[0], `"seq":3,`) || !strings.Contains(lines[3], `"seq":12,`) {
				t.Fatalf("ndjson to stdout: exit %d %q %s", code, lines, errb)
			}

			file := filepath.Join(t.TempDir(), "log.csv")
			code, out, errb = runCLI("audit", "export", "--db", dbURL, "--format", "csv", "--out", file, "--client-id", "app")
			if code != 0 || out != "exported 12 events to "+file+"\n" {
				t.Fatalf("csv to a file: exit %d %s %s", code, out, errb)
			}
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rows, err := csv.NewReader(f).ReadAll()
			if err != nil || len(rows) != 13 || !slices.Equal(rows[0], audit.CSVHeader) {
				t.Errorf("csv file: %v %d rows", err, len(rows))
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".*partial")); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}

			for _, bad := range [][]string{{"--type", "bogus"}, {"--format", "xml"}, {"--since", "yesterday"}, {"stray"}} {
				if code, _, _ := runCLI(append([]string{"audit", "export", "--db", dbURL}, bad...)...); code == 0 {
					t.Errorf("export %v succeeded", bad)
				}
			}
			if code, _, _ := runCLI("audit", "frobnicate"); code == 0 {
				t.Error("unknown audit subcommand succeeded")
			}
		})
	}
}
