package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
)

// dumpDatabase renders every row of every table as text.
func dumpDatabase(t *testing.T, db *store.DB) string {
	t.Helper()
	var tables []string
	q := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if db.Dialect == store.Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`
	}
	if err := db.Raw(q).Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, table := range tables {
		rows, err := db.SQL().Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, "%s.%s=%v\n", table, cols[i], v)
			}
		}
		rows.Close()
	}
	return b.String()
}

// TestNoSecretsInClear: after a full flow (PAR, login, consent, code,
// tokens, refresh, client credentials), the database holds no client
// secret, password, access or refresh token, authorization code,
// request_uri, session id or full card number in clear.
func TestNoSecretsInClear(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		fr := testutil.DemoFlow()
		b := s.NewBrowser()
		requestURI, verifier := s.Push(t, fr)
		loc := s.Consent(t, b, fr, requestURI)
		code := loc.Query().Get("code")
		r := s.Exchange(t, fr, code, verifier)
		var tok testutil.Tokens
		r.JSON(t, &tok)
		r = s.Refresh(t, fr, tok.RefreshToken)
		var tok2 testutil.Tokens
		r.JSON(t, &tok2)
		var cc testutil.Tokens
		s.ClientCredentials(t, "demo-auditor", "demo-auditor-secret", "audit:read").JSON(t, &cc)
		if tok.AccessToken == "" || tok2.AccessToken == "" || cc.AccessToken == "" {
			t.Fatal("flow did not issue tokens")
		}
		u, _ := url.Parse(s.URL)
		var session string
		for _, c := range b.Cookies(u) {
			session += c.Value
		}
		if session == "" {
			t.Fatal("no session cookie")
		}

		dump := dumpDatabase(t, s.DB)
		secrets := map[string]string{
			"demo-pfm client secret":     testutil.DemoClientSecret,
			"demo-auditor client secret": "demo-auditor-secret",
			"alice's password":           "alice-password-1",
			"bob's password":             "bob-password-1",
			"request_uri":                requestURI,
			"session cookie":             session,
			"PKCE verifier":              verifier,
		}
		for name, tk := range map[string]string{"authorization code": code, "access token": tok.AccessToken,
			"refresh token": tok.RefreshToken, "rotated access token": tok2.AccessToken,
			"rotated refresh token": tok2.RefreshToken, "client_credentials token": cc.AccessToken} {
			secrets[name] = tk
			// fosite tokens are key.signature: neither half may be stored.
			if key, sig, ok := strings.Cut(tk, "."); ok {
				secrets[name+" key"] = key
				secrets[name+" signature"] = sig
			}
		}
		for name, v := range secrets {
			if len(v) < 8 {
				t.Fatalf("%s too short to scan for: %q", name, v)
			}
			if strings.Contains(dump, v) {
				t.Errorf("%s is stored in clear", name)
			}
		}
		// No full card number (PAN): no run of 13 to 19 digits anywhere
		// outside numeric columns (times, amounts and ids are numbers).
		for _, line := range strings.Split(dump, "\n") {
			if _, v, ok := strings.Cut(line, "="); ok && pan.MatchString(v) && !allDigits(v) {
				t.Errorf("looks like a card number: %s", line)
			}
		}
		if !strings.Contains(dump, "$argon2id$") {
			t.Error("password hashes are not argon2id")
		}
		if r := s.Get(t, "/v1/accounts", tok2.AccessToken); r.StatusCode != http.StatusOK {
			t.Fatalf("the flow's token does not work: %d", r.StatusCode)
		}
	})
}

var pan = regexp.MustCompile(`\b\d{13,19}\b`)

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
