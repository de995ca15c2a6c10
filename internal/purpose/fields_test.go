package purpose

import (
	"slices"
	"strings"
	"testing"
)

// TestFieldDefaults pins SPEC §12: credit underwriting sees no description,
// merchant name or card digits; tax preparation no card digits; the others
// see every field.
func TestFieldDefaults(t *testing.T) {
	table := Default()
	for _, c := range []struct {
		code   string
		hidden []string
	}{
		{"credit_underwriting", []string{FieldDescription, FieldMerchantName, FieldCardLast4}},
		{"tax_preparation", []string{FieldCardLast4}},
		{"personal_finance_management", nil},
		{"fraud_prevention", nil},
	} {
		p, _ := table.Lookup(c.code)
		fs := p.Fields()
		if got := fs.Hidden(); !slices.Equal(got, c.hidden) {
			t.Errorf("%s hides %v, want %v", c.code, got, c.hidden)
		}
		if !fs.Sees("amount") || !fs.Sees(FieldMerchantCategoryCode) {
			t.Errorf("%s must see amounts and the MCC", c.code)
		}
		if len(fs.NotSeenWords()) != len(c.hidden) {
			t.Errorf("%s: plain words %v", c.code, fs.NotSeenWords())
		}
	}
}

// TestFieldPolicyFile: a policy file can take fields away, never give a
// purpose a field SPEC §12 denies it, and names no unknown field.
func TestFieldPolicyFile(t *testing.T) {
	tight := `{"purposes":[{"code":"personal_finance_management","label":"l","description":"d","scopes":["accounts:read","transactions:read"],
		"max_history_days":90,"max_duration_days":90,"unattended_per_day":4,"transaction_fields":["merchant_name"],"account_fields":["display_name"]}]}`
	table, err := Load(strings.NewReader(tight))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := table.Lookup("personal_finance_management")
	if got := p.Fields().Hidden(); !slices.Equal(got, []string{FieldDescription, FieldMerchantCategoryCode, FieldCardLast4, FieldMaskedNumber}) {
		t.Errorf("tightened policy hides %v", got)
	}
	for name, doc := range map[string]string{
		"widening credit_underwriting": `{"purposes":[{"code":"credit_underwriting","label":"l","description":"d","scopes":["accounts:read"],"max_history_days":1,"max_duration_days":1,"unattended_per_day":1,"transaction_fields":["description"]}]}`,
		"unknown field":                `{"purposes":[{"code":"x_purpose","label":"l","description":"d","scopes":["accounts:read"],"max_history_days":1,"max_duration_days":1,"unattended_per_day":1,"transaction_fields":["iban"]}]}`,
	} {
		if _, err := Load(strings.NewReader(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
