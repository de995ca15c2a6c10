package bench

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The reference server of issue 18: panva/oidc-provider, in memory (its
// default adapter), measured beside our token endpoint and introspection
// in the same run with the same load generator. Its package.json,
// package-lock.json and start script are in bench/oidcprovider/; the bench
// installs it with npm ci when node_modules lacks it.
const (
	// ReferenceVersion is the oidc-provider the lock file pins.
	ReferenceVersion = "oidc-provider 9.13.3"
	// ReferenceDir is the reference server's folder, from the bench
	// package's directory (where go test runs).
	ReferenceDir = "oidcprovider"
	refClientID  = "bench-reference"
	refSecret    = "bench-reference-secret" // #nosec G101 -- an in-memory server's client that lives for one bench run
)

// Reference is a running oidc-provider.
type Reference struct {
	URL   string // its issuer, http://127.0.0.1:port
	cmd   *exec.Cmd
	basic string // the Authorization header of its client
}

// ErrNoNode says the reference cannot run on this machine: the bench
// skips it with a loud note.
var ErrNoNode = errors.New("node or npm is not installed")

// InstallReference runs npm ci in dir when oidc-provider is not installed
// there yet. ErrNoNode when node or npm is missing.
func InstallReference(dir string) error {
	for _, bin := range []string{"node", "npm"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%w (%s: %v)", ErrNoNode, bin, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err == nil {
		return nil
	}
	fmt.Fprintf(os.Stderr, "bench: installing %s in %s (npm ci)\n", ReferenceVersion, dir)
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci in %s: %w", dir, err)
	}
	return nil
}

// StartReference starts bench/oidcprovider/server.mjs with node and waits
// for its "ready URL" line. NODE_ENV=production: the reference runs as it
// would in service.
func StartReference(dir string) (*Reference, error) {
	cmd := exec.Command("node", "server.mjs", refClientID, refSecret)
	cmd.Dir, cmd.Stderr = dir, os.Stderr
	cmd.Env = append(os.Environ(), "NODE_ENV=production")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", ReferenceVersion, err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- u
			}
		}
		close(ready)
	}()
	ref := &Reference{cmd: cmd, basic: "Basic " + base64.StdEncoding.EncodeToString([]byte(refClientID+":"+refSecret))}
	select {
	case u, ok := <-ready:
		if !ok {
			_ = cmd.Wait() // it exited before it was ready: its stderr said why
			return nil, fmt.Errorf("%s exited before it was ready", ReferenceVersion)
		}
		ref.URL = u
	case <-time.After(30 * time.Second):
		ref.Stop()
		return nil, fmt.Errorf("%s was not ready after 30s", ReferenceVersion)
	}
	return ref, nil
}

// Stop ends the reference server (SIGTERM, then SIGKILL after 5s).
func (r *Reference) Stop() {
	if r == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM) // already gone: Wait returns at once
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
	}
}

// TokenRequest is the reference's client_credentials request
// (client_secret_basic), as ours is.
func (r *Reference) TokenRequest() (method, u string, body []byte, hdr http.Header) {
	return http.MethodPost, r.URL + "/token", []byte("grant_type=client_credentials"),
		http.Header{"Authorization": {r.basic}, "Content-Type": {"application/x-www-form-urlencoded"}}
}

// IntrospectRequest is the reference's introspection of token by its own
// client (client_secret_basic).
func (r *Reference) IntrospectRequest(token string) (method, u string, body []byte, hdr http.Header) {
	return http.MethodPost, r.URL + "/token/introspection", []byte(url.Values{"token": {token}}.Encode()),
		http.Header{"Authorization": {r.basic}, "Content-Type": {"application/x-www-form-urlencoded"}}
}

// Token takes one access token from the reference.
func (r *Reference) Token(ctx context.Context) (string, error) {
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := post(ctx, r.TokenRequest, &tok); err != nil {
		return "", err
	}
	if tok.AccessToken == "" {
		return "", errors.New("reference token endpoint: no access_token")
	}
	return tok.AccessToken, nil
}

// Active introspects token once at the reference and says whether it is
// active: the load measures answers that did the whole work.
func (r *Reference) Active(ctx context.Context, token string) (bool, error) {
	var in struct {
		Active bool `json:"active"`
	}
	err := post(ctx, func() (string, string, []byte, http.Header) { return r.IntrospectRequest(token) }, &in)
	return in.Active, err
}

// post sends one request and decodes a 200 JSON answer into v.
func post(ctx context.Context, req func() (string, string, []byte, http.Header), v any) error {
	method, u, body, hdr := req()
	rq, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	rq.Header = hdr
	res, err := http.DefaultClient.Do(rq) // #nosec G107 -- the loopback reference server the bench started
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<16)) // a short read shows in the decode error
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, u, res.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}
