package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/testutil"
)

// TestInteropOpenIDClient runs interop/flow.test.mjs: the whole FAPI 2.0
// flow (PAR, PKCE, private_key_jwt, DPoP, consent, code exchange, data
// call, introspection, refresh, revocation) driven by openid-client, an
// independent client library, against a real node. It needs node and npm;
// without them it skips, except in CI (CI=true), where it fails.
func TestInteropOpenIDClient(t *testing.T) {
	node, nerr := exec.LookPath("node")
	npm, perr := exec.LookPath("npm")
	if nerr != nil || perr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node and npm are required in CI for the interop test (node: %v, npm: %v)", nerr, perr)
		}
		t.Skip("SKIPPED: node or npm not installed; the openid-client interop test did not run")
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "interop"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openid-client")); err != nil {
		// npm ci installs exactly what package-lock.json pins.
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv := jose.JSONWebKey{Key: key, KeyID: "interop-1", Algorithm: string(jose.ES256), Use: "sig"}
		pub := priv.Public()
		jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
		privJSON, err := json.Marshal(priv)
		if err != nil {
			t.Fatal(err)
		}
		id, _, err := s.Node.Provider().CreateClient(ctx, oauth.ClientSpec{
			Name: "openid-client interop", RedirectURIs: []string{testutil.DemoRedirectURI},
			Scopes:   []string{"accounts:read", "balances:read", "transactions:read", "offline_access"},
			Purposes: []string{"personal_finance_management"}, AuthMethod: oauth.AuthPrivateKeyJWT, JWKS: jwks, DPoP: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", filepath.Join(dir, "flow.test.mjs"))
		cmd.Dir = dir
		cmd.Env = append(os.Environ(),
			"CONSENTGATE_ISSUER="+s.URL,
			"CONSENTGATE_CLIENT_ID="+id,
			"CONSENTGATE_CLIENT_JWK="+string(privJSON),
			"CONSENTGATE_REDIRECT_URI="+testutil.DemoRedirectURI,
		)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("node --test interop/flow.test.mjs: %v\n%s", err, out)
		}
		t.Logf("openid-client interop:\n%s", out)
	})
}
