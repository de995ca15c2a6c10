package purpose

import (
	"strings"
	"testing"
)

func TestDefaultTableMatchesSpec(t *testing.T) {
	tab := Default()
	want := map[string]struct {
		scopes               []string
		history, dur, perDay int
	}{
		"personal_finance_management": {[]string{ScopeAccounts, ScopeBalances, ScopeTransactions}, 730, 365, 4},
		"account_verification":        {[]string{ScopeAccounts, ScopeBalances, ScopeIdentity, ScopeAccountNumbers}, 0, 30, 4},
		"credit_underwriting":         {[]string{ScopeAccounts, ScopeBalances, ScopeTransactions, ScopeIdentity}, 365, 90, 4},
		"fraud_prevention":            {[]string{ScopeAccounts, ScopeBalances, ScopeTransactions}, 90, 365, 24},
		"tax_preparation":             {[]string{ScopeAccounts, ScopeTransactions}, 730, 120, 4},
	}
	if got := tab.Codes(); len(got) != len(want) {
		t.Fatalf("codes = %v", got)
	}
	for code, w := range want {
		p, ok := tab.Lookup(code)
		if !ok {
			t.Fatalf("%s missing", code)
		}
		if strings.Join(p.Scopes, " ") != strings.Join(w.scopes, " ") || p.MaxHistoryDays != w.history ||
			p.MaxDurationDays != w.dur || p.UnattendedPerDay != w.perDay {
			t.Errorf("%s = %+v", code, p)
		}
		for _, s := range []string{ScopeOffline, ScopeOpenID, ScopeProfile, ScopeEmail} {
			if !p.AllowsScope(s) {
				t.Errorf("%s must allow %s", code, s)
			}
		}
	}
	// SPEC §4: an app that budgets never sees account numbers or identity.
	if p, _ := tab.Lookup("personal_finance_management"); p.AllowsScope(ScopeAccountNumbers) || p.AllowsScope(ScopeIdentity) {
		t.Error("personal_finance_management must not allow identity:read or account_numbers:read")
	}
	if p, _ := tab.Lookup("account_verification"); p.AllowsScope(ScopeTransactions) {
		t.Error("account_verification must not allow transactions")
	}
}

func TestProhibitedLookalikes(t *testing.T) {
	for _, s := range []string{
		"advertising", "ADVERTISING", " advertising ", "Targeted_Advertising", "targeted-advertising",
		"marketing", "cross_selling", "data_sale", "profiling", "ad vertising",
		"аdvertising",       // Cyrillic а
		"ＡＤＶＥＲＴＩＳＩＮＧ",       // full width
		"adver\u200btising", // zero-width space
		"prоfiling",         // Cyrillic о
	} {
		if !IsProhibited(s) {
			t.Errorf("IsProhibited(%q) = false", s)
		}
	}
	for _, s := range []string{"personal_finance_management", "fraud_prevention", "", "advert", "ads"} {
		if IsProhibited(s) {
			t.Errorf("IsProhibited(%q) = true", s)
		}
	}
	if _, ok := Default().Lookup("Personal_Finance_Management"); ok {
		t.Error("lookup must be exact")
	}
}

func TestNewTableRefusesBadPolicies(t *testing.T) {
	ok := Defaults[0]
	cases := map[string]Policy{
		"prohibited code":  {Code: "marketing", Label: "x", Description: "x", Scopes: []string{ScopeAccounts}, MaxDurationDays: 1},
		"disguised code":   {Code: "cross-selling", Label: "x", Description: "x", Scopes: []string{ScopeAccounts}, MaxDurationDays: 1},
		"unknown scope":    {Code: "x", Label: "x", Description: "x", Scopes: []string{"payments:write"}, MaxDurationDays: 1},
		"no label":         {Code: "x", Description: "x", Scopes: []string{ScopeAccounts}, MaxDurationDays: 1},
		"duration > 365":   {Code: "x", Label: "x", Description: "x", Scopes: []string{ScopeAccounts}, MaxDurationDays: 400},
		"upper-case code":  {Code: "X", Label: "x", Description: "x", Scopes: []string{ScopeAccounts}, MaxDurationDays: 1},
		"negative history": {Code: "x", Label: "x", Description: "x", Scopes: []string{ScopeAccounts}, MaxDurationDays: 1, MaxHistoryDays: -1},
	}
	for name, p := range cases {
		if _, err := NewTable([]Policy{ok, p}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewTable([]Policy{ok, ok}); err == nil {
		t.Error("duplicate code accepted")
	}
}

func TestLoad(t *testing.T) {
	good := `{"purposes":[{"code":"fraud_prevention","label":"Fraud","description":"Spot fraud.","scopes":["accounts:read"],"max_history_days":90,"max_duration_days":365,"unattended_per_day":24}]}`
	tab, err := Load(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.Codes(); len(got) != 1 || got[0] != "fraud_prevention" {
		t.Fatalf("codes = %v", got)
	}
	for name, doc := range map[string]string{
		"malformed":     `{"purposes":[`,
		"unknown field": `{"purposes":[{"code":"x","label":"x","description":"x","scopes":["accounts:read"],"max_duration_days":1,"max_histroy_days":5}]}`,
		"prohibited":    `{"purposes":[{"code":"advertising","label":"x","description":"x","scopes":["accounts:read"],"max_duration_days":1}]}`,
		"empty":         `{"purposes":[]}`,
	} {
		if _, err := Load(strings.NewReader(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
