package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gin-gonic/gin"
	"golang.org/x/oauth2"

	"github.com/consentgate/consentgate/internal/identity"
)

// IDP is the bank's OpenID Connect identity provider customers log in with
// (SPEC §11, --customer-idp): /login becomes its relying party (code flow
// with PKCE S256, state and nonce) and the subject it returns opens the
// customer whose idp_subject it is.
type IDP struct {
	Issuer, ClientID, ClientSecret string
	// Claim names the id_token claim holding the subject linked to
	// customers; "" means "sub".
	Claim string
	// RedirectURL is this server's callback, {issuer}/login/idp/callback.
	RedirectURL string
	// HTTPClient talks to the IdP (nil: a client with a 10 s timeout).
	HTTPClient *http.Client

	mu       sync.Mutex
	provider *oidc.Provider // discovered on first use: the IdP may start after us
}

const (
	idpCookie    = "cg_idp"
	idpCookieAge = 10 * 60 // seconds a login at the IdP may take
)

// idpState is what the browser carries between /login/idp and the
// callback, in an HttpOnly cookie scoped to /login/idp: the state it must
// come back with, the nonce the id_token must carry, the PKCE verifier and
// where to go afterwards. Tampering with it can only spoil one's own login.
type idpState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
}

func (p *IDP) client() *http.Client {
	if p.HTTPClient != nil {
		return p.HTTPClient
	}
	return &http.Client{Timeout: 10 * time.Second}
}

func (p *IDP) discover(ctx context.Context) (*oidc.Provider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.provider != nil {
		return p.provider, nil
	}
	prov, err := oidc.NewProvider(oidc.ClientContext(ctx, p.client()), p.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover the customer IdP %s: %w", p.Issuer, err)
	}
	p.provider = prov
	return prov, nil
}

func (p *IDP) config(prov *oidc.Provider) oauth2.Config {
	return oauth2.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret, RedirectURL: p.RedirectURL,
		Endpoint: prov.Endpoint(), Scopes: []string{oidc.ScopeOpenID}}
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// idpStart is GET /login/idp: off to the IdP.
func (h *Handler) idpStart(c *gin.Context) {
	p := h.d.IDP
	if p == nil {
		c.Status(http.StatusNotFound)
		return
	}
	prov, err := p.discover(c.Request.Context())
	if err != nil {
		h.log.ErrorContext(c.Request.Context(), "web: customer IdP unreachable", "err", err)
		h.errorPage(c, http.StatusBadGateway, "Your bank's login is not available",
			"We could not reach your bank's login service. Please try again in a few minutes.", "/login", "Back to the login page")
		return
	}
	st := idpState{Verifier: oauth2.GenerateVerifier(), ReturnTo: safeReturnTo(c.Query("return_to"))}
	if st.State, err = randomToken(); err == nil {
		st.Nonce, err = randomToken()
	}
	if err != nil {
		h.internalError(c, "idp state", err)
		return
	}
	raw, _ := json.Marshal(st) // plain strings always marshal
	// #nosec G124 -- Secure follows the issuer's scheme, as the session cookie's.
	http.SetCookie(c.Writer, &http.Cookie{Name: idpCookie, Value: base64.RawURLEncoding.EncodeToString(raw),
		Path: "/login/idp", MaxAge: idpCookieAge, HttpOnly: true, Secure: h.d.Secure, SameSite: http.SameSiteLaxMode})
	conf := p.config(prov)
	c.Redirect(http.StatusSeeOther, conf.AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)))
}

// idpCallback is GET /login/idp/callback: the IdP sends the browser back
// with a code; the verified id_token's subject logs the linked customer in.
func (h *Handler) idpCallback(c *gin.Context) {
	p := h.d.IDP
	if p == nil {
		c.Status(http.StatusNotFound)
		return
	}
	ctx := c.Request.Context()
	var st idpState
	ck, err := c.Request.Cookie(idpCookie)
	if err == nil {
		var raw []byte
		if raw, err = base64.RawURLEncoding.DecodeString(ck.Value); err == nil {
			err = json.Unmarshal(raw, &st)
		}
	}
	// #nosec G124 -- clearing the cookie; flags as when it was set.
	http.SetCookie(c.Writer, &http.Cookie{Name: idpCookie, Value: "", Path: "/login/idp", MaxAge: -1,
		HttpOnly: true, Secure: h.d.Secure, SameSite: http.SameSiteLaxMode})
	if err != nil || st.State == "" || c.Query("state") != st.State {
		h.errorPage(c, http.StatusBadRequest, "This login has expired",
			"This login with your bank expired or was started in another window. Nothing was changed: start again from the login page.",
			"/login", "Go to the login page")
		return
	}
	if e := c.Query("error"); e != "" {
		h.errorPage(c, http.StatusUnauthorized, "Your bank did not log you in",
			fmt.Sprintf("Your bank's login answered %q, so you are not logged in here. Try again from the login page.", e),
			"/login", "Go to the login page")
		return
	}
	prov, err := p.discover(ctx)
	if err != nil {
		h.log.ErrorContext(ctx, "web: customer IdP unreachable", "err", err)
		h.errorPage(c, http.StatusBadGateway, "Your bank's login is not available",
			"We could not reach your bank's login service. Please try again in a few minutes.", "/login", "Back to the login page")
		return
	}
	conf := p.config(prov)
	octx := oidc.ClientContext(ctx, p.client())
	tok, err := conf.Exchange(octx, c.Query("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		h.log.WarnContext(ctx, "web: customer IdP code exchange failed", "err", err)
		h.errorPage(c, http.StatusBadGateway, "Your bank's login did not complete",
			"Your bank's login service did not confirm this login. Nothing was changed: start again from the login page.",
			"/login", "Go to the login page")
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := prov.Verifier(&oidc.Config{ClientID: p.ClientID}).Verify(octx, rawID)
	if err == nil && idt.Nonce != st.Nonce {
		err = errors.New("the id_token's nonce is not this login's")
	}
	subject := ""
	if err == nil {
		subject, err = p.subject(idt)
	}
	if err != nil {
		h.log.WarnContext(ctx, "web: customer IdP id_token refused", "err", err)
		h.errorPage(c, http.StatusBadGateway, "Your bank's login did not complete",
			"The answer of your bank's login service could not be verified. Nothing was changed: start again from the login page.",
			"/login", "Go to the login page")
		return
	}
	cust, err := h.d.Identity.CustomerByIDPSubject(ctx, subject)
	if errors.Is(err, identity.ErrNotFound) {
		h.log.WarnContext(ctx, "web: customer IdP subject linked to no customer", "subject", subject)
		h.errorPage(c, http.StatusForbidden, "No accounts are linked to this login",
			"Your bank confirmed who you are, but no accounts here are linked to this login yet. Nothing was shared. If you expected to see your accounts, contact your bank.",
			"", "")
		return
	} else if err != nil {
		h.internalError(c, "customer by IdP subject", err)
		return
	}
	oldID := ""
	if sess, err := h.session(c); err == nil && sess != nil {
		oldID = sess.ID
	}
	fresh, err := h.d.Identity.Login(ctx, oldID, cust.ID)
	if err != nil {
		h.internalError(c, "login", err)
		return
	}
	h.setCookie(c, fresh.ID, 0)
	c.Redirect(http.StatusSeeOther, returnTarget(st.ReturnTo))
}

// subject is the configured claim of the id_token (sub by default).
func (p *IDP) subject(idt *oidc.IDToken) (string, error) {
	if p.Claim == "" || p.Claim == "sub" {
		return idt.Subject, nil
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return "", err
	}
	s, ok := claims[p.Claim].(string)
	if !ok || s == "" {
		return "", fmt.Errorf("the id_token has no string claim %q", p.Claim)
	}
	return s, nil
}

// idpLoginURL is the link that starts an IdP login coming back to returnTo.
func idpLoginURL(returnTo string) string {
	if returnTo == "" {
		return "/login/idp"
	}
	return "/login/idp?return_to=" + url.QueryEscape(returnTo)
}
