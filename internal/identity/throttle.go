package identity

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/consentgate/consentgate/internal/store"
)

// ThrottledError is returned while too many failed logins lock a username or
// a client address out.
type ThrottledError struct {
	RetryAfter time.Duration
}

// Error implements error.
func (e *ThrottledError) Error() string {
	return fmt.Sprintf("identity: too many failed logins, retry after %s", e.RetryAfter.Round(time.Second))
}

// limit is one throttling rule: Max failures within Window lock the key for
// Lockout. The counters live in the database so that every node behind a
// load balancer sees the same ones.
type limit struct {
	Max     int
	Window  time.Duration
	Lockout time.Duration
}

// The per-user rule protects one account from guessing; the per-address rule
// stops one client from trying a few passwords on many accounts. The address
// allows more because people behind one NAT share it.
var (
	userLimit = limit{Max: 5, Window: 15 * time.Minute, Lockout: 15 * time.Minute}
	ipLimit   = limit{Max: 20, Window: 15 * time.Minute, Lockout: 15 * time.Minute}
)

type throttleKey struct {
	key   string
	limit limit
}

// throttleKeys names the counters a login touches. The username is folded
// to lower case so that case variants share one counter; an unknown username
// has a counter too, so lockouts say nothing about who exists.
func throttleKeys(username, clientIP string) []throttleKey {
	name := strings.ToLower(strings.TrimSpace(username))
	if len(name) > maxUsernameLen {
		name = name[:maxUsernameLen]
	}
	keys := []throttleKey{{key: "user:" + name, limit: userLimit}}
	if clientIP != "" {
		keys = append(keys, throttleKey{key: "ip:" + clientIP, limit: ipLimit})
	}
	return keys
}

// checkThrottle answers *ThrottledError when any key is locked now.
func (s *Service) checkThrottle(ctx context.Context, keys []throttleKey) error {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.key
	}
	now := store.Micros(s.clock())
	var until int64
	if err := s.db.WithContext(ctx).Raw(`SELECT COALESCE(MAX(locked_until), 0) FROM login_throttle WHERE key IN ? AND locked_until > ?`, names, now).
		Scan(&until).Error; err != nil {
		return fmt.Errorf("identity: check throttle: %w", err)
	}
	if until > now {
		return &ThrottledError{RetryAfter: time.Duration(until-now) * time.Microsecond}
	}
	return nil
}

// recordFailure counts one failed login on every key in a single atomic
// upsert per key, so concurrent failures on several nodes all count. A
// window that has run out starts over; reaching the limit sets the lockout.
func (s *Service) recordFailure(ctx context.Context, keys []throttleKey) error {
	now := s.clock()
	for _, k := range keys {
		nowUS := store.Micros(now)
		windowOpen := store.Micros(now.Add(-k.limit.Window)) // windows starting at or before this have run out
		lockUntil := store.Micros(now.Add(k.limit.Lockout))
		err := s.db.WithContext(ctx).Exec(`INSERT INTO login_throttle (key, failures, window_start, locked_until)
			VALUES (?, 1, ?, 0)
			ON CONFLICT (key) DO UPDATE SET
				failures = CASE WHEN login_throttle.window_start <= ? THEN 1 ELSE login_throttle.failures + 1 END,
				window_start = CASE WHEN login_throttle.window_start <= ? THEN ? ELSE login_throttle.window_start END,
				locked_until = CASE WHEN login_throttle.window_start > ? AND login_throttle.failures + 1 >= ? THEN ? ELSE login_throttle.locked_until END`,
			k.key, nowUS,
			windowOpen,
			windowOpen, nowUS,
			windowOpen, k.limit.Max, lockUntil).Error
		if err != nil {
			return fmt.Errorf("identity: record failed login: %w", err)
		}
	}
	return nil
}

// clearUser forgets the failures of the user key after a successful login.
// The address key is kept: one success must not launder an address that is
// guessing on other accounts.
func (s *Service) clearUser(ctx context.Context, keys []throttleKey) error {
	if err := s.db.WithContext(ctx).Exec(`DELETE FROM login_throttle WHERE key = ?`, keys[0].key).Error; err != nil {
		return fmt.Errorf("identity: clear throttle: %w", err)
	}
	return nil
}
