package oauth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fstorage "github.com/ory/fosite/storage"
	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/store"
)

// fositeStore is fosite's storage on the shared database. Every single-use
// rule (code, refresh token, request_uri, challenge) is a conditional
// UPDATE or DELETE whose affected rows decide, so any number of server
// processes on one PostgreSQL agree.
type fositeStore struct {
	db    *store.DB
	now   func() time.Time
	batch *tokenBatcher // token rows written outside a fosite transaction
	// tokenQuery is getToken's statement in the database's SQL.
	tokenQuery string
	// clientRows are the client rows this node has read, by id: the token
	// endpoint answers client_credentials requests from them under a
	// precondition (clientcache.go), and the access token check uses them
	// at the revision it reads live (tokencache.go). records are the
	// parsed records of the access tokens it has checked, by signature
	// hash, read with liveTokenQuery.
	clientRows     *memo[*Client]
	records        *memo[*record]
	liveTokenQuery string
	// liveTokens are the states this node last read of the access tokens
	// it checks, by signature hash: a data call may be answered from one
	// under a deferred check (tokencache.go).
	liveTokens *memo[*liveToken]
}

// compose.Compose type-asserts the storage for each factory and panics on a
// missing method: pin every interface here so the compiler checks instead.
var (
	_ fosite.Storage                = (*fositeStore)(nil)
	_ fosite.PARStorage             = (*fositeStore)(nil)
	_ oauth2.CoreStorage            = (*fositeStore)(nil)
	_ oauth2.TokenRevocationStorage = (*fositeStore)(nil)
	_ pkce.PKCERequestStorage       = (*fositeStore)(nil)
	_ fstorage.Transactional        = (*fositeStore)(nil)

	_ openid.OpenIDConnectRequestStorage = (*fositeStore)(nil)
)

// Token kinds in oauth_tokens.
const (
	kindCode    = "authorize_code"
	kindAccess  = "access_token"
	kindRefresh = "refresh_token"
	kindPKCE    = "pkce"
)

type txKey struct{}

// sqlConn is conn(ctx) for statements that bypass gorm on the hot paths
// (their SQL uses $n placeholders, positional in both drivers).
func (s *fositeStore) sqlConn(ctx context.Context) gorm.ConnPool {
	if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return tx.Statement.ConnPool
	}
	return s.db.ConnPool
}

// conn is the transaction fosite opened on ctx (BeginTX), or the pool.
func (s *fositeStore) conn(ctx context.Context) *gorm.DB {
	if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return tx
	}
	return s.db.WithContext(ctx)
}

// BeginTX implements storage.Transactional: fosite wraps code redemption and
// refresh rotation in one transaction, so a failure leaves nothing half done.
func (s *fositeStore) BeginTX(ctx context.Context) (context.Context, error) {
	if _, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return ctx, errors.New("oauth: nested transaction")
	}
	tx := s.db.WithContext(ctx).Begin()
	if tx.Error != nil {
		return ctx, dbErr("begin", tx.Error)
	}
	return context.WithValue(ctx, txKey{}, tx), nil
}

// Commit implements storage.Transactional.
func (s *fositeStore) Commit(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(*gorm.DB)
	if !ok {
		return errors.New("oauth: commit without transaction")
	}
	return dbErr("commit", tx.Commit().Error)
}

// Rollback implements storage.Transactional.
func (s *fositeStore) Rollback(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(*gorm.DB)
	if !ok {
		return errors.New("oauth: rollback without transaction")
	}
	return dbErr("rollback", tx.Rollback().Error)
}

// dbErr names the operation and turns lock conflicts into the error fosite
// answers with "retry" instead of a server error.
func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if store.IsSerializationFailure(err) {
		return fmt.Errorf("oauth store %s: %w", op, fosite.ErrSerializationFailure.WithWrap(err))
	}
	return fmt.Errorf("oauth store %s: %w", op, errors.Join(ErrStorage, err))
}

// ErrStorage marks a failure of the database rather than of the token: the
// caller answers 503, not 401, so an outage never looks like a revocation.
var ErrStorage = errors.New("oauth: storage unavailable")

// createToken stores one code, token or PKCE request under its signature.
func (s *fositeStore) createToken(ctx context.Context, kind, signature, accessSignature string, req fosite.Requester, expiresAt time.Time) error {
	data, err := encodeRequest(req)
	if err != nil {
		return err
	}
	var accessHash *string
	if accessSignature != "" {
		h := hashKey(accessSignature)
		accessHash = &h
	}
	subject := ""
	if sess := req.GetSession(); sess != nil {
		subject = sess.GetSubject()
	}
	clientID := ""
	if c := req.GetClient(); c != nil {
		clientID = c.GetID()
	}
	args := []any{kind, hashKey(signature), req.GetID(), clientID, subject, true,
		store.Micros(req.GetRequestedAt()), store.Micros(expiresAt), data, accessHash}
	const insert = `INSERT INTO oauth_tokens (` + tokenInsertColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return dbErr("create "+kind, tx.Exec(insert, args...).Error)
	}
	if kind == kindAccess {
		// A client_credentials token commits with its token.issued event:
		// one group commit of the audit writer instead of two in a row.
		// Issued on a remembered client row, it commits only while the
		// client is still at that row's revision (clientcache.go).
		cond := clientCondition(req)
		ok, err := recordWith(ctx, EventRows{Table: "oauth_tokens", Columns: tokenInsertColumnList, Values: args, Require: cond})
		if ok {
			if errors.Is(err, ErrClientChanged) {
				return fmt.Errorf("oauth store: create %s: %w", kind, err)
			}
			return dbErr("create "+kind+" with its audit event", err)
		}
		if cond != nil {
			if err := s.checkCondition(ctx, cond); err != nil {
				return fmt.Errorf("oauth store: create %s: %w", kind, err)
			}
		}
	}
	if err := s.batch.insert(ctx, args...); err != nil {
		return fmt.Errorf("oauth store: create %s: %w", kind, err)
	}
	return nil
}

// expiryOf is the session's expiry for kind on the provider's clock, or
// now+fallback when unset. fosite stamps expiries on the wall clock; rows
// are checked on the provider's, so the stamp is shifted by their
// difference (zero in production, a moved clock in tests).
func (s *fositeStore) expiryOf(req fosite.Requester, kind fosite.TokenType, fallback time.Duration) time.Time {
	if sess := req.GetSession(); sess != nil {
		if exp := sess.GetExpiresAt(kind); !exp.IsZero() {
			return exp.Add(clockSkew(s.now))
		}
	}
	return s.now().Add(fallback)
}

// clockSkew is how far the provider's clock runs ahead of the wall clock.
func clockSkew(now func() time.Time) time.Duration {
	return time.Until(now()).Round(time.Second)
}

type tokenRow struct {
	RequestID   string
	ClientID    string
	Active      bool
	ExpiresAt   int64
	RequestData string
	// Consent is the token's grant with its accounts, nil for tokens
	// without one (client_credentials).
	Consent *consent.Consent
	Client  *Client
	// rec is RequestData parsed, when the node has (tokencache.go);
	// RequestData is then not read.
	rec *record
}

// getToken loads a token row with its consent (if any), the consent's
// accounts and its client's registration: one read by primary key (kind,
// signature hash), straight through database/sql, answers a whole token
// check, and a data call needs no second read for its consent. A token
// whose client is gone is not found.
func (s *fositeStore) getToken(ctx context.Context, kind, signature string) (*tokenRow, error) {
	if m, ok := ctx.Value(tokenMemoKey{}).(*tokenMemo); ok && m.kind == kind && m.signature == signature {
		return m.row, nil
	}
	hash := hashKey(signature)
	if kind == kindAccess {
		if r, err := s.knownAccessToken(ctx, hash); r != nil || err != nil {
			return r, err
		}
	}
	var (
		r    tokenRow
		cons consent.Joined
	)
	q := s.sqlConn(ctx).QueryRowContext(ctx, s.tokenQuery, kind, hash)
	dst := append([]any{&r.RequestID, &r.ClientID, &r.Active, &r.ExpiresAt, &r.RequestData}, cons.Dest()...)
	client, err := scanClient(q.Scan, dst...)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fosite.ErrNotFound
	case err != nil:
		return nil, dbErr("get "+kind, err)
	}
	r.Client = client
	if r.Consent, err = cons.Consent(); err != nil {
		return nil, fmt.Errorf("oauth store: token of grant %s: %w", r.RequestID, err)
	}
	if kind == kindAccess {
		if err := s.rememberAccessToken(hash, &r); err != nil {
			return nil, err
		}
	}
	return &r, nil
}

// tokenMemo is a token row one request has read, for that request's later
// reads of the same token: introspection reads the token first, to
// authenticate its client against the client row that came with it, and
// fosite then asks for the same token. It lives as long as the request, so
// a revocation still shows on the next one.
type tokenMemo struct {
	kind, signature string
	row             *tokenRow
}

type tokenMemoKey struct{}

// withTokenRow is ctx remembering row, read for kind and signature.
func withTokenRow(ctx context.Context, kind, signature string, row *tokenRow) context.Context {
	return context.WithValue(ctx, tokenMemoKey{}, &tokenMemo{kind: kind, signature: signature, row: row})
}

// tokenQuery is getToken's statement in d's SQL.
func tokenQuery(d store.Dialect) string {
	return `SELECT t.request_id, t.client_id, t.active, t.expires_at, t.request_data, ` + consent.JoinedColumns(d, "c") + `,
			` + clientColumns + `
		FROM oauth_tokens t JOIN oauth_clients k ON k.id = t.client_id LEFT JOIN consents c ON c.id = t.request_id
		WHERE t.kind = $1 AND t.signature_hash = $2`
}

// request rebuilds the token's fosite request with the client the row
// came with.
func (s *fositeStore) request(row *tokenRow, sess fosite.Session) (fosite.Requester, error) {
	rec := row.rec
	if rec == nil {
		var err error
		if rec, err = parseRecord(row.RequestData); err != nil {
			return nil, err
		}
	}
	if rec.ClientID != row.Client.ID {
		return nil, fmt.Errorf("oauth store: token of client %q records client %q", row.Client.ID, rec.ClientID)
	}
	return rec.request(sess, row.Client)
}

// expired reports whether the row's own lifetime is over by the provider's
// clock. fosite checks lifetimes too, but with the wall clock; checking here
// keeps every node (and tests with a moved clock) on one notion of time.
func (s *fositeStore) expired(row *tokenRow) bool {
	return !s.now().Before(store.FromMicros(row.ExpiresAt))
}

// consentLive reports whether the token's grant may still be used: tokens
// of an authorization_code grant live only while their consent is
// authorized and unexpired; client_credentials tokens have no consent.
func (s *fositeStore) consentLive(row *tokenRow, req fosite.Requester) bool {
	if row.Consent == nil {
		sess, _ := req.GetSession().(*Session)
		return sess == nil || sess.GrantID == "" // a grant-bound token whose consent vanished is dead
	}
	return row.Consent.Active(s.now())
}

// CreateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
func (s *fositeStore) CreateAuthorizeCodeSession(ctx context.Context, signature string, req fosite.Requester) error {
	return s.createToken(ctx, kindCode, signature, "", req, s.expiryOf(req, fosite.AuthorizeCode, authorizeCodeLifespan))
}

// GetAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage. A used
// code comes back with fosite.ErrInvalidatedAuthorizeCode and its request,
// so fosite can revoke what the first redemption issued.
func (s *fositeStore) GetAuthorizeCodeSession(ctx context.Context, signature string, sess fosite.Session) (fosite.Requester, error) {
	row, err := s.getToken(ctx, kindCode, signature)
	if err != nil {
		return nil, err
	}
	req, err := s.request(row, sess)
	if err != nil {
		return nil, err
	}
	if !row.Active {
		return req, fosite.ErrInvalidatedAuthorizeCode
	}
	if s.expired(row) {
		return nil, fosite.ErrNotFound.WithHint("The authorization code expired.")
	}
	return req, nil
}

// InvalidateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
// Only one redemption can flip the row; a concurrent one sees the code
// already used.
func (s *fositeStore) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	res := s.conn(ctx).Exec(`UPDATE oauth_tokens SET active = ? WHERE kind = ? AND signature_hash = ? AND active`,
		false, kindCode, hashKey(signature))
	if res.Error != nil {
		return dbErr("invalidate code", res.Error)
	}
	if res.RowsAffected != 1 {
		return fosite.ErrInvalidatedAuthorizeCode
	}
	return nil
}

// CreateAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *fositeStore) CreateAccessTokenSession(ctx context.Context, signature string, req fosite.Requester) error {
	return s.createToken(ctx, kindAccess, signature, "", req, s.expiryOf(req, fosite.AccessToken, accessTokenLifespan))
}

// GetAccessTokenSession implements oauth2.AccessTokenStorage. Tokens of a
// consent that is no longer authorized are inactive.
func (s *fositeStore) GetAccessTokenSession(ctx context.Context, signature string, sess fosite.Session) (fosite.Requester, error) {
	row, err := s.getToken(ctx, kindAccess, signature)
	if err != nil {
		return nil, err
	}
	req, err := s.request(row, sess)
	if err != nil {
		return nil, err
	}
	if !row.Active || !s.consentLive(row, req) {
		return nil, fosite.ErrInactiveToken
	}
	if s.expired(row) {
		return nil, fosite.ErrTokenExpired
	}
	// The consent read with the token goes along with the session, so
	// that AuthenticateAccess needs no second read for it.
	if sess, ok := req.GetSession().(*Session); ok {
		sess.consent = row.Consent
	}
	return req, nil
}

// DeleteAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *fositeStore) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	err := s.conn(ctx).Exec(`DELETE FROM oauth_tokens WHERE kind = ? AND signature_hash = ?`, kindAccess, hashKey(signature)).Error
	return dbErr("delete access token", err)
}

// CreateRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s *fositeStore) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, req fosite.Requester) error {
	return s.createToken(ctx, kindRefresh, signature, accessSignature, req, s.expiryOf(req, fosite.RefreshToken, refreshTokenLifespan))
}

// GetRefreshTokenSession implements oauth2.RefreshTokenStorage. A rotated
// (inactive) token comes back with its request AND fosite.ErrInactiveToken:
// that is how fosite detects reuse and revokes the whole family. A token of
// a consent that is no longer authorized is simply not found (invalid_grant),
// with no reuse alarm: the grant is already over.
func (s *fositeStore) GetRefreshTokenSession(ctx context.Context, signature string, sess fosite.Session) (fosite.Requester, error) {
	row, err := s.getToken(ctx, kindRefresh, signature)
	if err != nil {
		return nil, err
	}
	req, err := s.request(row, sess)
	if err != nil {
		return nil, err
	}
	if !s.consentLive(row, req) {
		return nil, fosite.ErrNotFound.WithHint("The grant of this refresh token is no longer authorized.")
	}
	if !row.Active {
		return req, fosite.ErrInactiveToken
	}
	if s.expired(row) {
		return nil, fosite.ErrNotFound.WithHint("The refresh token expired.")
	}
	return req, nil
}

// DeleteRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s *fositeStore) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	err := s.conn(ctx).Exec(`DELETE FROM oauth_tokens WHERE kind = ? AND signature_hash = ?`, kindRefresh, hashKey(signature)).Error
	return dbErr("delete refresh token", err)
}

// RotateRefreshToken implements oauth2.RefreshTokenStorage: the used token
// turns inactive, once. Losing the race to a concurrent rotation is a
// serialization failure (the client may retry, and then trips reuse
// detection if it really did use the token twice).
func (s *fositeStore) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	res := s.conn(ctx).Exec(`UPDATE oauth_tokens SET active = ? WHERE kind = ? AND signature_hash = ? AND request_id = ? AND active`,
		false, kindRefresh, hashKey(signature), requestID)
	if res.Error != nil {
		return dbErr("rotate refresh token", res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	var n int64
	if err := s.conn(ctx).Raw(`SELECT count(*) FROM oauth_tokens WHERE kind = ? AND signature_hash = ?`,
		kindRefresh, hashKey(signature)).Scan(&n).Error; err != nil {
		return dbErr("rotate refresh token", err)
	}
	if n == 0 {
		return fosite.ErrNotFound
	}
	return fosite.ErrSerializationFailure.WithHint("The refresh token was rotated by a concurrent request.")
}

// RevokeRefreshToken implements oauth2.TokenRevocationStorage: every refresh
// token of the grant turns inactive (kept, so a later use is recognised).
func (s *fositeStore) RevokeRefreshToken(ctx context.Context, requestID string) error {
	err := s.conn(ctx).Exec(`UPDATE oauth_tokens SET active = ? WHERE kind = ? AND request_id = ?`, false, kindRefresh, requestID).Error
	return dbErr("revoke refresh tokens", err)
}

// RevokeAccessToken implements oauth2.TokenRevocationStorage: every access
// token of the grant is deleted.
func (s *fositeStore) RevokeAccessToken(ctx context.Context, requestID string) error {
	err := s.conn(ctx).Exec(`DELETE FROM oauth_tokens WHERE kind = ? AND request_id = ?`, kindAccess, requestID).Error
	return dbErr("revoke access tokens", err)
}

// CreatePKCERequestSession implements pkce.PKCERequestStorage.
func (s *fositeStore) CreatePKCERequestSession(ctx context.Context, signature string, req fosite.Requester) error {
	return s.createToken(ctx, kindPKCE, signature, "", req, s.expiryOf(req, fosite.AuthorizeCode, authorizeCodeLifespan))
}

// GetPKCERequestSession implements pkce.PKCERequestStorage.
func (s *fositeStore) GetPKCERequestSession(ctx context.Context, signature string, sess fosite.Session) (fosite.Requester, error) {
	row, err := s.getToken(ctx, kindPKCE, signature)
	if err != nil {
		return nil, err
	}
	return s.request(row, sess)
}

// DeletePKCERequestSession implements pkce.PKCERequestStorage.
func (s *fositeStore) DeletePKCERequestSession(ctx context.Context, signature string) error {
	err := s.conn(ctx).Exec(`DELETE FROM oauth_tokens WHERE kind = ? AND signature_hash = ?`, kindPKCE, hashKey(signature)).Error
	return dbErr("delete pkce", err)
}

// tokenOwner is who a token belongs to, whatever its state.
type tokenOwner struct {
	RequestID string
	ClientID  string
	Subject   string
	Active    bool
}

// lookupToken finds a token's grant and client without judging it.
func (s *fositeStore) lookupToken(ctx context.Context, kind, signature string) (*tokenOwner, error) {
	var rows []tokenOwner
	err := s.conn(ctx).Raw(`SELECT request_id, client_id, subject, active FROM oauth_tokens WHERE kind = ? AND signature_hash = ?`,
		kind, hashKey(signature)).Scan(&rows).Error
	if err != nil {
		return nil, dbErr("lookup "+kind, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return &rows[0], nil
}

// revokeGrantTokens ends every code, access and refresh token of a grant.
func (s *fositeStore) revokeGrantTokens(ctx context.Context, requestID string) error {
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Exec(`UPDATE oauth_tokens SET active = ? WHERE request_id = ? AND kind IN (?, ?)`,
			false, requestID, kindRefresh, kindCode).Error; err != nil {
			return dbErr("revoke grant tokens", err)
		}
		return dbErr("revoke grant tokens", tx.Exec(`DELETE FROM oauth_tokens WHERE request_id = ? AND kind = ?`, requestID, kindAccess).Error)
	})
}
