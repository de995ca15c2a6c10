package keys

import (
	"bytes"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func TestDeriveEd25519(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	a, again := DeriveEd25519(secret, "a"), DeriveEd25519(secret, "a")
	b := DeriveEd25519(secret, "b")
	other := DeriveEd25519([]byte("fedcba9876543210fedcba9876543210"), "a")
	if !bytes.Equal(a.Private, again.Private) || a.Public.KeyID != again.Public.KeyID {
		t.Fatal("derivation is not deterministic")
	}
	if bytes.Equal(a.Private, b.Private) || a.Public.KeyID == b.Public.KeyID || bytes.Equal(a.Private, other.Private) {
		t.Fatal("labels or secrets share a key")
	}
	if !a.Public.IsPublic() || a.Public.Algorithm != "EdDSA" {
		t.Fatalf("public JWK %+v", a.Public)
	}
	jws, err := a.Signer("x+jwt").Sign([]byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	compact, _ := jws.CompactSerialize()
	parsed, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := parsed.Verify(a.Public); err != nil || string(got) != "hello" {
		t.Fatalf("verify: %q %v", got, err)
	}
	if _, err := parsed.Verify(b.Public); err == nil {
		t.Fatal("verified with another label's key")
	}
	if h := parsed.Signatures[0].Header; h.KeyID != a.Public.KeyID || h.ExtraHeaders["typ"] != "x+jwt" {
		t.Fatalf("header %+v", h)
	}
}

func TestDeriveES256(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	a, again := DeriveES256(secret, "a"), DeriveES256(secret, "a")
	b := DeriveES256(secret, "b")
	other := DeriveES256([]byte("fedcba9876543210fedcba9876543210"), "a")
	if !a.Private.Equal(again.Private) || a.Public.KeyID != again.Public.KeyID {
		t.Fatal("derivation is not deterministic")
	}
	if a.Private.Equal(b.Private) || a.Public.KeyID == b.Public.KeyID || a.Private.Equal(other.Private) {
		t.Fatal("labels or secrets share a key")
	}
	if !a.Public.IsPublic() || a.Public.Algorithm != "ES256" || a.Public.Use != "sig" || a.Public.KeyID == "" {
		t.Fatalf("public JWK %+v", a.Public)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: a.Private}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	compact, _ := jws.CompactSerialize()
	parsed, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := parsed.Verify(a.Public); err != nil || string(got) != "hello" {
		t.Fatalf("verify: %q %v", got, err)
	}
	if _, err := parsed.Verify(b.Public); err == nil {
		t.Fatal("verified with another label's key")
	}
}
