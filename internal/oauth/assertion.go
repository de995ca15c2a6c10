package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"
)

// private_key_jwt client authentication (RFC 7523 §2.2, OIDC Core §9,
// FAPI 2.0 §5.3.2.1), implemented on go-jose rather than through fosite so
// that the algorithm list, the audience per endpoint and the clock are ours.

const (
	assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" // #nosec G101 -- an RFC 7523 URN, not a credential
	// assertionMaxLifetime bounds how far ahead exp may be: an assertion is
	// made for one request, and its jti is kept until exp.
	assertionMaxLifetime = 5 * time.Minute
	// jwtFutureSkew is how far ahead of our clock iat and nbf may be: FAPI
	// 2.0 §5.3.2.1 asks servers to accept up to 10 s of client clock skew.
	jwtFutureSkew = 10 * time.Second
	// maxJWTBytes bounds a client assertion or DPoP proof before parsing.
	maxJWTBytes  = 8 << 10
	maxJTILength = 256
)

// assertionAudiences are the aud values an assertion sent to r may carry:
// the issuer (FAPI 2.0's choice), the token endpoint (SPEC §2, RFC 7523)
// and the URL of the endpoint it is sent to.
func (p *Provider) assertionAudiences(r *http.Request) []string {
	return []string{p.issuer, p.issuer + "/oauth2/token", p.endpointURL(r)}
}

// endpointURL is the public URL of the endpoint r was sent to, built from
// the configured issuer and never from the Host header, so a proxy or a
// forged Host cannot change what a signed audience or htu must match.
// Grant management counts as one endpoint, whatever the grant id.
func (p *Provider) endpointURL(r *http.Request) string {
	path := r.URL.Path
	if strings.HasPrefix(path, "/oauth2/grants/") {
		path = "/oauth2/grants"
	}
	return p.issuer + path
}

func invalidAssertion(hint string) error {
	return fosite.ErrInvalidClient.WithHint(hint)
}

// authenticatePrivateKeyJWT authenticates a client by its signed assertion.
// Each check answers invalid_client with a hint saying which rule failed;
// the jti is spent only after every other check passed.
func (p *Provider) authenticatePrivateKeyJWT(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	if form.Get("client_assertion_type") != assertionTypeJWTBearer {
		return nil, invalidAssertion("client_assertion_type must be " + assertionTypeJWTBearer + ".")
	}
	raw := form.Get("client_assertion")
	if raw == "" || len(raw) > maxJWTBytes {
		return nil, invalidAssertion("client_assertion must be a signed JWT.")
	}
	tok, err := jwt.ParseSigned(raw, signingAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return nil, invalidAssertion("client_assertion must be a compact JWS signed with one of " + strings.Join(SigningAlgs(), ", ") + ".")
	}
	var claims jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
		return nil, invalidAssertion("The client assertion's claims are not valid JSON.")
	}
	id := claims.Issuer
	if id == "" || claims.Subject != id {
		return nil, invalidAssertion("The client assertion's iss and sub must both be the client_id.")
	}
	if fid := form.Get("client_id"); fid != "" && fid != id {
		return nil, invalidAssertion("The client_id parameter does not match the client assertion.")
	}
	c, err := p.store.client(ctx, id)
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, invalidAssertion("Client authentication failed.")
	} else if err != nil {
		return nil, p.serverError(ctx, "client lookup", err)
	}
	if c.AuthMethod != AuthPrivateKeyJWT {
		return nil, fosite.ErrInvalidClient.WithHintf("This client is registered for %s, not private_key_jwt.", c.AuthMethod)
	}
	h := tok.Headers[0]
	keys, err := p.verificationKeys(ctx, c, h.KeyID, h.Algorithm)
	if err != nil {
		p.log.WarnContext(ctx, "oauth: client keys unavailable", "client_id", id, "error", err)
		return nil, invalidAssertion("The client's keys could not be loaded.")
	}
	verified := false
	for _, k := range keys {
		if err := tok.Claims(k.Key, &claims); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, invalidAssertion("The client assertion's signature does not verify with any of the client's registered keys.")
	}
	if err := p.checkAssertionClaims(r, claims); err != nil {
		return nil, err
	}
	exp := claims.Expiry.Time()
	switch err := p.store.SetClientAssertionJWT(ctx, id+"\x00"+claims.ID, exp.Add(jwtFutureSkew)); {
	case errors.Is(err, fosite.ErrJTIKnown):
		return nil, invalidAssertion("The client assertion was already used (jti); sign a new one for every request.")
	case err != nil:
		return nil, p.serverError(ctx, "client assertion jti", err)
	}
	return c, nil
}

// checkAssertionClaims applies the time, audience and jti rules to the
// verified claims.
func (p *Provider) checkAssertionClaims(r *http.Request, claims jwt.Claims) error {
	now := p.now()
	switch {
	case claims.Expiry == nil:
		return invalidAssertion("The client assertion must carry exp.")
	case !now.Before(claims.Expiry.Time()):
		return invalidAssertion("The client assertion has expired.")
	case claims.Expiry.Time().After(now.Add(assertionMaxLifetime + jwtFutureSkew)):
		return invalidAssertion("The client assertion's exp is too far ahead; it may live at most 5 minutes.")
	case claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(jwtFutureSkew)):
		return invalidAssertion("The client assertion's iat is in the future.")
	case claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(jwtFutureSkew)):
		return invalidAssertion("The client assertion is not valid yet (nbf).")
	case claims.ID == "" || len(claims.ID) > maxJTILength:
		return invalidAssertion("The client assertion must carry a unique jti.")
	}
	for _, aud := range p.assertionAudiences(r) {
		if claims.Audience.Contains(aud) {
			return nil
		}
	}
	return invalidAssertion("The client assertion's aud must be the issuer (" + p.issuer + ").")
}
