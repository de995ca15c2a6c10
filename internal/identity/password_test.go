package identity

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestHashPasswordPHC(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(h) {
		t.Fatalf("hash %q is not an argon2id PHC string with the default parameters", h)
	}
	if ok, err := VerifyPassword(h, "correct horse"); !ok || err != nil {
		t.Fatalf("right password: ok=%v err=%v", ok, err)
	}
	for _, wrong := range []string{"", "correct horsE", "correct horse ", "correct"} {
		if ok, _ := VerifyPassword(h, wrong); ok {
			t.Errorf("wrong password %q verified", wrong)
		}
	}
	h2, _ := HashPassword("correct horse")
	if h2 == h {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

func TestParsePHCRejectsMalformed(t *testing.T) {
	good, err := hashWith(Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parsePHC(good); err != nil {
		t.Fatalf("good hash refused: %v", err)
	}
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	for name, h := range map[string]string{
		"empty":             "",
		"bcrypt":            "$2a$10$abcdefghijklmnopqrstuu5Rk5hB2jYbM3lQ9z2xjZ7Yp6J5j1i6e",
		"argon2i":           "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"old version":       "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"params order":      "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"trailing junk":     "$argon2id$v=19$m=64,t=1,p=1x$" + salt + "$" + key,
		"huge memory (DoS)": "$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + key,
		"huge time (DoS)":   "$argon2id$v=19$m=64,t=1000,p=1$" + salt + "$" + key,
		"zero threads":      "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
		"short salt":        "$argon2id$v=19$m=64,t=1,p=1$AAAA$" + key,
		"short key":         "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$AAAA",
		"padded base64":     "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key,
		"extra field":       good + "$x",
	} {
		if _, err := parsePHC(h); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("%s: parsePHC(%q) = %v, want ErrMalformedHash", name, h, err)
		}
	}
}

// The dummy hash must cost what a real check costs, or the time an answer
// takes tells whether the username exists.
func TestDummyHashHasDefaultCost(t *testing.T) {
	d := dummyHash()
	if d.params != DefaultParams || len(d.salt) != DefaultParams.SaltLen || len(d.key) != DefaultParams.KeyLen {
		t.Fatalf("dummy hash params %+v, want %+v", d.params, DefaultParams)
	}
	if d.verify("") || d.verify("password") {
		t.Fatal("dummy hash matched a password")
	}
	if d.outdated() {
		t.Fatal("dummy hash reported outdated")
	}
}
