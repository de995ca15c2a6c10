package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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

// toolDirective matches go.mod's tool directives, single or in a block.
var toolDirective = regexp.MustCompile(`(?m)^tool (\(\n(\t.*\n)*\)|.*$)`)

// TestLintersArePinnedTools (issue 14 item 13): gosec and golangci-lint are
// Go tool dependencies (go.mod's tool block, pinned by go.sum) that the
// Makefile runs with `go tool`, so make test and make lint work on a fresh
// machine without installing anything or fetching an unpinned @version.
func TestLintersArePinnedTools(t *testing.T) {
	gomod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	gosum, err := os.ReadFile(filepath.Join("..", "..", "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ module, pkg, tool string }{
		{"github.com/securego/gosec/v2", "github.com/securego/gosec/v2/cmd/gosec", "gosec"},
		{"github.com/golangci/golangci-lint/v2", "github.com/golangci/golangci-lint/v2/cmd/golangci-lint", "golangci-lint"},
	} {
		if !toolDirective.MatchString(string(gomod)) || !slices.Contains(strings.Fields(toolDirective.FindString(string(gomod))), c.pkg) {
			t.Errorf("go.mod has no tool directive for %s", c.pkg)
		}
		if !strings.Contains(string(gosum), c.module+" ") {
			t.Errorf("go.sum does not pin %s", c.module)
		}
		if !strings.Contains(string(makefile), "$(GO) tool "+c.tool+" ") {
			t.Errorf("the Makefile does not run %s with go tool", c.tool)
		}
	}
	if strings.Contains(string(makefile), "go install") || strings.Contains(string(makefile), "gosec@") {
		t.Error("the Makefile still installs or fetches a linter by version")
	}
}
