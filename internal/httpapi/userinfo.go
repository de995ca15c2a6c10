package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/purpose"
)

// CustomerClaims are the OpenID Connect claims of a customer that the
// userinfo endpoint may release: the customer's name (scope profile) and
// email (scope email). "" means the bank holds none.
type CustomerClaims struct {
	Name  string
	Email string
}

// ClaimsSource reads a customer's claims.
type ClaimsSource interface {
	// CustomerClaims returns the claims of the customer with the internal
	// id customerID.
	CustomerClaims(ctx context.Context, customerID string) (CustomerClaims, error)
}

// SubjectSource gives the identifier a client sees for a customer.
type SubjectSource interface {
	// Subject is the pairwise subject of customerID for clientID.
	Subject(clientID, customerID string) string
}

// UserinfoDeps are what the userinfo endpoint needs.
type UserinfoDeps struct {
	Auth Authenticator
	// Audit records one data.access event per call, before its answer is
	// sent (no audit, no data). Required.
	Audit    audit.Recorder
	Claims   ClaimsSource
	Subjects SubjectSource
	Logger   *slog.Logger     // nil: discard
	Now      func() time.Time // nil: time.Now
	Limiter  RateLimiter      // nil: no rate limit
}

// RegisterUserinfo mounts the OpenID Connect userinfo endpoint (SPEC §10),
// GET and POST /userinfo: with an access token of an active grant that
// holds scope openid, the customer's pairwise sub, and name and email when
// the grant holds profile and email. It runs the data API's audit and
// authentication steps, so every call, allowed or refused, is a data.access
// event. The access token is read from the Authorization header only.
func RegisterUserinfo(r gin.IRouter, d UserinfoDeps) {
	if d.Audit == nil {
		panic("httpapi.RegisterUserinfo: UserinfoDeps.Audit is required (no audit, no data)")
	}
	if d.Claims == nil || d.Subjects == nil {
		panic("httpapi.RegisterUserinfo: UserinfoDeps.Claims and Subjects are required")
	}
	h := &dataHandler{auth: d.Auth, audit: d.Audit, log: d.Logger, now: d.Now, limit: d.Limiter}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	u := &userinfoHandler{claims: d.Claims, subjects: d.Subjects}
	r.GET("/userinfo", h.recordAccess, h.authenticate, u.serve)
	r.POST("/userinfo", h.recordAccess, h.authenticate, u.serve)
}

type userinfoHandler struct {
	claims   ClaimsSource
	subjects SubjectSource
}

// userinfoView is the userinfo response (OpenID Connect Core §5.3.2).
type userinfoView struct {
	Sub   string `json:"sub"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

func (u *userinfoHandler) serve(c *gin.Context) {
	p := PrincipalFrom(c)
	if !slices.Contains(p.Scopes, purpose.ScopeOpenID) {
		writeTokenError(c, &TokenError{Status: http.StatusForbidden, Code: "insufficient_scope",
			Description: "userinfo needs an access token of a grant with scope openid."}, purpose.ScopeOpenID)
		return
	}
	out := userinfoView{Sub: u.subjects.Subject(p.ClientID, p.Consent.CustomerID)}
	profile, email := slices.Contains(p.Scopes, purpose.ScopeProfile), slices.Contains(p.Scopes, purpose.ScopeEmail)
	if profile || email {
		cl, err := u.claims.CustomerClaims(c.Request.Context(), p.Consent.CustomerID)
		if err != nil {
			WriteProblem(c, apperr.Wrap(apperr.Unavailable, "The customer's claims cannot be read right now; retry shortly.", err))
			return
		}
		if profile {
			out.Name = cl.Name
		}
		if email {
			out.Email = cl.Email
		}
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}
