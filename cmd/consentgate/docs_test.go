package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// TestDocsStandAlone (issue 14 item 12): the README and docs/ are read
// without the product contract beside them, so they never send the reader
// to it.
func TestDocsStandAlone(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, filepath.Join("..", "..", "README.md")) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{"SPEC.md", "SPEC §", "the SPEC"} {
			if strings.Contains(string(b), ref) {
				t.Errorf("%s refers the reader to %q, which a reader of the repository does not have", f, ref)
			}
		}
	}
}

// TestReadmeJWKSCommand (issue 14 item 12): the README's commands that make
// a FAPI client's key pair produce a JWKS that client create accepts.
func TestReadmeJWKSCommand(t *testing.T) {
	for _, tool := range []string{"openssl", "python3", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(readme), "openssl ecparam")
	end := strings.Index(string(readme), "> app-public-jwks.json\n")
	if start < 0 || end < start {
		t.Fatal("the README shows no command that makes app-public-jwks.json")
	}
	script := string(readme[start:end]) + "> app-public-jwks.json\n"
	dir := t.TempDir()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("README key commands: %v\n%s\n%s", err, script, out)
	}
	t.Setenv("CONSENTGATE_SECRET", cliSecret)
	code, out, errb := runCLI("client", "create", "--db", testdb.URL(t, store.SQLite), "--name", "Budget app",
		"--redirect-uri", "https://app.example/cb", "--scope", "accounts:read", "--scope", "transactions:read",
		"--purpose", "personal_finance_management", "--auth-method", "private_key_jwt",
		"--jwks-file", filepath.Join(dir, "app-public-jwks.json"), "--dpop")
	if code != 0 || !strings.Contains(out, `"client_id"`) || strings.Contains(out, "client_secret") {
		t.Errorf("client create with the README's JWKS: exit %d %s %s", code, out, errb)
	}
}
