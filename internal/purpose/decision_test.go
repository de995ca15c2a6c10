package purpose

import (
	"slices"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/consent"
)

// TestDecideMatrix covers every purpose × scope × Data-Purpose header ×
// consent status × attendance combination against an oracle written straight
// from SPEC §4: refusals in the order token, purpose, scope, history, volume.
func TestDecideMatrix(t *testing.T) {
	tab := Default()
	now := time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)
	statuses := []consent.Status{consent.AwaitingAuthorization, consent.Authorized, consent.Rejected, consent.Revoked, consent.Expired}
	scopes := []string{ScopeAccounts, ScopeBalances, ScopeTransactions}
	type header struct {
		name   string
		values func(consented string) []string
		want   string // refusal when the consent is active; "" allow
	}
	headers := []header{
		{"absent", func(string) []string { return nil }, ""},
		{"the consented purpose", func(c string) []string { return []string{c} }, ""},
		{"another allowed purpose", func(c string) []string {
			if c == "fraud_prevention" {
				return []string{"tax_preparation"}
			}
			return []string{"fraud_prevention"}
		}, RefusePurposeNotConsented},
		{"unknown purpose", func(string) []string { return []string{"research"} }, RefusePurposeNotConsented},
		{"empty value", func(string) []string { return []string{""} }, RefusePurposeNotConsented},
		{"repeated consented purpose", func(c string) []string { return []string{c, c} }, RefusePurposeNotConsented},
		{"mixed case", func(c string) []string { return []string{"Personal_Finance_Management"} }, RefusePurposeNotConsented},
		{"surrounding space", func(c string) []string { return []string{" " + c + " "} }, RefusePurposeNotConsented},
		{"advertising", func(string) []string { return []string{"advertising"} }, RefusePurposeProhibited},
		{"MARKETING", func(string) []string { return []string{"MARKETING"} }, RefusePurposeProhibited},
		{"Cyrillic look-alike profiling", func(string) []string { return []string{"prоfiling"} }, RefusePurposeProhibited},
		{"prohibited hidden in a list", func(c string) []string { return []string{c + ", data_sale"} }, RefusePurposeProhibited},
		{"prohibited in a second header", func(c string) []string { return []string{c, "cross_selling"} }, RefusePurposeProhibited},
	}
	n := 0
	for _, p := range Defaults {
		for _, st := range statuses {
			for _, scope := range scopes {
				for _, h := range headers {
					for _, present := range []bool{true, false} {
						for _, calls := range []int{1, p.UnattendedPerDay, p.UnattendedPerDay + 1} {
							c := &consent.Consent{ID: "g", Status: st, Purpose: p.Code, Scopes: slices.Clone(p.Scopes),
								HistoryDays: p.MaxHistoryDays, CustomerID: "cus"}
							exp := now.Add(time.Hour)
							if st == consent.Expired {
								exp = now.Add(-time.Hour) // recorded authorized but past its expiry counts too
								c.Status = consent.Authorized
							}
							c.ExpiresAt = &exp
							call := Call{DataPurpose: h.values(p.Code), Scope: scope, TokenScopes: c.Scopes,
								CustomerPresent: present, UnattendedToday: calls}
							if present {
								call.UnattendedToday = 0
							}
							want := ""
							switch {
							case st != consent.Authorized:
								want = RefuseInvalidToken
							case h.want != "":
								want = h.want
							case !slices.Contains(p.Scopes, scope):
								want = RefuseInsufficientScope
							case !present && calls > p.UnattendedPerDay:
								want = RefuseAccessExceeded
							}
							got := ""
							r := tab.Decide(c, now, call)
							if r != nil {
								got = r.Code
								if r.Msg == "" {
									t.Fatalf("refusal %s without a message", r.Code)
								}
							}
							if got != want {
								t.Fatalf("%s/%s/%s/header %s/present=%v/calls=%d: got %q, want %q",
									p.Code, st, scope, h.name, present, calls, got, want)
							}
							if got == RefuseAccessExceeded && (r.RetryAfter <= 0 || r.RetryAfter > Day) {
								t.Fatalf("Retry-After %v", r.RetryAfter)
							}
							n++
						}
					}
				}
			}
		}
	}
	t.Logf("%d combinations decided", n)
}

func TestDecideHistory(t *testing.T) {
	tab := Default()
	now := time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)
	exp := now.Add(time.Hour)
	for _, p := range Defaults {
		if !slices.Contains(p.Scopes, ScopeTransactions) {
			continue
		}
		c := &consent.Consent{Status: consent.Authorized, Purpose: p.Code, Scopes: p.Scopes, HistoryDays: p.MaxHistoryDays, ExpiresAt: &exp, CustomerID: "c"}
		for _, tc := range []struct {
			days int
			want string
		}{{p.MaxHistoryDays - 1, ""}, {p.MaxHistoryDays, ""}, {p.MaxHistoryDays + 1, RefuseHistoryExceeded}} {
			from := now.Add(-time.Duration(tc.days) * Day)
			r := tab.Decide(c, now, Call{Scope: ScopeTransactions, TokenScopes: p.Scopes, From: &from, CustomerPresent: true})
			got := ""
			if r != nil {
				got = r.Code
			}
			if got != tc.want {
				t.Errorf("%s from %d days back: %q, want %q", p.Code, tc.days, got, tc.want)
			}
		}
	}
	// A policy narrowed after consent narrows existing consents too.
	narrow, err := NewTable([]Policy{{Code: "personal_finance_management", Label: "x", Description: "x",
		Scopes: []string{ScopeTransactions}, MaxHistoryDays: 30, MaxDurationDays: 365, UnattendedPerDay: 4}})
	if err != nil {
		t.Fatal(err)
	}
	c := &consent.Consent{Status: consent.Authorized, Purpose: "personal_finance_management", Scopes: []string{ScopeTransactions},
		HistoryDays: 730, ExpiresAt: &exp, CustomerID: "c"}
	from := now.Add(-60 * Day)
	if r := narrow.Decide(c, now, Call{Scope: ScopeTransactions, TokenScopes: c.Scopes, From: &from, CustomerPresent: true}); r == nil || r.Code != RefuseHistoryExceeded {
		t.Fatalf("narrowed policy: %v", r)
	}
	// A purpose dropped from the policy stops its consents.
	gone := &consent.Consent{Status: consent.Authorized, Purpose: "retired_purpose", Scopes: []string{ScopeAccounts}, ExpiresAt: &exp, CustomerID: "c"}
	if r := tab.Decide(gone, now, Call{Scope: ScopeAccounts, TokenScopes: gone.Scopes}); r == nil || r.Code != RefusePurposeNotConsented {
		t.Fatalf("retired purpose: %v", r)
	}
}
