package oauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/purpose"
	"github.com/consentgate/consentgate/internal/store"
)

// ErrClientExists is wrapped by CreateClient when the client id is taken.
var ErrClientExists = errors.New("oauth: client id already registered")

// Client authentication methods.
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthPrivateKeyJWT     = "private_key_jwt"
)

// Grant types a client may be registered for.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// Scopes of the machine clients (client_credentials), beside the data scopes
// of the purpose package.
const (
	ScopeAuditRead     = "audit:read"
	ScopeProviderWrite = "provider:write"
	// ScopeAdminClients is the bank operators' scope (SPEC §11).
	ScopeAdminClients = "admin:clients"
)

// supportedScopes is every scope a client may be registered for.
var supportedScopes = []string{
	purpose.ScopeAccounts, purpose.ScopeBalances, purpose.ScopeTransactions, purpose.ScopeOffline,
	ScopeAuditRead, ScopeProviderWrite, ScopeAdminClients,
	purpose.ScopeIdentity, purpose.ScopeAccountNumbers,
	purpose.ScopeOpenID, purpose.ScopeProfile, purpose.ScopeEmail,
}

// ClientSpec is a client registration (CLI `consentgate client create`, demo fixtures).
type ClientSpec struct {
	ID   string // "" → generated
	Name string
	// Secret is the client_secret_basic secret; "" → a generated 256-bit one.
	Secret                                     string
	RedirectURIs, GrantTypes, Scopes, Purposes []string
	// AuthMethod is client_secret_basic (default) or private_key_jwt.
	AuthMethod string
	JWKS       []byte // public keys, for private_key_jwt
	DPoP       bool   // tokens must be sender-constrained with DPoP
	// JWKSURI is where a private_key_jwt client publishes its public keys,
	// instead of a registered JWKS (fetched with a timeout and cached).
	JWKSURI string
	// PAROptional exempts the client from pushed authorization requests
	// (RFC 9126 §6 require_pushed_authorization_requests: false): it may
	// send a front-channel authorization request (SPEC §10).
	PAROptional bool
	// DefaultPurpose is the purpose of a front-channel request that names
	// none; "" means every request must name one. One of Purposes.
	DefaultPurpose string
	// Aggregator marks a client that passes the data on to other apps (an
	// FDX aggregator); the consent screen tells the customer so.
	Aggregator bool
}

// Client is a registered OAuth client as fosite sees it.
type Client struct {
	ID           string
	Name         string
	SecretHash   []byte
	RedirectURIs []string
	GrantTypes   []string
	Scopes       []string
	Purposes     []string
	AuthMethod   string
	JWKS         []byte
	JWKSURI      string
	DPoP         bool
	// PAROptional, DefaultPurpose and Aggregator: see ClientSpec.
	PAROptional    bool
	DefaultPurpose string
	Aggregator     bool
	CreatedAt      time.Time
	// Lifecycle (lifecycle.go): when and why the bank suspended the client
	// (SuspendedAt nil: active), and the previous secret still accepted
	// until PreviousSecretExpiresAt after a rotation.
	SuspendedAt             *time.Time
	SuspendedReason         string
	SuspendedBy             string
	PreviousSecretHash      []byte
	PreviousSecretExpiresAt *time.Time
	SecretRotatedAt         *time.Time
	// Revision changes with every change to the row (a trigger bumps it).
	Revision int64
	// remembered: the row came from the node's client cache rather than
	// a read made for this request (clientcache.go).
	remembered bool
}

var (
	_ fosite.Client             = (*Client)(nil)
	_ fosite.ResponseModeClient = (*Client)(nil)
)

// GetID implements fosite.Client.
func (c *Client) GetID() string { return c.ID }

// GetHashedSecret implements fosite.Client.
func (c *Client) GetHashedSecret() []byte { return c.SecretHash }

// GetRedirectURIs implements fosite.Client.
func (c *Client) GetRedirectURIs() []string { return c.RedirectURIs }

// GetGrantTypes implements fosite.Client.
func (c *Client) GetGrantTypes() fosite.Arguments { return c.GrantTypes }

// GetResponseTypes implements fosite.Client: only code, and only for
// clients that may use the authorization code grant.
func (c *Client) GetResponseTypes() fosite.Arguments {
	if slices.Contains(c.GrantTypes, GrantAuthorizationCode) {
		return fosite.Arguments{"code"}
	}
	return fosite.Arguments{}
}

// GetScopes implements fosite.Client.
func (c *Client) GetScopes() fosite.Arguments { return c.Scopes }

// IsPublic implements fosite.Client: every client authenticates.
func (c *Client) IsPublic() bool { return false }

// GetAudience implements fosite.Client; audiences are not used.
func (c *Client) GetAudience() fosite.Arguments { return nil }

// GetResponseModes implements fosite.ResponseModeClient: query only (FAPI 2.0).
func (c *Client) GetResponseModes() []fosite.ResponseModeType {
	return []fosite.ResponseModeType{fosite.ResponseModeQuery}
}

// HasPurpose reports whether the client is registered for the purpose.
func (c *Client) HasPurpose(p string) bool { return slices.Contains(c.Purposes, p) }

// secretHasher is the fosite.Hasher for client secrets: HMAC-SHA256 under a
// key derived from the server secret. Secrets are high-entropy, so a keyed
// fast hash is sound, and bcrypt would cap the token endpoint's throughput.
type secretHasher struct{ key []byte }

var _ fosite.Hasher = (*secretHasher)(nil)

// Hash implements fosite.Hasher (hex-encoded MAC).
func (h *secretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	m := hmac.New(sha256.New, h.key)
	m.Write(data)
	return []byte(hex.EncodeToString(m.Sum(nil))), nil
}

// Compare implements fosite.Hasher in constant time.
func (h *secretHasher) Compare(ctx context.Context, hash, data []byte) error {
	want, _ := h.Hash(ctx, data)
	if len(hash) == 0 || !hmac.Equal(hash, want) {
		return errors.New("client secret mismatch")
	}
	return nil
}

// GetClient implements fosite.ClientManager.
func (s *fositeStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.client(ctx, id)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// clientColumns are the oauth_clients columns scanClient reads, for a
// table aliased k.
const clientColumns = "k.id, k.name, k.secret_hash, k.redirect_uris, k.grant_types, k.scopes, k.purposes, k.auth_method, k.jwks, k.jwks_uri, k.dpop, k.created_at, k.par_optional, k.default_purpose, k.aggregator, " +
	"k.suspended_at, k.suspended_reason, k.suspended_by, k.previous_secret_hash, k.previous_secret_expires_at, k.secret_rotated_at, k.revision"

// scanClient builds a client from a row of clientColumns (after any
// columns already given in dst).
func scanClient(scan func(dest ...any) error, dst ...any) (*Client, error) {
	var (
		c                                          Client
		secretHash, jwks, jwksURI                  sql.NullString
		redirectURIs, grantTypes, scopes, purposes string
		createdAt                                  int64
		suspendedAt, prevExpires, rotatedAt        sql.NullInt64
		prevHash                                   sql.NullString
	)
	dst = append(dst, &c.ID, &c.Name, &secretHash, &redirectURIs, &grantTypes, &scopes, &purposes, &c.AuthMethod,
		&jwks, &jwksURI, &c.DPoP, &createdAt, &c.PAROptional, &c.DefaultPurpose, &c.Aggregator,
		&suspendedAt, &c.SuspendedReason, &c.SuspendedBy, &prevHash, &prevExpires, &rotatedAt, &c.Revision)
	if err := scan(dst...); err != nil {
		return nil, err
	}
	c.CreatedAt = store.FromMicros(createdAt)
	c.SuspendedAt, c.PreviousSecretExpiresAt, c.SecretRotatedAt = optTime(suspendedAt), optTime(prevExpires), optTime(rotatedAt)
	if prevHash.Valid {
		c.PreviousSecretHash = []byte(prevHash.String)
	}
	if secretHash.Valid {
		c.SecretHash = []byte(secretHash.String)
	}
	if jwks.Valid {
		c.JWKS = []byte(jwks.String)
	}
	c.JWKSURI = jwksURI.String
	for _, f := range []struct {
		src string
		dst *[]string
	}{{redirectURIs, &c.RedirectURIs}, {grantTypes, &c.GrantTypes}, {scopes, &c.Scopes}, {purposes, &c.Purposes}} {
		if err := decodeStrings(f.src, f.dst); err != nil {
			return nil, fmt.Errorf("oauth store: client %s: %w", c.ID, err)
		}
	}
	return &c, nil
}

// decodeStrings decodes a JSON array of strings as CreateClient stores
// them. Every token check reads a client, so the common form (no escapes)
// is split directly; anything else goes through encoding/json.
func decodeStrings(src string, dst *[]string) error {
	inner, ok := strings.CutPrefix(src, "[")
	if inner, ok2 := strings.CutSuffix(inner, "]"); ok && ok2 && !strings.ContainsRune(inner, '\\') {
		if inner == "" {
			*dst = []string{}
			return nil
		}
		parts := strings.Split(inner, ",")
		out := make([]string, len(parts))
		for i, p := range parts {
			v, ok := strings.CutPrefix(p, `"`)
			if v, ok2 := strings.CutSuffix(v, `"`); ok && ok2 && !strings.ContainsRune(v, '"') {
				out[i] = v
				continue
			}
			return json.Unmarshal([]byte(src), dst)
		}
		*dst = out
		return nil
	}
	return json.Unmarshal([]byte(src), dst)
}

// client loads a registration. Every client-authenticated request does, so
// it is one indexed read straight through database/sql, or none when the
// request may use the node's client cache (clientcache.go).
func (s *fositeStore) client(ctx context.Context, id string) (*Client, error) {
	if c := clientRowFromRequest(ctx, id); c != nil {
		return c, nil
	}
	mode := clientCacheModeOf(ctx)
	if mode == cacheUse {
		if c := s.rememberedClient(id); c != nil {
			return c, nil
		}
	}
	row := s.sqlConn(ctx).QueryRowContext(ctx, `SELECT `+clientColumns+` FROM oauth_clients k WHERE k.id = $1`, id)
	c, err := scanClient(row.Scan)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if mode != cacheOff {
			s.clientRows.forget(id)
		}
		return nil, fosite.ErrNotFound.WithHint("Unknown client.")
	case err != nil:
		return nil, dbErr("get client", err)
	}
	if mode != cacheOff {
		s.keepClient(c)
	}
	return c, nil
}

// ClientExists reports whether a client id is registered (idempotent
// seeding asks before creating).
func (p *Provider) ClientExists(ctx context.Context, id string) (bool, error) {
	_, err := p.store.client(ctx, id)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fosite.ErrNotFound):
		return false, nil
	default:
		return false, err
	}
}

// CreateClient registers a client and returns its id and, for
// client_secret_basic, its secret (shown once; only a hash is stored).
func (p *Provider) CreateClient(ctx context.Context, spec ClientSpec) (clientID, secret string, err error) {
	return p.CreateClientWith(ctx, spec, nil)
}

// CreateClientWith registers a client like CreateClient and runs then (when
// not nil) in the same transaction, with the new client's id: when then
// fails, nothing is registered (the CLI makes a provider client and maps it
// to its institution all or nothing).
func (p *Provider) CreateClientWith(ctx context.Context, spec ClientSpec, then func(tx *gorm.DB, clientID string) error) (clientID, secret string, err error) {
	c, secret, err := p.validateClient(spec)
	if err != nil {
		return "", "", fmt.Errorf("oauth.CreateClient: %w", err)
	}
	var secretHash *string
	if secret != "" {
		h, _ := p.hasher.Hash(ctx, []byte(secret))
		s := string(h)
		secretHash = &s
	}
	var jwks, jwksURI *string
	if len(c.JWKS) > 0 {
		s := string(c.JWKS)
		jwks = &s
	}
	if c.JWKSURI != "" {
		jwksURI = &c.JWKSURI
	}
	enc := func(v []string) string {
		b, _ := json.Marshal(v) // []string always encodes
		return string(b)
	}
	var thenErr error
	err = p.store.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO oauth_clients
		(id, name, secret_hash, redirect_uris, grant_types, scopes, purposes, auth_method, jwks, jwks_uri, dpop, created_at,
		 par_optional, default_purpose, aggregator)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Name, secretHash, enc(c.RedirectURIs), enc(c.GrantTypes), enc(c.Scopes), enc(c.Purposes),
			c.AuthMethod, jwks, jwksURI, c.DPoP, store.Micros(p.now()), c.PAROptional, c.DefaultPurpose, c.Aggregator).Error; err != nil || then == nil {
			return err
		}
		thenErr = then(tx, c.ID)
		return thenErr
	})
	if thenErr != nil {
		return "", "", thenErr
	}
	if store.IsUniqueViolation(err) {
		return "", "", fmt.Errorf("oauth.CreateClient %q: %w", c.ID, ErrClientExists)
	}
	if err != nil {
		return "", "", fmt.Errorf("oauth.CreateClient: %w", err)
	}
	return c.ID, secret, nil
}

// validateClient checks a registration and fills in the defaults.
func (p *Provider) validateClient(spec ClientSpec) (*Client, string, error) {
	c := &Client{
		ID: spec.ID, Name: spec.Name, AuthMethod: spec.AuthMethod, DPoP: spec.DPoP,
		PAROptional: spec.PAROptional, DefaultPurpose: spec.DefaultPurpose, Aggregator: spec.Aggregator,
		RedirectURIs: nonNil(spec.RedirectURIs), Scopes: nonNil(spec.Scopes), Purposes: nonNil(spec.Purposes),
	}
	if c.Name == "" {
		return nil, "", errors.New("a client needs a name")
	}
	if c.ID == "" {
		c.ID = "client-" + randomToken(12)
	}
	grants := spec.GrantTypes
	if len(grants) == 0 {
		grants = []string{GrantAuthorizationCode}
	}
	for _, g := range grants {
		switch g {
		case GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials:
		default:
			return nil, "", fmt.Errorf("unknown grant type %q", g)
		}
		if !slices.Contains(c.GrantTypes, g) {
			c.GrantTypes = append(c.GrantTypes, g)
		}
	}
	codeFlow := slices.Contains(c.GrantTypes, GrantAuthorizationCode)
	// Refresh tokens come with the code grant (and still need offline_access).
	if codeFlow && !slices.Contains(c.GrantTypes, GrantRefreshToken) {
		c.GrantTypes = append(c.GrantTypes, GrantRefreshToken)
	}
	if slices.Contains(c.GrantTypes, GrantRefreshToken) && !codeFlow {
		return nil, "", errors.New("grant type refresh_token needs authorization_code")
	}
	if len(c.Scopes) == 0 {
		return nil, "", errors.New("a client needs at least one scope")
	}
	for _, s := range c.Scopes {
		if !slices.Contains(supportedScopes, s) {
			return nil, "", fmt.Errorf("unknown scope %q", s)
		}
	}
	for _, pc := range c.Purposes {
		if purpose.IsProhibited(pc) {
			return nil, "", fmt.Errorf("purpose %q is prohibited and can never be registered", pc)
		}
		if _, ok := p.purposes.Lookup(pc); !ok {
			return nil, "", fmt.Errorf("unknown purpose %q", pc)
		}
	}
	if err := p.checkScopesUsable(c.Scopes, c.Purposes); err != nil {
		return nil, "", err
	}
	if codeFlow {
		if len(c.RedirectURIs) == 0 {
			return nil, "", errors.New("the authorization_code grant needs at least one redirect URI")
		}
		if len(c.Purposes) == 0 {
			return nil, "", errors.New("the authorization_code grant needs at least one purpose")
		}
	}
	if c.PAROptional && !codeFlow {
		return nil, "", errors.New("--par-optional is for clients of the authorization_code grant")
	}
	if c.DefaultPurpose != "" && !slices.Contains(c.Purposes, c.DefaultPurpose) {
		return nil, "", fmt.Errorf("the default purpose %q must be one of the client's purposes %v", c.DefaultPurpose, c.Purposes)
	}
	for _, raw := range c.RedirectURIs {
		u, err := url.Parse(raw)
		if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || !fosite.IsRedirectURISecureStrict(context.Background(), u) {
			return nil, "", &redirectURIError{fmt.Sprintf("redirect URI %q must be an absolute https URI (http only for loopback), without fragment", raw)}
		}
	}
	secret := spec.Secret
	switch c.AuthMethod {
	case "", AuthClientSecretBasic:
		c.AuthMethod = AuthClientSecretBasic
		if len(spec.JWKS) > 0 || spec.JWKSURI != "" {
			return nil, "", errors.New("a JWKS or jwks_uri is only for private_key_jwt clients")
		}
		if secret == "" {
			secret = randomToken(32)
		}
	case AuthPrivateKeyJWT:
		if secret != "" {
			return nil, "", errors.New("a private_key_jwt client has no secret")
		}
		switch {
		case len(spec.JWKS) > 0 && spec.JWKSURI != "":
			return nil, "", errors.New("register either a JWKS or a jwks_uri, not both")
		case len(spec.JWKS) > 0:
			if _, err := parseJWKS(spec.JWKS); err != nil {
				return nil, "", err
			}
			c.JWKS = spec.JWKS
		case spec.JWKSURI != "":
			if err := checkJWKSURI(spec.JWKSURI); err != nil {
				return nil, "", err
			}
			c.JWKSURI = spec.JWKSURI
		default:
			return nil, "", errors.New("a private_key_jwt client needs its public keys: a JWKS (--jwks-file) or a jwks_uri")
		}
	default:
		return nil, "", fmt.Errorf("unknown auth method %q", c.AuthMethod)
	}
	return c, secret, nil
}

// checkScopesUsable refuses a data scope that none of the client's purposes
// allows: PAR would refuse every request for it (invalid_scope), so the
// registration is the place to say so, naming what each purpose allows.
// Scopes that are not purpose scopes (offline_access, OpenID Connect's, the
// machine clients' audit:read and provider:write) need no purpose.
func (p *Provider) checkScopesUsable(scopes, purposes []string) error {
	for _, s := range scopes {
		if !slices.Contains(purpose.DataScopes, s) {
			continue
		}
		usable := false
		var allowed []string
		for _, pc := range purposes {
			pol, _ := p.purposes.Lookup(pc)
			if pol.AllowsScope(s) {
				usable = true
				break
			}
			allowed = append(allowed, fmt.Sprintf("%s allows %s", pc, strings.Join(pol.Scopes, " ")))
		}
		if usable {
			continue
		}
		if len(purposes) == 0 {
			return fmt.Errorf("scope %q is a data scope and needs a purpose that allows it (--purpose); a client without purposes cannot use it", s)
		}
		return fmt.Errorf("scope %q is allowed by none of the client's purposes (%s): drop the scope or add a purpose that allows it", s, strings.Join(allowed, "; "))
	}
	return nil
}

// redirectURIError is a refused redirect URI (RFC 7591 invalid_redirect_uri
// when it comes through dynamic registration).
type redirectURIError struct{ msg string }

func (e *redirectURIError) Error() string { return e.msg }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// randomToken returns n random bytes, base64url-encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}
