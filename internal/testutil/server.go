// Package testutil starts real consentgate servers for end-to-end tests (on
// SQLite and PostgreSQL) and drives them the way an app and a customer's
// browser would: PAR, authorize, login, consent, token. Test code only; it
// never fakes a component of the server.
package testutil

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/server"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// Server is a running consentgate node.
type Server struct {
	URL    string // issuer and base URL, e.g. http://127.0.0.1:41234
	Node   *server.Server
	DB     *store.DB
	Clock  *Clock
	client *http.Client
}

// Options tune Start.
type Options struct {
	// DatabaseURL reuses a database (a second node); "" creates a new one.
	DatabaseURL string
	// Clock replaces time; nil means a real clock.
	Clock *Clock
	// Secret replaces TestSecret; SecretPrevious is
	// CONSENTGATE_SECRET_PREVIOUS (a master secret rotation).
	Secret, SecretPrevious string
	// KeyRefresh is how often the node re-reads the key ring (0: default).
	KeyRefresh time.Duration
	// RateLimit is the node's --rate-limit (0: none).
	RateLimit int
	// Configure, when set, adjusts the node's configuration (its Issuer is
	// already the node's URL) before it starts.
	Configure func(*config.Config)
	// DirectoryJWKS turns dynamic client registration on (a JWKS file).
	DirectoryJWKS string
}

// TestSecret is the CONSENTGATE_SECRET of test servers.
const TestSecret = "test-secret-0123456789abcdef0123456789abcdef"

// Start runs a demo-seeded node on a fresh database of dialect d and stops
// it when the test ends.
func Start(t testing.TB, d store.Dialect, o Options) *Server {
	t.Helper()
	dbURL := o.DatabaseURL
	if dbURL == "" {
		dbURL = testdb.URL(t, d)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testutil: listen: %v", err)
	}
	base := "http://" + l.Addr().String()
	secret := o.Secret
	if secret == "" {
		secret = TestSecret
	}
	cfg := &config.Config{Addr: l.Addr().String(), DatabaseURL: dbURL, Issuer: base, Secret: []byte(secret),
		Demo: true, ShutdownTimeout: 5 * time.Second, RateLimit: o.RateLimit, DirectoryJWKS: o.DirectoryJWKS}
	if o.SecretPrevious != "" {
		cfg.SecretPrevious = []byte(o.SecretPrevious)
	}
	if o.Configure != nil {
		o.Configure(cfg)
	}
	clock := o.Clock
	if clock == nil {
		clock = &Clock{}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("CONSENTGATE_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	node, err := server.New(context.Background(), cfg, log, server.Options{Now: clock.Now, KeyRefresh: o.KeyRefresh})
	if err != nil {
		_ = l.Close()
		t.Fatalf("testutil: start server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Serve(ctx, l) }()
	// The server's own transport: a connection the client dialled for a
	// concurrent request but never used is "new" to the server, and
	// http.Server.Shutdown waits up to five seconds for such a connection
	// before it counts as idle. Closing the client's idle connections first
	// lets the shutdown finish at once.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("testutil: serve: %v", err)
		}
		_ = node.Close()
	})
	return &Server{URL: base, Node: node, DB: node.DB(), Clock: clock,
		client: &http.Client{Timeout: 30 * time.Second, CheckRedirect: noRedirects, Transport: transport}}
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Clock is a controllable clock: real time plus an offset tests can move.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(c.offset)
}

// ClockAt is a clock that reads at now at this instant and runs on from
// there (a demo seeded on a given day, say).
func ClockAt(at time.Time) *Clock { return &Clock{offset: time.Until(at)} }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}
