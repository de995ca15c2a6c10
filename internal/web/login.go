package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/identity"
)

type loginView struct {
	view
	ReturnTo string
	Username string
	// IDPURL starts a login at the bank's identity provider ("" without one).
	IDPURL   string
	Password bool // the password form is offered
}

// loginURL is the login page that comes back to returnTo afterwards.
func loginURL(returnTo string) string {
	return "/login?return_to=" + url.QueryEscape(returnTo)
}

func (h *Handler) loginForm(c *gin.Context) {
	ctx := c.Request.Context()
	returnTo := safeReturnTo(c.Query("return_to"))
	sess, err := h.session(c)
	if err != nil {
		h.internalError(c, "login form", err)
		return
	}
	if sess.LoggedIn() {
		c.Redirect(http.StatusSeeOther, returnTarget(returnTo))
		return
	}
	if sess == nil {
		// An anonymous session only to bind the form's CSRF token.
		if sess, err = h.d.Identity.StartSession(ctx); err != nil {
			h.internalError(c, "start session", err)
			return
		}
		h.setCookie(c, sess.ID, 0)
	}
	h.render(c, http.StatusOK, "login", h.loginView(sess.CSRFToken, returnTo, ""))
}

func (h *Handler) login(c *gin.Context) {
	if !h.parseForm(c) {
		return
	}
	ctx := c.Request.Context()
	sess, err := h.session(c)
	if err != nil {
		h.internalError(c, "login", err)
		return
	}
	username := c.PostForm("username")
	returnTo := safeReturnTo(c.PostForm("return_to"))
	if h.d.NoPasswordLogin {
		// No password is ever checked, so there is nothing to protect
		// with the CSRF token: say at once how to log in.
		off := h.loginView("", returnTo, "")
		off.Errors = []formError{{ID: "login-error", Field: "idp-login", Msg: "Password login is turned off here: log in with your bank."}}
		h.render(c, http.StatusForbidden, "login", off)
		return
	}
	if !sess.ValidCSRF(c.PostForm("csrf_token")) {
		h.csrfFailed(c)
		return
	}
	again := h.loginView(sess.CSRFToken, returnTo, username)

	cust, err := h.d.Identity.Authenticate(ctx, username, c.PostForm("password"), c.ClientIP())
	var throttled *identity.ThrottledError
	switch {
	case errors.As(err, &throttled):
		secs := int(math.Ceil(throttled.RetryAfter.Seconds()))
		c.Header("Retry-After", strconv.Itoa(secs))
		again.Errors = []formError{{ID: "login-error", Field: "username", Msg: fmt.Sprintf(
			"There have been too many failed attempts to log in. For your security, wait %s and try again.", waitWords(throttled.RetryAfter))}}
		h.render(c, http.StatusTooManyRequests, "login", again)
		return
	case errors.Is(err, identity.ErrInvalidCredentials):
		// One message for an unknown user and a wrong password.
		again.Errors = []formError{{ID: "login-error", Field: "username", Msg: "The username or password is not right. Check them and try again."}}
		h.render(c, http.StatusUnauthorized, "login", again)
		return
	case err != nil:
		h.internalError(c, "authenticate", err)
		return
	}
	fresh, err := h.d.Identity.Login(ctx, sess.ID, cust.ID)
	if err != nil {
		h.internalError(c, "login", err)
		return
	}
	h.setCookie(c, fresh.ID, 0)
	c.Redirect(http.StatusSeeOther, returnTarget(returnTo))
}

// loginView is the login page: the password form unless it is turned off,
// and the bank's login when there is one.
func (h *Handler) loginView(csrf, returnTo, username string) loginView {
	v := loginView{view: view{Title: "Log in", CSRF: csrf}, ReturnTo: returnTo, Username: username, Password: !h.d.NoPasswordLogin}
	if h.d.IDP != nil {
		v.IDPURL = idpLoginURL(returnTo)
	}
	return v
}

// waitWords says a wait in words people read at a glance.
func waitWords(d time.Duration) string {
	minutes := int(math.Ceil(d.Minutes()))
	if minutes <= 1 {
		return "a minute"
	}
	return strconv.Itoa(minutes) + " minutes"
}

func (h *Handler) logout(c *gin.Context) {
	if !h.parseForm(c) {
		return
	}
	sess, err := h.session(c)
	if err != nil {
		h.internalError(c, "logout", err)
		return
	}
	if sess == nil {
		// Already logged out (or expired): nothing to protect, nothing to do.
		h.setCookie(c, "", -1)
		c.Redirect(http.StatusSeeOther, "/login")
		return
	}
	if !sess.ValidCSRF(c.PostForm("csrf_token")) {
		h.csrfFailed(c)
		return
	}
	if err := h.d.Identity.Logout(c.Request.Context(), sess.ID); err != nil {
		h.internalError(c, "logout", err)
		return
	}
	h.setCookie(c, "", -1)
	c.Redirect(http.StatusSeeOther, "/login")
}
