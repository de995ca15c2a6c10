package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/purpose"
)

// TestUnattendedDailyLimit pins SPEC §4: calls without the customer present
// are limited per consent per day (4 for personal_finance_management, 24 for
// fraud_prevention); calls with x-fapi-customer-ip-address are not counted;
// refused calls do not use up the allowance; the 429 says when to retry.
func TestUnattendedDailyLimit(t *testing.T) {
	e := newEnv(t)
	unattended := []string{HeaderCustomerIP, ""}
	for i := 1; i <= 4; i++ {
		if rec := e.do(t, "pfm", "/v1/accounts", unattended...); rec.Code != http.StatusOK {
			t.Fatalf("unattended call %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	// A refused call (prohibited purpose) is not counted: it read nothing.
	problem(t, e.do(t, "pfm", "/v1/accounts", append(unattended, "Data-Purpose", "advertising")...), http.StatusForbidden, "purpose_prohibited")
	rec := e.do(t, "pfm", "/v1/accounts", unattended...)
	problem(t, rec, http.StatusTooManyRequests, "access_exceeded")
	retry, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	midnight := testNow.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	if err != nil || retry <= 0 || time.Duration(retry)*time.Second < midnight.Sub(testNow) || time.Duration(retry-1)*time.Second > midnight.Sub(testNow) {
		t.Fatalf("Retry-After %q, want the seconds to the next UTC day (%v)", rec.Header().Get("Retry-After"), midnight.Sub(testNow))
	}
	if !strings.Contains(rec.Body.String(), HeaderCustomerIP) {
		t.Errorf("the 429 does not tell the developer how calls with the customer are treated: %s", rec.Body)
	}
	// With the customer present the app still reads.
	if rec := e.do(t, "pfm", "/v1/accounts"); rec.Code != http.StatusOK {
		t.Fatalf("customer-present call after the limit: %d", rec.Code)
	}
	// The refusal is in the audit log.
	evs, _, err := e.audit.Query(t.Context(), audit.Filter{Outcome: audit.Denied}, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs {
		found = found || (ev.Reason == "access_exceeded" && ev.Status == http.StatusTooManyRequests)
	}
	if !found {
		t.Error("access_exceeded refusal not audited")
	}

	// fraud_prevention allows 24 a day.
	p := principal("fraud_prevention", 90, []string{purpose.ScopeAccounts}, accCard)
	e.auth["fraud"] = p
	for i := 1; i <= 24; i++ {
		if rec := e.do(t, "fraud", "/v1/accounts", unattended...); rec.Code != http.StatusOK {
			t.Fatalf("fraud_prevention call %d: %d", i, rec.Code)
		}
	}
	problem(t, e.do(t, "fraud", "/v1/accounts", unattended...), http.StatusTooManyRequests, "access_exceeded")
}

// TestCustomerIPHeader: the header must hold one IP address.
func TestCustomerIPHeader(t *testing.T) {
	e := newEnv(t)
	for _, v := range []string{"not-an-ip", "203.0.113.1, 203.0.113.2", "999.1.1.1", "\x00"} {
		problem(t, e.do(t, "pfm", "/v1/accounts", HeaderCustomerIP, v), http.StatusBadRequest, "invalid_request")
	}
	for _, v := range []string{"203.0.113.9", "2001:db8::1", " 198.51.100.1 "} {
		if rec := e.do(t, "pfm", "/v1/accounts", HeaderCustomerIP, v); rec.Code != http.StatusOK {
			t.Errorf("%q: %d %s", v, rec.Code, rec.Body)
		}
	}
}

// TestTokenCheckUnavailable: when the token cannot be checked (database
// away), every API answers 503 service_unavailable, never 401 (which would
// tell the app its grant is gone) and never 500.
func TestTokenCheckUnavailable(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/v1/accounts", "/v1/accounts/" + accCard + "/transactions", "/v1/audit/verify"} {
		rec := e.do(t, "db-down", path)
		p := problem(t, rec, http.StatusServiceUnavailable, "service_unavailable")
		if strings.Contains(rec.Body.String(), "10.0.0.7") || strings.Contains(p.Detail, "dial") {
			t.Errorf("%s: the cause leaked: %s", path, rec.Body)
		}
	}
}
