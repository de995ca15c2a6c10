package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/httpapi"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/webhook"
)

// ClientAdminTool runs the operator API's client lifecycle operations from
// the command line (`consentgate client list|show|suspend|…`), on the
// database like `client create`: the same code, the same audit events
// (client.*, consent.revoked) and the same webhooks, queued in the outbox
// for the serving nodes to send.
type ClientAdminTool struct {
	// Admin is the lifecycle operations.
	Admin httpapi.ClientAdmin
	tools *Tools
	audit *auditLog
}

// OpenClientAdmin opens the database for the client lifecycle commands.
func OpenClientAdmin(ctx context.Context, dbURL string, log *slog.Logger) (*ClientAdminTool, error) {
	t, err := OpenTools(ctx, dbURL, ToolsOptions{}, log)
	if err != nil {
		return nil, err
	}
	now := func() time.Time { return time.Now().UTC() }
	rk := ringKeys{t.Ring}
	al := newAuditLog(t.DB, rk.auditSigner(), t.issuer, log, now, Options{})
	pairwise, err := identity.LoadPairwise(ctx, t.DB)
	if err != nil {
		_ = al.writer.Close()
		_ = t.Close()
		return nil, err
	}
	p, err := oauth.New(oauth.Deps{DB: t.DB, Consents: consent.NewSQLStore(t.DB), Purposes: t.Purposes, Issuer: t.issuer,
		Secret: t.secret, Logger: log, Now: now, Events: al, Subjects: pairwise, IDTokenKey: rk.idToken, SymmetricKey: rk.symmetric})
	if err != nil {
		_ = al.writer.Close()
		_ = t.Close()
		return nil, err
	}
	grace, err := secretGrace()
	if err != nil {
		_ = al.writer.Close()
		_ = t.Close()
		return nil, err
	}
	// No dispatcher runs here: deliveries wait in the outbox for a node.
	hooks := &webhooks{store: webhook.NewStore(t.DB, now), disp: webhook.New(webhook.NewStore(t.DB, now), nil, webhook.Options{})}
	return &ClientAdminTool{Admin: clientAdmin{p: p, hooks: hooks, grace: grace}, tools: t, audit: al}, nil
}

// Close commits the audit events and closes the database.
func (c *ClientAdminTool) Close() error {
	c.audit.close()
	return c.tools.Close()
}
