package consent

import (
	"context"
	"fmt"
	"time"
)

// CountUnattended counts one call made without the customer present under
// consent id on the UTC day of now, and returns the day's count including
// it. One atomic upsert: concurrent calls on any node each get their own
// number, so a daily limit cannot be overrun by racing.
func (s *SQLStore) CountUnattended(ctx context.Context, id string, now time.Time) (int, error) {
	day := now.UTC().Unix() / 86400
	var n []int
	err := s.db.WithContext(ctx).Raw(`INSERT INTO consent_usage (consent_id, day, unattended) VALUES (?, ?, 1)
		ON CONFLICT (consent_id, day) DO UPDATE SET unattended = consent_usage.unattended + 1
		RETURNING unattended`, id, day).Scan(&n).Error
	if err != nil || len(n) != 1 {
		return 0, fmt.Errorf("consent.CountUnattended: %v", err)
	}
	return n[0], nil
}
