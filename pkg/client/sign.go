package client

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// keySigner signs JWTs with any crypto.Signer (an in-memory key, or one in
// an HSM or KMS) through go-jose's OpaqueSigner, with the one algorithm
// the server accepts for its key type: PS256 (RSA ≥ 2048 bits), ES256
// (P-256) or EdDSA (Ed25519).
type keySigner struct {
	key crypto.Signer
	alg jose.SignatureAlgorithm
	pub jose.JSONWebKey
}

var _ jose.OpaqueSigner = (*keySigner)(nil)

func newKeySigner(key crypto.Signer, kid string) (*keySigner, error) {
	s := &keySigner{key: key, pub: jose.JSONWebKey{Key: key.Public(), KeyID: kid, Use: "sig"}}
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return nil, errors.New("client: RSA keys must have at least 2048 bits")
		}
		s.alg = jose.PS256
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, errors.New("client: EC keys must be on P-256")
		}
		s.alg = jose.ES256
	case ed25519.PublicKey:
		s.alg = jose.EdDSA
	default:
		return nil, fmt.Errorf("client: unsupported key type %T (use RSA, EC P-256 or Ed25519)", pub)
	}
	s.pub.Algorithm = string(s.alg)
	return s, nil
}

// Public implements jose.OpaqueSigner.
func (s *keySigner) Public() *jose.JSONWebKey { k := s.pub; return &k }

// Algs implements jose.OpaqueSigner.
func (s *keySigner) Algs() []jose.SignatureAlgorithm { return []jose.SignatureAlgorithm{s.alg} }

// SignPayload implements jose.OpaqueSigner.
func (s *keySigner) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != s.alg {
		return nil, fmt.Errorf("client: key signs %s, not %s", s.alg, alg)
	}
	switch alg {
	case jose.EdDSA:
		return s.key.Sign(rand.Reader, payload, crypto.Hash(0))
	case jose.PS256:
		h := sha256.Sum256(payload)
		return s.key.Sign(rand.Reader, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	}
	h := sha256.Sum256(payload)
	der, err := s.key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	// crypto.Signer gives ASN.1 DER; JWS wants r ‖ s, 32 bytes each.
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		return nil, fmt.Errorf("client: ECDSA signature: %w", err)
	}
	out := make([]byte, 64)
	rs.R.FillBytes(out[:32])
	rs.S.FillBytes(out[32:])
	return out, nil
}

// sign returns a compact JWS of claims with header typ; embed puts the
// public key in the jwk header (DPoP proofs), otherwise its kid is sent.
func (s *keySigner) sign(typ string, embed bool, claims any) (string, error) {
	opts := (&jose.SignerOptions{EmbedJWK: embed}).WithType(jose.ContentType(typ))
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s}, opts)
	if err != nil {
		return "", fmt.Errorf("client: signer: %w", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("client: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// randomString returns n random bytes, base64url-encoded.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// assertion is a private_key_jwt client assertion (RFC 7523) for the
// issuer, good for one minute and one use.
func (c *Client) assertion() (string, error) {
	now := c.now()
	return c.authKey.sign("JWT", false, map[string]any{
		"iss": c.cfg.ClientID, "sub": c.cfg.ClientID, "aud": c.cfg.Issuer,
		"jti": randomString(16), "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	})
}

// proof is a DPoP proof (RFC 9449 §4) for method and htu (query and
// fragment are not part of it), naming accessToken when one is sent.
func (c *Client) proof(method, htu, accessToken, nonce string) (string, error) {
	claims := map[string]any{"jti": randomString(16), "htm": method, "htu": htu, "iat": c.now().Unix()}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return c.dpopKey.sign("dpop+jwt", true, claims)
}

// PublicJWKS returns the JSON Web Key Set with key's public half, to
// register for the client (consentgate client create --auth-method
// private_key_jwt --jwks-file F). kid is the key id the assertions name
// (Config.KeyID).
func PublicJWKS(key crypto.Signer, kid string) ([]byte, error) {
	s, err := newKeySigner(key, kid)
	if err != nil {
		return nil, err
	}
	return json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{s.pub}})
}
