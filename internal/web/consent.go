package web

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/purpose"
)

// scopeWords say what each scope lets the app see, in the customer's words,
// in the order they are shown.
var scopeWords = []struct{ scope, words string }{
	{purpose.ScopeAccounts, "Your account names and numbers (last 4 digits only)"},
	{purpose.ScopeBalances, "Your balances"},
	{purpose.ScopeTransactions, "Your card transactions"},
	{purpose.ScopeIdentity, "Your name, email and address, and your phone number, as the bank holds them"},
	{purpose.ScopeAccountNumbers, "The numbers needed to send money to this account (routing number and account number)"},
	{purpose.ScopeOpenID, "Your sign-in identity: a private code that tells this app it is you, different for every app"},
	{purpose.ScopeProfile, "Your name"},
	{purpose.ScopeEmail, "Your email address"},
	{purpose.ScopeOffline, "Keep access while you are not using the app"},
}

var accountTypeWords = map[string]string{
	accounts.TypeChecking:   "Checking account",
	accounts.TypeSavings:    "Savings account",
	accounts.TypeCreditCard: "Credit card",
}

// errNoAnswer is logged when the authorizer reports success but wrote no
// response: the browser would otherwise get an empty page.
var errNoAnswer = errors.New("authorizer wrote no response")

// maxChallengeLen bounds what is sent on to the authorizer.
const maxChallengeLen = 512

type consentView struct {
	view
	Challenge          string
	ClientName         string
	PurposeLabel       string
	PurposeDescription string
	Data               []string
	HistoryDays        int // 0: not shown (no transactions scope)
	// NotSeen says in plain words what the purpose keeps from the app of
	// the data it asks for (SPEC §12).
	NotSeen       []string
	Until         string
	Accounts      []accountOption
	AccountsError string
	Aggregator    bool // the app passes the data on to other apps
}

type accountOption struct {
	ID, InputID, Name, Type, Last4, Institution string
	Checked                                     bool
}

func (h *Handler) consentView(p *Pending, accts []accounts.Account, checked map[string]bool, sess *identity.Session, name string) consentView {
	v := consentView{
		view:       view{Title: "Allow " + p.ClientName + " to see your data?", SignedInAs: name, CSRF: sess.CSRFToken},
		Challenge:  p.Challenge,
		ClientName: p.ClientName,
		Aggregator: p.Aggregator,
	}
	if pol, ok := h.d.Purposes.Lookup(p.Purpose); ok {
		v.PurposeLabel, v.PurposeDescription = pol.Label, pol.Description
		for _, f := range pol.Fields().Hidden() {
			if purpose.IsTransactionField(f) && !slices.Contains(p.Scopes, purpose.ScopeTransactions) {
				continue // not asked for anyway
			}
			v.NotSeen = append(v.NotSeen, purpose.FieldWords(f))
		}
	} else {
		// The authorization server only accepts known purposes; show the
		// code rather than hide what was asked.
		v.PurposeLabel = p.Purpose
	}
	for _, sw := range scopeWords {
		if slices.Contains(p.Scopes, sw.scope) {
			v.Data = append(v.Data, sw.words)
		}
	}
	for _, s := range p.Scopes {
		if !slices.ContainsFunc(scopeWords, func(sw struct{ scope, words string }) bool { return sw.scope == s }) {
			v.Data = append(v.Data, "Other access: "+s)
		}
	}
	if slices.Contains(p.Scopes, purpose.ScopeTransactions) {
		v.HistoryDays = p.HistoryDays
	}
	if p.Duration > 0 {
		v.Until = h.now().Add(p.Duration).UTC().Format("2 January 2006")
	}
	for i, a := range accts {
		v.Accounts = append(v.Accounts, accountOption{
			ID: a.ID, InputID: "account-" + strconv.Itoa(i), Name: a.DisplayName,
			Type: accountTypeWords[a.Type], Last4: a.Last4, Institution: a.InstitutionName,
			Checked: checked[a.ID],
		})
	}
	return v
}

func (h *Handler) consentForm(c *gin.Context) {
	ctx := c.Request.Context()
	challenge := c.Query("challenge")
	if challenge == "" || len(challenge) > maxChallengeLen {
		h.expiredLink(c)
		return
	}
	sess, err := h.session(c)
	if err != nil {
		h.internalError(c, "consent", err)
		return
	}
	if !sess.LoggedIn() {
		c.Redirect(http.StatusSeeOther, loginURL("/consent?challenge="+url.QueryEscape(challenge)))
		return
	}
	p, err := h.d.Authorizer.PendingAuthorization(ctx, challenge)
	if err != nil {
		h.log.InfoContext(ctx, "web: consent for an unusable challenge", "err", err)
		h.expiredLink(c)
		return
	}
	name, err := h.customerName(ctx, sess.CustomerID)
	if err != nil {
		h.internalError(c, "consent: customer", err)
		return
	}
	accts, err := h.d.Accounts.ListByCustomer(ctx, sess.CustomerID)
	if err != nil {
		h.internalError(c, "consent: accounts", err)
		return
	}
	h.render(c, http.StatusOK, "consent", h.consentView(p, accts, nil, sess, name))
}

func (h *Handler) consent(c *gin.Context) {
	if !h.parseForm(c) {
		return
	}
	ctx := c.Request.Context()
	sess, err := h.session(c)
	if err != nil {
		h.internalError(c, "consent", err)
		return
	}
	if !sess.ValidCSRF(c.PostForm("csrf_token")) {
		h.csrfFailed(c)
		return
	}
	challenge := c.PostForm("challenge")
	if challenge == "" || len(challenge) > maxChallengeLen {
		h.expiredLink(c)
		return
	}
	if !sess.LoggedIn() {
		c.Redirect(http.StatusSeeOther, loginURL("/consent?challenge="+url.QueryEscape(challenge)))
		return
	}
	p, err := h.d.Authorizer.PendingAuthorization(ctx, challenge)
	if err != nil {
		h.log.InfoContext(ctx, "web: decision on an unusable challenge", "err", err)
		h.expiredLink(c)
		return
	}

	switch c.PostForm("decision") {
	case "deny":
		h.finish(c, challenge, Decision{Approve: false, CustomerID: sess.CustomerID})
		return
	case "approve":
	default:
		h.reshowConsent(c, p, sess, nil, "Choose Allow access or Don't allow.")
		return
	}

	accts, err := h.d.Accounts.ListByCustomer(ctx, sess.CustomerID)
	if err != nil {
		h.internalError(c, "consent: accounts", err)
		return
	}
	own := make(map[string]bool, len(accts))
	for _, a := range accts {
		own[a.ID] = true
	}
	chosen := map[string]bool{}
	foreign := false
	for _, id := range c.PostFormArray("account") {
		if own[id] {
			chosen[id] = true
		} else {
			foreign = true
		}
	}
	switch {
	case foreign:
		h.reshowConsent(c, p, sess, chosen, "You can only share your own accounts. Choose from the accounts listed below.")
		return
	case len(chosen) == 0:
		h.reshowConsent(c, p, sess, nil, "Choose at least one account to share, or choose Don't allow.")
		return
	}
	ids := make([]string, 0, len(chosen))
	for _, a := range accts { // the store's order, without duplicates
		if chosen[a.ID] {
			ids = append(ids, a.ID)
		}
	}
	h.finish(c, challenge, Decision{Approve: true, CustomerID: sess.CustomerID, AccountIDs: ids, AuthTime: sess.CreatedAt})
}

// reshowConsent answers 400 with the form, the customer's choices kept and
// the problem explained next to the account list.
func (h *Handler) reshowConsent(c *gin.Context, p *Pending, sess *identity.Session, checked map[string]bool, msg string) {
	ctx := c.Request.Context()
	name, err := h.customerName(ctx, sess.CustomerID)
	if err != nil {
		h.internalError(c, "consent: customer", err)
		return
	}
	accts, err := h.d.Accounts.ListByCustomer(ctx, sess.CustomerID)
	if err != nil {
		h.internalError(c, "consent: accounts", err)
		return
	}
	v := h.consentView(p, accts, checked, sess, name)
	v.Title = "Error: " + v.Title // screen readers announce the problem first
	v.AccountsError = msg
	v.Errors = []formError{{Field: "accounts", Msg: msg}}
	h.render(c, http.StatusBadRequest, "consent", v)
}

// finish hands the decision to the authorizer, which answers the browser
// (303 to the app). Only when it wrote nothing do we explain a failure.
func (h *Handler) finish(c *gin.Context, challenge string, d Decision) {
	ctx := c.Request.Context()
	err := h.d.Authorizer.FinishAuthorization(ctx, c.Writer, c.Request, challenge, d)
	// gin only records a status on WriteHeader; a redirect without a body
	// (http.Redirect for POST) shows up as a status other than the default.
	written := c.Writer.Written() || c.Writer.Status() != http.StatusOK
	switch {
	case err != nil && written:
		h.log.ErrorContext(ctx, "web: finish authorization after answering", "err", err)
	case err != nil && errors.Is(err, ErrUnknownChallenge):
		h.log.InfoContext(ctx, "web: decision on an unusable challenge", "err", err)
		h.expiredLink(c)
	case err != nil:
		h.internalError(c, "finish authorization", err)
	case !written:
		h.internalError(c, "finish authorization", errNoAnswer)
	}
}
