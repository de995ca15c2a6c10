package client

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// AuthRequest is what the app asks the customer for.
type AuthRequest struct {
	Scopes  []string // e.g. accounts:read, transactions:read, offline_access
	Purpose string   // one of the server's purposes_supported
	// State is returned on the redirect; "" generates a random one.
	State string
	// ConsentDuration asks for a shorter consent than the purpose allows;
	// 0 takes the purpose's maximum.
	ConsentDuration time.Duration
	// GrantID, when set, renews this grant of the app instead of creating
	// another (grant_management_action=replace).
	GrantID string
}

// Pending is a pushed authorization request awaiting the customer.
type Pending struct {
	// AuthorizeURL is where to send the customer's browser.
	AuthorizeURL string
	// State and CodeVerifier must be kept (e.g. in the app's session) until
	// the browser comes back; Exchange needs them.
	State, CodeVerifier string
	// ExpiresAt is when the request expires if the browser has not used it.
	ExpiresAt time.Time
}

// Token is a token endpoint answer.
type Token struct {
	AccessToken  string
	RefreshToken string // "" without offline_access
	TokenType    string // "DPoP" or "bearer"
	Scope        string
	GrantID      string // the grant (consent) the tokens belong to
	ExpiresAt    time.Time
}

// PushAuthorization pushes an authorization request (PAR, with PKCE S256
// and, for DPoP clients, the code bound to the DPoP key) and returns where
// to send the customer's browser.
func (c *Client) PushAuthorization(ctx context.Context, ar AuthRequest) (*Pending, error) {
	m, err := c.Discover(ctx)
	if err != nil {
		return nil, err
	}
	if ar.Purpose == "" || len(ar.Scopes) == 0 {
		return nil, errors.New("client: PushAuthorization needs a purpose and scopes")
	}
	p := &Pending{State: ar.State, CodeVerifier: randomString(32)}
	if p.State == "" {
		p.State = randomString(16)
	}
	sum := sha256.Sum256([]byte(p.CodeVerifier))
	form := url.Values{
		"response_type": {"code"}, "client_id": {c.cfg.ClientID}, "redirect_uri": {c.cfg.RedirectURI},
		"scope": {strings.Join(ar.Scopes, " ")}, "state": {p.State}, "purpose": {ar.Purpose},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	if ar.ConsentDuration > 0 {
		form.Set("consent_duration", strconv.FormatInt(int64(ar.ConsentDuration/time.Second), 10))
	}
	if ar.GrantID != "" {
		form.Set("grant_id", ar.GrantID)
		form.Set("grant_management_action", "replace")
	}
	var out struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int    `json:"expires_in"`
	}
	if err := c.post(ctx, m.PushedAuthorizationRequestEndpoint, form, http.StatusCreated, &out); err != nil {
		return nil, err
	}
	if out.RequestURI == "" {
		return nil, errors.New("client: PAR answer without request_uri")
	}
	p.ExpiresAt = c.now().Add(time.Duration(out.ExpiresIn) * time.Second)
	p.AuthorizeURL = m.AuthorizationEndpoint + "?" + url.Values{"client_id": {c.cfg.ClientID}, "request_uri": {out.RequestURI}}.Encode()
	return p, nil
}

// Exchange completes the flow with the URL the customer's browser was sent
// back to: it checks that the answer comes from this server (iss, RFC 9207)
// for this request (state), and redeems the code. A refusal by the
// customer is an *Error with Code "access_denied".
func (c *Client) Exchange(ctx context.Context, p *Pending, callbackURL string) (*Token, error) {
	m, err := c.Discover(ctx)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(callbackURL)
	if err != nil {
		return nil, fmt.Errorf("client: callback URL: %w", err)
	}
	q := u.Query()
	// iss first: an answer from another server must not be believed at all.
	if q.Get("iss") != m.Issuer {
		return nil, fmt.Errorf("client: the authorization response is from issuer %q, not %q", q.Get("iss"), m.Issuer)
	}
	if q.Get("state") != p.State {
		return nil, errors.New("client: the authorization response's state does not match the request")
	}
	if e := q.Get("error"); e != "" {
		return nil, &Error{Code: e, Description: q.Get("error_description")}
	}
	code := q.Get("code")
	if code == "" {
		return nil, errors.New("client: the authorization response has no code")
	}
	return c.token(ctx, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {c.cfg.RedirectURI}, "code_verifier": {p.CodeVerifier}})
}

// Refresh trades tok's refresh token for new tokens. The old refresh token
// stops working: keep only the returned one.
func (c *Client) Refresh(ctx context.Context, tok *Token) (*Token, error) {
	if tok.RefreshToken == "" {
		return nil, errors.New("client: no refresh token (ask for offline_access)")
	}
	return c.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
}

// Revoke revokes a token (RFC 7009). Revoking a refresh token ends the
// whole grant: the customer's consent and every token of it.
func (c *Client) Revoke(ctx context.Context, token string) error {
	m, err := c.Discover(ctx)
	if err != nil {
		return err
	}
	return c.post(ctx, m.RevocationEndpoint, url.Values{"token": {token}}, http.StatusOK, nil)
}

func (c *Client) token(ctx context.Context, form url.Values) (*Token, error) {
	m, err := c.Discover(ctx)
	if err != nil {
		return nil, err
	}
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		TokenType    string `json:"token_type"`
		ExpiresIn    int    `json:"expires_in"`
		Scope        string `json:"scope"`
		GrantID      string `json:"grant_id"`
	}
	if err := c.post(ctx, m.TokenEndpoint, form, http.StatusOK, &out); err != nil {
		return nil, err
	}
	// A token of the wrong type would be sent with the wrong scheme: a
	// DPoP client must never fall back to a bearer token unnoticed.
	if dpop := strings.EqualFold(out.TokenType, "DPoP"); dpop != (c.dpopKey != nil) {
		return nil, fmt.Errorf("client: the server issued a %q token; this client is configured for DPoP=%v", out.TokenType, c.dpopKey != nil)
	}
	return &Token{AccessToken: out.AccessToken, RefreshToken: out.RefreshToken, TokenType: out.TokenType,
		Scope: out.Scope, GrantID: out.GrantID, ExpiresAt: c.now().Add(time.Duration(out.ExpiresIn) * time.Second)}, nil
}

// post sends a client-authenticated form to an authorization server
// endpoint, with a DPoP proof for DPoP clients, and decodes the answer into
// out. A use_dpop_nonce answer is retried once with the server's nonce
// (and a fresh assertion: each is single use).
func (c *Client) post(ctx context.Context, endpoint string, form url.Values, want int, out any) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("client: endpoint %q: %w", endpoint, err)
	}
	for attempt := 0; ; attempt++ {
		assertion, err := c.assertion()
		if err != nil {
			return err
		}
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("client_id", c.cfg.ClientID)
		f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		f.Set("client_assertion", assertion)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(f.Encode()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		if c.dpopKey != nil {
			proof, err := c.proof(http.MethodPost, htu(u), "", c.nonceFor(u))
			if err != nil {
				return err
			}
			req.Header.Set("DPoP", proof)
		}
		resp, body, err := c.do(req) //nolint:bodyclose // c.do has read and closed the body
		if err != nil {
			return err
		}
		if resp.StatusCode != want {
			e := errorFrom(resp, body)
			if e.Code == "use_dpop_nonce" && c.dpopKey != nil && attempt == 0 && resp.Header.Get("DPoP-Nonce") != "" {
				continue
			}
			return e
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("client: %s answer: %w", u.Path, err)
		}
		return nil
	}
}
