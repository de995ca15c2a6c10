package server

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/demo"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/keys"
	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/purpose"
	"github.com/consentgate/consentgate/internal/store"
)

// Tools are the services the operator commands (client create, demo seed,
// audit) use without serving HTTP.
type Tools struct {
	DB       *store.DB
	Provider *oauth.Provider
	Accounts accounts.Store
	Identity *identity.Service
	Purposes *purpose.Table
	Log      *slog.Logger
	// AuditSigner holds the audit keys of the key ring; its KeySet
	// verifies the audit log.
	AuditSigner *audit.Signer
	// Ring is the key ring (consentgate keys).
	Ring *keys.Ring

	secret []byte
	issuer string
}

// ToolsOptions tune OpenTools.
type ToolsOptions struct {
	// DemoSecret generates and stores a demo secret when neither
	// CONSENTGATE_SECRET nor a stored one exists (demo seed on a new database).
	DemoSecret bool
	// PolicyFile replaces the built-in purpose policy.
	PolicyFile string
}

// OpenTools opens and migrates the database and builds the services. The
// secret comes from CONSENTGATE_SECRET, else from a demo database.
func OpenTools(ctx context.Context, dbURL string, opts ToolsOptions, log *slog.Logger) (*Tools, error) {
	db, err := store.Open(dbURL, store.Options{MaxOpenConns: 4})
	if err != nil {
		return nil, err
	}
	t, err := openTools(ctx, db, opts, log)
	if err != nil {
		_ = db.Close() // the open error is the one to report
		return nil, err
	}
	return t, nil
}

func openTools(ctx context.Context, db *store.DB, opts ToolsOptions, log *slog.Logger) (*Tools, error) {
	if err := db.Migrate(ctx, log); err != nil {
		return nil, err
	}
	secret := []byte(os.Getenv("CONSENTGATE_SECRET"))
	if len(secret) == 0 {
		stored, ok, err := StoredSecret(ctx, db)
		if err != nil {
			return nil, err
		}
		switch {
		case ok:
			secret = stored
		case opts.DemoSecret:
			if secret, err = demoSecret(ctx, db); err != nil {
				return nil, err
			}
		default:
			return nil, errors.New("CONSENTGATE_SECRET is not set and the database holds no demo secret")
		}
	}
	if len(secret) < config.MinSecretLen {
		return nil, errors.New("CONSENTGATE_SECRET must be at least 32 bytes")
	}
	purposes, err := LoadPurposes(opts.PolicyFile)
	if err != nil {
		return nil, err
	}
	issuer := os.Getenv("CONSENTGATE_ISSUER")
	if issuer == "" {
		issuer = config.DefaultIssuer
	}
	now := func() time.Time { return time.Now().UTC() }
	previous := []byte(os.Getenv("CONSENTGATE_SECRET_PREVIOUS"))
	if len(previous) > 0 && len(previous) < config.MinSecretLen {
		return nil, errors.New("CONSENTGATE_SECRET_PREVIOUS must be at least 32 bytes")
	}
	ring, err := OpenKeyRing(ctx, db, secret, previous, log, now)
	if err != nil {
		return nil, err
	}
	rk := ringKeys{ring}
	pairwise, err := identity.LoadPairwise(ctx, db)
	if err != nil {
		return nil, err
	}
	p, err := oauth.New(oauth.Deps{DB: db, Consents: consent.NewSQLStore(db), Purposes: purposes, Issuer: issuer,
		Secret: secret, Logger: log, Now: now, Subjects: pairwise, IDTokenKey: rk.idToken, SymmetricKey: rk.symmetric})
	if err != nil {
		return nil, err
	}
	return &Tools{DB: db, Provider: p, Accounts: accounts.NewSQLStore(db), Identity: identity.NewService(db, now),
		Purposes: purposes, Log: log, AuditSigner: rk.auditSigner(), Ring: ring, secret: secret, issuer: issuer}, nil
}

// DemoDeps are the dependencies of the demo data generator.
func (t *Tools) DemoDeps() demo.Deps {
	return demo.Deps{Accounts: t.Accounts, Identity: t.Identity, Clients: demoClients{t.Provider},
		Now: func() time.Time { return time.Now().UTC() }, Logger: t.Log}
}

// Close closes the database.
func (t *Tools) Close() error { return t.DB.Close() }
