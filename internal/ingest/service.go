package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/store"
)

// Service validates and applies provider batches on the shared database.
type Service struct {
	db       *store.DB
	accounts *accounts.SQLStore
	now      func() time.Time
}

// NewService returns a Service on db; now is the clock (nil: time.Now).
func NewService(db *store.DB, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, accounts: accounts.NewSQLStore(db), now: func() time.Time { return now().UTC() }}
}

// RegisterClient makes OAuth client clientID the data provider of
// institutionID (which must exist): its client_credentials tokens with
// provider:write then write that institution's data, and only that. A
// client provides for one institution; registering it again moves it.
func (s *Service) RegisterClient(ctx context.Context, clientID, institutionID string) error {
	err := s.db.Tx(ctx, func(tx *gorm.DB) error { return s.RegisterClientTx(tx, clientID, institutionID) })
	if err != nil {
		return fmt.Errorf("ingest.RegisterClient %s: %w", clientID, err)
	}
	return nil
}

// RegisterClientTx is RegisterClient inside the caller's transaction tx, so
// that creating a provider client and mapping it to its institution commit
// together or not at all.
func (s *Service) RegisterClientTx(tx *gorm.DB, clientID, institutionID string) error {
	if clientID == "" {
		return errors.New("ingest.RegisterClient: empty client id")
	}
	if !ValidInstitutionID(institutionID) {
		return fmt.Errorf("ingest.RegisterClient: institution id %q: want 1-64 letters, digits, '_', '-' or '.'", institutionID)
	}
	if _, ok, err := s.accounts.Bulk(tx).InstitutionName(institutionID); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%w %q: create it first (a provider batch or consentgate import with an institution record)", ErrUnknownInstitution, institutionID)
	}
	return tx.Exec(`INSERT INTO provider_clients (client_id, institution_id, created_at) VALUES (?, ?, ?)
		ON CONFLICT (client_id) DO UPDATE SET institution_id = excluded.institution_id`,
		clientID, institutionID, store.Micros(s.now())).Error
}

// InstitutionOf returns the institution client writes for, or
// ErrNotRegistered.
func (s *Service) InstitutionOf(ctx context.Context, clientID string) (string, error) {
	var ids []string
	if err := s.db.WithContext(ctx).Raw(`SELECT institution_id FROM provider_clients WHERE client_id = ?`, clientID).
		Scan(&ids).Error; err != nil {
		return "", fmt.Errorf("ingest.InstitutionOf: %w", err)
	}
	if len(ids) == 0 {
		return "", ErrNotRegistered
	}
	return ids[0], nil
}

// The customers and reversals tables, inside the batch's transaction.

type customerRow struct {
	ID          string
	Username    string
	DisplayName string
	IDPSubject  *string `gorm:"column:idp_subject"`
}

// existingCustomers returns the customers whose id or username is among
// the given ones, by id.
func existingCustomers(tx *gorm.DB, ids, usernames []string) (map[string]customerRow, error) {
	out := map[string]customerRow{}
	for start := 0; start < len(ids); start += 100 {
		end := min(start+100, len(ids))
		var rows []customerRow
		if err := tx.Raw(`SELECT id, username, display_name, idp_subject FROM customers WHERE id IN ? OR username IN ?`,
			ids[start:end], usernames[start:end]).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("ingest: look up customers: %w", err)
		}
		for _, r := range rows {
			out[r.ID] = r
		}
	}
	return out, nil
}

// idpSubjectOwners returns the customer holding each of subjects, by subject.
func idpSubjectOwners(tx *gorm.DB, subjects []string) (map[string]string, error) {
	out := map[string]string{}
	for start := 0; start < len(subjects); start += 200 {
		var rows []struct {
			ID         string
			IDPSubject string `gorm:"column:idp_subject"`
		}
		if err := tx.Raw(`SELECT id, idp_subject FROM customers WHERE idp_subject IN ?`,
			subjects[start:min(start+200, len(subjects))]).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("ingest: look up IdP subjects: %w", err)
		}
		for _, r := range rows {
			out[r.IDPSubject] = r.ID
		}
	}
	return out, nil
}

// customersExist returns which of ids are customers.
func customersExist(tx *gorm.DB, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for start := 0; start < len(ids); start += 200 {
		var found []string
		if err := tx.Raw(`SELECT id FROM customers WHERE id IN ?`, ids[start:min(start+200, len(ids))]).Scan(&found).Error; err != nil {
			return nil, fmt.Errorf("ingest: look up customers: %w", err)
		}
		for _, id := range found {
			out[id] = true
		}
	}
	return out, nil
}

// upsertCustomers creates provider customers (with an unusable password)
// or renames them. The update never touches another login's row.
func upsertCustomers(tx *gorm.DB, cs []customerRec, now int64) error {
	for start := 0; start < len(cs); start += 100 {
		chunk := cs[start:min(start+100, len(cs))]
		var sql strings.Builder
		sql.WriteString("INSERT INTO customers (id, username, password_hash, display_name, created_at, idp_subject) VALUES ")
		args := make([]any, 0, len(chunk)*6)
		sql.WriteString(store.Placeholders(len(chunk), 6))
		for _, c := range chunk {
			var subject any
			if c.idpSubject != "" {
				subject = c.idpSubject
			}
			args = append(args, c.id, c.username, UnusablePasswordHash, c.displayName, now, subject)
		}
		sql.WriteString(` ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, idp_subject = excluded.idp_subject
			WHERE customers.username = excluded.username`)
		res := tx.Exec(sql.String(), args...)
		if res.Error != nil {
			if store.IsUniqueViolation(res.Error) {
				return fmt.Errorf("ingest: a customer username or IdP subject was taken concurrently: %w", accounts.ErrConflict)
			}
			return fmt.Errorf("ingest: write customers: %w", res.Error)
		}
		if res.RowsAffected != int64(len(chunk)) {
			return fmt.Errorf("ingest: a customer id belongs to another login: %w", accounts.ErrConflict)
		}
	}
	return nil
}

// reversedIDs returns which of the transaction ids were reversed. It asks
// for thousands of ids at once: PostgreSQL gets them as one array, SQLite as
// an IN list, both on the transaction's connection (gorm's SQL builder
// costs more than the query at this size).
func reversedIDs(tx *gorm.DB, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	conn, ctx := tx.Statement.ConnPool, tx.Statement.Context
	pg := tx.Dialector.Name() == string(store.Postgres)
	chunkSize := 200 // SQLite binds parameters in quadratic time: keep lists short
	if pg {
		chunkSize = 5000
	}
	for start := 0; start < len(ids); start += chunkSize {
		chunk := ids[start:min(start+chunkSize, len(ids))]
		q := `SELECT transaction_id FROM provider_reversals WHERE transaction_id `
		var args []any
		if pg {
			q, args = q+"= ANY($1)", []any{chunk}
		} else {
			q += "IN (" + strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",") + ")"
			for _, id := range chunk {
				args = append(args, id)
			}
		}
		if err := func() error {
			rows, err := conn.QueryContext(ctx, q, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				out[id] = true
			}
			return rows.Err()
		}(); err != nil {
			return nil, fmt.Errorf("ingest: look up reversals: %w", err)
		}
	}
	return out, nil
}

// recordReversals remembers reversed transaction ids, so that they are
// never reused and a repeated reversal changes nothing.
func recordReversals(tx *gorm.DB, ts []accounts.Transaction, now int64) error {
	for start := 0; start < len(ts); start += 100 {
		chunk := ts[start:min(start+100, len(ts))]
		var sql strings.Builder
		sql.WriteString("INSERT INTO provider_reversals (transaction_id, account_id, reversed_at) VALUES ")
		args := make([]any, 0, len(chunk)*3)
		sql.WriteString(store.Placeholders(len(chunk), 3))
		for _, t := range chunk {
			args = append(args, t.ID, t.AccountID, now)
		}
		if err := tx.Exec(sql.String(), args...).Error; err != nil {
			if store.IsUniqueViolation(err) {
				return fmt.Errorf("ingest: a transaction was reversed concurrently: %w", accounts.ErrConflict)
			}
			return fmt.Errorf("ingest: record reversals: %w", err)
		}
	}
	return nil
}
