// Package web serves the customer's pages: login, the consent screen that
// ends an OAuth authorization, and the dashboard where customers see every
// consent with its access history from the audit log and revoke it. Pages
// are server-rendered with html/template from embedded files and work
// without JavaScript (there is none). Every form carries a CSRF token bound
// to the session. It must not decide OAuth matters itself: the consent
// decision goes to the Authorizer, and a revocation to the GrantManager,
// which own grants, tokens, codes and redirects.
package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/purpose"
)

// Pending is an authorization waiting for the customer's decision.
type Pending struct {
	Challenge, GrantID, ClientID, ClientName, Purpose string
	Scopes                                            []string
	HistoryDays                                       int           // how far back transactions may be read
	Duration                                          time.Duration // how long the consent lasts once approved
	// Aggregator: the app passes the data on to other apps it works with.
	Aggregator bool
}

// Decision is the customer's answer on the consent screen.
type Decision struct {
	Approve    bool
	CustomerID string
	AccountIDs []string // only with Approve; always the customer's own
	// AuthTime is when the customer logged in on this browser session
	// (OpenID Connect auth_time).
	AuthTime time.Time
}

// Authorizer is the part of the authorization server the consent screen
// needs.
type Authorizer interface {
	// PendingAuthorization returns the authorization behind challenge; any
	// error means the link is unusable (unknown, expired or already used).
	PendingAuthorization(ctx context.Context, challenge string) (*Pending, error)
	// FinishAuthorization records d and writes the redirect back to the app.
	// Return an error wrapping ErrUnknownChallenge when the challenge is no
	// longer usable, so the customer sees a helpful page.
	FinishAuthorization(ctx context.Context, w http.ResponseWriter, r *http.Request, challenge string, d Decision) error
}

// ErrUnknownChallenge marks an authorization that is unknown, expired or
// already decided. Adapters translate their own error into it.
var ErrUnknownChallenge = errors.New("web: unknown or expired authorization challenge")

// Deps are the handler's collaborators.
type Deps struct {
	Identity   *identity.Service
	Authorizer Authorizer
	Accounts   accounts.Store // ListByCustomer only
	Purposes   *purpose.Table // labels and descriptions shown to customers
	Grants     Grants         // the customer's consents, for the dashboard
	Apps       GrantManager   // app names and revocation, for the dashboard
	History    History        // the audit log's view of each grant
	Proofs     EntryProofs    // nil: history entries have no proof link
	Secure     bool           // set the cookie's Secure flag (the issuer is https)
	// IDP, when set, offers login through the bank's identity provider.
	IDP *IDP
	// NoPasswordLogin leaves only the IdP (--password-login=false).
	NoPasswordLogin bool
	Logger          *slog.Logger     // nil: discard
	Now             func() time.Time // nil: time.Now
}

// Handler serves the pages.
type Handler struct {
	d      Deps
	log    *slog.Logger
	now    func() time.Time
	pages  map[string]*template.Template
	static fs.FS
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New parses the embedded templates and returns a Handler.
func New(d Deps) (*Handler, error) {
	if d.Identity == nil || d.Authorizer == nil || d.Accounts == nil || d.Purposes == nil ||
		d.Grants == nil || d.Apps == nil || d.History == nil {
		return nil, errors.New("web.New: Identity, Authorizer, Accounts, Purposes, Grants, Apps and History are required")
	}
	h := &Handler{d: d, log: d.Logger, now: d.Now, pages: map[string]*template.Template{}}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	for _, name := range []string{"login", "consent", "dashboard", "grant", "error", "proof"} {
		t, err := template.New(name).Funcs(templateFuncs).ParseFS(templateFS, "templates/layout.html", "templates/grant-summary.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web.New: template %s: %w", name, err)
		}
		h.pages[name] = t
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("web.New: %w", err)
	}
	h.static = sub
	return h, nil
}

// Register adds the pages to r.
func (h *Handler) Register(r gin.IRouter) {
	g := r.Group("", securityHeaders)
	g.GET("/", func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/dashboard") })
	g.GET("/login", h.loginForm)
	g.POST("/login", h.login)
	g.GET("/login/idp", h.idpStart)
	g.GET("/login/idp/callback", h.idpCallback)
	g.POST("/logout", h.logout)
	g.GET("/consent", h.consentForm)
	g.POST("/consent", h.consent)
	g.GET("/dashboard", h.dashboard)
	g.GET("/dashboard/consents/:grant_id", h.grantPage)
	g.POST("/dashboard/consents/:grant_id/revoke", h.revoke)
	g.GET("/dashboard/consents/:grant_id/proof/:seq", h.entryProof)
	g.GET("/static/*filepath", h.serveStatic)
}

// contentSecurityPolicy allows our own stylesheet and nothing else. It has
// no form-action: Chrome applies form-action to the redirect that follows
// POST /consent, and that goes to the app's redirect_uri on another origin.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'"

func securityHeaders(c *gin.Context) {
	hd := c.Writer.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	c.Next()
}

func (h *Handler) serveStatic(c *gin.Context) {
	name := strings.TrimPrefix(c.Param("filepath"), "/")
	b, err := fs.ReadFile(h.static, name) // fs.ValidPath refuses "..", directories fail to read
	if err != nil {
		h.errorPage(c, http.StatusNotFound, "Page not found", "There is nothing at this address.", "", "")
		return
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	c.Data(http.StatusOK, ctype, b)
}

// view is what every page's layout needs.
type view struct {
	Title      string
	SignedInAs string // display name; empty when logged out (no logout button)
	CSRF       string
	Errors     []formError // the error summary
}

// formError is one line of the error summary; Field is the id it links to.
type formError struct {
	ID, Field, Msg string
}

func (h *Handler) render(c *gin.Context, status int, page string, v any) {
	var buf bytes.Buffer
	if err := h.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		h.log.ErrorContext(c.Request.Context(), "web: render", "page", page, "err", err)
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("Something went wrong on our side. Please try again later.\n"))
		return
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

type errorView struct {
	view
	Message, LinkHref, LinkText string
}

func (h *Handler) errorPage(c *gin.Context, status int, title, message, linkHref, linkText string) {
	h.render(c, status, "error", errorView{view: view{Title: title}, Message: message, LinkHref: linkHref, LinkText: linkText})
}

func (h *Handler) internalError(c *gin.Context, op string, err error) {
	h.log.ErrorContext(c.Request.Context(), "web: "+op, "err", err, "path", c.Request.URL.Path)
	h.errorPage(c, http.StatusInternalServerError, "Something went wrong",
		"Something went wrong on our side and nothing was changed. Please try again in a moment.", "", "")
}

func (h *Handler) csrfFailed(c *gin.Context) {
	h.errorPage(c, http.StatusForbidden, "This form has expired",
		"For your security we could not accept this form: it has expired or did not come from this site. Nothing was changed. Go back, reload the page and try again.",
		"/login", "Go to the login page")
}

func (h *Handler) expiredLink(c *gin.Context) {
	h.errorPage(c, http.StatusBadRequest, "This link has expired",
		"This sign-in link has expired or was already used; go back to the app and start again.", "", "")
}

const (
	cookieName  = "cg_session"
	maxFormSize = 64 << 10
)

// session returns the browser's live session, or nil when it has none. An
// error means the lookup failed, not that the session is missing.
func (h *Handler) session(c *gin.Context) (*identity.Session, error) {
	ck, err := c.Request.Cookie(cookieName)
	if err != nil {
		return nil, nil // no cookie, no session
	}
	sess, err := h.d.Identity.Session(c.Request.Context(), ck.Value)
	if errors.Is(err, identity.ErrNoSession) {
		return nil, nil
	}
	return sess, err
}

func (h *Handler) setCookie(c *gin.Context, value string, maxAge int) {
	// #nosec G124 -- Secure follows the issuer's scheme (SPEC §5: Secure on https); HttpOnly and SameSite are set.
	http.SetCookie(c.Writer, &http.Cookie{
		Name: cookieName, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: h.d.Secure, SameSite: http.SameSiteLaxMode,
	})
}

// parseForm reads a POST body of bounded size; false means the answer was
// written.
func (h *Handler) parseForm(c *gin.Context) bool {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxFormSize)
	if err := c.Request.ParseForm(); err != nil {
		h.errorPage(c, http.StatusBadRequest, "The form could not be read",
			"The form could not be read. Go back, reload the page and try again.", "", "")
		return false
	}
	return true
}

// safeReturnTo keeps return_to only when it is a path on this site: it
// starts with one "/", and nothing a browser would reinterpret (a second
// slash, a backslash, control characters or spaces browsers strip) makes it
// a link to another host. Anything else gives "".
func safeReturnTo(s string) string {
	if len(s) == 0 || len(s) > 2048 || s[0] != '/' || strings.HasPrefix(s, "//") || strings.Contains(s, "\\") {
		return ""
	}
	for _, r := range s {
		if r <= 0x20 || r == 0x7f {
			return ""
		}
	}
	return s
}

func returnTarget(returnTo string) string {
	if returnTo == "" {
		return "/dashboard"
	}
	return returnTo
}

func (h *Handler) customerName(ctx context.Context, id string) (string, error) {
	cust, err := h.d.Identity.Customer(ctx, id)
	if err != nil {
		return "", err
	}
	return cust.DisplayName, nil
}
