package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentgate/consentgate/internal/store"
)

// ErrUnknownClient is returned when registering a URL for a client that does
// not exist.
var ErrUnknownClient = errors.New("webhook: unknown client")

// ErrBadURL is returned for a webhook URL that is not an absolute http(s) URL.
var ErrBadURL = errors.New("webhook: the URL must be an absolute http or https URL without user info or fragment")

// Store keeps the registered URLs and the delivery outbox. The outbox scans
// read the consents table (never write it): a delivery is owed for what a
// consent's recorded state says, whichever node or path changed it.
type Store struct {
	db  *store.DB
	now func() time.Time
}

// NewStore returns a Store on db; now nil means time.Now.
func NewStore(db *store.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: func() time.Time { return now().UTC() }}
}

// CheckURL validates a webhook URL.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" || len(raw) > 2048 {
		return ErrBadURL
	}
	return nil
}

// SetURL registers or replaces the client's webhook URL. Revocations
// recorded before the first registration are not notified.
func (s *Store) SetURL(ctx context.Context, clientID, rawURL string) error {
	if err := CheckURL(rawURL); err != nil {
		return err
	}
	var n int64
	db := s.db.WithContext(ctx)
	if err := db.Raw(`SELECT COUNT(*) FROM oauth_clients WHERE id = ?`, clientID).Scan(&n).Error; err != nil {
		return fmt.Errorf("webhook.SetURL: %w", err)
	}
	if n == 0 {
		return ErrUnknownClient
	}
	now := store.Micros(s.now())
	err := db.Exec(`INSERT INTO client_webhooks (client_id, url, created_at, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (client_id) DO UPDATE SET url = excluded.url, updated_at = excluded.updated_at`,
		clientID, rawURL, now, now).Error
	if err != nil {
		return fmt.Errorf("webhook.SetURL: %w", err)
	}
	return nil
}

// RemoveURL unregisters the client's webhook; pending deliveries then give
// up at their next attempt. It reports whether there was one.
func (s *Store) RemoveURL(ctx context.Context, clientID string) (bool, error) {
	res := s.db.WithContext(ctx).Exec(`DELETE FROM client_webhooks WHERE client_id = ?`, clientID)
	if res.Error != nil {
		return false, fmt.Errorf("webhook.RemoveURL: %w", res.Error)
	}
	return res.RowsAffected > 0, nil
}

// URL returns the client's webhook URL, "" when it has none.
func (s *Store) URL(ctx context.Context, clientID string) (string, error) {
	var urls []string
	if err := s.db.WithContext(ctx).Raw(`SELECT url FROM client_webhooks WHERE client_id = ?`, clientID).
		Scan(&urls).Error; err != nil {
		return "", fmt.Errorf("webhook.URL: %w", err)
	}
	if len(urls) == 0 {
		return "", nil
	}
	return urls[0], nil
}

// Delivery is one event owed to an app, with the outcome of its attempts.
type Delivery struct {
	ID, ClientID, GrantID, Event string
	Body                         []byte
	Attempts                     int
	NextAttemptAt                *time.Time // nil once delivered or given up
	DeliveredAt                  *time.Time
	LastStatus                   int    // HTTP status of the last attempt, 0 if none answered
	LastError                    string // why the last attempt failed
	CreatedAt                    time.Time
}

// State is "delivered", "pending" or "failed" (given up).
func (d *Delivery) State() string {
	switch {
	case d.DeliveredAt != nil:
		return "delivered"
	case d.NextAttemptAt != nil:
		return "pending"
	}
	return "failed"
}

type deliveryRow struct {
	ID, ClientID, GrantID, Event, Body string
	Attempts                           int
	NextAttemptAt, DeliveredAt         *int64
	LastStatus                         int
	LastError                          string
	CreatedAt                          int64
}

const deliveryColumns = "id, client_id, COALESCE(grant_id, '') AS grant_id, event, body, attempts, next_attempt_at, delivered_at, last_status, last_error, created_at"

func (r *deliveryRow) delivery() Delivery {
	return Delivery{ID: r.ID, ClientID: r.ClientID, GrantID: r.GrantID, Event: r.Event, Body: []byte(r.Body),
		Attempts: r.Attempts, NextAttemptAt: store.FromMicrosPtr(r.NextAttemptAt), DeliveredAt: store.FromMicrosPtr(r.DeliveredAt),
		LastStatus: r.LastStatus, LastError: r.LastError, CreatedAt: store.FromMicros(r.CreatedAt)}
}

// Deliveries returns the newest deliveries, of one client when clientID is
// set, at most limit.
func (s *Store) Deliveries(ctx context.Context, clientID string, limit int) ([]Delivery, error) {
	q, args := `SELECT `+deliveryColumns+` FROM webhook_deliveries`, []any{}
	if clientID != "" {
		q += ` WHERE client_id = ?`
		args = append(args, clientID)
	}
	args = append(args, limit)
	var rows []deliveryRow
	if err := s.db.WithContext(ctx).Raw(q+` ORDER BY created_at DESC, id DESC LIMIT ?`, args...).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("webhook.Deliveries: %w", err)
	}
	out := make([]Delivery, len(rows))
	for i := range rows {
		out[i] = rows[i].delivery()
	}
	return out, nil
}

// grantRow is what a delivery body says about a grant.
type grantRow struct {
	ID, ClientID, Status, Scopes, Purpose string
	ExpiresAt, RevokedAt                  *int64
	RevokedBy                             *string
}

// Body is the JSON a delivery sends (docs/webhooks.md).
type Body struct {
	ID        string `json:"id"` // the delivery id, also the signature's jti
	Type      string `json:"type"`
	CreatedAt string `json:"created_at"`
	// Grant is the grant a consent.* event is about (absent from client.*
	// events).
	Grant GrantBody `json:"grant,omitzero"`
	// Client is the app a client.* event is about (absent from consent.*
	// events).
	Client *ClientBody `json:"client,omitempty"`
}

// ClientBody is the app a client.suspended or client.reinstated event is
// about.
type ClientBody struct {
	ClientID string `json:"client_id"`
	Status   string `json:"status"` // suspended | active
	Reason   string `json:"reason,omitempty"`
	At       string `json:"at"`
}

// EnqueueClientEvent records a client.suspended or client.reinstated
// delivery for the app, if it registered a webhook URL, and reports
// whether it did.
func (s *Store) EnqueueClientEvent(ctx context.Context, clientID, event, status, reason string, at time.Time) (bool, error) {
	if u, err := s.URL(ctx, clientID); err != nil || u == "" {
		return false, err
	}
	id := uuid.NewString()
	b, err := json.Marshal(Body{ID: id, Type: event, CreatedAt: at.UTC().Format(time.RFC3339),
		Client: &ClientBody{ClientID: clientID, Status: status, Reason: reason, At: at.UTC().Format(time.RFC3339Nano)}})
	if err != nil {
		return false, fmt.Errorf("webhook: body: %w", err)
	}
	now := s.now()
	if err := s.db.WithContext(ctx).Exec(`INSERT INTO webhook_deliveries (id, client_id, grant_id, event, term_expires_at, body,
			attempts, next_attempt_at, created_at)
		VALUES (?, ?, NULL, ?, ?, ?, 0, ?, ?)`,
		id, clientID, event, store.Micros(at), string(b), store.Micros(now), store.Micros(now)).Error; err != nil {
		return false, fmt.Errorf("webhook: enqueue %s: %w", event, err)
	}
	return true, nil
}

// Prune deletes the deliveries settled (delivered or given up) before
// before, and returns how many (webhook_deliveries_settled_idx).
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Exec(`DELETE FROM webhook_deliveries WHERE next_attempt_at IS NULL AND created_at < ?`,
		store.Micros(before))
	if res.Error != nil {
		return 0, fmt.Errorf("webhook: prune: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// GrantBody is the grant an event is about, as grant management shows it.
type GrantBody struct {
	GrantID   string   `json:"grant_id"`
	ClientID  string   `json:"client_id"`
	Status    string   `json:"status"`
	Purpose   string   `json:"purpose"`
	Scopes    []string `json:"scopes"`
	ExpiresAt *string  `json:"expires_at"`
	RevokedAt *string  `json:"revoked_at,omitempty"`
	RevokedBy string   `json:"revoked_by,omitempty"`
}

func rfc3339(us *int64) *string {
	if us == nil {
		return nil
	}
	s := store.FromMicros(*us).Format(time.RFC3339)
	return &s
}

// Outbox scans take at most this many grants per round; the rest follow in
// the next rounds.
const scanBatch = 500

// enqueue creates the deliveries owed for the events: consent.revoked for
// grants revoked in the lookback window (and after the client registered
// its webhook), consent.expiring for authorized grants that end within
// expiringWithin. The UNIQUE key makes a concurrent scan on another node
// harmless. It returns how many deliveries it created.
func (s *Store) enqueue(ctx context.Context, now time.Time, lookback, expiringWithin time.Duration) (int, error) {
	db := s.db.WithContext(ctx)
	var revoked, expiring []grantRow
	const cols = `SELECT c.id, c.client_id, c.status, c.scopes, c.purpose, c.expires_at, c.revoked_at, c.revoked_by
		FROM consents c JOIN client_webhooks w ON w.client_id = c.client_id `
	if err := db.Raw(cols+`WHERE c.status = ? AND c.revoked_at >= ? AND c.revoked_at >= w.created_at
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.grant_id = c.id AND d.event = ?)
		ORDER BY c.revoked_at LIMIT ?`,
		"revoked", store.Micros(now.Add(-lookback)), EventRevoked, scanBatch).Scan(&revoked).Error; err != nil {
		return 0, fmt.Errorf("webhook: scan revoked: %w", err)
	}
	if err := db.Raw(cols+`WHERE c.status = ? AND c.expires_at > ? AND c.expires_at <= ?
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.grant_id = c.id AND d.event = ? AND d.term_expires_at = c.expires_at)
		ORDER BY c.expires_at LIMIT ?`,
		"authorized", store.Micros(now), store.Micros(now.Add(expiringWithin)), EventExpiring, scanBatch).Scan(&expiring).Error; err != nil {
		return 0, fmt.Errorf("webhook: scan expiring: %w", err)
	}
	created := 0
	for _, batch := range []struct {
		event string
		rows  []grantRow
	}{{EventRevoked, revoked}, {EventExpiring, expiring}} {
		for _, g := range batch.rows {
			ok, err := s.insert(ctx, now, batch.event, g)
			if err != nil {
				return created, err
			}
			if ok {
				created++
			}
		}
	}
	return created, nil
}

func (s *Store) insert(ctx context.Context, now time.Time, event string, g grantRow) (bool, error) {
	id := uuid.NewString()
	body := Body{ID: id, Type: event, CreatedAt: now.Format(time.RFC3339), Grant: GrantBody{
		GrantID: g.ID, ClientID: g.ClientID, Status: g.Status, Purpose: g.Purpose, Scopes: strings.Fields(g.Scopes),
		ExpiresAt: rfc3339(g.ExpiresAt), RevokedAt: rfc3339(g.RevokedAt),
	}}
	if body.Grant.Scopes == nil {
		body.Grant.Scopes = []string{}
	}
	if g.RevokedBy != nil {
		body.Grant.RevokedBy = *g.RevokedBy
	}
	b, err := json.Marshal(body)
	if err != nil {
		return false, fmt.Errorf("webhook: body: %w", err)
	}
	var term int64
	if g.ExpiresAt != nil {
		term = *g.ExpiresAt
	}
	res := s.db.WithContext(ctx).Exec(`INSERT INTO webhook_deliveries (id, client_id, grant_id, event, term_expires_at, body,
			attempts, next_attempt_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT (grant_id, event, term_expires_at, account_id) DO NOTHING`,
		id, g.ClientID, g.ID, event, term, string(b), store.Micros(now), store.Micros(now))
	if res.Error != nil {
		return false, fmt.Errorf("webhook: enqueue: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// due returns deliveries whose next attempt is due at now, oldest first.
func (s *Store) due(ctx context.Context, now time.Time, limit int) ([]Delivery, error) {
	var rows []deliveryRow
	if err := s.db.WithContext(ctx).Raw(`SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`, store.Micros(now), limit).
		Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("webhook: due: %w", err)
	}
	out := make([]Delivery, len(rows))
	for i := range rows {
		out[i] = rows[i].delivery()
	}
	return out, nil
}

// claim takes the attempt of d for this node until lease: the conditional
// UPDATE succeeds on one node only, and if that node dies mid-attempt the
// lease runs out and another node retries (at least once, never two at a
// time).
func (s *Store) claim(ctx context.Context, d Delivery, lease time.Time) (bool, error) {
	res := s.db.WithContext(ctx).Exec(`UPDATE webhook_deliveries SET next_attempt_at = ?
		WHERE id = ? AND next_attempt_at = ? AND delivered_at IS NULL`,
		store.Micros(lease), d.ID, store.Micros(*d.NextAttemptAt))
	if res.Error != nil {
		return false, fmt.Errorf("webhook: claim: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// record stores an attempt's outcome: delivered, or failed with the next
// attempt at next (nil: given up).
func (s *Store) record(ctx context.Context, id string, now time.Time, delivered bool, status int, errText string, next *time.Time) error {
	var err error
	db := s.db.WithContext(ctx)
	if delivered {
		err = db.Exec(`UPDATE webhook_deliveries SET attempts = attempts + 1, delivered_at = ?, next_attempt_at = NULL,
			last_status = ?, last_error = '' WHERE id = ?`, store.Micros(now), status, id).Error
	} else {
		err = db.Exec(`UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?,
			last_status = ?, last_error = ? WHERE id = ?`, store.MicrosPtr(next), status, errText, id).Error
	}
	if err != nil {
		return fmt.Errorf("webhook: record attempt: %w", err)
	}
	return nil
}
