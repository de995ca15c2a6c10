package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/purpose"
)

// Form parameters of a pushed authorization request beyond RFC 6749.
const (
	paramPurpose         = "purpose"
	paramConsentDuration = "consent_duration"
	paramGrantID         = "grant_id"
	paramGrantAction     = "grant_management_action"
	grantActionReplace   = "replace"
)

// parTerms is what a pushed request asks for once checked.
type parTerms struct {
	purpose  string
	policy   purpose.Policy
	duration time.Duration
	// replaces is the grant a grant_management_action=replace renews.
	replaces *consent.Consent
}

// handlePAR is POST /oauth2/par (RFC 9126). fosite authenticates the client
// and validates the request as an authorization request; then the purpose,
// scope, PKCE and grant-management rules of SPEC §2/§4 decide before
// anything is stored, and the consent is created awaiting the customer.
func (p *Provider) handlePAR(c *gin.Context) {
	r := limitBody(c)
	ctx := r.Context()
	if err := checkFormBody(r); err != nil {
		p.oauth.WritePushedAuthorizeError(ctx, c.Writer, fosite.NewAuthorizeRequest(), answer(err))
		return
	}
	ar, err := p.oauth.NewPushedAuthorizeRequest(ctx, r)
	if err != nil {
		p.oauth.WritePushedAuthorizeError(ctx, c.Writer, ar, answer(err))
		return
	}
	client, ok := ar.GetClient().(*Client)
	if !ok {
		p.oauth.WritePushedAuthorizeError(ctx, c.Writer, ar, p.serverError(ctx, "par", errors.New("unexpected client type")))
		return
	}
	if client.Suspended() {
		p.oauth.WritePushedAuthorizeError(ctx, c.Writer, ar, suspendedError())
		return
	}
	if client.DPoP {
		c.Header("DPoP-Nonce", p.DPoPNonce())
	}
	terms, err := p.checkPAR(ctx, ar, client)
	if err != nil {
		p.oauth.WritePushedAuthorizeError(ctx, c.Writer, ar, answer(err))
		return
	}
	if err := p.parDPoP(c, client, ar.GetRequestForm()); err != nil {
		p.oauth.WritePushedAuthorizeError(ctx, c.Writer, ar, answer(err))
		return
	}
	if terms.replaces != nil {
		// The renewed authorization, its code and tokens belong to the same grant.
		ar.SetID(terms.replaces.ID)
	}
	resp, err := p.oauth.NewPushedAuthorizeResponse(ctx, ar, &Session{GrantID: ar.GetID(), Purpose: terms.purpose})
	if err != nil {
		p.oauth.WritePushedAuthorizeError(ctx, c.Writer, ar, answer(err))
		return
	}
	if terms.replaces == nil {
		err := p.consents.Create(ctx, &consent.Consent{
			ID: ar.GetID(), ClientID: client.ID, Scopes: ar.GetRequestedScopes(), Purpose: terms.purpose,
			HistoryDays: terms.policy.MaxHistoryDays, Duration: terms.duration, CreatedAt: p.now(),
		})
		if err != nil {
			// A request_uri without its consent must not stay redeemable.
			if derr := p.store.DeletePARSession(ctx, resp.GetRequestURI()); derr != nil {
				p.log.ErrorContext(ctx, "oauth: par cleanup", "error", derr)
			}
			p.oauth.WritePushedAuthorizeError(ctx, c.Writer, ar, p.serverError(ctx, "par: create consent", err))
			return
		}
	}
	p.emit(ctx, Event{Type: EventConsentRequested, ClientID: client.ID, GrantID: ar.GetID(),
		Purpose: terms.purpose, Scopes: ar.GetRequestedScopes()})
	p.oauth.WritePushedAuthorizeResponse(ctx, c.Writer, ar, resp)
}

// checkPAR applies consentgate's rules to an authenticated, fosite-valid
// pushed request. It normalises consent_duration in the request's form, so
// the value that was checked is the one the consent screen shows.
func (p *Provider) checkPAR(ctx context.Context, ar fosite.AuthorizeRequester, client *Client) (*parTerms, error) {
	form := ar.GetRequestForm()
	if form.Get("request") != "" {
		return nil, fosite.ErrInvalidRequest.WithHint("'request' objects are not supported; push the authorization parameters themselves.")
	}
	if err := checkOIDCRequest(form); err != nil {
		return nil, err
	}
	if !ar.GetResponseTypes().ExactOne("code") {
		return nil, fosite.ErrUnsupportedResponseType.WithHint("Only response_type=code is supported.")
	}
	// fosite lets loopback redirect URIs differ in port (RFC 8252); FAPI 2.0
	// wants an exact match with a registered URI, and an explicit one.
	if ru := form.Get("redirect_uri"); ru == "" || !slices.Contains(client.RedirectURIs, ru) {
		return nil, fosite.ErrInvalidRequest.WithHint("redirect_uri is required and must exactly match a registered redirect URI.")
	}
	if form.Get("code_challenge") == "" {
		return nil, fosite.ErrInvalidRequest.WithHint("code_challenge is required (PKCE).")
	}
	if form.Get("code_challenge_method") != "S256" {
		return nil, fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256; plain is not allowed.")
	}
	if !validCodeChallenge(form.Get("code_challenge")) {
		return nil, fosite.ErrInvalidRequest.WithHint("code_challenge must be 43 to 128 base64url characters " +
			"(RFC 7636 §4.2: BASE64URL(SHA256(code_verifier)) is 43).")
	}

	code := form.Get(paramPurpose)
	if code == "" {
		return nil, fosite.ErrInvalidRequest.WithHint("The purpose parameter is required.")
	}
	if purpose.IsProhibited(code) {
		p.emit(ctx, Event{Type: EventPurposeBlocked, Outcome: OutcomeDenied, Reason: "purpose_prohibited",
			ClientID: client.ID, Purpose: code, Scopes: ar.GetRequestedScopes()})
		return nil, fosite.ErrInvalidRequest.WithHintf("The purpose %q is prohibited.", code)
	}
	pol, known := p.purposes.Lookup(code)
	if !known || !client.HasPurpose(code) {
		return nil, fosite.ErrInvalidRequest.WithHintf("The client is not registered for the purpose %q.", code)
	}
	data := 0
	for _, s := range ar.GetRequestedScopes() {
		if !pol.AllowsScope(s) {
			return nil, fosite.ErrInvalidScope.WithHintf("The scope %q is not allowed for the purpose %q.", s, code)
		}
		if slices.Contains(purpose.DataScopes, s) { // not offline_access, openid, profile, email
			data++
		}
	}
	if data == 0 {
		return nil, fosite.ErrInvalidScope.WithHint("Request at least one data scope.")
	}
	terms := &parTerms{purpose: code, policy: pol, duration: pol.MaxDuration()}
	if v := form.Get(paramConsentDuration); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return nil, fosite.ErrInvalidRequest.WithHint("consent_duration must be a positive whole number of seconds.")
		}
		if n < int64(terms.duration/time.Second) {
			terms.duration = time.Duration(n) * time.Second
		}
	}
	form.Set(paramConsentDuration, strconv.FormatInt(int64(terms.duration/time.Second), 10))

	var err error
	if terms.replaces, err = p.checkGrantAction(ctx, form.Get(paramGrantAction), form.Get(paramGrantID), client); err != nil {
		return nil, err
	}
	return terms, nil
}

// checkGrantAction validates grant management (FAPI Grant Management):
// only "replace" of one of the client's own grants that is still authorized
// or has expired. A revoked grant stays revoked: the customer ended it.
func (p *Provider) checkGrantAction(ctx context.Context, action, grantID string, client *Client) (*consent.Consent, error) {
	switch action {
	case "":
		if grantID != "" {
			return nil, fosite.ErrInvalidRequest.WithHint("grant_id needs grant_management_action=replace.")
		}
		return nil, nil
	case grantActionReplace:
	default:
		return nil, fosite.ErrInvalidRequest.WithHintf("grant_management_action %q is not supported; only replace is.", action)
	}
	if grantID == "" {
		return nil, fosite.ErrInvalidRequest.WithHint("grant_management_action=replace needs grant_id.")
	}
	existing, err := p.consents.Get(ctx, grantID)
	if errors.Is(err, consent.ErrNotFound) || (err == nil && existing.ClientID != client.ID) {
		return nil, fosite.ErrInvalidRequest.WithHint("grant_id names no grant of this client.")
	} else if err != nil {
		return nil, p.serverError(ctx, "par: load grant", err)
	}
	if st := existing.StatusAt(p.now()); st != consent.Authorized && st != consent.Expired {
		return nil, fosite.ErrInvalidRequest.WithHintf("The grant is %s and cannot be replaced.", st)
	}
	return existing, nil
}

// parDPoP binds the authorization code to a DPoP key (RFC 9449 §10) when
// the pushed request names one: by a DPoP proof header, by the dpop_jkt
// parameter, or both (then they must agree). The bound key is kept in the
// request as dpop_jkt; the token request's proof must be of that key.
// Binding at PAR is optional; clients not registered for DPoP may not.
func (p *Provider) parDPoP(c *gin.Context, client *Client, form url.Values) error {
	r := c.Request
	proof, param := len(r.Header.Values("DPoP")) > 0, form.Get(ParamDPoPJKT)
	if !client.DPoP {
		if proof || param != "" {
			return oauthError(badProof("This client is not registered for DPoP; send neither a DPoP proof nor dpop_jkt."))
		}
		return nil
	}
	if !proof {
		if param != "" && !isThumbprint(param) {
			return fosite.ErrInvalidRequest.WithHint("dpop_jkt must be the base64url SHA-256 JWK thumbprint (RFC 7638) of the DPoP key.")
		}
		return nil
	}
	jkt, err := p.checkDPoP(r.Context(), r, p.issuer+"/oauth2/par", "")
	if _, bad := err.(*dpopError); err != nil && !bad {
		return p.serverError(r.Context(), "par: dpop", err)
	} else if err != nil {
		return oauthError(err)
	}
	if param != "" && param != jkt {
		return oauthError(badProof("dpop_jkt does not match the key of the DPoP proof."))
	}
	form.Set(ParamDPoPJKT, jkt)
	return nil
}

// isThumbprint reports whether s looks like a base64url SHA-256 thumbprint.
func isThumbprint(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// validCodeChallenge reports whether s has RFC 7636's form: 43 to 128
// characters of the unreserved set (an S256 challenge is base64url, 43).
func validCodeChallenge(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}
