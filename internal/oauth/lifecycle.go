package oauth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ory/fosite"

	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/store"
)

// Client lifecycle (SPEC §11): the bank suspends, reinstates and rotates
// the secret of a registered app, and ends all of its grants. Suspension is
// a column of oauth_clients; it moves the row's revision, which the token
// check reads in its one statement (liveTokenQuery, tokenQuery): it binds
// every node from the next request.

// Client lifecycle audit event types.
const (
	EventClientRegistered    = "client.registered"
	EventClientUpdated       = "client.updated"
	EventClientSuspended     = "client.suspended"
	EventClientReinstated    = "client.reinstated"
	EventClientSecretRotated = "client.secret_rotated"
	EventClientDeleted       = "client.deleted"
)

// DefaultSecretGrace is how long a rotated-out client secret keeps working
// when the operator names no grace period.
const DefaultSecretGrace = 24 * time.Hour

// MaxSecretGrace bounds the grace period of a rotated-out secret.
const MaxSecretGrace = 30 * 24 * time.Hour

// ErrClientNotFound is returned by the lifecycle operations for an unknown
// client id.
var ErrClientNotFound = errors.New("oauth: no such client")

// ErrNoSecret is returned by RotateClientSecret for a client that
// authenticates without a secret (private_key_jwt).
var ErrNoSecret = errors.New("oauth: this client authenticates with private_key_jwt and has no secret to rotate")

// Suspended reports whether the bank has suspended the client.
func (c *Client) Suspended() bool { return c.SuspendedAt != nil }

// suspendedError is what a suspended client gets at PAR and the token
// endpoint (RFC 6749 §5.2 unauthorized_client).
func suspendedError() error {
	return fosite.ErrUnauthorizedClient.WithHint("The bank has suspended this app's access; contact the bank's operations team.")
}

// previousSecretValid reports whether secret is the client's rotated-out
// secret and its grace period is still running.
func (p *Provider) previousSecretValid(ctx context.Context, c *Client, secret string) bool {
	if len(c.PreviousSecretHash) == 0 || c.PreviousSecretExpiresAt == nil || !p.now().Before(*c.PreviousSecretExpiresAt) {
		return false
	}
	return p.hasher.Compare(ctx, c.PreviousSecretHash, []byte(secret)) == nil
}

func optTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := store.FromMicros(v.Int64)
	return &t
}

// ClientInfo is a registration as the bank's operators see it.
type ClientInfo struct {
	*Client
	// ActiveGrants counts the client's authorized, unexpired consents.
	ActiveGrants int64
}

// Client returns a registration with its live grant count.
func (p *Provider) Client(ctx context.Context, id string) (*ClientInfo, error) {
	c, err := p.store.client(ctx, id)
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, ErrClientNotFound
	} else if err != nil {
		return nil, fmt.Errorf("oauth.Client: %w", err)
	}
	counts, err := p.grantCounts(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	return &ClientInfo{Client: c, ActiveGrants: counts[id]}, nil
}

// ListClients returns up to limit registrations in id order after the id
// after ("" from the start), with their live grant counts, and whether more
// follow.
func (p *Provider) ListClients(ctx context.Context, after string, limit int) ([]*ClientInfo, bool, error) {
	rows, err := p.store.sqlConn(ctx).QueryContext(ctx,
		`SELECT `+clientColumns+` FROM oauth_clients k WHERE k.id > $1 ORDER BY k.id LIMIT $2`, after, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("oauth.ListClients: %w", err)
	}
	defer rows.Close()
	var out []*ClientInfo
	for rows.Next() {
		c, err := scanClient(rows.Scan)
		if err != nil {
			return nil, false, fmt.Errorf("oauth.ListClients: %w", err)
		}
		out = append(out, &ClientInfo{Client: c})
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("oauth.ListClients: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	ids := make([]string, len(out))
	for i, c := range out {
		ids[i] = c.ID
	}
	counts, err := p.grantCounts(ctx, ids)
	if err != nil {
		return nil, false, err
	}
	for _, c := range out {
		c.ActiveGrants = counts[c.ID]
	}
	return out, more, nil
}

// grantCounts counts the authorized, unexpired consents of each client
// (consents_client_status_idx).
func (p *Provider) grantCounts(ctx context.Context, ids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		ClientID string
		N        int64
	}
	err := p.store.db.WithContext(ctx).Raw(`SELECT client_id, COUNT(*) AS n FROM consents
		WHERE client_id IN ? AND status = ? AND (expires_at IS NULL OR expires_at > ?) GROUP BY client_id`,
		ids, string(consent.Authorized), store.Micros(p.now())).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("oauth: grant counts: %w", err)
	}
	for _, r := range rows {
		out[r.ClientID] = r.N
	}
	return out, nil
}

// SuspendClient suspends a client from now on: its tokens are refused on
// every node from the next request, PAR and the token endpoint refuse it,
// and its consents keep their status for a reinstatement. by names the
// operator. It reports false when the client was already suspended.
func (p *Provider) SuspendClient(ctx context.Context, id, reason, by string) (bool, error) {
	if _, err := p.Client(ctx, id); err != nil {
		return false, err
	}
	res := p.store.db.WithContext(ctx).Exec(`UPDATE oauth_clients SET suspended_at = ?, suspended_reason = ?, suspended_by = ?
		WHERE id = ? AND suspended_at IS NULL`, store.Micros(p.now()), reason, by, id)
	if res.Error != nil {
		return false, fmt.Errorf("oauth.SuspendClient: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return false, nil
	}
	p.emit(ctx, Event{Type: EventClientSuspended, ClientID: id, Reason: operatorReason(by, reason)})
	return true, nil
}

// ReinstateClient lifts a suspension: the client's unexpired consents, and
// the unexpired tokens of them, work again. It reports false when the
// client was not suspended.
func (p *Provider) ReinstateClient(ctx context.Context, id, reason, by string) (bool, error) {
	if _, err := p.Client(ctx, id); err != nil {
		return false, err
	}
	res := p.store.db.WithContext(ctx).Exec(`UPDATE oauth_clients SET suspended_at = NULL, suspended_reason = '', suspended_by = ''
		WHERE id = ? AND suspended_at IS NOT NULL`, id)
	if res.Error != nil {
		return false, fmt.Errorf("oauth.ReinstateClient: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return false, nil
	}
	p.emit(ctx, Event{Type: EventClientReinstated, ClientID: id, Reason: operatorReason(by, reason)})
	return true, nil
}

// RotateClientSecret gives a client_secret_basic client a new secret
// (returned once; only its hash is stored). The current one keeps working
// for grace, then only the new one does.
func (p *Provider) RotateClientSecret(ctx context.Context, id string, grace time.Duration, reason, by string) (string, time.Time, error) {
	c, err := p.Client(ctx, id)
	if err != nil {
		return "", time.Time{}, err
	}
	if c.AuthMethod != AuthClientSecretBasic {
		return "", time.Time{}, ErrNoSecret
	}
	secret := randomToken(32)
	h, _ := p.hasher.Hash(ctx, []byte(secret))
	now := p.now()
	until := now.Add(grace)
	// The compare-and-set on the current hash keeps two concurrent
	// rotations from both believing they won.
	res := p.store.db.WithContext(ctx).Exec(`UPDATE oauth_clients SET previous_secret_hash = secret_hash,
		previous_secret_expires_at = ?, secret_hash = ?, secret_rotated_at = ? WHERE id = ? AND secret_hash = ?`,
		store.Micros(until), string(h), store.Micros(now), id, string(c.SecretHash))
	if res.Error != nil {
		return "", time.Time{}, fmt.Errorf("oauth.RotateClientSecret: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return "", time.Time{}, errors.New("oauth.RotateClientSecret: the secret changed concurrently; rotate again")
	}
	why := "previous secret valid until " + until.Format(time.RFC3339)
	if reason != "" {
		why = reason + " (" + why + ")"
	}
	p.emit(ctx, Event{Type: EventClientSecretRotated, ClientID: id, Reason: operatorReason(by, why)})
	return secret, until, nil
}

// RevokeClientGrants ends every live grant of a client for good, each with
// its tokens, a consent.revoked event naming by, and (through the outbox) a
// webhook. It returns how many grants it ended.
func (p *Provider) RevokeClientGrants(ctx context.Context, id, reason, by string) (int, error) {
	return p.revokeClientGrants(ctx, id, operatorReason(by, reason))
}

// revokeClientGrants ends every live grant of a client, each recorded as
// revoked by revokedBy.
func (p *Provider) revokeClientGrants(ctx context.Context, id, revokedBy string) (int, error) {
	if _, err := p.Client(ctx, id); err != nil {
		return 0, err
	}
	var grants []struct {
		ID         string
		CustomerID *string
	}
	if err := p.store.db.WithContext(ctx).Raw(`SELECT id, customer_id FROM consents WHERE client_id = ? AND status IN (?, ?)`,
		id, string(consent.Authorized), string(consent.AwaitingAuthorization)).Scan(&grants).Error; err != nil {
		return 0, fmt.Errorf("oauth.RevokeClientGrants: %w", err)
	}
	for i, g := range grants {
		customer := ""
		if g.CustomerID != nil {
			customer = *g.CustomerID
		}
		if err := p.endGrant(ctx, g.ID, id, customer, revokedBy); err != nil {
			return i, fmt.Errorf("oauth.RevokeClientGrants: %w", err)
		}
	}
	return len(grants), nil
}

// operatorReason is the audit reason of an operator's action: who did it
// and why.
func operatorReason(by, reason string) string {
	if reason == "" {
		return "operator " + by
	}
	return "operator " + by + ": " + reason
}

// Now is the provider's clock (the time lifecycle changes are stamped with).
func (p *Provider) Now() time.Time { return p.now() }

// SuspendedClients reports which of the given clients the bank has
// suspended, for the customer's dashboard (read live, like the token
// check).
func (p *Provider) SuspendedClients(ctx context.Context, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []string
	if err := p.store.db.WithContext(ctx).Raw(`SELECT id FROM oauth_clients WHERE id IN ? AND suspended_at IS NOT NULL`, ids).
		Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("oauth.SuspendedClients: %w", err)
	}
	for _, id := range rows {
		out[id] = true
	}
	return out, nil
}
