package openapitest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing, to
// test the validator itself.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

const spec = "../../../openapi.yaml"

func TestCheck(t *testing.T) {
	v := Validator(t, spec)
	problem := func(code string, status int) string {
		return fmt.Sprintf(`{"type":"https://consentgate.dev/problems/%s","title":"T","status":%d,"detail":"D","code":"%s"}`, code, status, code)
	}
	problemHeader := http.Header{"Content-Type": {"application/problem+json"}, "X-Fapi-Interaction-Id": {"abc"}}
	account := `{"data":{"account_id":"a","institution_id":"i","institution_name":"B","type":"checking","display_name":"D","masked_number":"****1234","currency":"EUR","status":"open"}}`
	jsonHeader := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "X-Fapi-Interaction-Id": {"abc"}}
	tests := []struct {
		name         string
		method, path string
		status       int
		header       http.Header
		body         string
		fails        string // "" → must pass; otherwise part of the failure
	}{
		{"valid account", "GET", "https://api.example:8443/v1/accounts/a", 200, jsonHeader, account, ""},
		{"valid problem", "GET", "/v1/accounts/a", 404, problemHeader, problem("account_not_found", 404), ""},
		{"unknown route", "GET", "/v1/nothing-here", 200, jsonHeader, `{}`, "no such operation"},
		{"unknown method", "PUT", "/v1/accounts", 200, jsonHeader, `{}`, "no such operation"},
		{"undocumented status", "GET", "/v1/accounts/a", 418, problemHeader, problem("internal_error", 418), "status is not supported"},
		{"undocumented problem code", "GET", "/v1/accounts/a", 404, problemHeader, problem("gone_fishing", 404), "doesn't match"},
		{"wrong content type", "GET", "/v1/accounts/a", 404, jsonHeader, problem("account_not_found", 404), "Content-Type"},
		{"missing field", "GET", "/v1/accounts/a", 200, jsonHeader, strings.Replace(account, `"masked_number":"****1234",`, "", 1), "masked_number"},
		{"full card number", "GET", "/v1/accounts/a", 200, jsonHeader, strings.Replace(account, "****1234", "4111111111111111", 1), "masked_number"},
		{"missing interaction id header", "GET", "/v1/accounts/a", 200, http.Header{"Content-Type": {"application/json"}}, account, "x-fapi-interaction-id"},
		{"401 without WWW-Authenticate", "GET", "/v1/accounts", 401, problemHeader, problem("invalid_token", 401), "WWW-Authenticate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			req := httptest.NewRequest(tt.method, tt.path, nil)
			v.Check(rec, req, tt.status, tt.header, []byte(tt.body))
			all := strings.Join(rec.errors, "\n")
			switch {
			case tt.fails == "" && len(rec.errors) > 0:
				t.Errorf("valid response refused: %s", all)
			case tt.fails != "" && !strings.Contains(all, tt.fails):
				t.Errorf("want a failure mentioning %q, got %q", tt.fails, all)
			}
		})
	}
}
