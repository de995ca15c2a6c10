package bench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Without node or npm the reference is skipped, with ErrNoNode for the
// loud note.
func TestInstallReferenceWithoutNode(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if err := InstallReference(ReferenceDir); !errors.Is(err, ErrNoNode) {
		t.Fatalf("InstallReference without node: %v, want ErrNoNode", err)
	}
}

// The reference server starts, issues a client_credentials token with its
// client_secret_basic client, introspects it as active, and stops. It
// needs oidc-provider installed (make bench runs npm ci in
// bench/oidcprovider): skipped otherwise, so make test installs nothing.
func TestReference(t *testing.T) {
	if _, err := os.Stat(filepath.Join(ReferenceDir, "node_modules", "oidc-provider", "package.json")); err != nil {
		t.Skip("oidc-provider is not installed in bench/oidcprovider (make bench installs it)")
	}
	if err := InstallReference(ReferenceDir); err != nil {
		t.Skip(err)
	}
	ref, err := StartReference(ReferenceDir)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Stop()
	ctx := context.Background()
	tok, err := ref.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if active, err := ref.Active(ctx, tok); err != nil || !active {
		t.Fatalf("introspection of its own token: active %v, %v", active, err)
	}
	if active, err := ref.Active(ctx, tok+"x"); err != nil || active {
		t.Fatalf("introspection of a wrong token: active %v, %v", active, err)
	}
}
