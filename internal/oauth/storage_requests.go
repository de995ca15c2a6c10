package oauth

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ory/fosite"

	"github.com/consentgate/consentgate/internal/store"
)

// This file stores the two short-lived authorization states: pushed
// authorization requests (keyed by request_uri) and the authorize sessions
// between /oauth2/authorize and the customer's decision (keyed by challenge).
// Both are single use: reading one deletes it, and only the one reader whose
// DELETE … RETURNING got the row may go on.

// CreatePARSession implements fosite.PARStorage.
func (s *fositeStore) CreatePARSession(ctx context.Context, requestURI string, req fosite.AuthorizeRequester) error {
	data, err := encodeRequest(req)
	if err != nil {
		return err
	}
	// fosite stamps the session with its own clock; expiry is judged by ours.
	exp := s.now().Add(parLifespan)
	db := s.conn(ctx)
	// Abandoned requests would pile up otherwise; the table stays tiny.
	if err := db.Exec(`DELETE FROM oauth_par_requests WHERE expires_at <= ?`, store.Micros(s.now())).Error; err != nil {
		return dbErr("sweep par", err)
	}
	err = db.Exec(`INSERT INTO oauth_par_requests (request_uri_hash, request_data, expires_at) VALUES (?, ?, ?)`,
		hashKey(requestURI), data, store.Micros(exp)).Error
	return dbErr("create par", err)
}

// GetPARSession implements fosite.PARStorage. fosite does not check expiry
// and deletes only after reading, so reading consumes: a request_uri can be
// redeemed once, by one server, before it expires.
func (s *fositeStore) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	var rows []string
	err := s.conn(ctx).Raw(`DELETE FROM oauth_par_requests WHERE request_uri_hash = ? AND expires_at > ? RETURNING request_data`,
		hashKey(requestURI), store.Micros(s.now())).Scan(&rows).Error
	if err != nil {
		return nil, dbErr("get par", err)
	}
	if len(rows) == 0 {
		return nil, fosite.ErrNotFound.WithHint("The request_uri is unknown, used or expired.")
	}
	return s.authorizeRequest(ctx, rows[0])
}

// DeletePARSession implements fosite.PARStorage. GetPARSession already
// consumed the row; this only makes sure it is gone.
func (s *fositeStore) DeletePARSession(ctx context.Context, requestURI string) error {
	err := s.conn(ctx).Exec(`DELETE FROM oauth_par_requests WHERE request_uri_hash = ?`, hashKey(requestURI)).Error
	return dbErr("delete par", err)
}

func (s *fositeStore) authorizeRequest(ctx context.Context, data string) (*fosite.AuthorizeRequest, error) {
	req, err := s.decodeRequest(ctx, data, nil)
	if err != nil {
		return nil, err
	}
	ar, ok := req.(*fosite.AuthorizeRequest)
	if !ok {
		return nil, fmt.Errorf("oauth store: stored request %s is not an authorization request", req.GetID())
	}
	return ar, nil
}

// saveChallenge stores an authorization awaiting the customer under the
// hash of its challenge.
func (s *fositeStore) saveChallenge(ctx context.Context, challenge string, ar fosite.AuthorizeRequester, expiresAt time.Time) error {
	data, err := encodeRequest(ar)
	if err != nil {
		return err
	}
	db := s.conn(ctx)
	if err := db.Exec(`DELETE FROM oauth_authorize_sessions WHERE expires_at <= ?`, store.Micros(s.now())).Error; err != nil {
		return dbErr("sweep authorize sessions", err)
	}
	err = db.Exec(`INSERT INTO oauth_authorize_sessions (challenge_hash, request_id, request_data, expires_at) VALUES (?, ?, ?, ?)`,
		hashKey(challenge), ar.GetID(), data, store.Micros(expiresAt)).Error
	return dbErr("save challenge", err)
}

// pendingChallenge reads an unexpired challenge without consuming it.
func (s *fositeStore) pendingChallenge(ctx context.Context, challenge string) (*fosite.AuthorizeRequest, error) {
	var rows []string
	err := s.conn(ctx).Raw(`SELECT request_data FROM oauth_authorize_sessions WHERE challenge_hash = ? AND expires_at > ?`,
		hashKey(challenge), store.Micros(s.now())).Scan(&rows).Error
	if err != nil {
		return nil, dbErr("read challenge", err)
	}
	if len(rows) == 0 {
		return nil, ErrUnknownChallenge
	}
	return s.authorizeRequest(ctx, rows[0])
}

// consumeChallenge takes an unexpired challenge; only one caller gets it.
func (s *fositeStore) consumeChallenge(ctx context.Context, challenge string) (*fosite.AuthorizeRequest, error) {
	var rows []string
	err := s.conn(ctx).Raw(`DELETE FROM oauth_authorize_sessions WHERE challenge_hash = ? AND expires_at > ? RETURNING request_data`,
		hashKey(challenge), store.Micros(s.now())).Scan(&rows).Error
	if err != nil {
		return nil, dbErr("consume challenge", err)
	}
	if len(rows) == 0 {
		return nil, ErrUnknownChallenge
	}
	return s.authorizeRequest(ctx, rows[0])
}

// ClientAssertionJWTValid implements fosite.ClientManager: a client
// assertion's jti may be used once until it expires (RFC 7523 §3).
func (s *fositeStore) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	var n int64
	err := s.conn(ctx).Raw(`SELECT count(*) FROM oauth_client_assertions WHERE jti_hash = ? AND expires_at > ?`,
		hashKey(jti), store.Micros(s.now())).Scan(&n).Error
	if err != nil {
		return dbErr("check jti", err)
	}
	if n > 0 {
		return fosite.ErrJTIKnown
	}
	return nil
}

// SetClientAssertionJWT implements fosite.ClientManager. The insert itself
// decides between two servers seeing the same jti at once.
func (s *fositeStore) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	db := s.conn(ctx)
	if err := db.Exec(`DELETE FROM oauth_client_assertions WHERE expires_at <= ?`, store.Micros(s.now())).Error; err != nil {
		return dbErr("sweep jti", err)
	}
	err := db.Exec(`INSERT INTO oauth_client_assertions (jti_hash, expires_at) VALUES (?, ?)`, hashKey(jti), store.Micros(exp)).Error
	if store.IsUniqueViolation(err) {
		return fosite.ErrJTIKnown
	}
	return dbErr("set jti", err)
}

// spendDPoPProof records a DPoP proof id until it could no longer pass the
// iat check anyway; fresh is false when any node has seen it before. The
// unique insert decides between nodes seeing the same proof at once.
func (s *fositeStore) spendDPoPProof(ctx context.Context, key string, until time.Time) (fresh bool, err error) {
	db := s.conn(ctx)
	// Every data call spends a proof: sweeping on a fraction of them keeps
	// the table small without a DELETE (and its locks) on every call.
	if rand.N(16) == 0 { // #nosec G404 -- picks when to sweep expired rows; no secret depends on it
		if err := db.Exec(`DELETE FROM dpop_proofs WHERE expires_at <= ?`, store.Micros(s.now())).Error; err != nil {
			return false, dbErr("sweep dpop proofs", err)
		}
	}
	err = db.Exec(`INSERT INTO dpop_proofs (jti_hash, expires_at) VALUES (?, ?)`, hashKey(key), store.Micros(until)).Error
	if store.IsUniqueViolation(err) {
		return false, nil
	}
	return err == nil, dbErr("spend dpop proof", err)
}
