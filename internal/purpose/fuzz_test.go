package purpose

import (
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/consent"
)

// FuzzDataPurpose: whatever Data-Purpose a client sends, a prohibited
// purpose (in any disguise IsProhibited knows) is refused as
// purpose_prohibited, and only the consented code itself is let through.
func FuzzDataPurpose(f *testing.F) {
	for _, s := range []string{"personal_finance_management", "advertising", "ADVERTISING", "аdvertising",
		" personal_finance_management", "", "personal_finance_management, marketing", "\x00", "\xff\xfe"} {
		f.Add(s, false)
	}
	tab := Default()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	exp := now.Add(time.Hour)
	c := &consent.Consent{Status: consent.Authorized, Purpose: "personal_finance_management", CustomerID: "c",
		Scopes: []string{ScopeAccounts}, HistoryDays: 730, ExpiresAt: &exp}
	f.Fuzz(func(t *testing.T, header string, twice bool) {
		values := []string{header}
		if twice {
			values = append(values, header)
		}
		r := tab.Decide(c, now, Call{DataPurpose: values, Scope: ScopeAccounts, TokenScopes: c.Scopes, CustomerPresent: true})
		switch {
		case IsProhibited(header):
			if r == nil || r.Code != RefusePurposeProhibited {
				t.Fatalf("prohibited %q: %+v", header, r)
			}
		case header == c.Purpose && !twice:
			if r != nil {
				t.Fatalf("consented purpose refused: %+v", r)
			}
		default:
			if r == nil || (r.Code != RefusePurposeNotConsented && r.Code != RefusePurposeProhibited) {
				t.Fatalf("%q (twice=%v) let through or wrong code: %+v", header, twice, r)
			}
		}
	})
}
