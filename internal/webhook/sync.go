package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/store"
)

// EventSyncAvailable tells an app that an account of one of its grants has
// new changes for GET /v1/accounts/{account_id}/transactions/sync.
const EventSyncAvailable = "transactions.sync_available"

// SyncCoalesce is the least time between two sync_available notices of
// one grant and account (SPEC §12: at most one a minute).
const SyncCoalesce = time.Minute

// scopeTransactions is the scope a grant needs to be told of changes.
const scopeTransactions = "transactions:read"

// SyncBody is the body of a transactions.sync_available delivery: which
// grant and account have changes, and when; never what changed.
type SyncBody struct {
	Type       string `json:"type"`
	GrantID    string `json:"grant_id"`
	AccountID  string `json:"account_id"`
	OccurredAt string `json:"occurred_at"`
}

// NoteSyncChanges is called inside the database transaction of a provider
// batch that changed the transactions of accountIDs: for every active grant
// with transactions:read on one of them, whose client has a webhook, it
// schedules a sync_available delivery unless one is already scheduled for
// later. A notice follows the previous one of its grant and account by
// SyncCoalesce at least; the conditional upsert on sync_notices decides
// this atomically, so batches on any number of nodes agree. Committed with
// the batch, or not at all. It returns how many deliveries it scheduled.
func NoteSyncChanges(tx *gorm.DB, accountIDs []string, now time.Time) (int, error) {
	if len(accountIDs) == 0 {
		return 0, nil
	}
	now = now.UTC()
	type grant struct {
		ID, ClientID, AccountID, Scopes string
	}
	var grants []grant
	if err := tx.Raw(`SELECT c.id, c.client_id, ca.account_id, c.scopes
		FROM consent_accounts ca JOIN consents c ON c.id = ca.consent_id
		JOIN client_webhooks w ON w.client_id = c.client_id
		JOIN oauth_clients oc ON oc.id = c.client_id
		WHERE ca.account_id IN ? AND c.status = ? AND c.expires_at > ? AND oc.suspended_at IS NULL
		ORDER BY c.id, ca.account_id`, accountIDs, "authorized", store.Micros(now)).Scan(&grants).Error; err != nil {
		return 0, fmt.Errorf("webhook.NoteSyncChanges: %w", err)
	}
	scheduled := 0
	for _, g := range grants {
		if !slices.Contains(strings.Fields(g.Scopes), scopeTransactions) {
			continue
		}
		var at []int64
		if err := tx.Raw(`INSERT INTO sync_notices (consent_id, account_id, notify_at) VALUES (?, ?, ?)
			ON CONFLICT (consent_id, account_id) DO UPDATE SET notify_at =
				CASE WHEN sync_notices.notify_at + ? > excluded.notify_at THEN sync_notices.notify_at + ? ELSE excluded.notify_at END
			WHERE sync_notices.notify_at < excluded.notify_at
			RETURNING notify_at`, g.ID, g.AccountID, store.Micros(now),
			SyncCoalesce.Microseconds(), SyncCoalesce.Microseconds()).Scan(&at).Error; err != nil {
			return scheduled, fmt.Errorf("webhook.NoteSyncChanges: %w", err)
		}
		if len(at) == 0 {
			continue // a notice is scheduled for later: it covers this change
		}
		id := uuid.NewString()
		body, err := json.Marshal(SyncBody{Type: EventSyncAvailable, GrantID: g.ID, AccountID: g.AccountID,
			OccurredAt: now.Format(time.RFC3339)})
		if err != nil {
			return scheduled, fmt.Errorf("webhook.NoteSyncChanges: %w", err)
		}
		if err := tx.Exec(`INSERT INTO webhook_deliveries (id, client_id, grant_id, event, term_expires_at, account_id, body,
				attempts, next_attempt_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`,
			id, g.ClientID, g.ID, EventSyncAvailable, at[0], g.AccountID, string(body), at[0], store.Micros(now)).Error; err != nil {
			return scheduled, fmt.Errorf("webhook.NoteSyncChanges: %w", err)
		}
		scheduled++
	}
	return scheduled, nil
}

// grantActive reports whether the grant is authorized and unexpired at
// now and its app not suspended by the bank: a sync_available notice for
// any other grant is dropped unsent.
func (s *Store) grantActive(ctx context.Context, grantID string, now time.Time) (bool, error) {
	var n int64
	if err := s.db.WithContext(ctx).Raw(`SELECT COUNT(*) FROM consents c JOIN oauth_clients oc ON oc.id = c.client_id
		WHERE c.id = ? AND c.status = ? AND c.expires_at > ? AND oc.suspended_at IS NULL`,
		grantID, "authorized", store.Micros(now)).Scan(&n).Error; err != nil {
		return false, fmt.Errorf("webhook: grant state: %w", err)
	}
	return n == 1, nil
}
