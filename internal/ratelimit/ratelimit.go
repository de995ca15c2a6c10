// Package ratelimit limits each client to N requests per second across
// every node (SPEC §11): one shared counter per client and one-second window
// in the database, so two nodes together admit N, not 2N. It decides; it
// does not answer HTTP or audit (the callers do both).
package ratelimit

import (
	"context"
	"fmt"
	"gorm.io/gorm"
	"sync"
	"time"

	"github.com/consentgate/consentgate/internal/store"
)

// overrideRefresh is how often a node re-reads the per-client overrides.
const overrideRefresh = 5 * time.Second

// Limiter admits at most a client's limit of requests per one-second window
// (bursts up to the limit), counted in the database shared by every node.
type Limiter struct {
	db       *store.DB
	perSec   int // the server default; 0 means unlimited
	now      func() time.Time
	mu       sync.Mutex
	override map[string]int
	loadedAt time.Time
}

// New returns a limiter with a default of perSecond requests per second per
// client (0: unlimited unless a client has its own limit).
func New(db *store.DB, perSecond int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{db: db, perSec: perSecond, now: now}
}

// limitFor is clientID's limit: its override, else the default.
func (l *Limiter) limitFor(ctx context.Context, clientID string) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.override == nil || l.now().Sub(l.loadedAt) >= overrideRefresh {
		var rows []struct {
			ClientID  string `gorm:"column:client_id"`
			PerSecond int    `gorm:"column:per_second"`
		}
		if err := l.db.WithContext(ctx).Raw(`SELECT client_id, per_second FROM client_rate_limits`).Scan(&rows).Error; err != nil {
			return 0, fmt.Errorf("ratelimit: read overrides: %w", err)
		}
		l.override = make(map[string]int, len(rows))
		for _, r := range rows {
			l.override[r.ClientID] = r.PerSecond
		}
		l.loadedAt = l.now()
	}
	if n, ok := l.override[clientID]; ok {
		return n, nil
	}
	return l.perSec, nil
}

// Allow counts one request of clientID and returns how long it must wait
// when it is over its limit (0: admitted). An unlimited client costs no
// database write.
func (l *Limiter) Allow(ctx context.Context, clientID string) (time.Duration, error) {
	if clientID == "" {
		return 0, nil
	}
	limit, err := l.limitFor(ctx, clientID)
	if err != nil || limit <= 0 {
		return 0, err
	}
	now := l.now()
	window := now.Unix()
	var count []int64
	if err := l.db.WithContext(ctx).Raw(`INSERT INTO rate_limit_windows (client_id, window_start, count) VALUES (?, ?, 1)
		ON CONFLICT (client_id, window_start) DO UPDATE SET count = rate_limit_windows.count + 1
		RETURNING count`, clientID, window).Scan(&count).Error; err != nil {
		return 0, fmt.Errorf("ratelimit: count: %w", err)
	}
	if len(count) != 1 || count[0] <= int64(limit) {
		return 0, nil
	}
	return time.Unix(window+1, 0).Sub(now), nil
}

// RetryAfterSeconds is wait rounded up to whole seconds (at least 1), for
// the Retry-After header.
func RetryAfterSeconds(wait time.Duration) int {
	return max(1, int((wait+time.Second-1)/time.Second))
}

// Prune deletes the windows that ended more than a minute ago.
func (l *Limiter) Prune(ctx context.Context) error {
	if err := l.db.WithContext(ctx).Exec(`DELETE FROM rate_limit_windows WHERE window_start < ?`,
		l.now().Add(-time.Minute).Unix()).Error; err != nil {
		return fmt.Errorf("ratelimit: prune: %w", err)
	}
	return nil
}

// SetClientLimit stores clientID's own limit (requests per second, 0:
// unlimited), replacing the default for it. Nodes apply it within seconds.
func SetClientLimit(ctx context.Context, db *store.DB, clientID string, perSecond int) error {
	return SetClientLimitTx(db.WithContext(ctx), clientID, perSecond)
}

// SetClientLimitTx is SetClientLimit inside tx, so that a client and its
// limit are registered together or not at all.
func SetClientLimitTx(tx *gorm.DB, clientID string, perSecond int) error {
	if perSecond < 0 {
		return fmt.Errorf("ratelimit: a rate limit cannot be negative (%d)", perSecond)
	}
	if err := tx.Exec(`INSERT INTO client_rate_limits (client_id, per_second) VALUES (?, ?)
		ON CONFLICT (client_id) DO UPDATE SET per_second = excluded.per_second`, clientID, perSecond).Error; err != nil {
		return fmt.Errorf("ratelimit: set limit of %s: %w", clientID, err)
	}
	return nil
}
