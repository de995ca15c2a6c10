package oauth

import (
	"context"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/consentgate/consentgate/internal/keys"
	"github.com/consentgate/consentgate/internal/store"
)

// This file is OpenID Connect (SPEC §10) on fosite's own openid handlers:
// the id_token signer, the claims the customer's decision puts in the
// session, and the storage of the OpenID Connect request behind a code.

// idTokenLifespan is how long an id_token is valid: exp − iat exactly.
const idTokenLifespan = 300 * time.Second

// Subjects gives the identifier a client sees for a customer: pairwise
// (OpenID Connect Core §8.1), never the internal customer id.
type Subjects interface {
	// Subject is the opaque, stable subject of customerID for clientID.
	Subject(clientID, customerID string) string
}

// idTokenKeyLabel names the id_token key derived from the server secret
// when Deps.IDTokenKey is not given.
const idTokenKeyLabel = "consentgate/oidc/id-token"

// idTokenSigner is the jwt.Signer of fosite's openid.DefaultStrategy: ES256
// with the key of keyFn, its kid in the header. fosite stamps exp and iat
// from two readings of the clock, a second apart when they straddle one;
// the signer sets exp = iat + the id_token lifetime, so the lifetime a
// relying party computes is exactly the configured one.
type idTokenSigner struct {
	keyFn    func() keys.ES256
	lifespan time.Duration
}

var _ jwt.Signer = (*idTokenSigner)(nil)

func (s *idTokenSigner) inner() *jwt.DefaultSigner {
	return &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (interface{}, error) { return s.keyFn().Private, nil }}
}

// Generate implements jwt.Signer.
func (s *idTokenSigner) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	if iat, ok := claims["iat"].(int64); ok {
		claims["exp"] = iat + int64(s.lifespan/time.Second)
	}
	h := &jwt.Headers{Extra: header.ToMap()}
	h.Add("kid", s.keyFn().Public.KeyID)
	return s.inner().Generate(ctx, claims, h)
}

// Validate implements jwt.Signer.
func (s *idTokenSigner) Validate(ctx context.Context, token string) (string, error) {
	return s.inner().Validate(ctx, token)
}

// Hash implements jwt.Signer.
func (s *idTokenSigner) Hash(ctx context.Context, in []byte) ([]byte, error) {
	return s.inner().Hash(ctx, in)
}

// Decode implements jwt.Signer.
func (s *idTokenSigner) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	return s.inner().Decode(ctx, token)
}

// GetSignature implements jwt.Signer.
func (s *idTokenSigner) GetSignature(ctx context.Context, token string) (string, error) {
	return s.inner().GetSignature(ctx, token)
}

// GetSigningMethodLength implements jwt.Signer.
func (s *idTokenSigner) GetSigningMethodLength(ctx context.Context) int {
	return s.inner().GetSigningMethodLength(ctx)
}

// idTokenClaims fills the id_token claims fosite's openid handlers sign,
// from the customer's decision: the pairwise subject (the audit log and
// the session keep the internal id), the login time and the time of the
// request. iss, aud, nonce, iat and exp are fosite's.
func (p *Provider) idTokenClaims(sess *Session, ar fosite.Requester, d Decision) {
	claims := sess.IDTokenClaims()
	claims.Subject = p.subjectFor(ar.GetClient().GetID(), d.CustomerID)
	claims.RequestedAt = ar.GetRequestedAt().UTC()
	claims.AuthTime = d.AuthTime.UTC().Truncate(time.Second)
	if d.AuthTime.IsZero() {
		claims.AuthTime = p.now().Add(-clockSkew(p.now)).Truncate(time.Second)
	}
}

// subjectFor is what clientID sees as customerID's identifier.
func (p *Provider) subjectFor(clientID, customerID string) string {
	if customerID == "" {
		return ""
	}
	return p.subjects.Subject(clientID, customerID)
}

// CreateOpenIDConnectSession implements openid.OpenIDConnectRequestStorage:
// the OpenID Connect request (nonce, …) behind an authorization code, kept
// under the hash of the code as long as the code lives.
func (s *fositeStore) CreateOpenIDConnectSession(ctx context.Context, authorizeCode string, req fosite.Requester) error {
	data, err := encodeRequest(req)
	if err != nil {
		return err
	}
	db := s.conn(ctx)
	// Codes never redeemed leave their session behind; sweeping on a
	// fraction of the inserts keeps the table small.
	if rand.N(16) == 0 { // #nosec G404 -- picks when to sweep expired rows; no secret depends on it
		if err := db.Exec(`DELETE FROM oauth_oidc_sessions WHERE expires_at <= ?`, store.Micros(s.now())).Error; err != nil {
			return dbErr("sweep oidc sessions", err)
		}
	}
	err = db.Exec(`INSERT INTO oauth_oidc_sessions (signature_hash, request_id, request_data, expires_at) VALUES (?, ?, ?, ?)`,
		hashKey(authorizeCode), req.GetID(), data, store.Micros(s.now().Add(authorizeCodeLifespan))).Error
	return dbErr("create oidc session", err)
}

// GetOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *fositeStore) GetOpenIDConnectSession(ctx context.Context, authorizeCode string, _ fosite.Requester) (fosite.Requester, error) {
	var rows []string
	err := s.conn(ctx).Raw(`SELECT request_data FROM oauth_oidc_sessions WHERE signature_hash = ? AND expires_at > ?`,
		hashKey(authorizeCode), store.Micros(s.now())).Scan(&rows).Error
	if err != nil {
		return nil, dbErr("get oidc session", err)
	}
	if len(rows) == 0 {
		return nil, openid.ErrNoSessionFound
	}
	return s.decodeRequest(ctx, rows[0], nil)
}

// DeleteOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *fositeStore) DeleteOpenIDConnectSession(ctx context.Context, authorizeCode string) error {
	err := s.conn(ctx).Exec(`DELETE FROM oauth_oidc_sessions WHERE signature_hash = ?`, hashKey(authorizeCode)).Error
	return dbErr("delete oidc session", err)
}

// checkOIDCRequest refuses the OpenID Connect request parameters this
// server cannot honour, before the customer is asked anything: it always
// shows the consent screen and never forces a new login, so prompt other
// than consent, max_age and id_token_hint would otherwise surface as a
// server error when the code is redeemed.
func checkOIDCRequest(form url.Values) error {
	for _, v := range strings.Fields(form.Get("prompt")) {
		if v != "consent" {
			return fosite.ErrInvalidRequest.WithHintf("prompt=%s is not supported: the customer always sees the consent screen and is not asked to log in again.", v)
		}
	}
	if form.Has("max_age") {
		return fosite.ErrInvalidRequest.WithHint("max_age is not supported; use auth_time in the id_token to judge how recent the login was.")
	}
	if form.Has("id_token_hint") {
		return fosite.ErrInvalidRequest.WithHint("id_token_hint is not supported.")
	}
	return nil
}
