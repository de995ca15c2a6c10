package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/consentgate/consentgate/internal/purpose"
	"github.com/consentgate/consentgate/internal/store"
)

// Dynamic Client Registration (RFC 7591, and RFC 7592 for reading,
// updating and deleting a registration), the way UK Open Banking, CDR and
// FDX onboard apps: only with a software_statement signed by a directory
// the bank trusts (SPEC §11). The statement bounds what the app may
// register: its redirect URIs, purposes and scopes; the request's metadata
// may narrow them, never widen them. The registration itself goes through
// CreateClient's validation, the same as `consentgate client create`, so a
// prohibited purpose can never be registered by either path. Without a
// directory the endpoints do not exist (404).

// RFC 7591 §3.2.2 error codes.
const (
	ErrCodeInvalidSoftwareStatement = "invalid_software_statement"
	ErrCodeInvalidClientMetadata    = "invalid_client_metadata"
	ErrCodeInvalidRedirectURI       = "invalid_redirect_uri"
)

// Limits of dynamic registration.
const (
	maxRegistrationBody = 64 << 10
	// statementFutureSkew is how far a statement's iat may be ahead of our clock.
	statementFutureSkew = time.Minute
)

// dcrScopes are the scopes dynamic registration may grant: an app acting
// for customers; never the bank's own machine scopes (audit, provider,
// operator), whatever a statement says.
var dcrScopes = []string{
	purpose.ScopeAccounts, purpose.ScopeBalances, purpose.ScopeTransactions, purpose.ScopeOffline,
	purpose.ScopeIdentity, purpose.ScopeAccountNumbers, purpose.ScopeOpenID, purpose.ScopeProfile, purpose.ScopeEmail,
}

// directory is where the keys of the trusted software statement issuer
// come from: a file read at start, or a URL fetched and cached.
type directory struct {
	set *jose.JSONWebKeySet
	uri string
}

// loadDirectory reads --directory-jwks: an http(s) URL (https, or http on
// loopback) fetched when needed, or a file read now.
func loadDirectory(src string) (*directory, error) {
	if src == "" {
		return nil, nil
	}
	if strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://") {
		if err := checkJWKSURI(src); err != nil {
			return nil, fmt.Errorf("directory JWKS: %w", err)
		}
		return &directory{uri: src}, nil
	}
	b, err := os.ReadFile(src) // #nosec G304 -- the operator names the directory's key file
	if err != nil {
		return nil, fmt.Errorf("directory JWKS: %w", err)
	}
	set, err := parseJWKS(b)
	if err != nil {
		return nil, fmt.Errorf("directory JWKS %s: %w", src, err)
	}
	return &directory{set: set}, nil
}

func (p *Provider) directoryKeys(ctx context.Context, refresh bool) (*jose.JSONWebKeySet, error) {
	if p.directory.set != nil {
		return p.directory.set, nil
	}
	return p.jwks.get(ctx, p.directory.uri, refresh)
}

// registrationError is an RFC 7591 §3.2.2 error.
type registrationError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *registrationError) Error() string { return e.Code + ": " + e.Description }

func badStatement(format string, a ...any) error {
	return &registrationError{ErrCodeInvalidSoftwareStatement, fmt.Sprintf(format, a...)}
}

func badMetadata(format string, a ...any) error {
	return &registrationError{ErrCodeInvalidClientMetadata, fmt.Sprintf(format, a...)}
}

// SoftwareStatement is the claims of a directory's software statement.
type SoftwareStatement struct {
	Issuer       string           `json:"iss,omitempty"`
	IssuedAt     *jwt.NumericDate `json:"iat,omitempty"`
	Expiry       *jwt.NumericDate `json:"exp,omitempty"`
	SoftwareID   string           `json:"software_id"`
	ClientName   string           `json:"client_name"`
	RedirectURIs []string         `json:"redirect_uris"`
	Purposes     []string         `json:"purposes"`
	Scope        string           `json:"scope"`
}

// RegistrationRequest is the client metadata of RFC 7591 §2 that
// consentgate takes, with the software statement.
type RegistrationRequest struct {
	ClientID                string          `json:"client_id,omitempty"` // RFC 7592 update only
	SoftwareStatement       string          `json:"software_statement"`
	RedirectURIs            []string        `json:"redirect_uris,omitempty"`
	GrantTypes              []string        `json:"grant_types,omitempty"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method,omitempty"`
	Scope                   *string         `json:"scope,omitempty"`
	Purposes                []string        `json:"purposes,omitempty"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
	// ClientSecret is accepted on update (RFC 7592 §2.2 echoes it) and
	// ignored: secrets rotate through the operator.
	ClientSecret string `json:"client_secret,omitempty"`
}

// RegistrationResponse is RFC 7591 §3.2.1's answer (and RFC 7592's read).
type RegistrationResponse struct {
	ClientID                string          `json:"client_id"`
	ClientSecret            string          `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64           `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64          `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string          `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string          `json:"registration_client_uri"`
	ClientName              string          `json:"client_name"`
	SoftwareID              string          `json:"software_id"`
	SoftwareStatement       string          `json:"software_statement"`
	RedirectURIs            []string        `json:"redirect_uris"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	Scope                   string          `json:"scope"`
	Purposes                []string        `json:"purposes"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
}

// verifyStatement checks the statement's signature against the
// directory's keys and its claims.
func (p *Provider) verifyStatement(ctx context.Context, raw string) (*SoftwareStatement, error) {
	if raw == "" {
		return nil, badStatement("A software_statement signed by the bank's trusted directory is required.")
	}
	if len(raw) > maxJWTBytes*4 {
		return nil, badStatement("The software_statement is too large.")
	}
	tok, err := jwt.ParseSigned(raw, signingAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return nil, badStatement("The software_statement must be a compact JWS signed with one of %s.", strings.Join(SigningAlgs(), ", "))
	}
	h := tok.Headers[0]
	var st SoftwareStatement
	verified := false
	for _, refresh := range []bool{false, true} {
		set, err := p.directoryKeys(ctx, refresh)
		if err != nil {
			p.log.WarnContext(ctx, "oauth: directory keys unavailable", "error", err)
			return nil, badStatement("The directory's keys could not be loaded; try again later.")
		}
		for _, k := range set.Keys {
			if h.KeyID != "" && k.KeyID != h.KeyID {
				continue
			}
			if alg, ok := keyAlg(k.Key); !ok || string(alg) != h.Algorithm {
				continue
			}
			if tok.Claims(k.Key, &st) == nil {
				verified = true
				break
			}
		}
		if verified || p.directory.set != nil {
			break
		}
	}
	if !verified {
		return nil, badStatement("The software_statement's signature does not verify with any key of the trusted directory.")
	}
	now := p.now()
	switch {
	case st.IssuedAt == nil:
		return nil, badStatement("The software_statement has no iat.")
	case st.IssuedAt.Time().After(now.Add(statementFutureSkew)):
		return nil, badStatement("The software_statement's iat is in the future.")
	case st.Expiry != nil && !now.Before(st.Expiry.Time()):
		return nil, badStatement("The software_statement has expired; get a new one from the directory.")
	case st.SoftwareID == "" || len(st.SoftwareID) > 200:
		return nil, badStatement("The software_statement needs a software_id (at most 200 characters).")
	case st.ClientName == "" || len(st.ClientName) > 200:
		return nil, badStatement("The software_statement needs a client_name (at most 200 characters).")
	case len(st.RedirectURIs) == 0:
		return nil, badStatement("The software_statement names no redirect_uris.")
	case len(st.Purposes) == 0 || strings.TrimSpace(st.Scope) == "":
		return nil, badStatement("The software_statement must name the purposes and scope the app is vetted for.")
	}
	return &st, nil
}

// registrationSpec applies the request's metadata within the statement's
// bounds (each defaulting to the statement's) and returns the client spec.
func registrationSpec(req *RegistrationRequest, st *SoftwareStatement) (ClientSpec, error) {
	spec := ClientSpec{Name: st.ClientName, AuthMethod: req.TokenEndpointAuthMethod, JWKSURI: req.JWKSURI}
	spec.RedirectURIs = req.RedirectURIs
	if len(spec.RedirectURIs) == 0 {
		spec.RedirectURIs = st.RedirectURIs
	}
	for _, u := range spec.RedirectURIs {
		if !slices.Contains(st.RedirectURIs, u) {
			return spec, &registrationError{ErrCodeInvalidRedirectURI,
				fmt.Sprintf("The redirect URI %q is not among the software statement's redirect_uris.", u)}
		}
	}
	spec.Purposes = req.Purposes
	if len(spec.Purposes) == 0 {
		spec.Purposes = st.Purposes
	}
	for _, pc := range slices.Concat(spec.Purposes, st.Purposes) {
		if purpose.IsProhibited(pc) {
			return spec, badMetadata("The purpose %q is prohibited and can never be registered.", pc)
		}
	}
	for _, pc := range spec.Purposes {
		if !slices.Contains(st.Purposes, pc) {
			return spec, badMetadata("The purpose %q is not among the software statement's purposes %v.", pc, st.Purposes)
		}
	}
	allowed := strings.Fields(st.Scope)
	spec.Scopes = allowed
	if req.Scope != nil {
		spec.Scopes = strings.Fields(*req.Scope)
	}
	for _, s := range spec.Scopes {
		if !slices.Contains(allowed, s) {
			return spec, badMetadata("The scope %q is not in the software statement's scope %q.", s, st.Scope)
		}
		if !slices.Contains(dcrScopes, s) {
			return spec, badMetadata("The scope %q cannot be registered dynamically; ask the bank.", s)
		}
	}
	spec.GrantTypes = req.GrantTypes
	if len(spec.GrantTypes) == 0 {
		spec.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	for _, g := range spec.GrantTypes {
		if g != GrantAuthorizationCode && g != GrantRefreshToken {
			return spec, badMetadata("The grant type %q cannot be registered dynamically: apps use authorization_code (and refresh_token).", g)
		}
	}
	if len(req.JWKS) > 0 && string(req.JWKS) != "null" {
		spec.JWKS = req.JWKS
	}
	return spec, nil
}

// metadataError turns CreateClient's refusal into the RFC 7591 code.
func metadataError(err error) error {
	var re *registrationError
	if errors.As(err, &re) {
		return re
	}
	var ru *redirectURIError
	if errors.As(err, &ru) {
		return &registrationError{ErrCodeInvalidRedirectURI, ru.Error()}
	}
	return badMetadata("%s", err.Error())
}

// registrationToken returns a new registration access token and its hash.
func registrationToken() (string, string) {
	tok := randomToken(32)
	return tok, registrationTokenHash(tok)
}

func registrationTokenHash(tok string) string {
	sum := sha256.Sum256([]byte("consentgate registration access token\x00" + tok))
	return hex.EncodeToString(sum[:])
}

// registration is a dynamically registered client with its statement.
type registration struct {
	*Client
	SoftwareID, Statement, TokenHash string
}

func (p *Provider) loadRegistration(ctx context.Context, id string) (*registration, error) {
	c, err := p.store.client(ctx, id)
	if err != nil {
		return nil, err
	}
	var row struct {
		SoftwareID                   string
		SoftwareStatement, TokenHash sql.NullString
	}
	if err := p.store.db.WithContext(ctx).Raw(`SELECT software_id, software_statement, registration_token_hash AS token_hash
		FROM oauth_clients WHERE id = ?`, id).Scan(&row).Error; err != nil {
		return nil, dbErr("load registration", err)
	}
	return &registration{Client: c, SoftwareID: row.SoftwareID, Statement: row.SoftwareStatement.String, TokenHash: row.TokenHash.String}, nil
}

func (p *Provider) registrationResponse(r *registration) *RegistrationResponse {
	resp := &RegistrationResponse{
		ClientID: r.ID, ClientIDIssuedAt: r.CreatedAt.Unix(), RegistrationClientURI: p.issuer + "/oauth2/register/" + r.ID,
		ClientName: r.Name, SoftwareID: r.SoftwareID, SoftwareStatement: r.Statement, RedirectURIs: r.RedirectURIs,
		GrantTypes: r.GrantTypes, ResponseTypes: r.GetResponseTypes(), TokenEndpointAuthMethod: r.AuthMethod,
		Scope: strings.Join(r.Scopes, " "), Purposes: r.Purposes, JWKSURI: r.JWKSURI,
	}
	if len(r.JWKS) > 0 {
		resp.JWKS = r.JWKS
	}
	return resp
}

// readRegistration decodes a registration request body.
func readRegistration(c *gin.Context) (*RegistrationRequest, error) {
	if ct := c.ContentType(); ct != "application/json" {
		return nil, badMetadata("Send the client metadata as application/json.")
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxRegistrationBody))
	if err != nil {
		return nil, badMetadata("The request body could not be read (at most 64 KiB).")
	}
	var req RegistrationRequest
	if err := json.Unmarshal(b, &req); err != nil {
		return nil, badMetadata("The body is not a JSON object of client metadata: %v.", err)
	}
	return &req, nil
}

func (p *Provider) writeRegistrationError(c *gin.Context, err error) {
	var re *registrationError
	if errors.As(err, &re) {
		c.Header("Cache-Control", "no-store")
		c.JSON(http.StatusBadRequest, re)
		return
	}
	p.log.ErrorContext(c.Request.Context(), "oauth: registration failed", "error", err)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusInternalServerError, registrationError{"server_error", "The registration could not be completed; try again later."})
}

// handleRegister is RFC 7591 §3.1: POST /oauth2/register.
func (p *Provider) handleRegister(c *gin.Context) {
	ctx := c.Request.Context()
	req, err := readRegistration(c)
	if err != nil {
		p.writeRegistrationError(c, err)
		return
	}
	st, err := p.verifyStatement(ctx, req.SoftwareStatement)
	if err != nil {
		p.emit(ctx, Event{Type: EventClientRegistered, Outcome: OutcomeDenied, Reason: err.Error()})
		p.writeRegistrationError(c, err)
		return
	}
	spec, err := registrationSpec(req, st)
	if err == nil {
		spec.ID = "dcr-" + randomToken(12)
		_, _, err = p.validateClient(spec)
	}
	if err != nil {
		err = metadataError(err)
		p.emit(ctx, Event{Type: EventClientRegistered, Outcome: OutcomeDenied, Reason: "software_id " + st.SoftwareID + ": " + err.Error()})
		p.writeRegistrationError(c, err)
		return
	}
	id, secret, err := p.CreateClient(ctx, spec)
	if err != nil {
		p.writeRegistrationError(c, err)
		return
	}
	token, hash := registrationToken()
	if err := p.store.db.WithContext(ctx).Exec(`UPDATE oauth_clients SET software_id = ?, software_statement = ?,
		registration_token_hash = ? WHERE id = ?`, st.SoftwareID, req.SoftwareStatement, hash, id).Error; err != nil {
		p.writeRegistrationError(c, fmt.Errorf("store registration: %w", err))
		return
	}
	reg, err := p.loadRegistration(ctx, id)
	if err != nil {
		p.writeRegistrationError(c, err)
		return
	}
	p.emit(ctx, Event{Type: EventClientRegistered, ClientID: id, Scopes: spec.Scopes,
		Reason: "software_id " + st.SoftwareID + " through the trusted directory"})
	resp := p.registrationResponse(reg)
	resp.RegistrationAccessToken = token
	if secret != "" {
		resp.ClientSecret = secret
		zero := int64(0)
		resp.ClientSecretExpiresAt = &zero
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, resp)
}

// registrationAuth checks RFC 7592 §3's registration access token; false
// means the 401 is written.
func (p *Provider) registrationAuth(c *gin.Context) (*registration, bool) {
	ctx := c.Request.Context()
	scheme, token, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	deny := func() (*registration, bool) {
		c.Header("WWW-Authenticate", `Bearer error="invalid_token"`)
		c.Header("Cache-Control", "no-store")
		c.JSON(http.StatusUnauthorized, registrationError{"invalid_token",
			"Send the registration_access_token of this client as a Bearer token."})
		return nil, false
	}
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return deny()
	}
	reg, err := p.loadRegistration(ctx, c.Param("client_id"))
	if err != nil {
		if errors.Is(err, ErrStorage) {
			p.writeRegistrationError(c, err)
			return nil, false
		}
		return deny() // unknown clients look like a wrong token
	}
	if reg.TokenHash == "" || subtle.ConstantTimeCompare([]byte(reg.TokenHash), []byte(registrationTokenHash(token))) != 1 {
		return deny()
	}
	return reg, true
}

// handleRegistrationRead is RFC 7592 §2.1.
func (p *Provider) handleRegistrationRead(c *gin.Context) {
	reg, ok := p.registrationAuth(c)
	if !ok {
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, p.registrationResponse(reg))
}

// handleRegistrationUpdate is RFC 7592 §2.2: the metadata is replaced,
// within the bounds of the (stored or newly presented) statement.
func (p *Provider) handleRegistrationUpdate(c *gin.Context) {
	ctx := c.Request.Context()
	reg, ok := p.registrationAuth(c)
	if !ok {
		return
	}
	req, err := readRegistration(c)
	if err != nil {
		p.writeRegistrationError(c, err)
		return
	}
	if req.ClientID != reg.ID {
		p.writeRegistrationError(c, badMetadata("The body's client_id must be this client's (%s).", reg.ID))
		return
	}
	if req.SoftwareStatement == "" {
		req.SoftwareStatement = reg.Statement
	}
	st, err := p.verifyStatement(ctx, req.SoftwareStatement)
	if err == nil && st.SoftwareID != reg.SoftwareID {
		err = badStatement("The software_statement is for software %q, not this client's %q.", st.SoftwareID, reg.SoftwareID)
	}
	if err != nil {
		p.emit(ctx, Event{Type: EventClientUpdated, Outcome: OutcomeDenied, ClientID: reg.ID, Reason: err.Error()})
		p.writeRegistrationError(c, err)
		return
	}
	if req.TokenEndpointAuthMethod == "" {
		req.TokenEndpointAuthMethod = reg.AuthMethod
	}
	spec, err := registrationSpec(req, st)
	if err == nil && spec.AuthMethod != reg.AuthMethod {
		err = badMetadata("token_endpoint_auth_method cannot change (%s); register a new client instead.", reg.AuthMethod)
	}
	if err == nil {
		spec.ID = reg.ID
		var c2 *Client
		if c2, _, err = p.validateClient(spec); err == nil {
			spec.RedirectURIs, spec.GrantTypes, spec.Scopes, spec.Purposes = c2.RedirectURIs, c2.GrantTypes, c2.Scopes, c2.Purposes
		}
	}
	if err != nil {
		err = metadataError(err)
		p.emit(ctx, Event{Type: EventClientUpdated, Outcome: OutcomeDenied, ClientID: reg.ID, Reason: err.Error()})
		p.writeRegistrationError(c, err)
		return
	}
	enc := func(v []string) string {
		b, _ := json.Marshal(v) // []string always encodes
		return string(b)
	}
	if err := p.store.db.WithContext(ctx).Exec(`UPDATE oauth_clients SET name = ?, redirect_uris = ?, grant_types = ?, scopes = ?,
		purposes = ?, software_statement = ? WHERE id = ?`, spec.Name, enc(spec.RedirectURIs), enc(spec.GrantTypes),
		enc(spec.Scopes), enc(spec.Purposes), req.SoftwareStatement, reg.ID).Error; err != nil {
		p.writeRegistrationError(c, fmt.Errorf("update registration: %w", err))
		return
	}
	reg, err = p.loadRegistration(ctx, reg.ID)
	if err != nil {
		p.writeRegistrationError(c, err)
		return
	}
	p.emit(ctx, Event{Type: EventClientUpdated, ClientID: reg.ID, Scopes: reg.Scopes,
		Reason: "software_id " + st.SoftwareID + ": the app updated its registration"})
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, p.registrationResponse(reg))
}

// handleRegistrationDelete is RFC 7592 §2.3: the client ends its own
// registration. Its grants are revoked for good, its secret and
// registration token are erased, and it stays suspended as a tombstone
// (its consents and audit trail keep naming it).
func (p *Provider) handleRegistrationDelete(c *gin.Context) {
	ctx := c.Request.Context()
	reg, ok := p.registrationAuth(c)
	if !ok {
		return
	}
	if _, err := p.revokeClientGrants(ctx, reg.ID, "client"); err != nil {
		p.writeRegistrationError(c, err)
		return
	}
	now := store.Micros(p.now())
	if err := p.store.db.WithContext(ctx).Exec(`UPDATE oauth_clients SET secret_hash = NULL, previous_secret_hash = NULL,
		registration_token_hash = NULL, suspended_at = COALESCE(suspended_at, ?), suspended_reason = ?, suspended_by = ?
		WHERE id = ?`, now, "registration deleted by the app", reg.ID, reg.ID).Error; err != nil {
		p.writeRegistrationError(c, fmt.Errorf("delete registration: %w", err))
		return
	}
	p.emit(ctx, Event{Type: EventClientDeleted, ClientID: reg.ID, Reason: "software_id " + reg.SoftwareID + ": the app deleted its registration"})
	c.Status(http.StatusNoContent)
}

// registerDCR mounts the registration endpoints when a directory is trusted.
func (p *Provider) registerDCR(r gin.IRouter) {
	if p.directory == nil {
		return
	}
	r.POST("/oauth2/register", p.handleRegister)
	r.GET("/oauth2/register/:client_id", p.handleRegistrationRead)
	r.PUT("/oauth2/register/:client_id", p.handleRegistrationUpdate)
	r.DELETE("/oauth2/register/:client_id", p.handleRegistrationDelete)
}
