package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen int
	KeyLen  int
}

// DefaultParams follow OWASP's first argon2id recommendation (m=19 MiB, t=2,
// p=1): about 20–40 ms per check on one core, so a login page on two shared
// cores stays responsive while offline guessing stays expensive.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// ErrMalformedHash is returned for a stored hash that is not an argon2id PHC
// string within sane bounds.
var ErrMalformedHash = errors.New("identity: malformed password hash")

var b64 = base64.RawStdEncoding // the PHC string format's B64: standard alphabet, no padding

// HashPassword returns password's argon2id hash in PHC string format:
// $argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>.
func HashPassword(password string) (string, error) {
	return hashWith(DefaultParams, password)
}

func hashWith(p Params, password string) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("identity.HashPassword: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(p.KeyLen)) // #nosec G115 -- KeyLen is a parameter set in code (32), far below 2^32
	return encodePHC(p, salt, key), nil
}

func encodePHC(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// phc is a parsed hash.
type phc struct {
	params    Params
	salt, key []byte
}

// parsePHC parses an argon2id PHC string. Bounds keep a corrupted or hostile
// row from making one verification allocate gigabytes or spin for minutes.
func parsePHC(s string) (*phc, error) {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return nil, ErrMalformedHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return nil, ErrMalformedHash
	}
	var p Params
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil || n != 3 {
		return nil, ErrMalformedHash
	}
	if fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads) != parts[3] {
		return nil, ErrMalformedHash // trailing junk or non-canonical numbers
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return nil, ErrMalformedHash
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil {
		return nil, ErrMalformedHash
	}
	p.SaltLen, p.KeyLen = len(salt), len(key)
	if p.Threads < 1 || p.Threads > 16 || p.Time < 1 || p.Time > 16 ||
		p.Memory < 8*uint32(p.Threads) || p.Memory > 1024*1024 ||
		p.SaltLen < 8 || p.SaltLen > 64 || p.KeyLen < 16 || p.KeyLen > 64 {
		return nil, ErrMalformedHash
	}
	return &phc{params: p, salt: salt, key: key}, nil
}

// VerifyPassword reports whether password matches the PHC hash. The
// comparison of the derived keys is constant-time.
func VerifyPassword(hash, password string) (bool, error) {
	h, err := parsePHC(hash)
	if err != nil {
		return false, err
	}
	return h.verify(password), nil
}

func (h *phc) verify(password string) bool {
	got := argon2.IDKey([]byte(password), h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key))) // #nosec G115 -- the stored key is at most a few dozen bytes (parsed PHC string)
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// outdated reports whether the hash was made with other parameters than
// DefaultParams, so a successful login can upgrade it.
func (h *phc) outdated() bool {
	p := h.params
	d := DefaultParams
	return p.Memory != d.Memory || p.Time != d.Time || p.Threads != d.Threads || p.SaltLen != d.SaltLen || p.KeyLen != d.KeyLen
}

// dummyHash returns a hash that matches no password, with the current
// parameters, so checking a password against it costs as much as a real
// check. It needs no hashing to build: the "key" is random bytes.
func dummyHash() *phc {
	salt := make([]byte, DefaultParams.SaltLen)
	key := make([]byte, DefaultParams.KeyLen)
	// crypto/rand.Read never returns an error on supported platforms (Go ≥ 1.24 panics instead).
	_, _ = rand.Read(salt)
	_, _ = rand.Read(key)
	return &phc{params: DefaultParams, salt: salt, key: key}
}
