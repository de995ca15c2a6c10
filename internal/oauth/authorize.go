package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/consentgate/consentgate/internal/consent"
)

// Pending is an authorization waiting for the customer, as the consent
// screen shows it.
type Pending struct {
	Challenge, GrantID, ClientID, ClientName, Purpose string
	Scopes                                            []string
	HistoryDays                                       int           // how far back transactions may be read
	Duration                                          time.Duration // how long the consent lasts once approved
	// Aggregator: the client is registered as an aggregator (SPEC §10).
	Aggregator bool
}

// Decision is the customer's answer on the consent screen.
type Decision struct {
	Approve    bool
	CustomerID string
	AccountIDs []string
	// AuthTime is when the customer logged in (the id_token's auth_time);
	// zero means now.
	AuthTime time.Time
}

// handleAuthorize is GET /oauth2/authorize. Only a pushed request counts:
// the browser URL may carry nothing but client_id and request_uri (RFC 9126
// §4), so nothing added to it can override what the client pushed. A valid
// request is parked under a fresh challenge and the browser sent to the
// consent screen. The one exception is a client registered as exempt from
// PAR, whose request without a request_uri is read from the URL
// (handleFrontChannel).
func (p *Provider) handleAuthorize(c *gin.Context) {
	r := c.Request
	ctx := r.Context()
	q := r.URL.Query()
	if err := checkParams(q); err != nil {
		p.writeAuthorizeError(ctx, c.Writer, fosite.NewAuthorizeRequest(), err)
		return
	}
	if q.Get("request") != "" {
		p.writeAuthorizeError(ctx, c.Writer, fosite.NewAuthorizeRequest(),
			fosite.ErrInvalidRequest.WithHint("'request' objects are not supported."))
		return
	}
	if q.Get("request_uri") == "" {
		// A client exempt from PAR may send the request itself (SPEC §10).
		client, err := p.parExemptClient(ctx, q.Get("client_id"))
		if err != nil {
			p.writeAuthorizeError(ctx, c.Writer, fosite.NewAuthorizeRequest(), p.serverError(ctx, "authorize: load client", err))
			return
		}
		if client != nil {
			p.handleFrontChannel(c, client)
			return
		}
	}
	clean := r.Clone(ctx)
	clean.URL.RawQuery = url.Values{"client_id": {q.Get("client_id")}, "request_uri": {q.Get("request_uri")}}.Encode()
	clean.Form, clean.PostForm, clean.Body = nil, nil, http.NoBody
	clean.Header.Del("Content-Type")
	ar, err := p.oauth.NewAuthorizeRequest(ctx, clean)
	if err != nil {
		p.writeAuthorizeError(ctx, c.Writer, ar, err)
		return
	}
	if err := p.checkAwaiting(ctx, ar); err != nil {
		p.writeAuthorizeError(ctx, c.Writer, ar, err)
		return
	}
	challenge := randomToken(32)
	if err := p.store.saveChallenge(ctx, challenge, ar, p.now().Add(challengeLifespan)); err != nil {
		p.writeAuthorizeError(ctx, c.Writer, ar, p.serverError(ctx, "authorize: save challenge", err))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, "/consent?challenge="+url.QueryEscape(challenge))
}

// checkAwaiting makes sure the pushed request's consent can still be decided.
func (p *Provider) checkAwaiting(ctx context.Context, ar fosite.AuthorizeRequester) error {
	c, err := p.consents.Get(ctx, ar.GetID())
	if err != nil && !errors.Is(err, consent.ErrNotFound) {
		return p.serverError(ctx, "authorize: load consent", err)
	}
	ok := err == nil && c.ClientID == ar.GetClient().GetID()
	if ok && isReplace(ar) {
		st := c.StatusAt(p.now())
		ok = st == consent.Authorized || st == consent.Expired
	} else if ok {
		ok = c.Status == consent.AwaitingAuthorization
	}
	if !ok {
		return fosite.ErrInvalidRequest.WithHint("The authorization request is no longer valid; push a new one.")
	}
	return nil
}

func isReplace(ar fosite.Requester) bool {
	return ar.GetRequestForm().Get(paramGrantAction) == grantActionReplace
}

// PendingAuthorization returns the authorization behind a challenge without
// using it up; ErrUnknownChallenge if there is none.
func (p *Provider) PendingAuthorization(ctx context.Context, challenge string) (*Pending, error) {
	ar, err := p.store.pendingChallenge(ctx, challenge)
	if err != nil {
		return nil, err
	}
	form := ar.GetRequestForm()
	pol, ok := p.purposes.Lookup(form.Get(paramPurpose))
	if !ok {
		return nil, fmt.Errorf("oauth.PendingAuthorization: purpose %q left the policy table", form.Get(paramPurpose))
	}
	secs, err := strconv.ParseInt(form.Get(paramConsentDuration), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("oauth.PendingAuthorization: stored consent_duration: %w", err)
	}
	pd := &Pending{
		Challenge: challenge, GrantID: ar.GetID(), ClientID: ar.GetClient().GetID(), Purpose: pol.Code,
		Scopes: slices.Clone(ar.GetRequestedScopes()), HistoryDays: pol.MaxHistoryDays,
		Duration: time.Duration(secs) * time.Second,
	}
	if c, ok := ar.GetClient().(*Client); ok {
		pd.ClientName, pd.Aggregator = c.Name, c.Aggregator
	}
	return pd, nil
}

// FinishAuthorization records the customer's decision on a challenge and
// answers the browser with a 303 to the client's redirect_uri: code, state
// and iss on approval, error=access_denied, state and iss on refusal.
//
// It returns an error, and writes nothing, when the challenge is unknown or
// used (ErrUnknownChallenge) or the approval names no account
// (ErrNoAccounts) or an account that is not the customer's
// (consent.ErrForeignAccount); in the last two cases the challenge stays
// usable so the form can be shown again. Once the challenge is used, the
// outcome always goes to the client as a redirect and the result is nil.
func (p *Provider) FinishAuthorization(ctx context.Context, w http.ResponseWriter, _ *http.Request, challenge string, d Decision) error {
	if d.CustomerID == "" {
		return errors.New("oauth.FinishAuthorization: no customer")
	}
	d.AccountIDs = slices.Compact(slices.Sorted(slices.Values(d.AccountIDs)))
	if d.Approve {
		if len(d.AccountIDs) == 0 {
			return ErrNoAccounts
		}
		if err := p.checkOwnAccounts(ctx, d.CustomerID, d.AccountIDs); err != nil {
			return err
		}
	}
	ar, err := p.store.consumeChallenge(ctx, challenge)
	if err != nil {
		return err
	}
	id, clientID, purposeCode := ar.GetID(), ar.GetClient().GetID(), ar.GetRequestForm().Get(paramPurpose)
	ev := Event{ClientID: clientID, CustomerID: d.CustomerID, GrantID: id, Purpose: purposeCode, Scopes: ar.GetRequestedScopes()}

	if !d.Approve {
		// Refusing a renewal leaves the grant being renewed as it was.
		if !isReplace(ar) {
			if err := p.consents.Reject(ctx, id, d.CustomerID, p.now()); err != nil {
				p.log.WarnContext(ctx, "oauth: reject consent", "grant_id", id, "error", err)
			}
		}
		ev.Type, ev.Outcome, ev.Reason = EventConsentRejected, OutcomeDenied, "customer_refused"
		if isReplace(ar) {
			ev.Reason = "renewal_refused"
		}
		p.emit(ctx, ev)
		p.writeAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("The customer refused the request."))
		return nil
	}

	if isReplace(ar) {
		err = p.renewGrant(ctx, ar, d)
		ev.Reason = "replaced"
	} else {
		_, err = p.consents.Authorize(ctx, id, d.CustomerID, d.AccountIDs, p.now())
	}
	if err != nil {
		p.log.WarnContext(ctx, "oauth: authorize consent", "grant_id", id, "error", err)
		p.writeAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("The authorization could not be completed."))
		return nil
	}
	ev.Type = EventConsentAuthorized
	p.emit(ctx, ev)

	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	// The code carries the DPoP key the pushed request was bound to, if any.
	sess := &Session{GrantID: id, Purpose: purposeCode, JKT: ar.GetRequestForm().Get(ParamDPoPJKT)}
	sess.Subject = d.CustomerID
	p.idTokenClaims(sess, ar, d)
	resp, err := p.oauth.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		p.log.ErrorContext(ctx, "oauth: issue code for an authorized consent", "grant_id", id, "error", err)
		p.writeAuthorizeError(ctx, w, ar, err)
		return nil
	}
	resp.AddParameter("iss", p.issuer)
	p.oauth.WriteAuthorizeResponse(ctx, w, ar, resp)
	return nil
}

// checkOwnAccounts refuses account ids (distinct) that are not the
// customer's before anything is used up; consent.Store checks again when it
// links them.
func (p *Provider) checkOwnAccounts(ctx context.Context, customerID string, ids []string) error {
	var n int64
	if err := p.store.db.WithContext(ctx).Raw(`SELECT count(*) FROM accounts WHERE customer_id = ? AND id IN ?`,
		customerID, ids).Scan(&n).Error; err != nil {
		return fmt.Errorf("oauth.FinishAuthorization: accounts: %w", err)
	}
	if n != int64(len(ids)) {
		return consent.ErrForeignAccount
	}
	return nil
}

// writeAuthorizeError answers an authorization error. When fosite redirects
// (the redirect URI is verified against the client's registration) the
// redirect gains the RFC 9207 iss parameter; otherwise fosite's plain JSON
// error stands and no browser is sent anywhere.
func (p *Provider) writeAuthorizeError(ctx context.Context, w http.ResponseWriter, ar fosite.AuthorizeRequester, err error) {
	rec := httptest.NewRecorder()
	p.oauth.WriteAuthorizeError(ctx, rec, ar, err)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	if loc := rec.Header().Get("Location"); loc != "" {
		u, perr := url.Parse(loc)
		if perr != nil {
			p.log.ErrorContext(ctx, "oauth: unparsable error redirect", "error", perr)
			w.Header().Del("Location")
			w.Header().Set("Content-Type", "application/json;charset=UTF-8")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":"server_error"}`))
			return
		}
		if u.Fragment != "" {
			f, _ := url.ParseQuery(u.EscapedFragment())
			f.Set("iss", p.issuer)
			u.Fragment, u.RawFragment = "", ""
			loc = u.String() + "#" + f.Encode()
		} else {
			q := u.Query()
			q.Set("iss", p.issuer)
			u.RawQuery = q.Encode()
			loc = u.String()
		}
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusSeeOther)
		return
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}
