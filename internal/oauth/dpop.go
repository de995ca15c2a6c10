package oauth

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
)

// DPoP (RFC 9449): proof checking, server nonces and the errors both the
// authorization server and the data API answer with. Binding lives where
// tokens are made: par.go (dpop_jkt), token.go and access.go.

const (
	dpopProofType = "dpop+jwt"
	// dpopMaxAge is how old (by iat) a proof may be. The nonce, required
	// always, is what really bounds a proof's life; iat stops a proof made
	// with a valid nonce from being kept for later.
	dpopMaxAge = 60 * time.Second
	// dpopNonceStep is the life of one server nonce; a nonce is accepted in
	// its step and the next, so a client meets use_dpop_nonce at most once
	// per step.
	dpopNonceStep = 5 * time.Minute
	// ParamDPoPJKT is the PAR parameter that binds the authorization code to
	// a DPoP key (RFC 9449 §10).
	ParamDPoPJKT = "dpop_jkt"
)

// DPoP error codes (RFC 9449 §12.2).
const (
	ErrCodeInvalidDPoPProof = "invalid_dpop_proof"
	ErrCodeUseDPoPNonce     = "use_dpop_nonce"
)

// dpopError is a refused proof: its code is invalid_dpop_proof or
// use_dpop_nonce, answered as 400 by the authorization server and 401 with
// a DPoP challenge by the data API.
type dpopError struct {
	code, desc string
}

func (e *dpopError) Error() string { return e.code + ": " + e.desc }

func badProof(desc string) *dpopError { return &dpopError{code: ErrCodeInvalidDPoPProof, desc: desc} }

// oauthError turns a refused proof into the token endpoint's RFC 6749 error.
func oauthError(err error) error {
	if e, ok := err.(*dpopError); ok {
		return &fosite.RFC6749Error{ErrorField: e.code, DescriptionField: e.desc, CodeField: http.StatusBadRequest}
	}
	return err
}

// dpopClaims are the claims of a proof (RFC 9449 §4.2).
type dpopClaims struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	IAT   json.Number     `json:"iat"`
	ATH   string          `json:"ath"`
	Nonce string          `json:"nonce"`
	CNF   json.RawMessage `json:"cnf"` // never allowed in a proof
}

// checkDPoP verifies the single DPoP proof header of r for r's method and
// the URL htu (a server-built URL, never the Host header) and returns the
// proof key's thumbprint. accessToken is "" at the authorization server and
// the presented token at the data API (then ath must match it). The proof's
// jti is spent last, after every other check passed, on every node at once.
// A failure to record the jti is returned as is (a 5xx, not a bad proof).
func (p *Provider) checkDPoP(ctx context.Context, r *http.Request, htu, accessToken string) (string, error) {
	vals := r.Header.Values("DPoP")
	if len(vals) != 1 || vals[0] == "" {
		return "", badProof("Send exactly one DPoP proof in the DPoP header.")
	}
	if len(vals[0]) > maxJWTBytes {
		return "", badProof("The DPoP proof is too large.")
	}
	jws, err := jose.ParseSignedCompact(vals[0], signingAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return "", badProof("The DPoP proof must be a compact JWS signed with one of " + strings.Join(SigningAlgs(), ", ") + ".")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != dpopProofType {
		return "", badProof("The DPoP proof's typ header must be dpop+jwt.")
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.IsPublic() || !jwk.Valid() {
		return "", badProof("The DPoP proof's jwk header must be the public key that signed it.")
	}
	if alg, ok := keyAlg(jwk.Key); !ok || string(alg) != h.Algorithm {
		return "", badProof("The DPoP proof's alg does not fit its key (PS256: RSA ≥ 2048 bits, ES256: P-256, EdDSA: Ed25519).")
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return "", badProof("The DPoP proof's signature does not verify with its jwk.")
	}
	var c dpopClaims
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return "", badProof("The DPoP proof's claims are not valid JSON.")
	}
	if err := p.checkDPoPClaims(r, c, htu, accessToken); err != nil {
		return "", err
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", badProof("The DPoP proof's key has no thumbprint.")
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	iat, _ := c.IAT.Float64()
	until := time.Unix(int64(iat), 0).Add(dpopMaxAge + jwtFutureSkew)
	fresh, err := p.store.spendDPoPProof(ctx, jkt+"\x00"+c.JTI, until)
	if err != nil {
		return "", err
	}
	if !fresh {
		return "", badProof("The DPoP proof was already used (jti); make a new proof for every request.")
	}
	return jkt, nil
}

// checkDPoPClaims applies RFC 9449 §4.3 to a proof's verified claims.
func (p *Provider) checkDPoPClaims(r *http.Request, c dpopClaims, htu, accessToken string) error {
	now := p.now()
	iat, err := c.IAT.Float64()
	switch {
	case c.JTI == "" || len(c.JTI) > maxJTILength:
		return badProof("The DPoP proof must carry a unique jti.")
	case c.HTM != r.Method:
		return badProof("The DPoP proof's htm must be the request method, " + r.Method + ".")
	case !sameHTU(c.HTU, htu):
		return badProof("The DPoP proof's htu must be " + htu + " (no query or fragment).")
	case err != nil || c.IAT == "":
		return badProof("The DPoP proof must carry iat.")
	case time.Unix(int64(iat), 0).After(now.Add(jwtFutureSkew)):
		return badProof("The DPoP proof's iat is in the future.")
	case now.Sub(time.Unix(int64(iat), 0)) > dpopMaxAge:
		return badProof("The DPoP proof is too old (iat); make a new proof for every request.")
	case len(c.CNF) > 0:
		return badProof("A DPoP proof carries no cnf claim.")
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		if !hmac.Equal([]byte(c.ATH), []byte(base64.RawURLEncoding.EncodeToString(sum[:]))) {
			return badProof("The DPoP proof's ath must be the hash of the access token it is sent with.")
		}
	} else if c.ATH != "" {
		return badProof("A DPoP proof to the authorization server carries no ath.")
	}
	if c.Nonce == "" {
		return &dpopError{code: ErrCodeUseDPoPNonce, desc: "A server-provided nonce is required in the DPoP proof; use the one in the DPoP-Nonce header."}
	}
	if !p.validNonce(c.Nonce) {
		return &dpopError{code: ErrCodeUseDPoPNonce, desc: "The DPoP nonce is stale or unknown; use the one in the DPoP-Nonce header."}
	}
	return nil
}

// DPoPNonce returns the server's current DPoP nonce. Nonces are stateless,
// an HMAC of the time step under a key derived from the server secret, so
// every node issues and accepts every other node's nonces.
func (p *Provider) DPoPNonce() string {
	return p.nonceAt(p.now().Unix() / int64(dpopNonceStep/time.Second))
}

func (p *Provider) nonceAt(step int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(step)) // #nosec G115 -- a time step, never negative; only its bytes are used
	m := hmac.New(sha256.New, p.nonceKey)
	m.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(append(b[:], m.Sum(nil)[:16]...))
}

// validNonce accepts the nonce of the current time step and the previous one.
func (p *Provider) validNonce(n string) bool {
	raw, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(raw) != 24 {
		return false
	}
	step := int64(binary.BigEndian.Uint64(raw[:8])) // #nosec G115 -- any wrapped value fails the step and HMAC checks below
	now := p.now().Unix() / int64(dpopNonceStep/time.Second)
	if step != now && step != now-1 {
		return false
	}
	return hmac.Equal([]byte(n), []byte(p.nonceAt(step)))
}

// sameHTU compares a proof's htu with the expected URL after RFC 3986
// syntax- and scheme-based normalisation, ignoring query and fragment
// (RFC 9449 §4.3).
func sameHTU(got, want string) bool {
	g, ok1 := normalizeHTU(got)
	w, ok2 := normalizeHTU(want)
	return ok1 && ok2 && g == w
}

func normalizeHTU(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	path := (&url.URL{Path: u.Path}).EscapedPath() // one spelling per path
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, true
}
