// Package server assembles consentgate: it opens the database, runs the
// migrations, builds the domain services and mounts the authorization
// server, the data API, the customer pages and the operational endpoints on
// one gin router. It owns no business rule: everything it wires is defined
// in the domain packages.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-jose/go-jose/v4"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/demo"
	"github.com/consentgate/consentgate/internal/httpapi"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/ingest"
	"github.com/consentgate/consentgate/internal/keys"
	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/purpose"
	"github.com/consentgate/consentgate/internal/ratelimit"
	"github.com/consentgate/consentgate/internal/replica"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/web"
)

// Server is one consentgate node.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	db       *store.DB
	now      func() time.Time
	handler  http.Handler
	provider *oauth.Provider
	consents consent.Store
	identity *identity.Service
	ingest   *ingest.Service
	audit    *auditLog
	webhooks *webhooks
	ring     *keys.Ring
	ringDone chan struct{}
	limiter  *ratelimit.Limiter
	stop     context.CancelFunc
	bg       chan struct{}
	// statsDone is closed when refreshStats has returned.
	statsDone chan struct{}
	// replicas serve the data API's account reads (--read-db); nil: none.
	replicas *replica.Set

	// webhookRetention is how long settled webhook deliveries are kept.
	webhookRetention time.Duration
	// txPartitions creates the monthly partitions of transactions ahead
	// (housekeeping.go).
	txPartitions *accounts.SQLStore
}

// Options are the test seams of New.
type Options struct {
	// Now replaces the clock (tests of expiry); nil means time.Now.
	Now func() time.Time
	// DB reuses an open database instead of opening cfg.DatabaseURL.
	DB *store.DB
	// AuditCheckpointInterval is the time between signed audit checkpoints
	// (0: one minute).
	AuditCheckpointInterval time.Duration
	// AuditRecorder replaces the durable audit writer for data calls and
	// OAuth events. Only the audit benchmark sets it, to a recorder that
	// records nothing, to measure what the durable write costs; a node that
	// serves customers never does.
	AuditRecorder audit.Recorder
	// KeyRefresh is how often the node re-reads the key ring (0:
	// keys.DefaultRefresh).
	KeyRefresh time.Duration
}

// New opens the database, migrates it, seeds the demo when asked and builds
// the HTTP handler. Close releases it.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, opts Options) (*Server, error) {
	now := opts.Now
	if now == nil {
		now = func() time.Time { return time.Now().UTC() }
	}
	db := opts.DB
	if db == nil {
		var err error
		if db, err = store.Open(cfg.DatabaseURL, store.Options{}); err != nil {
			return nil, err
		}
	}
	s := &Server{cfg: cfg, log: log, db: db, now: now}
	if err := s.init(ctx, opts); err != nil {
		if s.audit != nil {
			_ = s.audit.writer.Close() // stop its goroutine; nothing was recorded yet
		}
		if s.replicas != nil {
			_ = s.replicas.Close()
		}
		if opts.DB == nil {
			_ = db.Close() // the start-up error is the one to report
		}
		return nil, err
	}
	return s, nil
}

func (s *Server) init(ctx context.Context, opts Options) error {
	if err := s.db.Migrate(ctx, s.log); err != nil {
		return err
	}
	secret := s.cfg.Secret
	if secret == nil {
		var err error
		if secret, err = demoSecret(ctx, s.db); err != nil {
			return err
		}
		s.log.Warn("demo mode: using a generated secret stored in the database; set CONSENTGATE_SECRET in production")
	}
	purposes, err := LoadPurposes(s.cfg.PurposePolicyFile)
	if err != nil {
		return err
	}
	if s.ring, err = OpenKeyRing(ctx, s.db, secret, s.cfg.SecretPrevious, s.log, s.now); err != nil {
		return err
	}
	rk := ringKeys{s.ring}
	s.limiter = ratelimit.New(s.db, s.cfg.RateLimit, s.now)

	s.consents = consent.NewSQLStore(s.db)
	accountStore := accounts.NewSQLStore(s.db)
	s.txPartitions = accountStore
	dataAccounts, err := s.readReplicas(accountStore)
	if err != nil {
		return err
	}
	ident := identity.NewService(s.db, s.now)
	s.identity = ident
	s.audit = newAuditLog(s.db, rk.auditSigner(), s.cfg.Issuer, s.log, s.now, opts)
	if s.webhooks, err = newWebhooks(s.db, rk.webhookSigner(), s.cfg.Issuer, s.log, s.now); err != nil {
		return err
	}
	if s.webhookRetention, err = webhookRetention(); err != nil {
		return err
	}
	// One pairwise salt per deployment, loaded once: every subject a
	// client sees (id_token, userinfo, introspection) comes from it.
	pairwise, err := identity.LoadPairwise(ctx, s.db)
	if err != nil {
		return err
	}
	provider, err := oauth.New(oauth.Deps{
		DB: s.db, Consents: s.consents, Purposes: purposes, Issuer: s.cfg.Issuer, Secret: secret,
		Logger: s.log, Now: s.now, Events: s.audit, PublicKeys: s.publicKeys,
		Subjects: pairwise, IDTokenKey: rk.idToken, SymmetricKey: rk.symmetric, RateLimit: s.limiter.Allow,
		DirectoryJWKS: s.cfg.DirectoryJWKS,
	})
	if err != nil {
		return err
	}
	s.provider = provider

	s.ingest = ingest.NewService(s.db, s.now)
	if s.cfg.Demo {
		created, err := demo.SeedFixtures(ctx, demo.Deps{
			Accounts: accountStore, Identity: ident, Clients: demoClients{provider}, Now: s.now, Logger: s.log,
		})
		if err != nil {
			return fmt.Errorf("demo fixtures: %w", err)
		}
		// The demo provider feeds First Demo Bank (idempotent).
		if err := s.ingest.RegisterClient(ctx, demo.ProviderClientID, demo.InstitutionID); err != nil {
			return fmt.Errorf("demo fixtures: %w", err)
		}
		if created {
			s.log.Info("demo fixtures seeded: customers alice and bob, clients demo-pfm, demo-aggregator, demo-auditor, demo-provider, demo-operator")
		} else {
			s.log.Info("demo fixtures already present")
		}
	}

	issuer, _ := url.Parse(s.cfg.Issuer)
	pages, err := web.New(web.Deps{
		Identity: ident, Authorizer: webAuthorizer{provider}, Accounts: accountStore, Purposes: purposes,
		Grants: s.consents, Apps: dashboardApps{provider, s.webhooks}, History: dashboardHistory{s.audit.reader},
		Proofs: dashboardProofs{r: s.audit.reader, cp: s.audit.cp, keys: s.audit.signer},
		Secure: issuer.Scheme == "https", Logger: s.log, Now: s.now,
		IDP: customerIDP(s.cfg), NoPasswordLogin: s.cfg.NoPasswordLogin,
	})
	if err != nil {
		return err
	}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.ContextWithFallback = true
	// No proxy is trusted unless configured: X-Forwarded-For from anyone
	// would let a client pick the IP that login throttling counts.
	if err := r.SetTrustedProxies(nil); err != nil {
		return err
	}
	m := newMetrics()
	m.reg.MustRegister(s.audit.collectors()...)
	if s.replicas != nil {
		m.reg.MustRegister(s.replicas.Collectors()...)
	}
	r.Use(m.middleware)
	r.Use(httpapi.Middleware(s.log)...)
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", m.handler())
	provider.Register(r)
	httpapi.RegisterData(r, httpapi.Deps{
		Accounts: dataAccounts, Auth: dataAuthenticator{provider}, Audit: s.audit.recorder, Purposes: purposes,
		Usage:  consent.NewSQLStore(s.db),
		Logger: s.log, Now: s.now, Limiter: s.limiter, ServedAgain: m.servedAgain.Inc,
		Sync: dataAccounts, CursorKey: rk.syncCursor(),
	})
	httpapi.RegisterUserinfo(r, httpapi.UserinfoDeps{
		Auth: dataAuthenticator{provider}, Audit: s.audit.recorder, Claims: customerClaims{ident}, Subjects: pairwise,
		Logger: s.log, Now: s.now, Limiter: s.limiter,
	})
	// The FDX resource API (SPEC §10): the same gate as /v1, FDX shapes.
	httpapi.RegisterFDX(r, httpapi.FDXDeps{
		Deps: httpapi.Deps{
			Accounts: dataAccounts, Auth: dataAuthenticator{provider}, Audit: s.audit.recorder, Purposes: purposes,
			Usage:  consent.NewSQLStore(s.db),
			Logger: s.log, Now: s.now, Limiter: s.limiter, ServedAgain: m.servedAgain.Inc,
		},
		Profiles: ident, Numbers: dataAccounts, Posted: dataAccounts, Subjects: pairwise.Subject,
	})
	httpapi.RegisterProvider(r, httpapi.ProviderDeps{
		Ingest: s.ingest, Auth: dataAuthenticator{provider}, Audit: s.audit.recorder, Logger: s.log,
	})
	httpapi.RegisterAudit(r, httpapi.AuditDeps{
		Log: s.audit.reader, Auth: dataAuthenticator{provider}, KeySet: s.audit.signer.KeySet, Logger: s.log,
	})
	grace, err := secretGrace()
	if err != nil {
		return err
	}
	httpapi.RegisterAdmin(r, httpapi.AdminDeps{
		Clients: clientAdmin{p: provider, hooks: s.webhooks, grace: grace}, Auth: dataAuthenticator{provider},
		Audit: s.audit.recorder, Logger: s.log,
	})
	pages.Register(r)
	httpapi.RegisterFallbacks(r)
	s.handler = r

	bgCtx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.bg = make(chan struct{})
	s.ringDone = make(chan struct{})
	go func() {
		defer close(s.ringDone)
		s.ring.Run(bgCtx, opts.KeyRefresh)
	}()
	go s.sweep(bgCtx)
	s.statsDone = make(chan struct{})
	go s.refreshStats(bgCtx)
	s.audit.start(bgCtx)
	s.webhooks.start(bgCtx)
	return nil
}

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.db.Ping(ctx); err != nil {
		s.log.Warn("readiness: database unreachable", "err", err)
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "database": "unreachable"})
		return
	}
	body := gin.H{"status": "ready", "database": string(s.db.Dialect)}
	if s.replicas != nil {
		// A replica that is down or behind is reported, never a reason to
		// be unready: its reads go to the primary.
		body["replicas"] = s.replicas.Status()
	}
	c.JSON(http.StatusOK, body)
}

// sweep marks consents past their expiry as expired and does the
// housekeeping (Housekeep). Requests never depend on it (a consent is inactive from the
// instant it expires); it keeps the recorded status and the audit trail true.
func (s *Server) sweep(ctx context.Context) {
	defer close(s.bg)
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		if due, err := s.consents.ExpireDue(ctx, s.now()); err != nil && ctx.Err() == nil {
			s.log.Warn("consent expiry sweep failed", "err", err)
		} else {
			for _, c := range due {
				s.log.Info("consent expired", "grant_id", c.ID, "client_id", c.ClientID)
				s.audit.consentExpired(ctx, c)
			}
		}
		if err := s.Housekeep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("housekeeping failed", "err", err)
		}
		if err := s.limiter.Prune(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("rate limit window prune failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// statsInterval is how often a node looks for tables that have outgrown
// their planner statistics (store.RefreshGrownStats): the longest a cached
// plan made for a tiny table can outlive its growth.
const statsInterval = 2 * time.Second

// refreshStats analyzes, every statsInterval until ctx ends, the tables
// that have outgrown their statistics. A loop of its own: the sweep's
// first round (partitions to create, rows to expire) can take seconds.
func (s *Server) refreshStats(ctx context.Context) {
	defer close(s.statsDone)
	if s.db.Dialect != store.Postgres {
		return
	}
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		grown, err := s.db.RefreshGrownStats(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("planner statistics refresh failed", "err", err)
		} else if len(grown) > 0 {
			s.log.Info("planner statistics refreshed", "tables", grown)
		}
	}
}

// Handler is the node's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// DB is the node's database.
func (s *Server) DB() *store.DB { return s.db }

// Provider is the node's authorization server.
func (s *Server) Provider() *oauth.Provider { return s.provider }

// AuditCheckpoint integrates the pending audit events and signs a tree head
// now (the background checkpointer does it every AuditCheckpointInterval).
func (s *Server) AuditCheckpoint(ctx context.Context) (*audit.TreeHead, error) {
	return s.audit.cp.Checkpoint(ctx)
}

// AuditKeys verify the node's audit checkpoints (the audit key of the JWKS).
func (s *Server) AuditKeys() *jose.JSONWebKeySet { return s.audit.signer.KeySet() }

// publicKeys are the keys served at jwks_uri: the key ring's published
// keys (every key this node signs with, the next ones of a rotation, and
// the previous ones for their retention period).
func (s *Server) publicKeys() []jose.JSONWebKey { return s.ring.Published() }

// Close stops background work, commits the queued audit events and closes
// the database.
func (s *Server) Close() error {
	if s.stop != nil {
		s.stop()
		<-s.bg
		<-s.statsDone
		<-s.ringDone
		s.webhooks.wait()
	}
	if s.audit != nil {
		s.audit.close()
	}
	if s.replicas != nil {
		_ = s.replicas.Close()
	}
	return s.db.Close()
}

// HTTPServer wraps the handler with timeouts that keep slow or hostile
// clients from holding connections (slowloris) or memory.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Addr:              s.cfg.Addr,
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      5 * time.Minute, // audit exports stream for a while
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
}

// Serve answers on l until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := s.HTTPServer()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// LoadPurposes returns the purpose policy: the built-in SPEC §4 table, or
// the file's when path is set (validated; a bad file refuses to start).
func LoadPurposes(path string) (*purpose.Table, error) {
	if path == "" {
		return purpose.Default(), nil
	}
	f, err := os.Open(path) // #nosec G304 -- the operator names the policy file on the command line
	if err != nil {
		return nil, fmt.Errorf("purpose policy: %w", err)
	}
	defer f.Close()
	return purpose.Load(f)
}
