package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
)

// TestHousekeeping: the sweep deletes what has expired (codes, access
// tokens, PKCE requests, request_uris, authorize and OpenID Connect
// sessions, client assertion and DPoP proof ids, login sessions) and the
// webhook deliveries settled longer ago than the retention, and keeps
// everything else: live rows, refresh tokens (replay evidence), pending
// deliveries whatever their age.
func TestHousekeeping(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		now := time.Now().UTC()
		past, future := store.Micros(now.Add(-time.Minute)), store.Micros(now.Add(time.Hour))
		old := store.Micros(now.Add(-31 * 24 * time.Hour))
		exec := func(q string, args ...any) {
			t.Helper()
			if err := s.DB.Exec(q, args...).Error; err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		for _, kind := range []string{"authorize_code", "access_token", "refresh_token", "pkce"} {
			for _, exp := range []int64{past, future} {
				exec(`INSERT INTO oauth_tokens (kind, signature_hash, request_id, client_id, subject, active, requested_at,
					expires_at, request_data) VALUES (?, ?, 'r', 'demo-pfm', '', ?, 0, ?, '{}')`,
					kind, fmt.Sprintf("%s-%d", kind, exp), true, exp)
			}
		}
		for _, exp := range []int64{past, future} {
			id := fmt.Sprint(exp)
			exec(`INSERT INTO oauth_par_requests (request_uri_hash, request_data, expires_at) VALUES (?, '{}', ?)`, id, exp)
			exec(`INSERT INTO oauth_authorize_sessions (challenge_hash, request_id, request_data, expires_at) VALUES (?, 'r', '{}', ?)`, id, exp)
			exec(`INSERT INTO oauth_oidc_sessions (signature_hash, request_id, request_data, expires_at) VALUES (?, 'r', '{}', ?)`, id, exp)
			exec(`INSERT INTO oauth_client_assertions (jti_hash, expires_at) VALUES (?, ?)`, id, exp)
			exec(`INSERT INTO dpop_proofs (jti_hash, expires_at) VALUES (?, ?)`, id, exp)
			exec(`INSERT INTO login_sessions (id_hash, csrf_token, created_at, expires_at) VALUES (?, 'c', 0, ?)`, id, exp)
		}
		exec(`INSERT INTO consents (id, client_id, status, scopes, purpose, history_days, duration_seconds, created_at, updated_at)
			VALUES ('g-hk', 'demo-pfm', 'revoked', 'accounts:read', 'account_verification', 0, 60, 1, 1)`)
		deliveries := []struct {
			id        string
			created   int64
			next      *int64
			delivered *int64
		}{
			{"old-delivered", old, nil, &old},
			{"old-given-up", old, nil, nil},
			{"old-pending", old, &future, nil},
			{"new-delivered", past, nil, &past},
		}
		for i, d := range deliveries {
			exec(`INSERT INTO webhook_deliveries (id, client_id, grant_id, event, term_expires_at, body, attempts,
				next_attempt_at, delivered_at, created_at) VALUES (?, 'demo-pfm', 'g-hk', 'consent.revoked', ?, '{}', 1, ?, ?, ?)`,
				d.id, i, d.next, d.delivered, d.created)
		}

		if err := s.Node.Housekeep(t.Context()); err != nil {
			t.Fatal(err)
		}

		count := func(q string, args ...any) int64 {
			t.Helper()
			var n int64
			if err := s.DB.Raw(q, args...).Scan(&n).Error; err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			return n
		}
		for _, kind := range []string{"authorize_code", "access_token", "pkce"} {
			if n := count(`SELECT COUNT(*) FROM oauth_tokens WHERE kind = ? AND client_id = 'demo-pfm' AND request_id = 'r'`, kind); n != 1 {
				t.Errorf("%s rows after housekeeping: %d, want the live one", kind, n)
			}
		}
		if n := count(`SELECT COUNT(*) FROM oauth_tokens WHERE kind = 'refresh_token' AND request_id = 'r'`); n != 2 {
			t.Errorf("refresh tokens after housekeeping: %d, want both kept", n)
		}
		for _, table := range []string{"oauth_par_requests", "oauth_authorize_sessions", "oauth_oidc_sessions",
			"oauth_client_assertions", "dpop_proofs", "login_sessions"} {
			if n := count(`SELECT COUNT(*) FROM `+table+` WHERE expires_at <= ?`, store.Micros(now)); n != 0 {
				t.Errorf("%s: %d expired rows left", table, n)
			}
			if n := count(`SELECT COUNT(*) FROM `+table+` WHERE expires_at = ?`, future); n != 1 {
				t.Errorf("%s: %d live rows, want 1", table, n)
			}
		}
		var left []string
		if err := s.DB.Raw(`SELECT id FROM webhook_deliveries WHERE grant_id = 'g-hk' ORDER BY id`).Scan(&left).Error; err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(left) != "[new-delivered old-pending]" {
			t.Errorf("webhook deliveries after housekeeping: %v, want the pending and the recent one", left)
		}
	})
}

// TestPlannerStatsFollowGrowth: when the token table outgrows the
// statistics its cached plans were costed on, the node analyzes it within
// a few seconds (store.RefreshGrownStats), so no pooled connection keeps
// scanning it as the tiny table it was.
func TestPlannerStatsFollowGrowth(t *testing.T) {
	s := testutil.Start(t, store.Postgres, testutil.Options{})
	ctx := context.Background()
	// One connection, kept busy as a loaded node's are: a backend reports
	// its row counts at the end of a transaction at most once a second
	// (an idle one only after ten).
	conn, err := s.DB.SQL().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tuples := func() float64 {
		t.Helper()
		var n float64
		if err := conn.QueryRowContext(ctx, `SELECT reltuples FROM pg_class WHERE relname = 'oauth_tokens'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := conn.ExecContext(ctx, `ANALYZE oauth_tokens`); err != nil {
		t.Fatal(err)
	}
	before := tuples()
	// Tokens that expire far in the future: the node's sweep deletes
	// expired ones, and would race the statistics refresh for them.
	if _, err := conn.ExecContext(ctx, `INSERT INTO oauth_tokens (kind, signature_hash, request_id, client_id, subject, active,
		requested_at, expires_at, request_data) SELECT 'access_token', md5(i::text), 'r' || i, 'demo-pfm', '', true, 0, 9000000000000000, '{}'
		FROM generate_series(1, 5000) i`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		if n := tuples(); n >= before+5000 {
			t.Logf("analyzed %v after the rows committed", time.Since(start).Round(time.Millisecond))
			return
		} else if time.Since(start) > 15*time.Second {
			t.Fatalf("oauth_tokens grew by 5,000 rows from %v, and 15 s later its statistics still say %v", before, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
