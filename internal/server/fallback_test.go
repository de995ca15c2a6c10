package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
)

// TestUnknownPathsAndMethods (issue 14 item 9): what no route serves is
// answered as problem+json like every other API error: 404 not_found for
// an unknown path, also under /v1, and 405 method_not_allowed with Allow
// for a known path asked with another method. Routes still answer as before.
func TestUnknownPathsAndMethods(t *testing.T) {
	s := testutil.Start(t, store.SQLite, testutil.Options{})
	// Not through s.Do: these paths and methods are, by design, not in
	// openapi.yaml, which that helper validates every answer against.
	type answer struct {
		StatusCode int
		Header     http.Header
	}
	send := func(method, path string) (answer, map[string]any) {
		t.Helper()
		req := s.NewRequest(t, method, path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if resp.Header.Get("Content-Type") == "application/problem+json" {
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("%s %s: %v %s", method, path, err, b)
			}
		}
		return answer{resp.StatusCode, resp.Header}, m
	}
	for _, c := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/nope", 404, "not_found", ""},
		{"GET", "/v1/nope", 404, "not_found", ""},
		{"GET", "/v1/accounts/x/nope", 404, "not_found", ""},
		{"GET", "/oauth2/par", 405, "method_not_allowed", "POST"},
		{"POST", "/v1/accounts", 405, "method_not_allowed", "GET"},
		{"DELETE", "/oauth2/token", 405, "method_not_allowed", "POST"},
		{"PUT", "/login", 405, "method_not_allowed", "GET, POST"},
	} {
		resp, m := send(c.method, c.path)
		if resp.StatusCode != c.status || m["code"] != c.code || m["status"] != float64(c.status) ||
			!strings.HasPrefix(m["type"].(string), "https://consentgate.dev/problems/") || m["detail"] == "" {
			t.Errorf("%s %s: %d %s %v", c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"), m)
			continue
		}
		if got := resp.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
		if resp.Header.Get("x-fapi-interaction-id") == "" && strings.HasPrefix(c.path, "/v1") {
			t.Errorf("%s %s: no x-fapi-interaction-id", c.method, c.path)
		}
	}
	// The served routes are unchanged.
	for _, path := range []string{"/healthz", "/login", "/.well-known/oauth-authorization-server"} {
		if resp, _ := send("GET", path); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	if resp, _ := send("GET", "/v1/accounts"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v1/accounts without a token: %d", resp.StatusCode)
	}
}

// TestEmptyDataPurpose (issue 14 item 8): an empty Data-Purpose header is
// refused with a detail that says it is empty and how to fix it, not as a
// purpose the customer did not consent to.
func TestEmptyDataPurpose(t *testing.T) {
	s := testutil.Start(t, store.SQLite, testutil.Options{})
	fr := testutil.DemoFlow()
	tok := s.Authorize(t, fr)
	r := s.Get(t, "/v1/accounts", tok.AccessToken, "Data-Purpose", "")
	problem(t, r, http.StatusForbidden, "purpose_not_consented")
	var p struct{ Detail string }
	r.JSON(t, &p)
	if !strings.Contains(p.Detail, "Data-Purpose header is empty") || !strings.Contains(p.Detail, "leave the header out") {
		t.Errorf("detail %q", p.Detail)
	}
	if r := s.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusOK {
		t.Errorf("without the header: %d %s", r.StatusCode, r.Body)
	}
}
