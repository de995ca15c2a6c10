// Package identity is how customers prove who they are: their login names
// and argon2id password hashes, login throttling shared by every node, and
// browser sessions with their CSRF tokens. It stores no plaintext password,
// no raw session id and must never reveal, by answer or by timing, whether a
// username exists. It knows nothing of consents, OAuth or HTML.
package identity

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/consentgate/consentgate/internal/store"
)

// Customer is a person who can log in and grant consents.
type Customer struct {
	ID          string
	Username    string
	DisplayName string
	CreatedAt   time.Time
}

// ErrInvalidCredentials is returned for an unknown username or a wrong
// password: callers must not be able to tell which.
var ErrInvalidCredentials = errors.New("identity: invalid username or password")

// ErrNotFound is returned for an unknown customer id.
var ErrNotFound = errors.New("identity: customer not found")

// Input limits: a login form never needs more, and argon2 hashes whatever it
// is given, so an unbounded password would be free CPU for an attacker.
const (
	maxUsernameLen = 128
	maxPasswordLen = 1024
)

// Service stores customers and sessions and checks passwords.
type Service struct {
	db  *store.DB
	now func() time.Time
	// hashSlots bounds concurrent argon2 computations: each takes
	// DefaultParams.Memory, so a burst of logins cannot exhaust memory.
	hashSlots chan struct{}
	dummy     func() *phc
}

// NewService returns a Service on db; now nil means time.Now.
func NewService(db *store.DB, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{
		db:        db,
		now:       now,
		hashSlots: make(chan struct{}, 2*runtime.GOMAXPROCS(0)),
		dummy:     sync.OnceValue(dummyHash),
	}
}

func (s *Service) clock() time.Time { return s.now().UTC() }

// CreateCustomer adds a customer with the given password. An existing
// username is left as it is and is not an error, so seeding can run again.
func (s *Service) CreateCustomer(ctx context.Context, c Customer, password string) error {
	if err := validateCustomer(c); err != nil {
		return err
	}
	if password == "" || len(password) > maxPasswordLen {
		return fmt.Errorf("identity.CreateCustomer: password must be 1..%d bytes", maxPasswordLen)
	}
	exists, err := s.usernameTaken(ctx, c.Username)
	if err != nil || exists {
		return err // skip the costly hash when seeding runs again
	}
	var hash string
	err = s.withHashSlot(ctx, func() (err error) {
		hash, err = HashPassword(password)
		return err
	})
	if err != nil {
		return fmt.Errorf("identity.CreateCustomer: %w", err)
	}
	return s.insertCustomer(ctx, c, hash)
}

// CreateCustomerWithHash adds a customer whose password hash was computed
// earlier by HashPassword, so bulk generators can share one hash among many
// customers. An existing username is left as it is.
func (s *Service) CreateCustomerWithHash(ctx context.Context, c Customer, passwordHash string) error {
	if err := validateCustomer(c); err != nil {
		return err
	}
	if _, err := parsePHC(passwordHash); err != nil {
		return fmt.Errorf("identity.CreateCustomerWithHash: %w", err)
	}
	return s.insertCustomer(ctx, c, passwordHash)
}

func validateCustomer(c Customer) error {
	if c.ID == "" || c.DisplayName == "" {
		return errors.New("identity: customer needs an id and a display name")
	}
	if c.Username == "" || len(c.Username) > maxUsernameLen || strings.IndexFunc(c.Username, unicode.IsSpace) >= 0 ||
		strings.IndexFunc(c.Username, unicode.IsControl) >= 0 {
		return fmt.Errorf("identity: username %q must be 1..%d characters without spaces", c.Username, maxUsernameLen)
	}
	return nil
}

func (s *Service) usernameTaken(ctx context.Context, username string) (bool, error) {
	var n int64
	if err := s.db.WithContext(ctx).Raw(`SELECT COUNT(*) FROM customers WHERE username = ?`, username).Scan(&n).Error; err != nil {
		return false, fmt.Errorf("identity: look up username: %w", err)
	}
	return n > 0, nil
}

func (s *Service) insertCustomer(ctx context.Context, c Customer, hash string) error {
	created := c.CreatedAt
	if created.IsZero() {
		created = s.clock()
	}
	// ON CONFLICT on the username only: a clash on the id with another
	// username is a real conflict and must surface.
	err := s.db.WithContext(ctx).Exec(`INSERT INTO customers (id, username, password_hash, display_name, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING`,
		c.ID, c.Username, hash, c.DisplayName, store.Micros(created)).Error
	if err != nil {
		return fmt.Errorf("identity: insert customer %s: %w", c.ID, err)
	}
	return nil
}

type customerRow struct {
	ID           string
	Username     string
	PasswordHash string
	DisplayName  string
	CreatedAt    int64
}

func (r customerRow) customer() *Customer {
	return &Customer{ID: r.ID, Username: r.Username, DisplayName: r.DisplayName, CreatedAt: store.FromMicros(r.CreatedAt)}
}

// Customer returns the customer with id, or ErrNotFound.
func (s *Service) Customer(ctx context.Context, id string) (*Customer, error) {
	var rows []customerRow
	if err := s.db.WithContext(ctx).Raw(`SELECT id, username, password_hash, display_name, created_at FROM customers WHERE id = ?`, id).
		Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("identity.Customer: %w", err)
	}
	if len(rows) == 0 {
		return nil, ErrNotFound
	}
	return rows[0].customer(), nil
}

// CustomerByIDPSubject returns the customer linked to subject at the bank's
// identity provider (customers.idp_subject), or ErrNotFound.
func (s *Service) CustomerByIDPSubject(ctx context.Context, subject string) (*Customer, error) {
	if subject == "" {
		return nil, ErrNotFound
	}
	var rows []customerRow
	if err := s.db.WithContext(ctx).Raw(`SELECT id, username, password_hash, display_name, created_at FROM customers WHERE idp_subject = ?`, subject).
		Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("identity.CustomerByIDPSubject: %w", err)
	}
	if len(rows) == 0 {
		return nil, ErrNotFound
	}
	return rows[0].customer(), nil
}

// Authenticate checks username and password for a login from clientIP. It
// answers *ThrottledError while the username or the address is locked out,
// ErrInvalidCredentials for an unknown user or a wrong password (after
// spending the same hashing time either way), and the customer otherwise.
func (s *Service) Authenticate(ctx context.Context, username, password, clientIP string) (*Customer, error) {
	keys := throttleKeys(username, clientIP)
	if err := s.checkThrottle(ctx, keys); err != nil {
		return nil, err
	}
	var rows []customerRow
	if len(username) <= maxUsernameLen {
		if err := s.db.WithContext(ctx).Raw(`SELECT id, username, password_hash, display_name, created_at FROM customers WHERE username = ?`, username).
			Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("identity.Authenticate: %w", err)
		}
	}
	h := s.dummy()
	// A customer without a usable password (created by a data provider, or
	// locked with "!") cannot log in; they are answered exactly like an
	// unknown username: same hash cost, same error, same throttling.
	usable := false
	if len(rows) == 1 {
		if parsed, err := parsePHC(rows[0].PasswordHash); err == nil {
			h, usable = parsed, true
		}
	}
	ok := false
	if len(password) <= maxPasswordLen {
		if err := s.withHashSlot(ctx, func() error { ok = h.verify(password); return nil }); err != nil {
			return nil, fmt.Errorf("identity.Authenticate: %w", err)
		}
	}
	if !ok || !usable {
		if err := s.recordFailure(ctx, keys); err != nil {
			return nil, err
		}
		return nil, ErrInvalidCredentials
	}
	if err := s.clearUser(ctx, keys); err != nil {
		return nil, err
	}
	if h.outdated() {
		s.upgradeHash(ctx, rows[0].ID, password)
	}
	return rows[0].customer(), nil
}

// upgradeHash re-hashes a password made with older parameters. Failing to
// upgrade does not fail the login: the old hash still verifies.
func (s *Service) upgradeHash(ctx context.Context, id, password string) {
	var hash string
	if err := s.withHashSlot(ctx, func() (err error) { hash, err = HashPassword(password); return err }); err != nil {
		return
	}
	_ = s.db.WithContext(ctx).Exec(`UPDATE customers SET password_hash = ? WHERE id = ?`, hash, id).Error
}

func (s *Service) withHashSlot(ctx context.Context, fn func() error) error {
	select {
	case s.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.hashSlots }()
	return fn()
}
