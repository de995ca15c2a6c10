// Package purpose holds the purpose-limitation policy of SPEC §4: which
// purposes exist, what each may read, for how long, how far back, how often
// unattended, and which purposes are prohibited for everyone. It is pure: no
// HTTP, no database. It must never let a prohibited purpose through.
package purpose

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Scopes a purpose can allow. offline_access is not data: any purpose may ask
// for it (refresh tokens), the consent's duration still bounds it.
const (
	ScopeAccounts     = "accounts:read"
	ScopeBalances     = "balances:read"
	ScopeTransactions = "transactions:read"
	// ScopeIdentity is the account holders' names, emails, addresses and
	// telephones (FDX contact).
	ScopeIdentity = "identity:read"
	// ScopeAccountNumbers is what is needed to send money to an account: its
	// routing number and tokenized account number (FDX payment networks).
	ScopeAccountNumbers = "account_numbers:read"
	ScopeOffline        = "offline_access"
)

// OpenID Connect scopes (SPEC §10). Like offline_access they are not account
// data: any purpose may ask for them, the customer sees them on the consent
// screen, and they only reach the customer's login identity (sub, name,
// email) through the id_token and userinfo.
const (
	ScopeOpenID  = "openid"
	ScopeProfile = "profile"
	ScopeEmail   = "email"
)

// DataScopes are the scopes a purpose policy may allow, in display order.
var DataScopes = []string{ScopeAccounts, ScopeBalances, ScopeTransactions, ScopeIdentity, ScopeAccountNumbers}

// IsOpenIDScope reports whether scope is one of the OpenID Connect scopes.
func IsOpenIDScope(scope string) bool {
	return scope == ScopeOpenID || scope == ScopeProfile || scope == ScopeEmail
}

// Day is the policy's unit of history and duration.
const Day = 24 * time.Hour

// MaxConsentDuration is the hard ceiling on any consent, whatever the policy.
const MaxConsentDuration = 365 * Day

// Policy is one purpose's rules.
type Policy struct {
	Code        string   `json:"code"`
	Label       string   `json:"label"`       // plain words for customers
	Description string   `json:"description"` // what the app may do with the data
	Scopes      []string `json:"scopes"`      // data scopes it may ask for
	// MaxHistoryDays is how far back transactions may be read (0: none).
	MaxHistoryDays int `json:"max_history_days"`
	// MaxDurationDays caps how long a consent may last.
	MaxDurationDays int `json:"max_duration_days"`
	// UnattendedPerDay caps calls without the customer present, per
	// consent, account and resource per day (SPEC §12).
	UnattendedPerDay int `json:"unattended_per_day"`
	// TransactionFields and AccountFields list the optional fields the
	// purpose may see (fields.go); nil means the SPEC §12 defaults.
	TransactionFields []string `json:"transaction_fields,omitempty"`
	AccountFields     []string `json:"account_fields,omitempty"`
}

// MaxDuration is the policy's consent duration cap.
func (p Policy) MaxDuration() time.Duration {
	d := time.Duration(p.MaxDurationDays) * Day
	return min(d, MaxConsentDuration)
}

// AllowsScope reports whether the purpose may be granted scope: its data
// scopes, plus offline_access and the OpenID Connect scopes, which any
// purpose may ask for.
func (p Policy) AllowsScope(scope string) bool {
	return scope == ScopeOffline || IsOpenIDScope(scope) || slices.Contains(p.Scopes, scope)
}

// Prohibited purposes: refused for everyone, always (SPEC §4).
var Prohibited = []string{"advertising", "targeted_advertising", "marketing", "cross_selling", "data_sale", "profiling"}

// Defaults is the SPEC §4 policy table.
var Defaults = []Policy{
	{
		Code: "personal_finance_management", Label: "Budgeting and money management",
		Description:    "To show you your balances and spending in one place and help you budget.",
		Scopes:         []string{ScopeAccounts, ScopeBalances, ScopeTransactions},
		MaxHistoryDays: 730, MaxDurationDays: 365, UnattendedPerDay: 4,
	},
	{
		Code: "account_verification", Label: "Checking that the account is yours",
		Description:    "To confirm that you own the account and that it is open, for example before a payment.",
		Scopes:         []string{ScopeAccounts, ScopeBalances, ScopeIdentity, ScopeAccountNumbers},
		MaxHistoryDays: 0, MaxDurationDays: 30, UnattendedPerDay: 4,
	},
	{
		Code: "credit_underwriting", Label: "Deciding on a loan or credit application",
		Description:    "To look at your income and spending when you apply for credit.",
		Scopes:         []string{ScopeAccounts, ScopeBalances, ScopeTransactions, ScopeIdentity},
		MaxHistoryDays: 365, MaxDurationDays: 90, UnattendedPerDay: 4,
	},
	{
		Code: "fraud_prevention", Label: "Protecting you from fraud",
		Description:    "To spot payments that look unusual and warn you about possible fraud.",
		Scopes:         []string{ScopeAccounts, ScopeBalances, ScopeTransactions},
		MaxHistoryDays: 90, MaxDurationDays: 365, UnattendedPerDay: 24,
	},
	{
		Code: "tax_preparation", Label: "Preparing your tax return",
		Description:    "To find the payments and income you need for your tax return.",
		Scopes:         []string{ScopeAccounts, ScopeTransactions},
		MaxHistoryDays: 730, MaxDurationDays: 120, UnattendedPerDay: 4,
	},
}

// Table is a validated policy: the purposes that may be granted.
type Table struct {
	byCode map[string]Policy
	codes  []string
}

// NewTable validates policies and builds a table. It refuses a policy that
// names a prohibited purpose, repeats a code, allows an unknown scope or has
// out-of-range numbers.
func NewTable(policies []Policy) (*Table, error) {
	if len(policies) == 0 {
		return nil, fmt.Errorf("purpose policy: no purposes defined")
	}
	t := &Table{byCode: map[string]Policy{}}
	for i, p := range policies {
		if p.Code == "" || p.Code != strings.ToLower(strings.TrimSpace(p.Code)) {
			return nil, fmt.Errorf("purpose policy: entry %d: code %q must be lower-case and non-empty", i, p.Code)
		}
		if IsProhibited(p.Code) {
			return nil, fmt.Errorf("purpose policy: %q is a prohibited purpose and can never be allowed", p.Code)
		}
		if _, dup := t.byCode[p.Code]; dup {
			return nil, fmt.Errorf("purpose policy: %q defined twice", p.Code)
		}
		if p.Label == "" || p.Description == "" {
			return nil, fmt.Errorf("purpose policy: %q needs a label and a description customers can read", p.Code)
		}
		if len(p.Scopes) == 0 {
			return nil, fmt.Errorf("purpose policy: %q allows no scopes", p.Code)
		}
		for _, s := range p.Scopes {
			if !slices.Contains(DataScopes, s) {
				return nil, fmt.Errorf("purpose policy: %q allows unknown scope %q", p.Code, s)
			}
		}
		if p.MaxHistoryDays < 0 || p.MaxHistoryDays > 3650 {
			return nil, fmt.Errorf("purpose policy: %q: max_history_days %d out of range 0..3650", p.Code, p.MaxHistoryDays)
		}
		if p.MaxDurationDays < 1 || p.MaxDurationDays > 365 {
			return nil, fmt.Errorf("purpose policy: %q: max_duration_days %d out of range 1..365", p.Code, p.MaxDurationDays)
		}
		if p.UnattendedPerDay < 0 {
			return nil, fmt.Errorf("purpose policy: %q: unattended_per_day must not be negative", p.Code)
		}
		if err := checkFields(p); err != nil {
			return nil, err
		}
		t.byCode[p.Code] = p
		t.codes = append(t.codes, p.Code)
	}
	return t, nil
}

// Default returns the table of SPEC §4.
func Default() *Table {
	t, err := NewTable(Defaults)
	if err != nil {
		panic(err) // the built-in table is valid; a test pins it
	}
	return t
}

// Lookup returns the policy of an allowed purpose code (exact match only).
func (t *Table) Lookup(code string) (Policy, bool) {
	p, ok := t.byCode[code]
	return p, ok
}

// Codes lists the allowed purpose codes in table order.
func (t *Table) Codes() []string { return slices.Clone(t.codes) }

// IsProhibited reports whether code is, or looks like, a prohibited purpose.
// Case, surrounding space, separators and common unicode look-alikes do not
// disguise it.
func IsProhibited(code string) bool {
	return slices.Contains(prohibitedFolded, fold(code))
}

// prohibitedFolded is Prohibited folded once: every data call asks
// IsProhibited of its consent's purpose and of any Data-Purpose header.
var prohibitedFolded = func() []string {
	f := make([]string, len(Prohibited))
	for i, p := range Prohibited {
		f[i] = fold(p)
	}
	return f
}()

// fold reduces a code to lower-case ASCII letters, mapping look-alikes and
// dropping separators, so "Ad-Vertising", "ＡＤＶＥＲＴＩＳＩＮＧ" and
// "аdvertising" (Cyrillic а) all fold to "advertising".
func fold(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 'a' || r > 'z' }) {
		return s // already folded: no copy
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + ('a' - 'A'))
		case r >= 'Ａ' && r <= 'Ｚ':
			b.WriteRune('a' + (r - 'Ａ'))
		case r >= 'ａ' && r <= 'ｚ':
			b.WriteRune('a' + (r - 'ａ'))
		default:
			if m, ok := confusables[r]; ok {
				b.WriteRune(m)
			}
			// separators, digits, space, zero-width and other marks are dropped
		}
	}
	return b.String()
}

// confusables maps letters that render like Latin ones (Cyrillic, Greek).
var confusables = map[rune]rune{
	'а': 'a', 'А': 'a', 'е': 'e', 'Е': 'e', 'о': 'o', 'О': 'o', 'р': 'p', 'Р': 'p',
	'с': 'c', 'С': 'c', 'у': 'y', 'х': 'x', 'Х': 'x', 'і': 'i', 'І': 'i', 'ѕ': 's',
	'Ѕ': 's', 'ј': 'j', 'ԁ': 'd', 'ɡ': 'g', 'һ': 'h', 'К': 'k', 'к': 'k', 'М': 'm',
	'Т': 't', 'т': 't', 'Н': 'h', 'В': 'b', 'ո': 'n', 'ν': 'v', 'ο': 'o', 'Ο': 'o',
	'α': 'a', 'Α': 'a', 'ε': 'e', 'Ε': 'e', 'ι': 'i', 'Ι': 'i', 'κ': 'k', 'Κ': 'k',
	'ρ': 'p', 'Ρ': 'p', 'τ': 't', 'Τ': 't', 'υ': 'u', 'Μ': 'm', 'Ν': 'n', 'ı': 'i',
	'ℓ': 'l', 'ӏ': 'l',
}

// Load reads a policy from JSON ({"purposes": [Policy…]}) and validates it
// like NewTable. Unknown fields are refused so a typo cannot silently drop a
// limit.
func Load(r io.Reader) (*Table, error) {
	var doc struct {
		Purposes []Policy `json:"purposes"`
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("purpose policy: malformed JSON: %w", err)
	}
	return NewTable(doc.Purposes)
}
