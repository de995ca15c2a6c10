// Package client is a small Go client for third-party apps of a consentgate
// server: the FAPI 2.0 authorization code flow with pushed authorization
// requests (RFC 9126), PKCE (S256), private_key_jwt client authentication
// (RFC 7523) and DPoP sender-constrained tokens (RFC 9449), and the
// consent-gated data API with its Data-Purpose header.
//
// A Client holds the keys it is given and the server's metadata; it never
// stores tokens (the caller keeps the Token values) and never drives the
// customer's browser itself:
// PushAuthorization returns the URL to send the browser to, and Exchange
// takes the URL the browser came back with, checking its iss and state.
//
// DPoP nonces are handled for the caller: a use_dpop_nonce answer is
// retried once with the server's nonce, which is then reused.
//
// The package imports nothing from consentgate's internal packages; it is
// the public contract (openapi.yaml) seen from a client.
package client

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Config configures a Client.
type Config struct {
	// Issuer is the server's issuer identifier, e.g. "https://bank.example".
	Issuer string
	// ClientID is the app's registered client_id.
	ClientID string
	// PrivateKey signs the client assertions (private_key_jwt); its public
	// half is in the JWKS registered for the client. RSA (≥ 2048 bits,
	// PS256), EC P-256 (ES256) or Ed25519 (EdDSA).
	PrivateKey crypto.Signer
	// KeyID is the kid of PrivateKey in the registered JWKS; "" sends none.
	KeyID string
	// DPoPKey, when set, binds the tokens to this key (RFC 9449): the
	// client must be registered for DPoP. Use a key of its own.
	DPoPKey crypto.Signer
	// RedirectURI is one of the client's registered redirect URIs.
	RedirectURI string
	// APIBaseURL is where the data API is; "" means the issuer.
	APIBaseURL string
	// HTTPClient makes the requests; nil means one with a 30 s timeout.
	// It must not follow redirects to other hosts with credentials.
	HTTPClient *http.Client
	// Now is the clock for iat and exp; nil means time.Now.
	Now func() time.Time
}

// Client talks to one consentgate server as one registered app. It is safe
// for concurrent use.
type Client struct {
	cfg     Config
	http    *http.Client
	authKey *keySigner
	dpopKey *keySigner // nil without DPoP

	mu     sync.Mutex
	meta   *Metadata
	nonces map[string]string // latest DPoP-Nonce by origin
}

// New checks cfg and returns a Client. It does not contact the server.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.Issuer == "" || strings.HasSuffix(cfg.Issuer, "/"):
		return nil, errors.New("client: Issuer must be set, without a trailing slash")
	case cfg.ClientID == "":
		return nil, errors.New("client: ClientID is required")
	case cfg.PrivateKey == nil:
		return nil, errors.New("client: PrivateKey is required (private_key_jwt)")
	case cfg.RedirectURI == "":
		return nil, errors.New("client: RedirectURI is required")
	}
	c := &Client{cfg: cfg, http: cfg.HTTPClient, nonces: map[string]string{}}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	if c.cfg.APIBaseURL == "" {
		c.cfg.APIBaseURL = cfg.Issuer
	}
	var err error
	if c.authKey, err = newKeySigner(cfg.PrivateKey, cfg.KeyID); err != nil {
		return nil, err
	}
	if cfg.DPoPKey != nil {
		if c.dpopKey, err = newKeySigner(cfg.DPoPKey, ""); err != nil {
			return nil, fmt.Errorf("DPoPKey: %w", err)
		}
	}
	return c, nil
}

func (c *Client) now() time.Time {
	if c.cfg.Now != nil {
		return c.cfg.Now()
	}
	return time.Now()
}

// Metadata is the part of the server's RFC 8414 metadata the client uses.
type Metadata struct {
	Issuer                             string   `json:"issuer"`
	AuthorizationEndpoint              string   `json:"authorization_endpoint"`
	TokenEndpoint                      string   `json:"token_endpoint"`
	PushedAuthorizationRequestEndpoint string   `json:"pushed_authorization_request_endpoint"`
	IntrospectionEndpoint              string   `json:"introspection_endpoint"`
	RevocationEndpoint                 string   `json:"revocation_endpoint"`
	GrantManagementEndpoint            string   `json:"grant_management_endpoint"`
	TokenEndpointAuthMethods           []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgs       []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	DPoPSigningAlgs                    []string `json:"dpop_signing_alg_values_supported"`
	AuthorizationResponseISS           bool     `json:"authorization_response_iss_parameter_supported"`
	PurposesSupported                  []string `json:"purposes_supported"`
}

// Discover fetches the server's metadata (once; later calls return the
// cached copy) and checks that it is the configured issuer's (RFC 8414 §3.3).
func (c *Client) Discover(ctx context.Context) (*Metadata, error) {
	c.mu.Lock()
	m := c.meta
	c.mu.Unlock()
	if m != nil {
		return m, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.Issuer+"/.well-known/oauth-authorization-server", nil)
	if err != nil {
		return nil, err
	}
	resp, body, err := c.do(req) //nolint:bodyclose // c.do has read and closed the body
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errorFrom(resp, body)
	}
	m = &Metadata{}
	if err := json.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("client: metadata: %w", err)
	}
	if m.Issuer != c.cfg.Issuer {
		return nil, fmt.Errorf("client: metadata is for issuer %q, not %q", m.Issuer, c.cfg.Issuer)
	}
	if m.TokenEndpoint == "" || m.PushedAuthorizationRequestEndpoint == "" || m.AuthorizationEndpoint == "" {
		return nil, errors.New("client: metadata lacks the token, PAR or authorization endpoint")
	}
	c.mu.Lock()
	c.meta = m
	c.mu.Unlock()
	return m, nil
}

// Error is an error answer of the server: an OAuth error (RFC 6749 §5.2), a
// token challenge (RFC 6750, RFC 9449) or a problem (RFC 9457).
type Error struct {
	Status      int    // HTTP status; 0 for an error in an authorization response
	Code        string // e.g. invalid_grant, access_denied, invalid_token, purpose_not_consented
	Description string
	// InteractionID is the x-fapi-interaction-id of the response, to quote
	// when reporting a problem.
	InteractionID string
}

// Error implements error.
func (e *Error) Error() string {
	s := "consentgate: " + e.Code
	if e.Status != 0 {
		s = fmt.Sprintf("consentgate: %d %s", e.Status, e.Code)
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// errorFrom reads an error answer in whichever of the server's formats it
// came: {"error", "error_description"} or problem+json {"code", "detail"}.
func errorFrom(resp *http.Response, body []byte) *Error {
	e := &Error{Status: resp.StatusCode, InteractionID: resp.Header.Get("x-fapi-interaction-id")}
	var b struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Code        string `json:"code"`
		Detail      string `json:"detail"`
	}
	_ = json.Unmarshal(body, &b) // an unreadable body leaves only the status
	e.Code, e.Description = b.Error, b.Description
	if e.Code == "" {
		e.Code, e.Description = b.Code, b.Detail
	}
	if e.Code == "" {
		e.Code = strings.ToLower(strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "_"))
	}
	return e
}

// maxBody bounds what the client reads of any answer.
const maxBody = 16 << 20

// do sends req and reads the answer, remembering any DPoP-Nonce.
func (c *Client) do(req *http.Request) (*http.Response, []byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("client: %s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, nil, fmt.Errorf("client: %s %s: %w", req.Method, req.URL.Path, err)
	}
	if n := resp.Header.Get("DPoP-Nonce"); n != "" {
		c.mu.Lock()
		c.nonces[origin(req.URL)] = n
		c.mu.Unlock()
	}
	return resp, body, nil
}

func (c *Client) nonceFor(u *url.URL) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nonces[origin(u)]
}

func origin(u *url.URL) string { return strings.ToLower(u.Scheme + "://" + u.Host) }

// htu is a URL as a DPoP proof names it: without query and fragment.
func htu(u *url.URL) string {
	v := *u
	v.RawQuery, v.Fragment, v.RawFragment = "", "", ""
	return v.String()
}
