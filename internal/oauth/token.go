package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/ory/fosite"

	"github.com/consentgate/consentgate/internal/consent"
)

// handleToken is POST /oauth2/token: authorization_code (PKCE S256),
// refresh_token (rotated on every use) and client_credentials. Errors are
// RFC 6749 §5.2 JSON through fosite.
func (p *Provider) handleToken(c *gin.Context) {
	r := limitBody(c)
	ctx := r.Context()
	w := c.Writer
	if err := checkFormBody(r); err != nil {
		p.writeTokenError(ctx, w, nil, err)
		return
	}
	if err := r.ParseForm(); err != nil {
		p.writeTokenError(ctx, w, nil, fosite.ErrInvalidRequest.WithHint("The request body could not be parsed."))
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials:
	default:
		p.writeTokenError(ctx, w, nil, fosite.ErrUnsupportedGrantType.WithHintf("The grant type %q is not supported.", gt))
		return
	}
	f, ar, resp, remembered, err := p.issueToken(ctx, w, r)
	if err != nil && remembered {
		// Served from a remembered client row, which never refuses
		// (clientcache.go): serve the request again on a fresh read.
		fresh := withClientCache(withClientRow(ctx, nil), cacheRefresh)
		f, ar, resp, _, err = p.issueToken(fresh, w, r)
	}
	if err != nil {
		p.writeTokenError(ctx, w, ar, err)
		return
	}
	f.WriteAccessResponse(ctx, w, ar, resp)
}

// issueToken serves a token request whose form is parsed: the fosite
// instance that served it, with its request and response, or the error to
// answer with ar as far as it got. remembered reports that the client came
// from the node's client cache.
func (p *Provider) issueToken(ctx context.Context, w http.ResponseWriter, r *http.Request) (f fosite.OAuth2Provider, ar fosite.AccessRequester, resp fosite.AccessResponder, remembered bool, err error) {
	// The client and its DPoP proof are checked before fosite sees the
	// request: fosite spends the PKCE verifier inside NewAccessRequest, and
	// a client told use_dpop_nonce must be able to retry with the same code.
	client, jkt, err := p.tokenClient(ctx, w, r)
	if client != nil {
		remembered = client.remembered
	}
	if err != nil {
		return p.oauth, nil, nil, remembered, err
	}
	ctx = withClient(ctx, client)
	// Note whose code or refresh token this is before fosite looks: on a
	// replay fosite deletes and revokes, and reports only "invalid_grant".
	prior, err := p.presentedGrant(ctx, r.PostForm.Get("grant_type"), r.PostForm)
	if err != nil {
		return p.oauth, nil, nil, remembered, p.serverError(ctx, "token: lookup", err)
	}
	f = p.oauth
	if r.PostForm.Get("grant_type") == GrantClientCredentials {
		f = p.credentials // the one handler this grant needs
	}
	ar, err = f.NewAccessRequest(ctx, r, &Session{})
	if err != nil {
		return f, ar, nil, remembered, p.replayed(ctx, prior, r.PostForm.Get("grant_type"), r.PostForm, err)
	}
	sess, _ := ar.GetSession().(*Session)
	if sess == nil {
		return f, ar, nil, remembered, p.serverError(ctx, "token", errors.New("unexpected session type"))
	}
	if err := bindTokens(sess, client, jkt); err != nil {
		return f, ar, nil, remembered, err
	}
	exactLifetime(ar, sess)
	var issued *issueEvent // the token.issued event committed with the token row, if any
	if ar.GetGrantTypes().ExactOne(GrantClientCredentials) {
		// A client_credentials request starts a grant of its own: its id,
		// the token row's request_id, is time-ordered (UUIDv7) rather than
		// fosite's random one, so that oauth_tokens_request_idx grows at its
		// edge instead of touching a random page per token.
		if req, ok := ar.(*fosite.AccessRequest); ok {
			req.ID = uuid.Must(uuid.NewV7()).String()
		}
		// RFC 6749 §3.3: no scope asked means the client's registered ones.
		scopes := ar.GetRequestedScopes()
		if len(scopes) == 0 {
			scopes = ar.GetClient().GetScopes()
		}
		for _, s := range scopes {
			ar.GrantScope(s)
		}
		ctx, issued = p.withIssueEvent(ctx, Event{Type: EventTokenIssued, ClientID: ar.GetClient().GetID(),
			CustomerID: sess.Subject, GrantID: sess.GrantID, Purpose: sess.Purpose, Scopes: ar.GetGrantedScopes()})
	} else if err := p.checkGrantLive(ctx, ar, sess); err != nil {
		return f, ar, nil, remembered, err
	}
	resp, err = f.NewAccessResponse(ctx, ar)
	if err != nil {
		if errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
			// Lost the race for the code to a concurrent redemption, which
			// has committed by now: a replay, so end what it issued.
			p.revokeReplayed(ctx, ar.GetID(), ar.GetClient().GetID(), sess.Subject, "code_replay")
			err = fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
		} else if ar.GetGrantTypes().ExactOne(GrantRefreshToken) &&
			(errors.Is(err, fosite.ErrSerializationFailure) || errors.Is(err, fosite.ErrNotFound)) {
			err = p.lostRotation(ctx, ar, sess, err)
		}
		return f, ar, nil, remembered, err
	}
	ev := Event{Type: EventTokenIssued, ClientID: ar.GetClient().GetID(), CustomerID: sess.Subject,
		GrantID: sess.GrantID, Purpose: sess.Purpose, Scopes: ar.GetGrantedScopes()}
	if sess.GrantID != "" {
		resp.SetExtra("grant_id", sess.GrantID)
	}
	if sess.JKT != "" {
		resp.SetTokenType("DPoP")
	}
	if ar.GetGrantTypes().ExactOne(GrantRefreshToken) {
		ev.Type = EventTokenRefreshed
	}
	if issued == nil || !issued.recorded {
		p.emit(ctx, ev)
	}
	return f, ar, resp, remembered, nil
}

// tokenClient authenticates the client of a token request and checks its
// DPoP proof: required of clients registered for DPoP (the answer then
// carries a fresh DPoP-Nonce), refused from the others. jkt is the proof
// key's thumbprint, "" without DPoP.
func (p *Provider) tokenClient(ctx context.Context, w http.ResponseWriter, r *http.Request) (c *Client, jkt string, err error) {
	fc, err := p.oauth.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		return nil, "", err
	}
	c, ok := fc.(*Client)
	if !ok {
		return nil, "", p.serverError(ctx, "token", errors.New("unexpected client type"))
	}
	if c.Suspended() {
		return nil, "", suspendedError()
	}
	proof := len(r.Header.Values("DPoP")) > 0
	switch {
	case !c.DPoP && proof:
		return nil, "", oauthError(badProof("This client is not registered for DPoP; send no DPoP proof."))
	case !c.DPoP:
		return c, "", nil
	}
	w.Header().Set("DPoP-Nonce", p.DPoPNonce())
	if !proof {
		return nil, "", oauthError(badProof("This client is registered for DPoP: send a DPoP proof with every token request."))
	}
	jkt, err = p.checkDPoP(ctx, r, p.issuer+"/oauth2/token", "")
	if _, bad := err.(*dpopError); err != nil && !bad {
		return nil, "", p.serverError(ctx, "token: dpop", err)
	}
	return c, jkt, oauthError(err)
}

// bindTokens binds the tokens about to be issued to the DPoP key jkt. A
// code bound at PAR (dpop_jkt) and a refresh token bound at issue only
// work with a proof of the same key; a DPoP client's tokens, refresh tokens
// included, are bound to the key of this request's proof.
func bindTokens(sess *Session, c *Client, jkt string) error {
	if sess.JKT != "" && sess.JKT != jkt {
		return oauthError(badProof("The DPoP proof is signed by another key than the one this grant is bound to."))
	}
	if c.DPoP {
		sess.JKT = jkt
	}
	return nil
}

// exactLifetime stamps the request with the token's issue time, a whole
// second, and the access token's expiry exactly accessTokenLifespan later.
// fosite stamps the expiry from its own reading of the clock, rounded to
// the second, while iat (the request's time) is truncated: introspection
// reported exp − iat = 301 s for a 300 s token. Both come from one reading
// now; the consent's expiry may still cap the token (checkGrantLive).
func exactLifetime(ar fosite.AccessRequester, sess *Session) {
	issued := time.Now().UTC().Truncate(time.Second) // fosite's clock: the wall clock
	if r, ok := ar.(*fosite.AccessRequest); ok {
		r.RequestedAt = issued
	}
	sess.SetExpiresAt(fosite.AccessToken, issued.Add(accessTokenLifespan))
}

// checkGrantLive refuses codes and refresh tokens whose consent is no
// longer authorized, and caps every new token at the consent's expiry.
func (p *Provider) checkGrantLive(ctx context.Context, ar fosite.AccessRequester, sess *Session) error {
	cons, err := p.consents.Get(ctx, ar.GetID())
	if errors.Is(err, consent.ErrNotFound) {
		return fosite.ErrInvalidGrant.WithHint("The grant does not exist.")
	} else if err != nil {
		return p.serverError(ctx, "token: load consent", errors.Join(ErrStorage, err))
	}
	if !cons.Active(p.now()) || cons.ClientID != ar.GetClient().GetID() || cons.ExpiresAt == nil {
		return fosite.ErrInvalidGrant.WithHint("The grant is no longer authorized.")
	}
	// fosite stamps and checks lifetimes on the wall clock: cap in its terms.
	sess.capExpiry(cons.ExpiresAt.Add(-clockSkew(p.now)))
	return nil
}

// presentedGrant looks up the grant of the code or refresh token in a token
// request, if it is one this server issued.
func (p *Provider) presentedGrant(ctx context.Context, grantType string, form url.Values) (*tokenOwner, error) {
	get := form.Get
	switch grantType {
	case GrantRefreshToken:
		if t := get("refresh_token"); t != "" {
			return p.store.lookupToken(ctx, kindRefresh, p.strategy.RefreshTokenSignature(ctx, t))
		}
	case GrantAuthorizationCode:
		if t := get("code"); t != "" {
			return p.store.lookupToken(ctx, kindCode, p.strategy.AuthorizeCodeSignature(ctx, t))
		}
	}
	return nil, nil
}

// replayed reacts to a failed token request that presented a used code or
// refresh token, and returns the error to answer. fosite has already
// revoked the grant's tokens; a reused refresh token also ends the grant
// itself (SPEC §2).
//
// fosite's own revocation of a reused refresh token's family can collide
// with a concurrent request on the same family (its rotation, or another
// reuse being handled); fosite then answers invalid_request "retry". A
// retry can only find the token used, so the reuse is handled here and
// answered as what it is: invalid_grant, with the grant ended.
func (p *Provider) replayed(ctx context.Context, prior *tokenOwner, grantType string, form url.Values, err error) error {
	if prior == nil {
		return err
	}
	refresh := grantType == GrantRefreshToken
	if refresh && prior.Active && errors.Is(err, fosite.ErrSerializationFailure) {
		// Active when looked up, rotated by a concurrent request since?
		now, lerr := p.store.lookupToken(ctx, kindRefresh, p.strategy.RefreshTokenSignature(ctx, form.Get("refresh_token")))
		if lerr != nil {
			return p.serverError(ctx, "token: refresh race lookup", lerr)
		}
		if now != nil && now.Active {
			return err // a plain database conflict: retrying may succeed
		}
	} else if prior.Active {
		return err
	}
	switch {
	case refresh && (errors.Is(err, fosite.ErrInactiveToken) || errors.Is(err, fosite.ErrSerializationFailure)):
		p.log.WarnContext(ctx, "oauth: refresh token reuse; grant revoked", "grant_id", prior.RequestID, "client_id", prior.ClientID)
		if rerr := p.endGrant(ctx, prior.RequestID, prior.ClientID, prior.Subject, "reuse_detected"); rerr != nil {
			p.log.ErrorContext(ctx, "oauth: revoke reused grant", "grant_id", prior.RequestID, "error", rerr)
		}
		return fosite.ErrInvalidGrant.WithHint("The refresh token was already used.")
	case grantType == GrantAuthorizationCode && errors.Is(err, fosite.ErrInvalidGrant):
		p.log.WarnContext(ctx, "oauth: authorization code replay; tokens revoked", "grant_id", prior.RequestID, "client_id", prior.ClientID)
		p.emit(ctx, Event{Type: EventTokenRevoked, Reason: "code_replay", ClientID: prior.ClientID,
			CustomerID: prior.Subject, GrantID: prior.RequestID})
	case refresh && errors.Is(err, fosite.ErrInvalidGrant):
		return p.endedGrantError(ctx, prior.RequestID, err)
	}
	return err
}

// endedGrantError says why a refresh token of an ended grant is refused,
// where fosite only says "malformed or not valid": the grant was revoked
// after refresh token reuse, or by whom, or it expired. Anything else keeps
// fosite's error.
func (p *Provider) endedGrantError(ctx context.Context, grantID string, err error) error {
	cons, cerr := p.consents.Get(ctx, grantID)
	if cerr != nil {
		return err
	}
	switch st := cons.StatusAt(p.now()); {
	case st == consent.Revoked && cons.RevokedBy == "reuse_detected":
		return fosite.ErrInvalidGrant.WithHint("The grant was revoked because one of its refresh tokens was used twice " +
			"(refresh token reuse, RFC 9700 §4.14.2); every token of the grant is void and the customer must authorize again.")
	case st == consent.Revoked:
		return fosite.ErrInvalidGrant.WithHintf("The grant of this refresh token was revoked (by the %s); the customer must authorize again.",
			cons.RevokedBy)
	case st == consent.Expired:
		return fosite.ErrInvalidGrant.WithHint("The grant of this refresh token expired; the customer must authorize again.")
	}
	return err
}

// revokeReplayed ends every token of a grant after a code replay.
func (p *Provider) revokeReplayed(ctx context.Context, grantID, clientID, customerID, reason string) {
	if err := p.store.revokeGrantTokens(ctx, grantID); err != nil {
		p.log.ErrorContext(ctx, "oauth: revoke after replay", "grant_id", grantID, "error", err)
		return
	}
	p.emit(ctx, Event{Type: EventTokenRevoked, Reason: reason, ClientID: clientID, CustomerID: customerID, GrantID: grantID})
}

// writeTokenError answers a token request with err (RFC 6749 §5.2) in
// the documented codes, a database failure as 503 temporarily_unavailable.
func (p *Provider) writeTokenError(ctx context.Context, w http.ResponseWriter, ar fosite.AccessRequester, err error) {
	p.oauth.WriteAccessError(ctx, w, ar, answer(err))
}

// lostRotation answers a refresh request that lost the rotation race: a
// concurrent request presented the same refresh token and rotated it first
// (the token is now inactive), or found it rotated and, detecting reuse,
// deleted it (the token is gone). Two uses of one refresh token are reuse
// (SPEC §2) whichever arrived first, and one of the two users may be a
// thief: the grant ends, as it would had this request come a moment later.
// Only a database conflict with the token still active is left for the
// client to retry.
func (p *Provider) lostRotation(ctx context.Context, ar fosite.AccessRequester, sess *Session, err error) error {
	sig := p.strategy.RefreshTokenSignature(ctx, ar.GetRequestForm().Get("refresh_token"))
	tok, lerr := p.store.lookupToken(ctx, kindRefresh, sig)
	switch {
	case lerr != nil:
		return p.serverError(ctx, "token: refresh race lookup", lerr)
	case tok != nil && tok.Active:
		return err
	}
	grantID, clientID := ar.GetID(), ar.GetClient().GetID()
	p.log.WarnContext(ctx, "oauth: concurrent refresh token reuse; grant revoked", "grant_id", grantID, "client_id", clientID)
	if rerr := p.endGrant(ctx, grantID, clientID, sess.Subject, "reuse_detected"); rerr != nil {
		p.log.ErrorContext(ctx, "oauth: revoke reused grant", "grant_id", grantID, "error", rerr)
	}
	return fosite.ErrInvalidGrant.WithHint("The refresh token was already used.")
}
