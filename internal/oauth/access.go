package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/consentgate/consentgate/internal/consent"
)

// Access is what a valid access token lets its bearer do.
type Access struct {
	GrantID, ClientID, CustomerID string // CustomerID "" for client_credentials tokens
	Scopes                        []string
	Purpose                       string           // the consent's purpose ("" for client_credentials)
	Consent                       *consent.Consent // nil for client_credentials
	TokenExpiresAt                time.Time
}

// TokenError is an RFC 6750 (Bearer) or RFC 9449 §7.1 (DPoP) token error.
type TokenError struct {
	Status      int
	Code        string // invalid_token | insufficient_scope | invalid_dpop_proof | use_dpop_nonce
	Description string
	// Scheme is the challenge's auth scheme: "" (Bearer) or "DPoP".
	Scheme string
	// Nonce is a fresh DPoP nonce for the DPoP-Nonce header ("" for none).
	Nonce string
	// Algs are the DPoP proof algorithms accepted, for the challenge.
	Algs []string
}

// Error implements error.
func (e *TokenError) Error() string { return e.Code + ": " + e.Description }

// SchemeDPoP is the Authorization scheme of DPoP-bound access tokens.
const SchemeDPoP = "DPoP"

func invalidToken(desc string) *TokenError {
	return &TokenError{Status: http.StatusUnauthorized, Code: "invalid_token", Description: desc}
}

// dpopTokenError is a 401 with a DPoP challenge and a fresh nonce.
func (p *Provider) dpopTokenError(code, desc string) *TokenError {
	return &TokenError{Status: http.StatusUnauthorized, Code: code, Description: desc,
		Scheme: SchemeDPoP, Nonce: p.DPoPNonce(), Algs: SigningAlgs()}
}

// AuthenticateAccess authenticates a data API call by its access token.
// Only the Authorization header counts (never query or body), only access
// tokens (never refresh tokens), and the consent is read from the database
// on every call (in the token's own query), so a revocation on any node
// takes effect at once.
//
// A DPoP-bound token (RFC 9449) is accepted only with the DPoP scheme and a
// proof, for this method and URL, made by the key the token is bound to and
// naming this token (ath): a stolen token is useless without the key. A
// bound token sent as Bearer, and an unbound one sent as DPoP, are refused.
//
// Every token problem is a *TokenError with status 401; a failure to read
// the consent or record the proof is returned as is (a 5xx, not the
// client's fault).
func (p *Provider) AuthenticateAccess(ctx context.Context, r *http.Request) (*Access, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	dpop := strings.EqualFold(scheme, SchemeDPoP)
	if !ok || !(dpop || strings.EqualFold(scheme, "Bearer")) || token == "" || strings.ContainsAny(token, " \t") {
		return nil, invalidToken("An access token is required in the Authorization header (Bearer, or DPoP for DPoP-bound tokens).")
	}
	unknown := func() error {
		const desc = "The access token is unknown, expired or revoked."
		if dpop {
			return p.dpopTokenError("invalid_token", desc)
		}
		return invalidToken(desc)
	}
	tu, ar, err := p.oauth.IntrospectToken(ctx, token, fosite.AccessToken, &Session{})
	if errors.Is(err, ErrStorage) {
		return nil, fmt.Errorf("oauth.AuthenticateAccess: %w", err)
	}
	if err != nil || tu != fosite.AccessToken {
		return nil, unknown()
	}
	sess, _ := ar.GetSession().(*Session)
	if sess == nil {
		return nil, unknown()
	}
	// The client came with the token's own row: a suspension made on any
	// node binds this request.
	if c, ok := ar.GetClient().(*Client); !ok || c.Suspended() {
		return nil, invalidToken("The bank has suspended this app's access; its tokens are refused until it is reinstated.")
	}
	if err := p.checkSenderConstraint(ctx, r, token, dpop, sess.JKT); err != nil {
		return nil, err
	}
	a := &Access{
		GrantID: sess.GrantID, ClientID: ar.GetClient().GetID(), CustomerID: sess.Subject,
		Scopes: slices.Clone(ar.GetGrantedScopes()), TokenExpiresAt: sess.GetExpiresAt(fosite.AccessToken),
	}
	if sess.GrantID == "" {
		return a, nil // client_credentials: no consent behind it
	}
	// The storage read the consent in the same statement as the token.
	c := sess.consent
	if c == nil || c.ID != sess.GrantID {
		return nil, invalidToken("The grant of this access token does not exist.")
	}
	if !c.Active(p.now()) || c.ClientID != a.ClientID || c.CustomerID != a.CustomerID {
		return nil, invalidToken("The grant of this access token is no longer authorized.")
	}
	a.Consent, a.Purpose = c, c.Purpose
	return a, nil
}

// checkSenderConstraint applies the token's DPoP binding (jkt, "" for a
// bearer token) to a request that used the DPoP scheme or not.
func (p *Provider) checkSenderConstraint(ctx context.Context, r *http.Request, token string, dpop bool, jkt string) error {
	switch {
	case jkt == "" && dpop:
		return invalidToken("This access token is not DPoP-bound; send it with the Bearer scheme.")
	case jkt == "":
		return nil
	case !dpop:
		return p.dpopTokenError("invalid_token", "This access token is DPoP-bound: send it as 'Authorization: DPoP <token>' with a DPoP proof.")
	}
	// htu is built from the issuer, never from the Host header.
	got, err := p.checkDPoP(ctx, r, p.issuer+r.URL.Path, token)
	var de *dpopError
	switch {
	case errors.As(err, &de):
		return p.dpopTokenError(de.code, de.desc)
	case err != nil:
		return fmt.Errorf("oauth.AuthenticateAccess: %w", err)
	case got != jkt:
		return p.dpopTokenError(ErrCodeInvalidDPoPProof, "The DPoP proof is signed by another key than the one this access token is bound to.")
	}
	return nil
}
