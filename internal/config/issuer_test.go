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

// TestIssuerFollowsAddr (issue 14 item 10): with neither --issuer nor
// CONSENTGATE_ISSUER, the issuer is this machine at the port of --addr, so
// the metadata of `serve --addr :18082` points at the server itself.
func TestIssuerFollowsAddr(t *testing.T) {
	t.Setenv("CONSENTGATE_ISSUER", "")
	t.Setenv("CONSENTGATE_ADDR", "")
	t.Setenv("CONSENTGATE_SECRET", "")
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "http://localhost:8080"},
		{[]string{"--addr", ":18082"}, nil, "http://localhost:18082"},
		{[]string{"--addr", "0.0.0.0:9090"}, nil, "http://localhost:9090"},
		{[]string{"--addr", "[::]:9090"}, nil, "http://localhost:9090"},
		{[]string{"--addr", "10.0.0.5:9090"}, nil, "http://localhost:9090"},
		{[]string{"--addr", "127.0.0.1:9090"}, nil, "http://127.0.0.1:9090"},
		{[]string{"--addr", "[::1]:9090"}, nil, "http://[::1]:9090"},
		{nil, map[string]string{"CONSENTGATE_ADDR": ":7070"}, "http://localhost:7070"},
		{[]string{"--addr", ":18082", "--issuer", "https://bank.example/"}, nil, "https://bank.example"},
		{[]string{"--addr", ":18082"}, map[string]string{"CONSENTGATE_ISSUER": "https://bank.example"}, "https://bank.example"},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		c, err := ParseServe(append([]string{"--demo"}, tc.args...))
		if err != nil || c.Issuer != tc.want {
			t.Errorf("%v %v: issuer %v %v, want %s", tc.args, tc.env, c, err, tc.want)
		}
		for k := range tc.env {
			t.Setenv(k, "")
		}
	}
}
