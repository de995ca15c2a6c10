package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/keys"
	"github.com/consentgate/consentgate/internal/server"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// SPEC §11 Keys: keys rotate starts new signing keys, keys list shows the
// ring without a private key, and audit verify stays valid over tree heads
// signed before and after the rotation.
func TestKeysCommands(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Setenv("CONSENTGATE_SECRET", cliSecret)
			dbURL, db := seedLog(t, d, 6)
			// A bad flag value is a usage error: exit 2.
			if code, _, errb := runCLI("keys", "rotate", "--db", dbURL, "--use", "signing"); code != 2 || !strings.Contains(errb, "not a signing key use") {
				t.Errorf("bad --use: exit %d %s", code, errb)
			}
			code, out, errb := runCLI("keys", "rotate", "--db", dbURL, "--activate-in", "0s")
			if code != 0 {
				t.Fatalf("keys rotate: exit %d %s%s", code, out, errb)
			}
			var rotated struct {
				Keys map[string]string `json:"keys"`
			}
			if err := json.Unmarshal([]byte(out), &rotated); err != nil || len(rotated.Keys) != 3 {
				t.Fatalf("keys rotate output %q: %v", out, err)
			}
			code, out, errb = runCLI("keys", "list", "--db", dbURL)
			if code != 0 {
				t.Fatalf("keys list: exit %d %s", code, errb)
			}
			status := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var k keys.KeyInfo
				if err := json.Unmarshal([]byte(line), &k); err != nil {
					t.Fatalf("keys list line %q: %v", line, err)
				}
				status[k.KID] = k.Use + ":" + k.Status
			}
			for use, kid := range rotated.Keys {
				if status[kid] != use+":active" {
					t.Errorf("rotated %s key %s is %q, want active", use, kid, status[kid])
				}
			}
			if strings.Contains(out, `"d"`) || strings.Contains(out, "sealed") {
				t.Errorf("keys list shows key material: %s", out)
			}

			// A head signed with the new audit key, after the one signed
			// with the first: both verify.
			ctx := context.Background()
			tools, err := server.OpenTools(ctx, dbURL, server.ToolsOptions{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tools.Close()
			w := audit.NewWriter(db, audit.WriterOptions{})
			if _, err := w.Append(ctx, audit.Event{Type: audit.DataAccess, Outcome: audit.Allowed, Reason: "ok", ClientID: "app", Status: 200}); err != nil {
				t.Fatal(err)
			}
			_ = w.Close()
			th, err := audit.NewCheckpointer(db, tools.AuditSigner, audit.CheckpointerOptions{Issuer: "http://cli"}).Checkpoint(ctx)
			if err != nil || th == nil || th.KeyID != rotated.Keys["audit"] {
				t.Fatalf("head after rotation: %+v %v", th, err)
			}
			code, out, errb = runCLI("audit", "verify", "--db", dbURL)
			if code != 0 || !strings.Contains(out, "audit log valid: 7 events") || !strings.Contains(out, "2 signed checkpoints verified") {
				t.Fatalf("verify across the rotation: exit %d %s%s", code, out, errb)
			}
		})
	}
}
