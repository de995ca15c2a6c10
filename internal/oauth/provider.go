// Package oauth is consentgate's authorization server (SPEC §2): the ory/fosite
// composition, the fosite storage on the shared database, pushed
// authorization requests with purpose checks, the browser hand-off to the
// consent screen, the token, introspection, revocation and grant management
// endpoints, RFC 8414 metadata, and the bearer-token check the data API uses.
//
// It owns the OAuth state (clients, codes, tokens, PAR and authorize
// sessions) and drives consents through consent.Store. It must never let a
// token outlive or outreach its consent, never redirect a browser to a URI
// it has not verified against the client's registration, never store a
// secret, token or code in the clear, and never serve data itself.
package oauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/keys"
	"github.com/consentgate/consentgate/internal/purpose"
	"github.com/consentgate/consentgate/internal/store"
)

// Lifetimes fixed by SPEC §2.
const (
	accessTokenLifespan   = 300 * time.Second
	authorizeCodeLifespan = 60 * time.Second
	// refreshTokenLifespan is the ceiling; every refresh token is also capped
	// at its consent's expiry, which is never more than 365 days.
	refreshTokenLifespan = 365 * 24 * time.Hour
	parLifespan          = 60 * time.Second
	challengeLifespan    = 10 * time.Minute
	// maxFormBytes bounds every form body the endpoints read.
	maxFormBytes = 64 << 10
)

// requestURIPrefix starts every request_uri this server hands out (RFC 9126 §2.2).
const requestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// ErrUnknownChallenge is returned for a consent challenge that does not
// exist, was already used or has expired.
var ErrUnknownChallenge = errors.New("oauth: unknown or expired authorization challenge")

// ErrNoAccounts is returned by FinishAuthorization when an approval names no
// account; the challenge stays usable so the form can be shown again.
var ErrNoAccounts = errors.New("oauth: approval must select at least one account")

// Deps are the provider's collaborators.
type Deps struct {
	DB       *store.DB
	Consents consent.Store
	Purposes *purpose.Table
	Issuer   string // e.g. "http://localhost:8080", no trailing slash
	// Secret is the server secret (≥ 32 bytes); sub-keys are derived from it.
	Secret []byte
	Logger *slog.Logger
	Now    func() time.Time // nil → time.Now
	Events EventSink        // may be nil
	// PublicKeys are the server's signature verification keys (audit
	// checkpoints, webhooks), served at jwks_uri; nil serves an empty set.
	PublicKeys func() []jose.JSONWebKey
	// Subjects are the pairwise subjects clients see for customers
	// (id_token, userinfo, introspection). Required.
	Subjects Subjects
	// IDTokenKey is the key id_tokens are signed with (ES256), published at
	// jwks_uri; nil derives one from Secret.
	IDTokenKey func() keys.ES256
	// SymmetricKey returns the key of one of SymmetricKeyLabels (the key
	// ring's, which survives a change of Secret); nil derives them from
	// Secret.
	SymmetricKey func(label string) []byte
	// RateLimit counts one PAR or token request of a client and returns how
	// long it must wait when over its limit (0: admitted); nil: no limit.
	RateLimit func(ctx context.Context, clientID string) (time.Duration, error)
	// DirectoryJWKS is the key set (a file, or an http(s) URL) of the
	// directory whose software statements admit dynamic registration
	// (SPEC §11); "" turns registration off.
	DirectoryJWKS string
}

// SymmetricKeyLabels are the symmetric keys the provider needs: the token
// HMAC key, the client secret hash key and the DPoP nonce key.
var SymmetricKeyLabels = []string{"fosite-global-secret", "client-secret-hash", "dpop-nonce"}

// SymmetricKeySeedLabel is the label DeriveKey derives label's key under
// (HMAC-SHA256(secret, it)): the key ring seeds itself with it, so tokens
// and client secret hashes made before the ring keep verifying.
func SymmetricKeySeedLabel(label string) string { return "consentgate/oauth/" + label }

// Provider is the authorization server.
type Provider struct {
	consents consent.Store
	purposes *purpose.Table
	issuer   string
	log      *slog.Logger
	now      func() time.Time
	events   EventSink
	keys     func() []jose.JSONWebKey
	subjects Subjects
	idKey    func() keys.ES256

	config *fosite.Config
	oauth  *fosite.Fosite
	// credentials is a second fosite on the same configuration, store and
	// strategy with only the client_credentials handler: the token
	// endpoint's busiest grant then runs no other grant's handlers, each of
	// which would answer "not mine" with an error carrying a stack trace
	// (6% of the endpoint's CPU in its profile).
	credentials *fosite.Fosite
	strategy    *oauth2.HMACSHAStrategy
	store       *fositeStore
	hasher      *secretHasher
	jwks        *jwksCache // clients' jwks_uri key sets
	nonceKey    []byte     // signs the stateless DPoP nonces
	limit       func(ctx context.Context, clientID string) (time.Duration, error)
	// directory holds the keys of the trusted software statement issuer;
	// nil: dynamic registration is off.
	directory *directory
}

// New builds the provider.
func New(d Deps) (*Provider, error) {
	switch {
	case d.DB == nil:
		return nil, errors.New("oauth.New: DB is required")
	case d.Consents == nil:
		return nil, errors.New("oauth.New: Consents is required")
	case d.Purposes == nil:
		return nil, errors.New("oauth.New: Purposes is required")
	case d.Subjects == nil:
		return nil, errors.New("oauth.New: Subjects (pairwise subjects) is required")
	case len(d.Secret) < 32:
		return nil, fmt.Errorf("oauth.New: the secret must be at least 32 bytes (it is %d)", len(d.Secret))
	case d.Issuer == "" || strings.HasSuffix(d.Issuer, "/"):
		return nil, fmt.Errorf("oauth.New: issuer %q must be set and have no trailing slash", d.Issuer)
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	symKey := d.SymmetricKey
	if symKey == nil {
		symKey = func(label string) []byte { return deriveKey(d.Secret, label) }
	}
	p := &Provider{
		consents: d.Consents, purposes: d.Purposes, issuer: d.Issuer, log: log,
		now: func() time.Time { return now().UTC() }, events: d.Events, keys: d.PublicKeys,
		hasher:   &secretHasher{key: symKey("client-secret-hash")},
		nonceKey: symKey("dpop-nonce"),
		subjects: d.Subjects, idKey: d.IDTokenKey, limit: d.RateLimit,
	}
	if p.idKey == nil {
		k := keys.DeriveES256(d.Secret, idTokenKeyLabel)
		p.idKey = func() keys.ES256 { return k }
	}
	p.jwks = newJWKSCache(p.now)
	dir, err := loadDirectory(d.DirectoryJWKS)
	if err != nil {
		return nil, fmt.Errorf("oauth.New: %w", err)
	}
	p.directory = dir
	p.store = &fositeStore{db: d.DB, now: p.now, batch: &tokenBatcher{db: d.DB}, tokenQuery: tokenQuery(d.DB.Dialect),
		liveTokenQuery: liveTokenQuery(d.DB.Dialect),
		clientRows:     newMemo[*Client](clientRowsSize), records: newMemo[*record](tokenRecordsSize),
		liveTokens: newMemo[*liveToken](tokenRecordsSize)}
	p.config = &fosite.Config{
		AccessTokenLifespan:             accessTokenLifespan,
		AuthorizeCodeLifespan:           authorizeCodeLifespan,
		RefreshTokenLifespan:            refreshTokenLifespan,
		EnforcePKCE:                     true,
		EnablePKCEPlainChallengeMethod:  false,
		ScopeStrategy:                   fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:        fosite.DefaultAudienceMatchingStrategy,
		RefreshTokenScopes:              []string{purpose.ScopeOffline},
		IsPushedAuthorizeEnforced:       true,
		PushedAuthorizeContextLifespan:  parLifespan,
		PushedAuthorizeRequestURIPrefix: requestURIPrefix,
		TokenURL:                        d.Issuer + "/oauth2/token",
		SendDebugMessagesToClients:      false,
		// The redirect carries code, state and iss; the granted scope is
		// in the token response, where the client needs it.
		OmitRedirectScopeParam:       true,
		GlobalSecret:                 symKey("fosite-global-secret"),
		ClientSecretsHasher:          p.hasher,
		ClientAuthenticationStrategy: p.authenticateClient,
		RedirectSecureChecker:        fosite.IsRedirectURISecureStrict,
		// state must be present but may be short: PKCE S256, required for
		// everyone, is what protects the flow (FAPI 2.0 §5.3.2.2), and an
		// eight-character rule only surprises app developers.
		MinParameterEntropy: 1,
		IDTokenLifespan:     idTokenLifespan,
		IDTokenIssuer:       d.Issuer,
	}
	p.strategy = compose.NewOAuth2HMACStrategy(p.config)
	idSigner := &idTokenSigner{keyFn: p.idKey, lifespan: idTokenLifespan}
	strategy := &compose.CommonStrategy{
		CoreStrategy:               p.strategy,
		OpenIDConnectTokenStrategy: &openid.DefaultStrategy{Signer: idSigner, Config: p.config},
		Signer:                     idSigner,
	}
	// Composed first, on a copy of the configuration without handlers
	// (Compose appends the handlers it builds to the one it is given).
	ccConfig := *p.config
	cc, ok := compose.Compose(&ccConfig, p.store, strategy, compose.OAuth2ClientCredentialsGrantFactory).(*fosite.Fosite)
	if !ok {
		return nil, errors.New("oauth.New: unexpected fosite provider type")
	}
	p.credentials = cc
	// Order matters: the PKCE and OpenID Connect handlers must follow the
	// authorize code handler.
	provider := compose.Compose(p.config, p.store, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.OAuth2PKCEFactory,
		compose.PushedAuthorizeHandlerFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
	)
	f, ok := provider.(*fosite.Fosite)
	if !ok {
		return nil, fmt.Errorf("oauth.New: unexpected fosite provider type %T", provider)
	}
	// PAR is enforced except on the front channel of an exempt client.
	f.Config = &parConfig{Config: p.config}
	p.oauth = f
	return p, nil
}

// Register mounts the OAuth endpoints of SPEC §2 on r. The form endpoints
// refuse repeated or malformed parameters first (singleParams).
func (p *Provider) Register(r gin.IRouter) {
	r.GET("/.well-known/oauth-authorization-server", p.handleMetadata)
	r.GET("/.well-known/openid-configuration", p.handleOpenIDConfiguration)
	r.GET("/jwks", p.handleJWKS)
	r.POST("/oauth2/par", p.singleParams, p.rateLimited(EventConsentRequested), p.handlePAR)
	r.GET("/oauth2/authorize", p.handleAuthorize)
	r.POST("/oauth2/token", p.singleParams, p.rememberClients, p.rateLimited(EventTokenIssued), p.handleToken)
	r.POST("/oauth2/introspect", p.singleParams, p.handleIntrospect)
	r.POST("/oauth2/revoke", p.singleParams, p.handleRevoke)
	r.GET("/oauth2/grants/:grant_id", p.handleGetGrant)
	r.DELETE("/oauth2/grants/:grant_id", p.handleDeleteGrant)
	p.registerDCR(r)
}

// deriveKey derives an independent 32-byte sub-key of the server secret, so
// that no two uses (token HMACs, client secret hashes) share a key.
func deriveKey(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(SymmetricKeySeedLabel(label)))
	return m.Sum(nil)
}

// limitBody caps the body of a form request before fosite parses it.
func limitBody(c *gin.Context) *http.Request {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxFormBytes)
	return c.Request
}

// serverError logs the cause of a 5xx and keeps it from the client. A
// database failure is 503 temporarily_unavailable (RFC 6749 §4.1.2.1), not
// 500 server_error: the client should retry, and nothing about its request
// or grant was judged.
func (p *Provider) serverError(ctx context.Context, op string, err error) *fosite.RFC6749Error {
	p.log.ErrorContext(ctx, "oauth: "+op, "error", err)
	if errors.Is(err, ErrStorage) {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err)
	}
	return fosite.ErrServerError.WithWrap(err)
}

// unavailable turns an error that fosite made of a database failure into
// temporarily_unavailable, as serverError does for ours: whatever fosite
// called it (server_error, or invalid_client when client authentication
// could not read the client), nothing was judged.
func unavailable(err error) error {
	if errors.Is(err, ErrStorage) {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err)
	}
	return err
}
