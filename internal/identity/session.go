package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/store"
)

// Session lifetimes: a session ends after IdleTimeout without use and at the
// latest MaxLifetime after it began, whichever comes first.
const (
	IdleTimeout = 30 * time.Minute
	MaxLifetime = 8 * time.Hour
)

// ErrNoSession is returned for a session id that is unknown, malformed or
// expired.
var ErrNoSession = errors.New("identity: no such session")

// Session is a browser session. Before login it is anonymous (CustomerID
// empty) and only carries the CSRF token of the login form.
type Session struct {
	// ID is the raw value for the cookie. The database only has its SHA-256,
	// so a leaked table cannot be replayed as cookies.
	ID         string
	CustomerID string
	CSRFToken  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// LoggedIn reports whether a customer has logged in on this session.
func (s *Session) LoggedIn() bool { return s != nil && s.CustomerID != "" }

// ValidCSRF reports, in constant time, whether token is this session's CSRF
// token.
func (s *Session) ValidCSRF(token string) bool {
	if s == nil || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRFToken)) == 1
}

// StartSession creates an anonymous session, for the CSRF token of the
// login form.
func (s *Service) StartSession(ctx context.Context) (*Session, error) {
	sess, err := s.insertSession(s.db.WithContext(ctx), "")
	if err != nil {
		return nil, fmt.Errorf("identity.StartSession: %w", err)
	}
	return sess, nil
}

// Login starts a fresh session for customerID and deletes oldID (which may
// be empty). The id always changes at login, so an id planted in the browser
// before login (session fixation) never becomes a logged-in one.
func (s *Service) Login(ctx context.Context, oldID, customerID string) (*Session, error) {
	if customerID == "" {
		return nil, errors.New("identity.Login: empty customer id")
	}
	var sess *Session
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if oldID != "" {
			if err := tx.Exec(`DELETE FROM login_sessions WHERE id_hash = ?`, hashID(oldID)).Error; err != nil {
				return err
			}
		}
		var err error
		sess, err = s.insertSession(tx, customerID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("identity.Login: %w", err)
	}
	return sess, nil
}

// Session returns the live session with id, extending its idle expiry, or
// ErrNoSession.
func (s *Service) Session(ctx context.Context, id string) (*Session, error) {
	if !wellFormedID(id) {
		return nil, ErrNoSession
	}
	now := s.clock()
	var rows []struct {
		CustomerID *string
		CSRFToken  string
		CreatedAt  int64
		ExpiresAt  int64
	}
	db := s.db.WithContext(ctx)
	if err := db.Raw(`SELECT customer_id, csrf_token, created_at, expires_at FROM login_sessions WHERE id_hash = ? AND expires_at > ?`,
		hashID(id), store.Micros(now)).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("identity.Session: %w", err)
	}
	if len(rows) == 0 {
		return nil, ErrNoSession
	}
	r := rows[0]
	sess := &Session{ID: id, CSRFToken: r.CSRFToken, CreatedAt: store.FromMicros(r.CreatedAt), ExpiresAt: store.FromMicros(r.ExpiresAt)}
	if r.CustomerID != nil {
		sess.CustomerID = *r.CustomerID
	}
	// Slide the idle expiry, but write at most once a minute per session:
	// every page view must not become a database write.
	if next := expiry(sess.CreatedAt, now); next.Sub(sess.ExpiresAt) >= time.Minute {
		if err := db.Exec(`UPDATE login_sessions SET expires_at = ? WHERE id_hash = ?`, store.Micros(next), hashID(id)).Error; err != nil {
			return nil, fmt.Errorf("identity.Session: extend: %w", err)
		}
		sess.ExpiresAt = next
	}
	return sess, nil
}

// Logout ends the session with id; an unknown id is not an error.
func (s *Service) Logout(ctx context.Context, id string) error {
	if !wellFormedID(id) {
		return nil
	}
	if err := s.db.WithContext(ctx).Exec(`DELETE FROM login_sessions WHERE id_hash = ?`, hashID(id)).Error; err != nil {
		return fmt.Errorf("identity.Logout: %w", err)
	}
	return nil
}

// Prune deletes expired sessions and throttle counters that no longer lock
// or count anything. Run it periodically; correctness does not depend on it.
func (s *Service) Prune(ctx context.Context) error {
	now := s.clock()
	db := s.db.WithContext(ctx)
	if err := db.Exec(`DELETE FROM login_sessions WHERE expires_at <= ?`, store.Micros(now)).Error; err != nil {
		return fmt.Errorf("identity.Prune sessions: %w", err)
	}
	window := max(userLimit.Window, ipLimit.Window)
	if err := db.Exec(`DELETE FROM login_throttle WHERE locked_until <= ? AND window_start <= ?`,
		store.Micros(now), store.Micros(now.Add(-window))).Error; err != nil {
		return fmt.Errorf("identity.Prune throttle: %w", err)
	}
	return nil
}

func (s *Service) insertSession(tx *gorm.DB, customerID string) (*Session, error) {
	now := s.clock()
	sess := &Session{ID: randomToken(), CustomerID: customerID, CSRFToken: randomToken(), CreatedAt: now, ExpiresAt: expiry(now, now)}
	var cust any // NULL for anonymous sessions
	if customerID != "" {
		cust = customerID
	}
	if err := tx.Exec(`INSERT INTO login_sessions (id_hash, customer_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		hashID(sess.ID), cust, sess.CSRFToken, store.Micros(now), store.Micros(sess.ExpiresAt)).Error; err != nil {
		return nil, err
	}
	return sess, nil
}

func expiry(created, now time.Time) time.Time {
	idle := now.Add(IdleTimeout)
	if hard := created.Add(MaxLifetime); hard.Before(idle) {
		return hard
	}
	return idle
}

const tokenBytes = 32 // 256 bits

// randomToken returns 256 random bits, base64url without padding.
func randomToken() string {
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go ≥ 1.24 panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// wellFormedID rejects anything that randomToken cannot have made before it
// reaches the database.
func wellFormedID(id string) bool {
	if len(id) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil && len(b) == tokenBytes
}

func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}
