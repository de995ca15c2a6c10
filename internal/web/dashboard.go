package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/identity"
)

// Grants is what the dashboard reads from the consent store.
type Grants interface {
	// ListByCustomer returns the customer's consents, newest first.
	ListByCustomer(ctx context.Context, customerID string) ([]*consent.Consent, error)
	// Get returns one consent, or an error wrapping consent.ErrNotFound.
	Get(ctx context.Context, id string) (*consent.Consent, error)
}

// GrantManager is the part of the authorization server the dashboard needs.
type GrantManager interface {
	// ClientNames returns app names by client id; unknown ids are absent.
	ClientNames(ctx context.Context, ids []string) (map[string]string, error)
	// RevokeGrant revokes the customer's grant and every token of it, on
	// every node from the next request on. It returns an error wrapping
	// ErrGrantNotFound when the grant is not the customer's.
	RevokeGrant(ctx context.Context, grantID, customerID string) error
}

// AppSuspensions is implemented by a GrantManager that knows which apps
// the bank has suspended (SPEC §11): their grants show as paused by the
// bank rather than active.
type AppSuspensions interface {
	// SuspendedApps reports which of the client ids are suspended.
	SuspendedApps(ctx context.Context, ids []string) (map[string]bool, error)
}

// pausedWords is the status of a live grant whose app the bank suspended.
const pausedWords = "Paused by your bank: the app cannot see your data while the bank has suspended it"

// markPaused shows the live grants of suspended apps as paused by the bank.
func (h *Handler) markPaused(ctx context.Context, clientIDs []string) (func(*grantView, string), error) {
	sa, ok := h.d.Apps.(AppSuspensions)
	if !ok {
		return func(*grantView, string) {}, nil
	}
	paused, err := sa.SuspendedApps(ctx, clientIDs)
	if err != nil {
		return nil, err
	}
	return func(v *grantView, clientID string) {
		if v.Active && paused[clientID] {
			v.Status, v.Paused = pausedWords, true
		}
	}, nil
}

// ErrGrantNotFound marks a grant that does not exist or is not the
// customer's. Adapters translate their own error into it.
var ErrGrantNotFound = errors.New("web: no such grant for this customer")

// History reads the audit log for the dashboard.
type History interface {
	// GrantHistory returns a grant's events newest first, at most limit,
	// with Seq below beforeSeq (0: from the newest).
	GrantHistory(ctx context.Context, grantID string, limit int, beforeSeq int64) ([]AccessEvent, error)
	// LastAccess returns, per grant, the time of its newest allowed data
	// read; grants never read are absent.
	LastAccess(ctx context.Context, grantIDs []string) (map[string]time.Time, error)
}

// AccessEvent is one audit log event as the dashboard shows it.
type AccessEvent struct {
	Seq        int64
	OccurredAt time.Time
	Type       string // an audit event type, e.g. data.access
	Outcome    string // allowed | denied
	Reason     string // machine-readable reason of a refusal or a revocation
	AccountID  string
	Method     string
	Path       string
	Status     int
}

// historyPageSize is how many history entries one page shows.
const historyPageSize = 20

type dashboardView struct {
	view
	Notice   string // confirmation of a revocation
	Active   []grantView
	Past     []grantView
	Accounts []accountOption
}

// customerPage loads what every dashboard page needs: the session (or it
// answers with a redirect to the login page), the customer's name and their
// accounts. ok false means the answer was written.
func (h *Handler) customerPage(c *gin.Context, returnTo string) (sess *identity.Session, name string, accts []accounts.Account, ok bool) {
	ctx := c.Request.Context()
	sess, err := h.session(c)
	if err != nil {
		h.internalError(c, "dashboard: session", err)
		return nil, "", nil, false
	}
	if !sess.LoggedIn() {
		c.Redirect(http.StatusSeeOther, loginURL(returnTo))
		return nil, "", nil, false
	}
	if name, err = h.customerName(ctx, sess.CustomerID); err != nil {
		h.internalError(c, "dashboard: customer", err)
		return nil, "", nil, false
	}
	if accts, err = h.d.Accounts.ListByCustomer(ctx, sess.CustomerID); err != nil {
		h.internalError(c, "dashboard: accounts", err)
		return nil, "", nil, false
	}
	return sess, name, accts, true
}

// dashboard lists every consent of the logged-in customer, active ones
// first, each with a button that stops it at once.
func (h *Handler) dashboard(c *gin.Context) {
	ctx := c.Request.Context()
	sess, name, accts, ok := h.customerPage(c, "/dashboard")
	if !ok {
		return
	}
	grants, err := h.d.Grants.ListByCustomer(ctx, sess.CustomerID)
	if err != nil {
		h.internalError(c, "dashboard: consents", err)
		return
	}
	ids := make([]string, len(grants))
	clientIDs := make([]string, 0, len(grants))
	for i, g := range grants {
		ids[i] = g.ID
		clientIDs = append(clientIDs, g.ClientID)
	}
	names, err := h.d.Apps.ClientNames(ctx, clientIDs)
	if err != nil {
		h.internalError(c, "dashboard: app names", err)
		return
	}
	last, err := h.d.History.LastAccess(ctx, ids)
	if err != nil {
		h.internalError(c, "dashboard: last access", err)
		return
	}
	mark, err := h.markPaused(ctx, clientIDs)
	if err != nil {
		h.internalError(c, "dashboard: suspended apps", err)
		return
	}
	v := dashboardView{view: view{Title: "Your connected apps", SignedInAs: name, CSRF: sess.CSRFToken}}
	now := h.now()
	for _, g := range grants {
		gv := h.grantView(g, names, accts, last, now)
		mark(&gv, g.ClientID)
		if gv.Active {
			v.Active = append(v.Active, gv)
		} else {
			v.Past = append(v.Past, gv)
		}
		if g.ID == c.Query("revoked") && g.StatusAt(now) == consent.Revoked {
			v.Notice = gv.AppName + " can no longer see your data."
		}
	}
	for _, a := range accts {
		v.Accounts = append(v.Accounts, accountOption{
			ID: a.ID, Name: a.DisplayName, Type: accountTypeWords[a.Type], Last4: a.Last4, Institution: a.InstitutionName,
		})
	}
	h.render(c, http.StatusOK, "dashboard", v)
}

type grantPageView struct {
	view
	Notice  string
	Grant   grantView
	Events  []eventView
	Older   string // link to the next (older) page, "" on the last
	Newest  string // link back to the first page, "" on it
	Showing string // which entries this page shows, in words
	Proofs  bool   // entries link to their proof of inclusion
}

// ownGrant loads the customer's grant named in the path; false means the
// answer (not found) was written.
func (h *Handler) ownGrant(c *gin.Context, customerID string) (*consent.Consent, bool) {
	g, err := h.d.Grants.Get(c.Request.Context(), c.Param("grant_id"))
	if errors.Is(err, consent.ErrNotFound) || (err == nil && g.CustomerID != customerID) {
		h.grantNotFound(c)
		return nil, false
	} else if err != nil {
		h.internalError(c, "dashboard: consent", err)
		return nil, false
	}
	return g, true
}

func (h *Handler) grantNotFound(c *gin.Context) {
	h.errorPage(c, http.StatusNotFound, "App connection not found",
		"We could not find this app connection among yours. Nothing was changed.", "/dashboard", "Go to your connected apps")
}

// grantPage shows one consent and its access history, newest first, a
// page at a time (?before=<seq> names where the page starts).
func (h *Handler) grantPage(c *gin.Context) {
	ctx := c.Request.Context()
	path := "/dashboard/consents/" + url.PathEscape(c.Param("grant_id"))
	sess, name, accts, ok := h.customerPage(c, path)
	if !ok {
		return
	}
	g, ok := h.ownGrant(c, sess.CustomerID)
	if !ok {
		return
	}
	names, err := h.d.Apps.ClientNames(ctx, []string{g.ClientID})
	if err != nil {
		h.internalError(c, "dashboard: app name", err)
		return
	}
	last, err := h.d.History.LastAccess(ctx, []string{g.ID})
	if err != nil {
		h.internalError(c, "dashboard: last access", err)
		return
	}
	before, _ := strconv.ParseInt(c.Query("before"), 10, 64) // anything else: the newest page
	before = max(before, 0)
	evs, err := h.d.History.GrantHistory(ctx, g.ID, historyPageSize+1, before)
	if err != nil {
		h.internalError(c, "dashboard: history", err)
		return
	}
	mark, err := h.markPaused(ctx, []string{g.ClientID})
	if err != nil {
		h.internalError(c, "dashboard: suspended apps", err)
		return
	}
	gv := h.grantView(g, names, accts, last, h.now())
	mark(&gv, g.ClientID)
	v := grantPageView{view: view{Title: gv.AppName + ": access to your data", SignedInAs: name, CSRF: sess.CSRFToken}, Grant: gv}
	if c.Query("revoked") != "" && g.StatusAt(h.now()) == consent.Revoked {
		v.Notice = gv.AppName + " can no longer see your data."
	}
	if len(evs) > historyPageSize {
		evs = evs[:historyPageSize]
		v.Older = path + "?before=" + strconv.FormatInt(evs[len(evs)-1].Seq, 10) + "#history"
	}
	if before > 0 {
		v.Newest = path + "#history"
	}
	for _, ev := range evs {
		v.Events = append(v.Events, describeEvent(ev, accts))
	}
	if h.d.Proofs != nil {
		v.Proofs = true
		for i := range v.Events {
			v.Events[i].Proof = path + "/proof/" + strconv.FormatInt(evs[i].Seq, 10)
		}
	}
	switch {
	case len(evs) == 0 && before == 0:
		v.Showing = "Nothing has happened under this permission yet."
	case len(evs) == 0:
		v.Showing = "There are no older entries."
	case before == 0:
		v.Showing = "The most recent entries, newest first."
	default:
		v.Showing = "Older entries, newest first."
	}
	h.render(c, http.StatusOK, "grant", v)
}

// revoke stops a consent at once: the grant and every token of it end on
// every node from the next request on. A logged-out or forged request, or
// another customer's grant, changes nothing.
func (h *Handler) revoke(c *gin.Context) {
	if !h.parseForm(c) {
		return
	}
	ctx := c.Request.Context()
	sess, err := h.session(c)
	if err != nil {
		h.internalError(c, "revoke: session", err)
		return
	}
	if !sess.LoggedIn() {
		c.Redirect(http.StatusSeeOther, loginURL("/dashboard"))
		return
	}
	if !sess.ValidCSRF(c.PostForm("csrf_token")) {
		h.csrfFailed(c)
		return
	}
	g, ok := h.ownGrant(c, sess.CustomerID)
	if !ok {
		return
	}
	err = h.d.Apps.RevokeGrant(ctx, g.ID, sess.CustomerID)
	if errors.Is(err, ErrGrantNotFound) {
		h.grantNotFound(c)
		return
	} else if err != nil {
		h.internalError(c, "revoke", err)
		return
	}
	h.log.InfoContext(ctx, "web: consent revoked by the customer", "grant_id", g.ID, "client_id", g.ClientID)
	// Back where the button was, with a confirmation.
	if c.PostForm("from") == "details" {
		c.Redirect(http.StatusSeeOther, "/dashboard/consents/"+url.PathEscape(g.ID)+"?revoked=1")
		return
	}
	c.Redirect(http.StatusSeeOther, "/dashboard?revoked="+url.QueryEscape(g.ID))
}
