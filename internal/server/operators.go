package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/consentgate/consentgate/internal/httpapi"
	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/webhook"
)

// EnvSecretGrace is how long a rotated-out client secret keeps working when
// the operator names no grace period, a Go duration (default 24h, at most
// 30 days; docs/operations.md).
const EnvSecretGrace = "CONSENTGATE_CLIENT_SECRET_GRACE"

// secretGrace reads EnvSecretGrace.
func secretGrace() (time.Duration, error) {
	v := os.Getenv(EnvSecretGrace)
	if v == "" {
		return oauth.DefaultSecretGrace, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > oauth.MaxSecretGrace {
		return 0, fmt.Errorf("%s=%q: want a duration from 0s to 720h, e.g. 24h", EnvSecretGrace, v)
	}
	return d, nil
}

// clientAdmin is the operator API's side of the authorization server: the
// lifecycle operations, with the webhook outbox told at once of what ended.
type clientAdmin struct {
	p     *oauth.Provider
	hooks *webhooks
	grace time.Duration
}

var _ httpapi.ClientAdmin = clientAdmin{}

func adminClient(c *oauth.ClientInfo) *httpapi.AdminClient {
	status := httpapi.ClientActive
	if c.Suspended() {
		status = httpapi.ClientSuspended
	}
	return &httpapi.AdminClient{
		ClientID: c.ID, ClientName: c.Name, Status: status, RedirectURIs: c.RedirectURIs, GrantTypes: c.GrantTypes,
		Scope: strings.Join(c.Scopes, " "), Purposes: c.Purposes, TokenEndpointAuthMethod: c.AuthMethod,
		CreatedAt: c.CreatedAt, ActiveGrants: c.ActiveGrants, SuspendedAt: c.SuspendedAt,
		SuspendedReason: c.SuspendedReason, SuspendedBy: c.SuspendedBy, SecretRotatedAt: c.SecretRotatedAt,
		PreviousSecretExpiresAt: c.PreviousSecretExpiresAt,
	}
}

func adminErr(err error) error {
	switch {
	case errors.Is(err, oauth.ErrClientNotFound):
		return errors.Join(httpapi.ErrAdminClientNotFound, err)
	case errors.Is(err, oauth.ErrNoSecret):
		return errors.Join(httpapi.ErrAdminNoSecret, err)
	}
	return err
}

func (a clientAdmin) List(ctx context.Context, after string, limit int) ([]httpapi.AdminClient, bool, error) {
	cs, more, err := a.p.ListClients(ctx, after, limit)
	if err != nil {
		return nil, false, err
	}
	out := make([]httpapi.AdminClient, len(cs))
	for i, c := range cs {
		out[i] = *adminClient(c)
	}
	return out, more, nil
}

func (a clientAdmin) Get(ctx context.Context, id string) (*httpapi.AdminClient, error) {
	c, err := a.p.Client(ctx, id)
	if err != nil {
		return nil, adminErr(err)
	}
	return adminClient(c), nil
}

func (a clientAdmin) Suspend(ctx context.Context, id, reason, by string) (*httpapi.AdminClient, error) {
	changed, err := a.p.SuspendClient(ctx, id, reason, by)
	if err != nil {
		return nil, adminErr(err)
	}
	c, err := a.Get(ctx, id)
	if err == nil && changed && c.SuspendedAt != nil {
		err = a.notify(ctx, id, webhook.EventClientSuspended, httpapi.ClientSuspended, reason, *c.SuspendedAt)
	}
	return c, err
}

func (a clientAdmin) Reinstate(ctx context.Context, id, reason, by string) (*httpapi.AdminClient, error) {
	changed, err := a.p.ReinstateClient(ctx, id, reason, by)
	if err != nil {
		return nil, adminErr(err)
	}
	if changed {
		if err := a.notify(ctx, id, webhook.EventClientReinstated, httpapi.ClientActive, reason, a.p.Now()); err != nil {
			return nil, err
		}
	}
	return a.Get(ctx, id)
}

// notify queues the app's signed client.* webhook and sends it now rather
// than at the next outbox round.
func (a clientAdmin) notify(ctx context.Context, id, event, status, reason string, at time.Time) error {
	if a.hooks == nil {
		return nil
	}
	queued, err := a.hooks.store.EnqueueClientEvent(ctx, id, event, status, reason, at)
	if err != nil {
		return fmt.Errorf("%s webhook: %w", event, err)
	}
	if queued {
		a.hooks.disp.Kick()
	}
	return nil
}

func (a clientAdmin) RevokeGrants(ctx context.Context, id, reason, by string) (int, error) {
	n, err := a.p.RevokeClientGrants(ctx, id, reason, by)
	if n > 0 && a.hooks != nil {
		a.hooks.disp.Kick() // tell the app now rather than at the next outbox round
	}
	return n, adminErr(err)
}

func (a clientAdmin) RotateSecret(ctx context.Context, id string, grace time.Duration, reason, by string) (string, time.Time, error) {
	switch {
	case grace == 0:
		grace = a.grace
	case grace < 0:
		grace = 0
	}
	secret, until, err := a.p.RotateClientSecret(ctx, id, grace, reason, by)
	return secret, until, adminErr(err)
}
