package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// readLog returns the whole log in seq order, as stored.
func readLog(t *testing.T, db *store.DB) []audit.Event {
	t.Helper()
	var out []audit.Event
	cursor := ""
	for {
		evs, next, err := audit.NewReader(db).Query(context.Background(), audit.Filter{}, audit.MaxLimit, cursor)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, evs...)
		if next == "" {
			return out
		}
		cursor = next
	}
}

// rewriteLog is what an operator holding the database and the keys can do:
// drop the append-only triggers, replace the whole log by evs (appended and
// integrated the normal way) and sign the new tree with the server's own
// key. Verify, which trusts that key, finds nothing wrong afterwards.
func rewriteLog(t *testing.T, s *testutil.Server, evs []audit.Event) {
	t.Helper()
	tables := []string{"audit_events", "audit_tree", "audit_tree_heads", "audit_checkpoints", "audit_head", "audit_pending"}
	for _, table := range tables {
		if s.DB.Dialect == store.Postgres {
			mustExec(t, s.DB, `ALTER TABLE `+table+` DISABLE TRIGGER USER`)
			continue
		}
		var names []string
		if err := s.DB.Raw(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?`, table).Scan(&names).Error; err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			mustExec(t, s.DB, `DROP TRIGGER `+n)
		}
	}
	for _, table := range tables {
		if table != "audit_head" {
			mustExec(t, s.DB, `DELETE FROM `+table)
		}
	}
	mustExec(t, s.DB, `UPDATE audit_head SET seq = 0, hash = ?`, audit.GenesisHash)
	w := audit.NewWriter(s.DB, audit.WriterOptions{})
	for _, ev := range evs {
		ev.Seq, ev.PrevHash, ev.Hash = 0, "", ""
		if _, err := w.Append(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if _, err := s.Node.AuditCheckpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rep, err := audit.Verify(context.Background(), s.DB, s.Node.AuditKeys()); err != nil || !rep.Valid {
		t.Fatalf("the rewritten log should pass verify with the server's own keys: %+v %v", rep, err)
	}
}

func mustExec(t *testing.T, db *store.DB, q string, args ...any) {
	t.Helper()
	if err := db.Exec(q, args...).Error; err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestAuditWitness (SPEC §13): the witness accepts a growing log, keeps
// its anchor in the state file, and exits 3 naming the inconsistency when
// the log was rewritten (an event edited, deleted, inserted or two
// reordered) or cut back, and re-signed with the server's own key, which
// verify alone cannot notice.
func TestAuditWitness(t *testing.T) {
	rewrites := []struct {
		name   string
		change func([]audit.Event) []audit.Event
		says   string
	}{
		{"edited", func(evs []audit.Event) []audit.Event {
			evs[2].Outcome, evs[2].Reason = audit.Allowed, "nothing to see"
			return evs
		}, "the log was rewritten"},
		{"deleted", func(evs []audit.Event) []audit.Event { return slices.Delete(evs, 1, 2) }, "the log was rewritten"},
		{"inserted", func(evs []audit.Event) []audit.Event {
			return slices.Insert(evs, 1, audit.Event{Type: audit.DataAccess, Outcome: audit.Allowed, ClientID: "demo-pfm", Status: 200})
		}, "the log was rewritten"},
		{"reordered", func(evs []audit.Event) []audit.Event {
			evs[1], evs[2] = evs[2], evs[1]
			return evs
		}, "the log was rewritten"},
		{"cut back", func(evs []audit.Event) []audit.Event { return evs[:3] }, "events were removed"},
	}
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Setenv("CONSENTGATE_WITNESS_CLIENT_SECRET", "demo-auditor-secret")
			for _, rw := range rewrites {
				t.Run(rw.name, func(t *testing.T) {
					s := testutil.Start(t, d, testutil.Options{})
					tok := s.Authorize(t, testutil.DemoFlow())
					s.Get(t, "/v1/accounts", tok.AccessToken)
					if _, err := s.Node.AuditCheckpoint(context.Background()); err != nil {
						t.Fatal(err)
					}
					state := filepath.Join(t.TempDir(), "witness.json")
					witness := func() (int, string) {
						code, out, errb := runCLI("audit", "witness", "--state", state, "--issuer", s.URL, "--client-id", "demo-auditor")
						return code, out + errb
					}
					if code, out := witness(); code != 0 || !strings.Contains(out, "first use: trusting tree") {
						t.Fatalf("first check: exit %d\n%s", code, out)
					}
					// The log grows: consistent.
					s.Get(t, "/v1/accounts", tok.AccessToken)
					if _, err := s.Node.AuditCheckpoint(context.Background()); err != nil {
						t.Fatal(err)
					}
					code, out := witness()
					if code != 0 || !strings.Contains(out, "consistent with tree") {
						t.Fatalf("grown log: exit %d\n%s", code, out)
					}
					var st struct {
						Latest audit.TreeHead `json:"latest"`
					}
					b, _ := os.ReadFile(state)
					if err := json.Unmarshal(b, &st); err != nil || st.Latest.TreeSize < 4 {
						t.Fatalf("state file: %v\n%s", err, b)
					}

					evs := rw.change(readLog(t, s.DB))
					if rw.name != "cut back" {
						// Pad so that the forged tree is larger than the
						// witness's anchor, as a careful forger would.
						for range 3 {
							evs = append(evs, audit.Event{Type: audit.TokenIssued, Outcome: audit.Allowed, ClientID: "demo-pfm"})
						}
					}
					rewriteLog(t, s, evs)
					code, out = witness()
					if code != 3 || !strings.Contains(out, "AUDIT LOG INCONSISTENT") || !strings.Contains(out, rw.says) {
						t.Fatalf("rewritten log (%s): exit %d\n%s", rw.name, code, out)
					}
					// The anchor stays: the alarm repeats on every check.
					b2, _ := os.ReadFile(state)
					if string(b2) != string(b) {
						t.Fatal("the witness moved its anchor to the forged log")
					}
					if code, _ := witness(); code != 3 {
						t.Fatalf("second check of the rewritten log: exit %d", code)
					}
				})
			}
		})
	}
}

// TestAuditWitnessUsage: missing flags and secrets are explained.
func TestAuditWitnessUsage(t *testing.T) {
	t.Setenv("CONSENTGATE_WITNESS_CLIENT_SECRET", "")
	// A command line missing flags is a usage error (exit 2); a missing
	// secret is a failure to run (exit 1).
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"audit", "witness"}, 2, "usage: consentgate audit witness"},
		{[]string{"audit", "witness", "--state", "x.json"}, 2, "usage: consentgate audit witness"},
		{[]string{"audit", "witness", "--state", "x.json", "--issuer", "http://127.0.0.1:1", "--client-id", "a"}, 1, "CONSENTGATE_WITNESS_CLIENT_SECRET"},
	} {
		code, out, errb := runCLI(c.args...)
		if code != c.code || !strings.Contains(errb, c.says) {
			t.Errorf("%v: exit %d (want %d)\n%s%s", c.args, code, c.code, out, errb)
		}
	}
}
