package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/purpose"
)

// The gate is the part of the data API's handler chain that runs before any
// customer data is read: authenticate → purpose → scope → account. Each step
// either stops the chain with an error response or leaves what it learned in
// the gin context for the next one.

const (
	principalKey = "consentgate.principal"
	accountKey   = "consentgate.account"
	accountIDKey = "consentgate.account_id"
	// callerKey holds whoever the token names, also when the gate refuses
	// them afterwards: the audit event of a refusal says who was refused.
	callerKey = "consentgate.caller"
)

// PrincipalFrom returns the caller the gate authenticated, or nil before
// (or without) authentication.
func PrincipalFrom(c *gin.Context) *Principal {
	v, _ := c.Get(principalKey)
	p, _ := v.(*Principal)
	return p
}

func accountFrom(c *gin.Context) *accounts.Account {
	v, _ := c.Get(accountKey)
	a, _ := v.(*accounts.Account)
	return a
}

// authenticate admits a request only with a valid token whose consent is
// active now and belongs to it. The authorization server checks the consent
// too; checking it here again keeps the data API safe if that check ever
// regresses, and at the very instant of the call.
func (h *dataHandler) authenticate(c *gin.Context) {
	p, ok := authenticateToken(c, h.auth)
	if !ok {
		return
	}
	c.Set(callerKey, p)
	if !h.admit(c, p.ClientID) {
		return
	}
	cons := p.Consent
	switch {
	case cons == nil:
		writeTokenError(c, &TokenError{Description: "This token carries no customer consent (client_credentials). Data endpoints need a token from the authorization code flow."}, "")
		return
	case !cons.Active(h.now()):
		writeTokenError(c, &TokenError{Description: "The consent behind this token is not active: it was revoked, has expired or was never authorized."}, "")
		return
	case cons.CustomerID == "" || (p.GrantID != "" && p.GrantID != cons.ID) || (p.CustomerID != "" && p.CustomerID != cons.CustomerID):
		writeTokenError(c, &TokenError{Description: "This token does not match its consent."}, "")
		return
	}
	c.Set(principalKey, p)
	c.Next()
}

// admit applies the client's rate limit: over it, 429 rate_limited with
// Retry-After (recorded by recordAccess as a denied data.access naming the
// client). A call served again (serveAgain) is not counted twice.
func (h *dataHandler) admit(c *gin.Context, clientID string) bool {
	if h.limit == nil || c.Request.Context().Value(replayKey{}) != nil {
		return true // a call served again was admitted on its first run
	}
	wait, err := h.limit.Allow(c.Request.Context(), clientID)
	if err != nil {
		WriteProblem(c, apperr.Wrap(apperr.Unavailable, "The request could not be counted against the app's rate limit; retry shortly.", err))
		return false
	}
	if wait > 0 {
		e := apperr.New(apperr.RateLimited, "This app is over its rate limit of requests per second; retry after Retry-After seconds.")
		e.RetryAfter = max(1, int((wait+time.Second-1)/time.Second))
		WriteProblem(c, e)
		return false
	}
	return true
}

// authenticateToken validates the request's access token and answers the
// problems itself (ok false): token errors as RFC 6750 challenges, a coded
// failure (503 while the database is away) as it is, anything else as 500.
func authenticateToken(c *gin.Context, auth Authenticator) (p *Principal, ok bool) {
	p, err := auth.Authenticate(c.Request.Context(), c.Request)
	var te *TokenError
	var coded *apperr.E
	switch {
	case errors.As(err, &te):
		writeTokenError(c, te, "")
	case errors.As(err, &coded):
		WriteProblem(c, err)
	case err != nil:
		WriteProblem(c, apperr.Wrap(apperr.Internal, "authentication failed", err))
	case p == nil:
		WriteProblem(c, apperr.Wrap(apperr.Internal, "authentication failed", errors.New("authenticator returned no principal")))
	default:
		return p, true
	}
	return nil, false
}

// decide is the gate's purpose-limitation step for an endpoint needing
// scope and reading resource (consent.Resource*; of the path's account, if
// any): purpose.Decide judges the token's consent, the Data-Purpose header
// and the scope. An unattended call that passes is counted against the
// day's limit of its consent, account and resource, and judged again with
// that count. Only served calls count (SPEC §12, issue 14): a refused call
// takes its count back at once, a call the rest of the chain does not
// answer with 2xx (an unknown account, a bad cursor) takes it back after.
// A sync page that continues a run is not counted (docs/sync.md).
func (h *dataHandler) decide(scope, resource string) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := PrincipalFrom(c)
		ctx := c.Request.Context()
		now := h.now()
		call := purpose.Call{DataPurpose: c.Request.Header.Values("Data-Purpose"), Scope: scope,
			TokenScopes: p.Scopes, CustomerPresent: true}
		present, err := customerPresent(c.Request.Header.Values(HeaderCustomerIP))
		if err != nil {
			WriteProblem(c, err)
			return
		}
		r := h.purposes.Decide(p.Consent, now, call)
		var counted *consent.Usage
		if r == nil && !present && h.counts(c, p.Consent, resource) {
			u := consent.Usage{Resource: resource, AccountID: c.Param("account_id")}
			n, err := h.usage.CountUnattended(ctx, p.Consent.ID, u, now)
			if err != nil {
				WriteProblem(c, apperr.Wrap(apperr.Unavailable, "The call could not be counted against the consent's daily limit; retry shortly.", err))
				return
			}
			counted = &u
			call.CustomerPresent, call.UnattendedToday = false, n
			r = h.purposes.Decide(p.Consent, now, call)
		}
		if r != nil {
			h.uncount(c, p.Consent.ID, counted, now)
			h.refuse(c, p, scope, r)
			return
		}
		c.Next()
		if s := c.Writer.Status(); s < 200 || s > 299 {
			h.uncount(c, p.Consent.ID, counted, now)
		}
	}
}

// counts reports whether an unattended call on resource is counted: not
// for an account outside the consent (it is refused, reads nothing), nor
// for a sync page that continues a run.
func (h *dataHandler) counts(c *gin.Context, cons *consent.Consent, resource string) bool {
	if id := c.Param("account_id"); id != "" && !cons.HasAccount(id) {
		return false
	}
	return resource != consent.ResourceSync || !h.freeSync(c, cons)
}

// uncount takes back a counted call that is not served. A failure only
// costs the app one call of its allowance; it is logged, not answered.
func (h *dataHandler) uncount(c *gin.Context, consentID string, u *consent.Usage, now time.Time) {
	if u == nil {
		return
	}
	if err := h.usage.UncountUnattended(context.WithoutCancel(c.Request.Context()), consentID, *u, now); err != nil {
		h.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "an unserved call could not be taken back from the daily count",
			slog.String("grant_id", consentID), slog.String("err", err.Error()), slog.String("interaction_id", InteractionID(c)))
	}
}

// refuse answers a purpose-limitation refusal: token problems as RFC 6750
// challenges, the rest as problem+json with the decision's code.
func (h *dataHandler) refuse(c *gin.Context, p *Principal, scope string, r *purpose.Refusal) {
	switch r.Code {
	case purpose.RefuseInvalidToken:
		writeTokenError(c, &TokenError{Description: r.Msg}, "")
		return
	case purpose.RefuseInsufficientScope:
		writeTokenError(c, &TokenError{Status: http.StatusForbidden, Code: "insufficient_scope", Description: r.Msg}, scope)
		return
	}
	// A security event for operators too; the audit log records every
	// refusal as a denied data.access.
	h.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "data call refused",
		slog.String("code", r.Code), slog.String("client_id", p.ClientID),
		slog.String("grant_id", p.Consent.ID), slog.String("interaction_id", InteractionID(c)))
	e := apperr.New(apperr.Code(r.Code), r.Msg)
	if r.RetryAfter > 0 {
		e.RetryAfter = int((r.RetryAfter + time.Second - 1) / time.Second)
	}
	WriteProblem(c, e)
}

// HeaderCustomerIP marks a call made while the customer uses the app
// (FAPI): such calls are not counted against unattended limits.
const HeaderCustomerIP = "x-fapi-customer-ip-address"

// customerPresent reads x-fapi-customer-ip-address: absent means
// unattended; present, it must be one IP address.
func customerPresent(values []string) (bool, error) {
	switch {
	case len(values) == 0:
		return false, nil
	case len(values) == 1:
		if _, err := netip.ParseAddr(strings.TrimSpace(values[0])); err == nil {
			return true, nil
		}
	}
	return false, apperr.New(apperr.InvalidRequest,
		HeaderCustomerIP+" must be sent once, holding the customer's IP address (IPv4 or IPv6), or be left out for calls made without the customer.")
}

// loadAccount admits calls on an account the customer selected in the consent.
// An account outside the consent is never even looked up, and it gets the
// same answer as one that does not exist.
func (h *dataHandler) loadAccount(c *gin.Context) {
	p := PrincipalFrom(c)
	id := c.Param("account_id")
	if !p.Consent.HasAccount(id) {
		WriteProblem(c, errAccountNotFound)
		return
	}
	a, ok := h.readAccount(c, p.Consent.CustomerID, id)
	if !ok {
		return
	}
	c.Set(accountKey, a)
	c.Next()
}

// readAccount reads the customer's account id, answering the problem
// itself (ok false): an unknown account as account_not_found.
func (h *dataHandler) readAccount(c *gin.Context, customerID, id string) (a *accounts.Account, ok bool) {
	a, err := h.accounts.Get(c.Request.Context(), customerID, id)
	switch {
	case errors.Is(err, accounts.ErrNotFound):
		WriteProblem(c, errAccountNotFound)
		return nil, false
	case err != nil:
		readFailed(c, "account lookup", err)
		return nil, false
	}
	return a, true
}

// consentedAccount admits calls on an account the customer selected in the
// consent, without a read of its own: for the transactions page, whose
// query checks that the account is the consent customer's (a 404 like
// loadAccount's otherwise). That check never fails while the database
// keeps its rules (migrations 00060, 00061: a consent links only its
// customer's accounts, and an account is never removed, renamed or given
// to another customer); it is there so that a broken rule still serves
// nobody else's data.
func (h *dataHandler) consentedAccount(c *gin.Context) {
	id := c.Param("account_id")
	if !PrincipalFrom(c).Consent.HasAccount(id) {
		WriteProblem(c, errAccountNotFound)
		return
	}
	c.Set(accountIDKey, id)
	c.Next()
}

func accountIDFrom(c *gin.Context) string { return c.GetString(accountIDKey) }

var errAccountNotFound = apperr.New(apperr.AccountNotFound,
	"No account with this id is available under this consent. List the consented accounts with GET /v1/accounts (GET /fdx/v6/accounts on the FDX API).")

// writeTokenError answers an RFC 6750 (or RFC 9449 §7.1 DPoP) error: the
// challenge in WWW-Authenticate, and the same facts as problem+json for
// developers. A request that used the DPoP scheme is answered in it.
func writeTokenError(c *gin.Context, e *TokenError, scope string) {
	status, code := e.Status, e.Code
	if status == 0 {
		status = http.StatusUnauthorized
	}
	if code == "" {
		code = "invalid_token"
	}
	scheme := e.Scheme
	if used, _, _ := strings.Cut(c.GetHeader("Authorization"), " "); scheme == "" && strings.EqualFold(used, "DPoP") {
		scheme = "DPoP"
	}
	if scheme == "" {
		scheme = "Bearer"
	}
	challenge := scheme + ` error="` + quotable(code) + `"`
	if scope != "" {
		challenge += `, scope="` + quotable(scope) + `"`
	} else if e.Description != "" {
		challenge += `, error_description="` + quotable(e.Description) + `"`
	}
	if len(e.Algs) > 0 {
		challenge += `, algs="` + quotable(strings.Join(e.Algs, " ")) + `"`
	}
	if e.Nonce != "" {
		c.Header("DPoP-Nonce", e.Nonce)
	}
	c.Header("WWW-Authenticate", challenge)
	_ = c.Error(e) // returns e; recorded for the access log
	title := "Invalid token"
	switch code {
	case "insufficient_scope":
		title = "Insufficient scope"
	case "invalid_dpop_proof":
		title = "Invalid DPoP proof"
	case "use_dpop_nonce":
		title = "DPoP nonce required"
	}
	writeProblem(c, Problem{
		Type: ProblemTypeBase + code, Title: title, Status: status, Detail: e.Description,
		Code: code, InteractionID: InteractionID(c),
	})
}

// quotable keeps what RFC 6750 allows inside a quoted auth-param (visible
// ASCII and space, without '"' and '\'), so a description can never break
// the header.
func quotable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 300; i++ {
		switch ch := s[i]; {
		case ch == '"' || ch == '\\':
			b.WriteByte('\'')
		case ch >= 0x20 && ch <= 0x7e:
			b.WriteByte(ch)
		}
	}
	return b.String()
}
