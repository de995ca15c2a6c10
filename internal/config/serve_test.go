package config

import (
	"strings"
	"testing"
	"time"
)

// SPEC §11: the rate limit, the customer IdP and the previous secret as
// `serve` reads them, with the errors that tell an operator what to fix.
func TestParseServeKeysLimitsIdP(t *testing.T) {
	t.Setenv("CONSENTGATE_SECRET", strings.Repeat("s", 32))
	for _, tc := range []struct {
		name  string
		env   map[string]string
		args  []string
		check func(*Config) bool
		err   string
	}{
		{"default rate limit", nil, nil, func(c *Config) bool { return c.RateLimit == DefaultRateLimit && !c.NoPasswordLogin }, ""},
		{"flag wins", map[string]string{"CONSENTGATE_RATE_LIMIT": "7"}, []string{"--rate-limit", "0"}, func(c *Config) bool { return c.RateLimit == 0 }, ""},
		{"env rate limit", map[string]string{"CONSENTGATE_RATE_LIMIT": "7"}, nil, func(c *Config) bool { return c.RateLimit == 7 }, ""},
		{"bad env rate limit", map[string]string{"CONSENTGATE_RATE_LIMIT": "fast"}, nil, nil, "CONSENTGATE_RATE_LIMIT must be a whole number"},
		{"short previous secret", map[string]string{"CONSENTGATE_SECRET_PREVIOUS": "short"}, nil, nil, "CONSENTGATE_SECRET_PREVIOUS must be at least 32 bytes"},
		{"previous secret", map[string]string{"CONSENTGATE_SECRET_PREVIOUS": strings.Repeat("p", 32)}, nil,
			func(c *Config) bool { return string(c.SecretPrevious) == strings.Repeat("p", 32) }, ""},
		{"idp", map[string]string{"CONSENTGATE_CUSTOMER_IDP_CLIENT_SECRET": "x"}, []string{"--customer-idp", "https://idp.bank.example/", "--customer-idp-client-id", "cg", "--password-login=false"},
			func(c *Config) bool {
				return c.CustomerIDP == "https://idp.bank.example" && c.CustomerIDPClientID == "cg" && c.CustomerIDPClientSecret == "x" && c.NoPasswordLogin
			}, ""},
		{"idp without client id", nil, []string{"--customer-idp", "https://idp.bank.example"}, nil, "needs --customer-idp-client-id"},
		{"idp over plain http", nil, []string{"--customer-idp", "http://idp.bank.example", "--customer-idp-client-id", "cg"}, nil, "must be the IdP's https issuer URL"},
		{"no password, no idp", nil, []string{"--password-login=false"}, nil, "--password-login=false needs --customer-idp"},
		{"no read replicas", nil, nil, func(c *Config) bool { return len(c.ReadDBs) == 0 && c.ReadDBMaxLag == DefaultReadDBMaxLag }, ""},
		{"read replicas", nil, []string{"--db", "postgres://p/cg", "--read-db", "postgres://r1/cg", "--read-db", "postgresql://r2/cg", "--read-db-max-lag", "500ms"},
			func(c *Config) bool {
				return len(c.ReadDBs) == 2 && c.ReadDBs[0] == "postgres://r1/cg" && c.ReadDBs[1] == "postgresql://r2/cg" && c.ReadDBMaxLag == 500*time.Millisecond
			}, ""},
		{"read replicas from env", map[string]string{"CONSENTGATE_DATABASE_URL": "postgres://p/cg", "CONSENTGATE_READ_DATABASE_URLS": "postgres://r1/cg, postgres://r2/cg", "CONSENTGATE_READ_DB_MAX_LAG": "3s"}, nil,
			func(c *Config) bool {
				return len(c.ReadDBs) == 2 && c.ReadDBs[1] == "postgres://r2/cg" && c.ReadDBMaxLag == 3*time.Second
			}, ""},
		{"read replica of sqlite", nil, []string{"--read-db", "postgres://r1/cg"}, nil, "--read-db needs a PostgreSQL primary"},
		{"read replica not postgres", nil, []string{"--db", "postgres://p/cg", "--read-db", "mysql://secret@r1/cg"}, nil, "--read-db number 1 (mysql:…) must be a postgres:// URL"},
		{"bad max lag env", map[string]string{"CONSENTGATE_READ_DB_MAX_LAG": "soon"}, nil, nil, "CONSENTGATE_READ_DB_MAX_LAG must be a duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := ParseServe(tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !tc.check(c) {
				t.Fatalf("config %+v, err %v", c, err)
			}
		})
	}
}
