// Package keys derives the server's signing keys from its secret: one
// Ed25519 key per use (audit checkpoints, webhooks) and a P-256 key for
// OpenID Connect id_tokens (ES256, which relying parties support where they
// do not support EdDSA), the same on every node,
// with no key material in the database. It never exposes the secret, and a
// key derived for one label says nothing about another's.
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// Ed25519 is a signing key derived for one use.
type Ed25519 struct {
	Private ed25519.PrivateKey
	// Public is the verification key for the JWKS: alg EdDSA, use sig, kid
	// the RFC 7638 thumbprint (SHA-256, base64url).
	Public jose.JSONWebKey
}

// DeriveEd25519 derives the key for label: the seed is
// HMAC-SHA256(secret, label). Changing the secret or the label changes the
// key (and its kid).
func DeriveEd25519(secret []byte, label string) Ed25519 {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(label))
	priv := ed25519.NewKeyFromSeed(mac.Sum(nil))
	pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: string(jose.EdDSA), Use: "sig"}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil { // an Ed25519 public key always has a thumbprint
		panic(fmt.Sprintf("keys: thumbprint: %v", err))
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return Ed25519{Private: priv, Public: pub}
}

// Signer returns a compact-JWS signer that puts the key id and typ (which
// keeps one use's signatures from passing as another's) in the header.
func (k Ed25519) Signer(typ string) jose.Signer {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: k.Private, KeyID: k.Public.KeyID}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil { // only fails for unsupported key types
		panic(fmt.Sprintf("keys: signer: %v", err))
	}
	return s
}

// ES256 is a P-256 signing key derived for one use.
type ES256 struct {
	Private *ecdsa.PrivateKey
	// Public is the verification key for the JWKS: alg ES256, use sig, kid
	// the RFC 7638 thumbprint (SHA-256, base64url).
	Public jose.JSONWebKey
}

// DeriveES256 derives the P-256 key for label: the private scalar is
// HMAC-SHA256(secret, label ‖ counter) for the first counter whose value is
// a valid scalar (all but about one in 2^32 values are, so counter is
// nearly always 0). Changing the secret or the label changes the key.
func DeriveES256(secret []byte, label string) ES256 {
	for counter := uint32(0); ; counter++ {
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(label))
		_ = binary.Write(mac, binary.BigEndian, counter) // a hash never fails to write
		priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), mac.Sum(nil))
		if err != nil {
			continue // zero or not below the group order: try the next value
		}
		pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: string(jose.ES256), Use: "sig"}
		tp, err := pub.Thumbprint(crypto.SHA256)
		if err != nil { // a P-256 public key always has a thumbprint
			panic(fmt.Sprintf("keys: thumbprint: %v", err))
		}
		pub.KeyID = base64.RawURLEncoding.EncodeToString(tp)
		return ES256{Private: priv, Public: pub}
	}
}
