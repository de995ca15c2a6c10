package webhook

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/consentgate/consentgate/internal/keys"
)

// seedLabel derives the webhook key from the server secret. Every node holds
// the same secret and so signs with the same key; it is a different key from
// the audit checkpoint key, so a signature of one kind can never pass for the
// other even before the typ header is checked.
const seedLabel = "consentgate webhook signing v1"

// SignatureType is the JWS "typ" header of a webhook signature.
const SignatureType = "webhook+jwt"

// SignatureHeader is the HTTP header carrying the compact JWS.
const SignatureHeader = "X-Consentgate-Signature"

// Claims is the payload of a delivery's signature. The body itself is not
// in the JWS: its SHA-256 is, so receivers verify the bytes they received.
type Claims struct {
	Issuer     string `json:"iss"`         // the server's issuer URL
	Audience   string `json:"aud"`         // the client_id the delivery is for
	IssuedAt   int64  `json:"iat"`         // unix seconds of this attempt
	ID         string `json:"jti"`         // the delivery id, the same on every retry
	Event      string `json:"event"`       // consent.revoked | consent.expiring
	BodySHA256 string `json:"body_sha256"` // base64url (no padding) SHA-256 of the body
}

// Signer signs deliveries with an Ed25519 key: one derived from the server
// secret (NewSigner) or the active webhook key of the key ring
// (NewRingSigner), which a rotation changes while the node runs.
type Signer struct {
	key func() keys.Ed25519
}

// NewSigner derives the webhook key: the Ed25519 seed is
// HMAC-SHA256(secret, "consentgate webhook signing v1"); the key id is the
// key's RFC 7638 thumbprint (SHA-256, base64url).
func NewSigner(secret []byte) *Signer {
	k := keys.DeriveEd25519(secret, seedLabel)
	return &Signer{key: func() keys.Ed25519 { return k }}
}

// NewRingSigner signs each delivery with the key active() returns then.
func NewRingSigner(active func() keys.Ed25519) *Signer { return &Signer{key: active} }

// SeedLabel is the label the first webhook key is derived under (the key
// ring seeds itself with it, so receivers keep the key they know).
const SeedLabel = seedLabel

// PublicJWK is the current verification key, for the JWKS served at jwks_uri.
func (s *Signer) PublicJWK() jose.JSONWebKey { return s.key().Public }

// Sign returns the compact JWS of c.
func (s *Signer) Sign(c Claims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("webhook: sign: %w", err)
	}
	jws, err := s.key().Signer(SignatureType).Sign(payload)
	if err != nil {
		return "", fmt.Errorf("webhook: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// BodyHash is the body_sha256 claim of body.
func BodyHash(body []byte) string {
	sum := sha256.Sum256(body)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
