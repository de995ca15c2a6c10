package config

import "testing"

// TestIssuerMustBeHTTPS pins FAPI 2.0's TLS rule for the issuer: https,
// except on loopback (development) or with --demo.
func TestIssuerMustBeHTTPS(t *testing.T) {
	for _, tc := range []struct {
		issuer string
		demo   bool
		ok     bool
	}{
		{"https://bank.example", false, true},
		{"https://bank.example/consentgate", false, true},
		{"http://localhost:8080", false, true},
		{"http://127.0.0.1:8080", false, true},
		{"http://[::1]:8080", false, true},
		{"http://bank.example", false, false},
		{"http://localhost.bank.example", false, false},
		{"http://10.0.0.5:8080", false, false},
		{"http://bank.example", true, true},
		{"ftp://bank.example", false, false},
		{"https://bank.example?x=1", false, false},
		{"https://bank.example#top", false, false},
		{"bank.example", false, false},
	} {
		c := &Config{Issuer: tc.issuer, Demo: tc.demo, Secret: make([]byte, MinSecretLen)}
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("issuer %q (demo %v): err = %v, want ok = %v", tc.issuer, tc.demo, err, tc.ok)
		}
	}
}
