package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newService(t *testing.T, db *store.DB) (*Service, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)}
	s := NewService(db, clk.Now)
	if err := s.CreateCustomer(context.Background(), Customer{ID: "cus_alice", Username: "alice", DisplayName: "Alice Example"}, "alice-password-1"); err != nil {
		t.Fatal(err)
	}
	return s, clk
}

func TestCreateCustomer(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newService(t, db)

		// Seeding again, even with another password, leaves the customer alone.
		if err := s.CreateCustomer(ctx, Customer{ID: "cus_alice", Username: "alice", DisplayName: "Changed"}, "other"); err != nil {
			t.Fatalf("second CreateCustomer: %v", err)
		}
		c, err := s.Customer(ctx, "cus_alice")
		if err != nil || c.DisplayName != "Alice Example" || c.Username != "alice" {
			t.Fatalf("Customer = %+v, %v", c, err)
		}
		if _, err := s.Authenticate(ctx, "alice", "alice-password-1", "192.0.2.1"); err != nil {
			t.Fatalf("original password no longer works: %v", err)
		}
		var stored string
		db.Raw(`SELECT password_hash FROM customers WHERE id = 'cus_alice'`).Scan(&stored)
		if ok, err := VerifyPassword(stored, "alice-password-1"); !ok || err != nil {
			t.Fatalf("stored hash %q does not verify: %v", stored, err)
		}

		// Another username on a taken id is a real conflict.
		if err := s.CreateCustomer(ctx, Customer{ID: "cus_alice", Username: "mallory", DisplayName: "M"}, "pw"); err == nil {
			t.Fatal("id clash with another username accepted")
		}
		if _, err := s.Customer(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown customer: %v", err)
		}
		for _, bad := range []Customer{{ID: "x", Username: "with space", DisplayName: "X"}, {ID: "", Username: "x", DisplayName: "X"}, {ID: "x", Username: "", DisplayName: "X"}} {
			if err := s.CreateCustomer(ctx, bad, "pw"); err == nil {
				t.Errorf("CreateCustomer(%+v) accepted", bad)
			}
		}

		// Shared precomputed hash for bulk generation.
		h, _ := HashPassword("demo-password")
		if err := s.CreateCustomerWithHash(ctx, Customer{ID: "cus_gen_1", Username: "gen-1", DisplayName: "Gen"}, h); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, "gen-1", "demo-password", "192.0.2.1"); err != nil {
			t.Fatalf("customer with precomputed hash: %v", err)
		}
		if err := s.CreateCustomerWithHash(ctx, Customer{ID: "cus_gen_2", Username: "gen-2", DisplayName: "Gen"}, "plaintext"); err == nil {
			t.Fatal("CreateCustomerWithHash accepted a non-hash")
		}
	})
}

func TestAuthenticate(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newService(t, db)
		c, err := s.Authenticate(ctx, "alice", "alice-password-1", "192.0.2.1")
		if err != nil || c.ID != "cus_alice" || c.DisplayName != "Alice Example" {
			t.Fatalf("Authenticate = %+v, %v", c, err)
		}
		for _, tc := range []struct{ name, user, pass string }{
			{"wrong password", "alice", "alice-password-2"},
			{"unknown user", "nobody", "alice-password-1"},
			{"username is case-sensitive", "Alice", "alice-password-1"},
			{"empty", "", ""},
		} {
			if _, err := s.Authenticate(ctx, tc.user, tc.pass, "192.0.2.1"); !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("%s: err = %v, want ErrInvalidCredentials", tc.name, err)
			}
		}
	})
}

// A customer without a usable password (a provider-created customer has the
// hash "!") is refused like an unknown username, never with an error.
func TestAuthenticateUnusableHash(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newService(t, db)
		for _, h := range []string{"!", "", "$argon2id$v=19$garbage"} {
			if err := db.Exec(`INSERT INTO customers (id, username, password_hash, display_name, created_at) VALUES (?, ?, ?, 'P', 0)`,
				"cus_p"+fmt.Sprint(len(h)), "bank:p"+fmt.Sprint(len(h)), h).Error; err != nil {
				t.Fatal(err)
			}
			for _, pw := range []string{"", "!", h} {
				if _, err := s.Authenticate(ctx, "bank:p"+fmt.Sprint(len(h)), pw, "192.0.2.9"); !errors.Is(err, ErrInvalidCredentials) {
					t.Errorf("hash %q, password %q: err = %v, want ErrInvalidCredentials", h, pw, err)
				}
			}
		}
	})
}

// An unknown username must cost a password hash too; otherwise the answer
// time tells an attacker which usernames exist. Minimums of a few runs keep
// this stable on a busy machine: without the dummy hash the ratio is ~0.02.
func TestAuthenticateUnknownUserSpendsAHash(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newService(t, db)
		fastest := func(user string) time.Duration {
			best := time.Hour
			for i := range 3 {
				start := time.Now()
				_, err := s.Authenticate(ctx, user, "wrong", fmt.Sprintf("198.51.100.%d", i))
				if !errors.Is(err, ErrInvalidCredentials) {
					t.Fatalf("%s: %v", user, err)
				}
				best = min(best, time.Since(start))
			}
			return best
		}
		known, unknown := fastest("alice"), fastest("nobody")
		if unknown < known/3 {
			t.Fatalf("unknown user answered in %v, known user in %v: timing reveals existence", unknown, known)
		}
	})
}

func TestThrottlePerUser(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, clk := newService(t, db)

		// A success resets the user's counter: 4 failures, success, 4 failures is fine.
		for range 4 {
			s.Authenticate(ctx, "alice", "bad", "192.0.2.1")
		}
		if _, err := s.Authenticate(ctx, "alice", "alice-password-1", "192.0.2.1"); err != nil {
			t.Fatalf("after 4 failures: %v", err)
		}
		for i := range 5 {
			if _, err := s.Authenticate(ctx, "alice", "bad", fmt.Sprintf("192.0.2.%d", 10+i)); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("failure %d: %v", i+1, err)
			}
		}
		// Five failures from five addresses lock the user, even with the right
		// password and even written in another case.
		for _, user := range []string{"alice", "ALICE"} {
			_, err := s.Authenticate(ctx, user, "alice-password-1", "203.0.113.9")
			var te *ThrottledError
			if !errors.As(err, &te) {
				t.Fatalf("%s after 5 failures: %v, want *ThrottledError", user, err)
			}
			if te.RetryAfter <= 14*time.Minute || te.RetryAfter > 15*time.Minute {
				t.Fatalf("RetryAfter = %v, want about 15m", te.RetryAfter)
			}
		}
		// Another user is not affected.
		if err := s.CreateCustomer(ctx, Customer{ID: "cus_bob", Username: "bob", DisplayName: "Bob"}, "bob-password-1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, "bob", "bob-password-1", "203.0.113.9"); err != nil {
			t.Fatalf("bob: %v", err)
		}
		clk.Add(15*time.Minute + time.Second)
		if _, err := s.Authenticate(ctx, "alice", "alice-password-1", "203.0.113.9"); err != nil {
			t.Fatalf("after the lockout: %v", err)
		}
	})
}

func TestThrottlePerAddress(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, clk := newService(t, db)
		// One address guessing across many usernames (unknown ones count too).
		for i := range 20 {
			if _, err := s.Authenticate(ctx, fmt.Sprintf("user%d", i), "guess", "192.0.2.66"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("attempt %d: %v", i+1, err)
			}
			clk.Add(time.Second)
		}
		var te *ThrottledError
		if _, err := s.Authenticate(ctx, "alice", "alice-password-1", "192.0.2.66"); !errors.As(err, &te) {
			t.Fatalf("21st attempt from the address: %v, want *ThrottledError", err)
		}
		if _, err := s.Authenticate(ctx, "alice", "alice-password-1", "192.0.2.67"); err != nil {
			t.Fatalf("other address: %v", err)
		}
		// A window that ran out starts over instead of accumulating.
		clk.Add(31 * time.Minute)
		for i := range 30 { // 30 failures, but never 20 within 15 minutes
			s.Authenticate(ctx, fmt.Sprintf("carol%d", i), "guess", "192.0.2.68")
			clk.Add(time.Second)
			if i == 14 {
				clk.Add(16 * time.Minute)
			}
		}
		if _, err := s.Authenticate(ctx, "alice", "alice-password-1", "192.0.2.68"); err != nil {
			t.Fatalf("failures from expired windows still counted: %v", err)
		}
		var rows int64
		if err := s.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		db.Raw(`SELECT COUNT(*) FROM login_throttle WHERE key = 'ip:192.0.2.66'`).Scan(&rows)
		if rows != 0 {
			t.Fatalf("Prune kept a stale throttle row")
		}
	})
}

func TestSessions(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, clk := newService(t, db)

		anon, err := s.StartSession(ctx)
		if err != nil || anon.LoggedIn() || len(anon.ID) != 43 || len(anon.CSRFToken) != 43 {
			t.Fatalf("StartSession = %+v, %v", anon, err)
		}
		got, err := s.Session(ctx, anon.ID)
		if err != nil || got.LoggedIn() || !got.ValidCSRF(anon.CSRFToken) {
			t.Fatalf("Session(anon) = %+v, %v", got, err)
		}
		// The last character changed to another one (never to itself).
		last := "A"
		if strings.HasSuffix(anon.CSRFToken, "A") {
			last = "B"
		}
		for _, bad := range []string{"", "x", anon.CSRFToken[:42] + last, anon.ID} {
			if got.ValidCSRF(bad) {
				t.Errorf("ValidCSRF(%q) = true", bad)
			}
		}
		// Only the hash of the id is stored.
		var stored []string
		db.Raw(`SELECT id_hash FROM login_sessions`).Scan(&stored)
		if len(stored) != 1 || stored[0] != hashID(anon.ID) || stored[0] == anon.ID {
			t.Fatalf("stored ids %v", stored)
		}

		// Login issues a new id and destroys the anonymous one (no fixation).
		sess, err := s.Login(ctx, anon.ID, "cus_alice")
		if err != nil || !sess.LoggedIn() || sess.ID == anon.ID || sess.CSRFToken == anon.CSRFToken {
			t.Fatalf("Login = %+v, %v", sess, err)
		}
		if _, err := s.Session(ctx, anon.ID); !errors.Is(err, ErrNoSession) {
			t.Fatalf("pre-login id still valid: %v", err)
		}
		if got, err := s.Session(ctx, sess.ID); err != nil || got.CustomerID != "cus_alice" {
			t.Fatalf("Session(logged in) = %+v, %v", got, err)
		}

		// Idle expiry slides with use; the absolute limit does not.
		for range 23 { // 23 × 20 min = 7h40m
			clk.Add(20 * time.Minute)
			if _, err := s.Session(ctx, sess.ID); err != nil {
				t.Fatalf("session expired while in use at %v: %v", clk.Now(), err)
			}
		}
		clk.Add(21 * time.Minute) // past 8 h since login
		if _, err := s.Session(ctx, sess.ID); !errors.Is(err, ErrNoSession) {
			t.Fatalf("session alive past MaxLifetime: %v", err)
		}

		idle, _ := s.Login(ctx, "", "cus_alice")
		clk.Add(IdleTimeout + time.Second)
		if _, err := s.Session(ctx, idle.ID); !errors.Is(err, ErrNoSession) {
			t.Fatalf("session alive past IdleTimeout: %v", err)
		}

		live, _ := s.Login(ctx, "", "cus_alice")
		if err := s.Logout(ctx, live.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Session(ctx, live.ID); !errors.Is(err, ErrNoSession) {
			t.Fatalf("session alive after Logout: %v", err)
		}
		for _, bad := range []string{"", "short", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", hashID(live.ID)} {
			if _, err := s.Session(ctx, bad); !errors.Is(err, ErrNoSession) {
				t.Errorf("Session(%q) = %v", bad, err)
			}
		}

		if err := s.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		var n int64
		db.Raw(`SELECT COUNT(*) FROM login_sessions`).Scan(&n)
		if n != 0 {
			t.Fatalf("%d expired sessions survived Prune", n)
		}
	})
}

// Hashes made with older parameters are upgraded at the next good login.
func TestAuthenticateUpgradesOldHash(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newService(t, db)
		old, _ := hashWith(Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, "pw-old")
		if err := s.CreateCustomerWithHash(ctx, Customer{ID: "cus_old", Username: "old", DisplayName: "Old"}, old); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, "old", "pw-old", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		var stored string
		db.Raw(`SELECT password_hash FROM customers WHERE id = 'cus_old'`).Scan(&stored)
		h, err := parsePHC(stored)
		if err != nil || h.outdated() || stored == old {
			t.Fatalf("hash not upgraded: %q", stored)
		}
		if ok, _ := VerifyPassword(stored, "pw-old"); !ok {
			t.Fatal("upgraded hash does not verify")
		}
	})
}
