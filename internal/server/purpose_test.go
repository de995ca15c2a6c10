package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/server"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// TestPurposeRefusals drives every purpose-limitation refusal of SPEC §4
// through the real server and finds each in the auditor API and in the
// refusal counter.
func TestPurposeRefusals(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		fr := testutil.DemoFlow()
		_, challenge := testutil.PKCE()
		form := testutil.PARForm(fr, "state-ad", challenge)
		form.Set("purpose", "advertising")
		r := s.PostForm(t, "/oauth2/par", fr.ClientID, fr.ClientSecret, form)
		oauthError(t, r, http.StatusBadRequest, "invalid_request")

		tok := s.Authorize(t, fr)
		acct := "/v1/accounts"
		var accts struct {
			Data []account `json:"data"`
		}
		s.Get(t, acct, tok.AccessToken).JSON(t, &accts)
		tx := "/v1/accounts/" + accts.Data[0].AccountID + "/transactions"
		cases := []struct {
			name, path string
			headers    []string
			status     int
			code       string
		}{
			{"prohibited purpose", acct, []string{"Data-Purpose", "advertising"}, 403, "purpose_prohibited"},
			{"prohibited look-alike", acct, []string{"Data-Purpose", "Ｍarketing"}, 403, "purpose_prohibited"},
			{"another purpose", acct, []string{"Data-Purpose", "credit_underwriting"}, 403, "purpose_not_consented"},
			{"repeated header", acct, []string{"Data-Purpose", fr.Purpose, "Data-Purpose", fr.Purpose}, 403, "purpose_not_consented"},
			{"empty header", acct, []string{"Data-Purpose", ""}, 403, "purpose_not_consented"},
			{"beyond the history window", tx + "?from=" + time.Now().AddDate(0, 0, -800).Format("2006-01-02"), nil, 400, "history_window_exceeded"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { problem(t, s.Get(t, c.path, tok.AccessToken, c.headers...), c.status, c.code) })
		}
		t.Run("unattended calls past the daily limit", func(t *testing.T) {
			fresh := s.Authorize(t, fr)
			for i := 1; i <= 4; i++ {
				if r := s.Get(t, acct, fresh.AccessToken, testutil.CustomerIP, ""); r.StatusCode != http.StatusOK {
					t.Fatalf("unattended call %d: %d %s", i, r.StatusCode, r.Body)
				}
			}
			r := s.Get(t, acct, fresh.AccessToken, testutil.CustomerIP, "")
			problem(t, r, http.StatusTooManyRequests, "access_exceeded")
			if r.Header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
			if r := s.Get(t, acct, fresh.AccessToken); r.StatusCode != http.StatusOK {
				t.Fatalf("customer-present call after the limit: %d", r.StatusCode)
			}
		})

		// Every refusal is in the audit log, with its code as the reason.
		var cc testutil.Tokens
		s.ClientCredentials(t, "demo-auditor", "demo-auditor-secret", "audit:read").JSON(t, &cc)
		var evs struct {
			Data []struct {
				Type, Reason, Purpose string
			} `json:"data"`
		}
		s.Get(t, "/v1/audit/events?outcome=denied&limit=1000", cc.AccessToken).JSON(t, &evs)
		seen := map[string]int{}
		for _, e := range evs.Data {
			seen[e.Type+" "+e.Reason]++
		}
		for want, n := range map[string]int{
			// PAR (1) and data calls (2): SPEC §4 audits both as purpose.blocked.
			"purpose.blocked purpose_prohibited":    3,
			"purpose.blocked purpose_not_consented": 3,
			"data.access purpose_prohibited":        0,
			"data.access purpose_not_consented":     0,
			"data.access history_window_exceeded":   1,
			"data.access access_exceeded":           1,
		} {
			if seen[want] != n {
				t.Errorf("audit log has %d × %q, want %d (all: %v)", seen[want], want, n, seen)
			}
		}
		metrics := string(s.Get(t, "/metrics", "").Body)
		for _, code := range []string{"purpose_prohibited", "purpose_not_consented", "history_window_exceeded", "access_exceeded"} {
			if !strings.Contains(metrics, `consentgate_refusals_total{code="`+code+`"}`) {
				t.Errorf("metrics lack refusals of %s", code)
			}
		}
	})
}

// TestPurposeRegistration: no client can be registered for a prohibited or
// unknown purpose, and a policy that allows a prohibited purpose refuses to
// start.
func TestPurposeRegistration(t *testing.T) {
	s := testutil.Start(t, store.SQLite, testutil.Options{})
	for _, p := range []string{"advertising", "Targeted_Advertising", "research"} {
		_, _, err := s.Node.Provider().CreateClient(context.Background(), oauth.ClientSpec{
			Name: "Ad app", RedirectURIs: []string{"https://ads.example/cb"}, GrantTypes: []string{"authorization_code"},
			Scopes: []string{"accounts:read"}, Purposes: []string{p},
		})
		if err == nil {
			t.Errorf("client registered for purpose %q", p)
		}
	}
	policy := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(policy, []byte(`{"purposes":[{"code":"marketing","label":"Deals","description":"Offers for you.","scopes":["accounts:read"],"max_history_days":30,"max_duration_days":30,"unattended_per_day":4}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Addr: "127.0.0.1:0", DatabaseURL: testdb.URL(t, store.SQLite), Issuer: "http://127.0.0.1:1",
		Secret: []byte(testutil.TestSecret), PurposePolicyFile: policy}
	_, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{})
	if err == nil || !strings.Contains(err.Error(), "prohibited") {
		t.Fatalf("a policy allowing marketing started: %v", err)
	}
}
