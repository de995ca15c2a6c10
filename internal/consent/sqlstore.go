package consent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/store"
)

// ErrNotFound is returned for an unknown consent id.
var ErrNotFound = errors.New("consent not found")

// ErrNotAwaiting is returned when deciding on a consent that is no longer
// awaiting authorization.
var ErrNotAwaiting = errors.New("consent is not awaiting authorization")

// ErrForeignAccount is returned when approving with an account that is not
// the customer's.
var ErrForeignAccount = errors.New("account does not belong to the customer")

// SQLStore implements Store on the shared database.
type SQLStore struct{ db *store.DB }

var _ Store = (*SQLStore)(nil)

// NewSQLStore returns a Store on db.
func NewSQLStore(db *store.DB) *SQLStore { return &SQLStore{db: db} }

type row struct {
	ID              string
	ClientID        string
	CustomerID      *string
	Status          string
	Scopes          string
	Purpose         string
	HistoryDays     int
	DurationSeconds int64
	CreatedAt       int64
	AuthorizedAt    *int64
	ExpiresAt       *int64
	RevokedAt       *int64
	RevokedBy       *string
	UpdatedAt       int64
}

const columns = "id, client_id, customer_id, status, scopes, purpose, history_days, duration_seconds, created_at, authorized_at, expires_at, revoked_at, revoked_by, updated_at"

func (r *row) consent() *Consent {
	c := &Consent{
		ID: r.ID, ClientID: r.ClientID, Status: Status(r.Status),
		Scopes: strings.Fields(r.Scopes), Purpose: r.Purpose, HistoryDays: r.HistoryDays,
		Duration:     time.Duration(r.DurationSeconds) * time.Second,
		CreatedAt:    store.FromMicros(r.CreatedAt),
		AuthorizedAt: store.FromMicrosPtr(r.AuthorizedAt),
		ExpiresAt:    store.FromMicrosPtr(r.ExpiresAt),
		RevokedAt:    store.FromMicrosPtr(r.RevokedAt),
		UpdatedAt:    store.FromMicros(r.UpdatedAt),
	}
	if r.CustomerID != nil {
		c.CustomerID = *r.CustomerID
	}
	if r.RevokedBy != nil {
		c.RevokedBy = *r.RevokedBy
	}
	return c
}

// Create implements Store.
func (s *SQLStore) Create(ctx context.Context, c *Consent) error {
	now := store.Micros(c.CreatedAt)
	err := s.db.WithContext(ctx).Exec(
		`INSERT INTO consents (id, client_id, status, scopes, purpose, history_days, duration_seconds, created_at, updated_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.ClientID, string(AwaitingAuthorization), strings.Join(c.Scopes, " "), c.Purpose,
		c.HistoryDays, int64(c.Duration/time.Second), now, now).Error
	if err != nil {
		return fmt.Errorf("consent.Create: %w", err)
	}
	c.Status = AwaitingAuthorization
	return nil
}

// Get implements Store.
func (s *SQLStore) Get(ctx context.Context, id string) (*Consent, error) {
	return s.get(s.db.WithContext(ctx), id)
}

// get loads a consent with its accounts in one query (a LEFT JOIN: one row
// per account, or one row without). The data API loads the consent of
// every call, so this is straight database/sql on tx's connection, without
// gorm's statement builder and reflective scanning; $n placeholders are
// positional in both drivers.
func (s *SQLStore) get(tx *gorm.DB, id string) (*Consent, error) {
	rows, err := tx.Statement.ConnPool.QueryContext(tx.Statement.Context, `SELECT c.id, c.client_id, c.customer_id, c.status,
			c.scopes, c.purpose, c.history_days, c.duration_seconds, c.created_at, c.authorized_at, c.expires_at,
			c.revoked_at, c.revoked_by, c.updated_at, ca.account_id
		FROM consents c LEFT JOIN consent_accounts ca ON ca.consent_id = c.id
		WHERE c.id = $1 ORDER BY ca.account_id`, id)
	if err != nil {
		return nil, fmt.Errorf("consent.Get: %w", err)
	}
	defer rows.Close()
	var c *Consent
	for rows.Next() {
		var (
			r       row
			account sql.NullString
		)
		if err := rows.Scan(&r.ID, &r.ClientID, &r.CustomerID, &r.Status, &r.Scopes, &r.Purpose, &r.HistoryDays,
			&r.DurationSeconds, &r.CreatedAt, &r.AuthorizedAt, &r.ExpiresAt, &r.RevokedAt, &r.RevokedBy, &r.UpdatedAt,
			&account); err != nil {
			return nil, fmt.Errorf("consent.Get: %w", err)
		}
		if c == nil {
			c = r.consent()
			c.AccountIDs = []string{}
		}
		if account.Valid {
			c.AccountIDs = append(c.AccountIDs, account.String)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("consent.Get: %w", err)
	}
	if c == nil {
		return nil, ErrNotFound
	}
	return c, nil
}

// Authorize implements Store.
func (s *SQLStore) Authorize(ctx context.Context, id, customerID string, accountIDs []string, now time.Time) (*Consent, error) {
	var out *Consent
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		c, err := s.get(tx, id)
		if err != nil {
			return err
		}
		if c.Status != AwaitingAuthorization {
			return ErrNotAwaiting
		}
		exp := store.Micros(now.Add(c.Duration))
		res := tx.Exec(`UPDATE consents SET status = ?, customer_id = ?, authorized_at = ?, expires_at = ?, updated_at = ?
			WHERE id = ? AND status = ?`,
			string(Authorized), customerID, store.Micros(now), exp, store.Micros(now), id, string(AwaitingAuthorization))
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return ErrNotAwaiting
		}
		for _, a := range accountIDs {
			// Only the approving customer's own accounts can be linked.
			res := tx.Exec(`INSERT INTO consent_accounts (consent_id, account_id)
				SELECT ?, id FROM accounts WHERE id = ? AND customer_id = ?`, id, a, customerID)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected != 1 {
				return ErrForeignAccount
			}
		}
		out, err = s.get(tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("consent.Authorize: %w", err)
	}
	return out, nil
}

// Reject implements Store.
func (s *SQLStore) Reject(ctx context.Context, id, customerID string, now time.Time) error {
	res := s.db.WithContext(ctx).Exec(`UPDATE consents SET status = ?, customer_id = ?, updated_at = ? WHERE id = ? AND status = ?`,
		string(Rejected), customerID, store.Micros(now), id, string(AwaitingAuthorization))
	if res.Error != nil {
		return fmt.Errorf("consent.Reject: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("consent.Reject: %w", ErrNotAwaiting)
	}
	return nil
}

// Revoke implements Store.
func (s *SQLStore) Revoke(ctx context.Context, id, by string, now time.Time) (bool, error) {
	res := s.db.WithContext(ctx).Exec(`UPDATE consents SET status = ?, revoked_at = ?, revoked_by = ?, updated_at = ?
		WHERE id = ? AND status IN (?, ?)`,
		string(Revoked), store.Micros(now), by, store.Micros(now), id, string(Authorized), string(AwaitingAuthorization))
	if res.Error != nil {
		return false, fmt.Errorf("consent.Revoke: %w", res.Error)
	}
	return res.RowsAffected > 0, nil
}

// ListByCustomer implements Store.
func (s *SQLStore) ListByCustomer(ctx context.Context, customerID string) ([]*Consent, error) {
	var rows []row
	db := s.db.WithContext(ctx)
	if err := db.Raw(`SELECT `+columns+` FROM consents WHERE customer_id = ? ORDER BY created_at DESC, id DESC`, customerID).
		Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("consent.ListByCustomer: %w", err)
	}
	out := make([]*Consent, len(rows))
	byID := make(map[string]*Consent, len(rows))
	ids := make([]string, len(rows))
	for i := range rows {
		out[i] = rows[i].consent()
		byID[out[i].ID] = out[i]
		ids[i] = out[i].ID
	}
	if len(ids) == 0 {
		return out, nil
	}
	var links []struct{ ConsentID, AccountID string }
	if err := db.Raw(`SELECT consent_id, account_id FROM consent_accounts WHERE consent_id IN ? ORDER BY account_id`, ids).
		Scan(&links).Error; err != nil {
		return nil, fmt.Errorf("consent.ListByCustomer accounts: %w", err)
	}
	for _, l := range links {
		byID[l.ConsentID].AccountIDs = append(byID[l.ConsentID].AccountIDs, l.AccountID)
	}
	return out, nil
}

// ExpireDue implements Store.
func (s *SQLStore) ExpireDue(ctx context.Context, now time.Time) ([]*Consent, error) {
	var rows []row
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT `+columns+` FROM consents WHERE status = ? AND expires_at <= ?`,
			string(Authorized), store.Micros(now)).Scan(&rows).Error; err != nil {
			return err
		}
		var kept []row
		for _, r := range rows {
			res := tx.Exec(`UPDATE consents SET status = ?, updated_at = ? WHERE id = ? AND status = ?`,
				string(Expired), store.Micros(now), r.ID, string(Authorized))
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 1 { // another node may have expired it first
				r.Status = string(Expired)
				kept = append(kept, r)
			}
		}
		rows = kept
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("consent.ExpireDue: %w", err)
	}
	out := make([]*Consent, len(rows))
	for i := range rows {
		out[i] = rows[i].consent()
	}
	return out, nil
}
