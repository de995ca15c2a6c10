package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// TestAuditArchive (SPEC §14): a month's partition is exported verified,
// with the proof that it is a prefix of a signed tree, then detached (its
// rows stay in a standalone table); verify then works from the archive
// anchor and still catches an edit after it. SQLite has no partitions and
// says so.
func TestAuditArchive(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Setenv("CONSENTGATE_SECRET", cliSecret)
			dbURL := testdb.URL(t, d)
			db, err := store.Open(dbURL, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			if err := db.Migrate(ctx, nil); err != nil {
				t.Fatal(err)
			}
			monthStart := time.Date(time.Now().UTC().Year(), time.Now().UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
			out := filepath.Join(t.TempDir(), "archive.ndjson")
			if d != store.Postgres {
				if code, _, e := runCLI("audit", "archive", "--db", dbURL, "--before", monthStart.Format(time.DateOnly), "--out", out); code != 1 || !strings.Contains(e, "PostgreSQL only") {
					t.Fatalf("archive on SQLite: exit %d %s", code, e)
				}
				return
			}
			signer := audit.NewSigner([]byte(cliSecret))
			w := audit.NewWriter(db, audit.WriterOptions{})
			appendN := func(n int) {
				for i := range n {
					if _, err := w.Append(ctx, audit.Event{Type: audit.DataAccess, Outcome: audit.Allowed, ClientID: "app", Status: 200, Reason: strings.Repeat("x", i)}); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Ten events logged two months ago (an integrator whose clock
			// says so), then five now.
			appendN(10)
			past := monthStart.AddDate(0, -2, 3)
			if _, err := audit.NewCheckpointer(db, signer, audit.CheckpointerOptions{Issuer: "http://cli", Now: func() time.Time { return past }}).Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			appendN(5)
			w.Close()
			if code, o, e := runCLI("audit", "verify", "--db", dbURL); code != 0 || !strings.Contains(o, "15 events") {
				t.Fatalf("verify before: exit %d %s%s", code, o, e)
			}

			code, o, e := runCLI("audit", "archive", "--db", dbURL, "--before", monthStart.Format(time.DateOnly), "--out", out, "--issuer", "http://cli")
			if code != 0 || !strings.Contains(o, "archived seq 1 to 10 (10 events") {
				t.Fatalf("archive: exit %d\n%s%s", code, o, e)
			}

			// The archive proves itself: its chain from genesis, its tree's
			// root, and that root a prefix of the signed head.
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			sc.Scan()
			var h audit.ArchiveHeader
			if err := json.Unmarshal(sc.Bytes(), &h); err != nil || h.Format != audit.ArchiveFormat || h.FirstSeq != 1 || h.LastSeq != 10 {
				t.Fatalf("header %+v %v", h, err)
			}
			rng := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
			prev, n := h.PrevHash, 0
			for sc.Scan() {
				var ev audit.Event
				var raw struct {
					Seq           int64    `json:"seq"`
					EventID       string   `json:"event_id"`
					OccurredAt    string   `json:"occurred_at"`
					Type          string   `json:"type"`
					Outcome       string   `json:"outcome"`
					Reason        string   `json:"reason"`
					ClientID      string   `json:"client_id"`
					CustomerID    string   `json:"customer_id"`
					GrantID       string   `json:"grant_id"`
					AccountID     string   `json:"account_id"`
					Method        string   `json:"method"`
					Path          string   `json:"path"`
					Status        int      `json:"status"`
					Purpose       string   `json:"purpose"`
					Scopes        []string `json:"scopes"`
					InteractionID string   `json:"interaction_id"`
					PrevHash      string   `json:"prev_hash"`
					Hash          string   `json:"hash"`
				}
				if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
					t.Fatal(err)
				}
				occurred, _ := time.Parse(time.RFC3339Nano, raw.OccurredAt)
				ev = audit.Event{Seq: raw.Seq, EventID: raw.EventID, OccurredAt: occurred, Type: audit.Type(raw.Type), Outcome: audit.Outcome(raw.Outcome),
					Reason: raw.Reason, ClientID: raw.ClientID, CustomerID: raw.CustomerID, GrantID: raw.GrantID, AccountID: raw.AccountID,
					Method: raw.Method, Path: raw.Path, Status: raw.Status, Purpose: raw.Purpose, Scopes: raw.Scopes, InteractionID: raw.InteractionID}
				if hash, _ := audit.ComputeHash(prev, ev); raw.PrevHash != prev || hash != raw.Hash {
					t.Fatalf("archived seq %d does not chain", raw.Seq)
				}
				prev = raw.Hash
				if err := rng.Append(audit.LeafHash(ev), nil); err != nil {
					t.Fatal(err)
				}
				n++
			}
			root, _ := rng.GetRootHash(nil)
			if n != 10 || prev != h.LastHash || base64.StdEncoding.EncodeToString(root) != h.RootHash {
				t.Fatalf("archive: %d events, last %s (header %s), root %x (header %s)", n, prev, h.LastHash, root, h.RootHash)
			}
			if err := audit.VerifyTreeHead(h.TreeHead, "cli/audit", signer.KeySet()); err != nil {
				t.Fatal(err)
			}
			var path [][]byte
			for _, s := range h.Consistency {
				b, _ := base64.StdEncoding.DecodeString(s)
				path = append(path, b)
			}
			headRoot, _ := base64.StdEncoding.DecodeString(h.TreeHead.RootHash)
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, 10, uint64(h.TreeHead.TreeSize), path, root, headRoot); err != nil {
				t.Fatalf("archive's consistency with the signed head: %v", err)
			}

			// Detached, not dropped; verify works from the anchor.
			var inLog, detached int64
			_ = db.Raw(`SELECT COUNT(*) FROM audit_events`).Row().Scan(&inLog)
			_ = db.Raw(`SELECT COUNT(*) FROM audit_events_legacy`).Row().Scan(&detached)
			if inLog != 5 || detached != 10 {
				t.Fatalf("after archive: %d events in the log, %d in the detached partition", inLog, detached)
			}
			if code, o, e := runCLI("audit", "verify", "--db", dbURL); code != 0 || !strings.Contains(o, "5 events") || !strings.Contains(o, "seq 1 to 10 archived") {
				t.Fatalf("verify after archive: exit %d %s%s", code, o, e)
			}
			if code, o, _ := runCLI("audit", "archive", "--db", dbURL, "--before", monthStart.Format(time.DateOnly), "--out", out+"2"); code != 0 || !strings.Contains(o, "nothing to archive") {
				t.Fatalf("second archive: exit %d %s", code, o)
			}
			mustExec(t, db, `ALTER TABLE audit_events DISABLE TRIGGER USER`)
			mustExec(t, db, `UPDATE audit_events SET reason = 'edited' WHERE seq = 12`)
			if code, o, _ := runCLI("audit", "verify", "--db", dbURL); code != 1 || !strings.Contains(o, "INVALID at seq 12") {
				t.Fatalf("verify of an edit after the anchor: exit %d %s", code, o)
			}
		})
	}
}
