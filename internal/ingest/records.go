package ingest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/identity"
)

// The records as providers send them (JSON members, CSV columns). Ids are
// the provider's own; money is a decimal string in major units (negative:
// money out); times are RFC 3339. RecordType is optional in API batches
// (each endpoint takes one type) and required in files.

// InstitutionRecord names the provider's own institution.
type InstitutionRecord struct {
	RecordType string `json:"record_type,omitempty"`
	ID         string `json:"id"`
	Name       string `json:"name"`
}

// CustomerRecord is one of the institution's customers.
type CustomerRecord struct {
	RecordType  string `json:"record_type,omitempty"`
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	// The customer's profile (FDX contact, OpenID Connect name and email),
	// all optional: sent with full_name, it replaces the one on record;
	// without, the profile on record stays as it is.
	FullName          string `json:"full_name,omitempty"`
	GivenName         string `json:"given_name,omitempty"`
	FamilyName        string `json:"family_name,omitempty"`
	Email             string `json:"email,omitempty"`
	PhoneCountryCode  string `json:"phone_country_code,omitempty"`
	PhoneNumber       string `json:"phone_number,omitempty"`
	AddressLine1      string `json:"address_line1,omitempty"`
	AddressLine2      string `json:"address_line2,omitempty"`
	AddressCity       string `json:"address_city,omitempty"`
	AddressRegion     string `json:"address_region,omitempty"`
	AddressPostalCode string `json:"address_postal_code,omitempty"`
	AddressCountry    string `json:"address_country,omitempty"`
	// IDPSubject links the customer to its subject at the bank's identity
	// provider (--customer-idp): the customer logs in there. Empty: none.
	IDPSubject string `json:"idp_subject,omitempty"`
}

// hasProfile reports whether the record carries any profile field.
func (r *CustomerRecord) hasProfile() bool {
	return r.profile() != identity.Profile{}
}

func (r *CustomerRecord) profile() identity.Profile {
	return identity.Profile{
		FullName: r.FullName, GivenName: r.GivenName, FamilyName: r.FamilyName, Email: r.Email,
		PhoneCountryCode: r.PhoneCountryCode, PhoneNumber: r.PhoneNumber,
		Address: identity.Address{Line1: r.AddressLine1, Line2: r.AddressLine2, City: r.AddressCity,
			Region: r.AddressRegion, PostalCode: r.AddressPostalCode, Country: r.AddressCountry},
	}
}

// AccountRecord is one customer account.
type AccountRecord struct {
	RecordType string `json:"record_type,omitempty"`
	ID         string `json:"id"`
	CustomerID string `json:"customer_id"`
	// InstitutionID is optional; when given it must be the provider's own.
	InstitutionID string `json:"institution_id,omitempty"`
	Type          string `json:"type"`
	DisplayName   string `json:"display_name"`
	Last4         string `json:"last4"`
	Currency      string `json:"currency"`
	Status        string `json:"status,omitempty"` // open (default) | closed
	// Payment numbers of a checking or savings account, both or neither:
	// the 9-digit ABA routing number and the tokenized account number
	// (never the real one, docs/fdx.md). Without them, the numbers on
	// record stay as they are.
	RoutingNumber      string `json:"routing_number,omitempty"`
	AccountNumberToken string `json:"account_number_token,omitempty"`
}

// BalanceRecord is an account's balance at as_of.
type BalanceRecord struct {
	RecordType  string  `json:"record_type,omitempty"`
	AccountID   string  `json:"account_id"`
	Currency    string  `json:"currency"`
	Current     string  `json:"current"`
	Available   string  `json:"available"`
	CreditLimit *string `json:"credit_limit,omitempty"` // credit cards only
	AsOf        string  `json:"as_of"`
}

// TransactionRecord is one card transaction, or (Reversed) the reversal of
// a pending one, which carries only ID and AccountID.
type TransactionRecord struct {
	RecordType           string  `json:"record_type,omitempty"`
	ID                   string  `json:"id"`
	AccountID            string  `json:"account_id"`
	Status               string  `json:"status,omitempty"`
	TransactedAt         string  `json:"transacted_at,omitempty"`
	BookedAt             *string `json:"booked_at,omitempty"`
	Amount               string  `json:"amount,omitempty"`
	Currency             string  `json:"currency,omitempty"`
	Description          string  `json:"description,omitempty"`
	MerchantName         string  `json:"merchant_name,omitempty"`
	MerchantCategoryCode string  `json:"merchant_category_code,omitempty"`
	CardLast4            string  `json:"card_last4,omitempty"`
	Reversed             bool    `json:"reversed,omitempty"`
}

// newRecord returns a zero record of kind, to decode into.
func newRecord(k Kind) any {
	switch k {
	case KindInstitution:
		return &InstitutionRecord{}
	case KindCustomer:
		return &CustomerRecord{}
	case KindAccount:
		return &AccountRecord{}
	case KindBalance:
		return &BalanceRecord{}
	case KindTransaction:
		return &TransactionRecord{}
	}
	return nil
}

// recordKey returns the kind of a decoded record and its key in a batch.
func recordKey(rec any) (Kind, recordID) {
	switch r := rec.(type) {
	case *InstitutionRecord:
		return KindInstitution, key(KindInstitution, "")
	case *CustomerRecord:
		return KindCustomer, key(KindCustomer, r.ID)
	case *AccountRecord:
		return KindAccount, key(KindAccount, r.AccountID())
	case *BalanceRecord:
		return KindBalance, key(KindBalance, r.AccountID)
	case *TransactionRecord:
		return KindTransaction, key(KindTransaction, r.ID)
	}
	return "", recordID{}
}

// AccountID is the account record's id (a method so that recordKey reads
// alike for every kind).
func (r *AccountRecord) AccountID() string { return r.ID }

// Field limits.
const (
	maxIDLen          = 128
	maxNameLen        = 200
	maxDescriptionLen = 500
	// futureSlack is how far in the future a provider's clock may be.
	futureSlack = 48 * time.Hour
)

// validator checks records of one institution against the rules that need
// no database, and adds the valid ones to a batch.
type validator struct {
	institutionID string
	now           time.Time
	// accountIDs caches derived account ids: a batch of transactions names
	// few accounts many times. Bounded, for imports' constant memory.
	accountIDs map[string]string
}

func (v *validator) accountID(providerID string) string {
	if id, ok := v.accountIDs[providerID]; ok {
		return id
	}
	if v.accountIDs == nil || len(v.accountIDs) >= 10000 {
		v.accountIDs = make(map[string]string)
	}
	id := AccountID(v.institutionID, providerID)
	v.accountIDs[providerID] = id
	return id
}

// add validates rec (a *…Record) at p and adds it to b, or returns why not.
// ref names what duplicates refer to ("record 3" or "line 7").
func (v *validator) add(b *Batch, p pos, rec any) *FieldError {
	kind, k := recordKey(rec)
	if prev, dup := b.keys[k]; dup {
		field := "id"
		if kind == KindBalance {
			field = "account_id"
		}
		what := "record " + strconv.Itoa(prev)
		if p.line > 0 {
			what = "line " + strconv.Itoa(prev)
		}
		fe := p.err(field, fmt.Sprintf("duplicate of %s in this batch: send each %s once per batch", what, kind))
		if kind == KindInstitution {
			fe.Field = ""
		}
		return &fe
	}
	var fe *FieldError
	switch r := rec.(type) {
	case *InstitutionRecord:
		fe = v.institution(b, p, r)
	case *CustomerRecord:
		fe = v.customer(b, p, r)
	case *AccountRecord:
		fe = v.account(b, p, r)
	case *BalanceRecord:
		fe = v.balance(b, p, r)
	case *TransactionRecord:
		fe = v.transaction(b, p, r)
	default:
		e := p.err("", "unknown record type")
		return &e
	}
	if fe == nil {
		ref := p.index
		if p.line > 0 {
			ref = p.line
		}
		b.keys[k] = ref
	}
	return fe
}

// check collects the first problem of a record.
type check struct {
	p  pos
	fe *FieldError
}

func (c *check) fail(field, reason string) {
	if c.fe == nil {
		e := c.p.err(field, reason)
		c.fe = &e
	}
}

func (c *check) failed() bool { return c.fe != nil }

// id checks a provider id.
func (c *check) id(field, s string) {
	switch {
	case s == "":
		c.fail(field, "required")
	case len(s) > maxIDLen:
		c.fail(field, fmt.Sprintf("longer than %d bytes", maxIDLen))
	case strings.TrimSpace(s) != s:
		c.fail(field, "leading or trailing white space")
	default:
		c.text(field, s, maxIDLen, true)
	}
}

// text checks a free-text field: UTF-8, no control characters, bounded,
// and nothing that looks like a full card number.
func (c *check) text(field, s string, maxLen int, required bool) {
	switch {
	case s == "" && required:
		c.fail(field, "required")
	case !utf8.ValidString(s):
		c.fail(field, "not valid UTF-8")
	case len(s) > maxLen:
		c.fail(field, fmt.Sprintf("longer than %d bytes", maxLen))
	case strings.IndexFunc(s, unicode.IsControl) >= 0 || strings.ContainsRune(s, utf8.RuneError):
		c.fail(field, "contains control characters")
	case looksLikePAN(s):
		c.fail(field, "looks like a full card number (13–19 digits): full card numbers are never accepted; send only the last four digits in card_last4 or last4")
	}
}

func (c *check) oneOf(field, s string, allowed ...string) {
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	if s == "" {
		c.fail(field, "required: one of "+strings.Join(allowed, ", "))
		return
	}
	c.fail(field, fmt.Sprintf("%q is not one of %s", s, strings.Join(allowed, ", ")))
}

func (c *check) currency(field, s string) {
	switch {
	case s == "":
		c.fail(field, "required: an ISO 4217 code such as EUR")
	case !KnownCurrency(s):
		c.fail(field, fmt.Sprintf("%q is not a known ISO 4217 currency code", s))
	}
}

// digits checks a field of exactly n ASCII digits (or empty when optional).
func (c *check) digits(field, s string, n int, required bool) {
	if s == "" && !required {
		return
	}
	if len(s) != n || !allDigits(s) {
		c.fail(field, fmt.Sprintf("must be exactly %d digits", n))
	}
}

// money parses a decimal string in major units of currency (which must
// already be known).
func (c *check) money(field, s, currency string) int64 {
	if c.failed() {
		return 0
	}
	if s == "" {
		c.fail(field, `required: a decimal string such as "-12.34"`)
		return 0
	}
	rest, _ := strings.CutPrefix(s, "-")
	whole, frac, hasPoint := strings.Cut(rest, ".")
	if !allDigits(whole) || (hasPoint && !allDigits(frac)) {
		c.fail(field, fmt.Sprintf(`%q is not a decimal number: want a string such as "-12.34" (no exponent, spaces or separators)`, s))
		return 0
	}
	if d := accounts.MinorDigits(currency); len(frac) > d {
		if d == 0 {
			c.fail(field, fmt.Sprintf("%s has no minor unit: no decimal places allowed", currency))
		} else {
			c.fail(field, fmt.Sprintf("more than %d decimal places for %s", d, currency))
		}
		return 0
	}
	n, err := accounts.ParseMajor(s, currency)
	if err != nil {
		c.fail(field, "out of range")
		return 0
	}
	return n
}

// time parses an RFC 3339 date-time that is not in the future.
func (c *check) time(field, s string, now time.Time) time.Time {
	if c.failed() {
		return time.Time{}
	}
	if s == "" {
		c.fail(field, "required: an RFC 3339 date-time such as 2025-01-31T12:00:00Z")
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	switch {
	case err != nil:
		c.fail(field, fmt.Sprintf("%q is not an RFC 3339 date-time such as 2025-01-31T12:00:00Z", s))
	case t.Year() < 1970:
		c.fail(field, "before 1970")
	case t.After(now.Add(futureSlack)):
		c.fail(field, "more than 48 hours in the future")
	}
	return micros(t)
}

func (v *validator) institution(b *Batch, p pos, r *InstitutionRecord) *FieldError {
	c := check{p: p}
	c.id("id", r.ID)
	if !c.failed() && r.ID != v.institutionID {
		c.fail("id", fmt.Sprintf("institution %q is not yours: this provider writes only institution %q", r.ID, v.institutionID))
	}
	c.text("name", r.Name, maxNameLen, true)
	if c.failed() {
		return c.fe
	}
	b.institution = &institutionRec{pos: p, in: accounts.Institution{ID: r.ID, Name: r.Name}}
	return nil
}

func (v *validator) customer(b *Batch, p pos, r *CustomerRecord) *FieldError {
	c := check{p: p}
	c.id("id", r.ID)
	c.text("display_name", r.DisplayName, maxNameLen, true)
	// Not c.text: an IdP subject may well be a long run of digits.
	if s := r.IDPSubject; len(s) > maxNameLen || !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		c.fail("idp_subject", fmt.Sprintf("must be the identity provider's subject: valid UTF-8, no control characters, at most %d bytes", maxNameLen))
	}
	var profile *identity.Profile
	if !c.failed() && r.hasProfile() {
		pr := r.profile()
		pr.CustomerID = CustomerID(v.institutionID, r.ID)
		if e := pr.Validate(); e != nil {
			c.fail(e.Field, e.Reason)
		}
		// No card numbers in any of it, as in every text field.
		for _, f := range []struct{ name, value string }{
			{"full_name", r.FullName}, {"given_name", r.GivenName}, {"family_name", r.FamilyName}, {"email", r.Email},
			{"address_line1", r.AddressLine1}, {"address_line2", r.AddressLine2}, {"address_city", r.AddressCity},
			{"address_region", r.AddressRegion}, {"address_postal_code", r.AddressPostalCode},
		} {
			c.text(f.name, f.value, maxNameLen, false)
		}
		profile = &pr
	}
	if c.failed() {
		return c.fe
	}
	b.customers = append(b.customers, customerRec{pos: p, providerID: r.ID, id: CustomerID(v.institutionID, r.ID),
		username: Username(v.institutionID, r.ID), displayName: r.DisplayName, profile: profile, idpSubject: r.IDPSubject})
	return nil
}

func (v *validator) account(b *Batch, p pos, r *AccountRecord) *FieldError {
	c := check{p: p}
	c.id("id", r.ID)
	c.id("customer_id", r.CustomerID)
	if r.InstitutionID != "" && r.InstitutionID != v.institutionID {
		c.fail("institution_id", fmt.Sprintf("institution %q is not yours: this provider writes only institution %q", r.InstitutionID, v.institutionID))
	}
	c.oneOf("type", r.Type, accounts.TypeChecking, accounts.TypeSavings, accounts.TypeCreditCard)
	c.text("display_name", r.DisplayName, maxNameLen, true)
	c.digits("last4", r.Last4, 4, true)
	c.currency("currency", r.Currency)
	status := r.Status
	if status == "" {
		status = "open"
	}
	c.oneOf("status", status, "open", "closed")
	var numbers *accounts.PaymentNumbers
	switch {
	case c.failed() || (r.RoutingNumber == "" && r.AccountNumberToken == ""):
	case !accounts.IsDeposit(r.Type):
		c.fail("routing_number", "only checking and savings accounts carry payment numbers: leave routing_number and account_number_token out")
	case r.RoutingNumber == "":
		c.fail("routing_number", "required with account_number_token: send both or neither")
	case r.AccountNumberToken == "":
		c.fail("account_number_token", "required with routing_number: send both or neither")
	default:
		n := accounts.PaymentNumbers{AccountID: AccountID(v.institutionID, r.ID), RoutingNumber: r.RoutingNumber, AccountNumberToken: r.AccountNumberToken}
		if field, reason := n.NumberProblem(); field != "" {
			c.fail(field, reason)
		}
		numbers = &n
	}
	if c.failed() {
		return c.fe
	}
	b.accounts = append(b.accounts, accountRec{pos: p, providerID: r.ID, customerProviderID: r.CustomerID, a: accounts.Account{
		ID: AccountID(v.institutionID, r.ID), CustomerID: CustomerID(v.institutionID, r.CustomerID), InstitutionID: v.institutionID,
		Type: r.Type, DisplayName: r.DisplayName, Last4: r.Last4, Currency: r.Currency, Status: status,
	}, numbers: numbers})
	return nil
}

func (v *validator) balance(b *Batch, p pos, r *BalanceRecord) *FieldError {
	c := check{p: p}
	c.id("account_id", r.AccountID)
	c.currency("currency", r.Currency)
	current := c.money("current", r.Current, r.Currency)
	available := c.money("available", r.Available, r.Currency)
	var limit *int64
	if r.CreditLimit != nil {
		n := c.money("credit_limit", *r.CreditLimit, r.Currency)
		if !c.failed() && n < 0 {
			c.fail("credit_limit", "must not be negative")
		}
		limit = &n
	}
	asOf := c.time("as_of", r.AsOf, v.now)
	if c.failed() {
		return c.fe
	}
	b.balances = append(b.balances, balanceRec{pos: p, accountProviderID: r.AccountID, b: accounts.Balance{
		AccountID: v.accountID(r.AccountID), Currency: r.Currency,
		Current: current, Available: available, CreditLimit: limit, AsOf: asOf,
	}})
	return nil
}

func (v *validator) transaction(b *Batch, p pos, r *TransactionRecord) *FieldError {
	c := check{p: p}
	c.id("id", r.ID)
	c.id("account_id", r.AccountID)
	if r.Reversed {
		// A reversal names the pending transaction and nothing else.
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"status", r.Status != ""}, {"transacted_at", r.TransactedAt != ""}, {"booked_at", r.BookedAt != nil},
			{"amount", r.Amount != ""}, {"currency", r.Currency != ""}, {"description", r.Description != ""},
			{"merchant_name", r.MerchantName != ""}, {"merchant_category_code", r.MerchantCategoryCode != ""},
			{"card_last4", r.CardLast4 != ""},
		} {
			if f.set {
				c.fail(f.name, "a reversal carries only id, account_id and reversed")
			}
		}
		if c.failed() {
			return c.fe
		}
		b.transactions = append(b.transactions, transactionRec{pos: p, providerID: r.ID, accountProviderID: r.AccountID, reversed: true,
			t: accounts.Transaction{ID: TransactionID(v.institutionID, r.ID), AccountID: v.accountID(r.AccountID)}})
		return nil
	}
	c.oneOf("status", r.Status, accounts.StatusBooked, accounts.StatusPending)
	transacted := c.time("transacted_at", r.TransactedAt, v.now)
	var booked *time.Time
	switch {
	case c.failed():
	case r.Status == accounts.StatusPending && r.BookedAt != nil:
		c.fail("booked_at", "must be absent or null while pending")
	case r.Status == accounts.StatusBooked && r.BookedAt == nil:
		c.fail("booked_at", "required when status is booked")
	case r.Status == accounts.StatusBooked:
		t := c.time("booked_at", *r.BookedAt, v.now)
		if !c.failed() && t.Before(transacted) {
			c.fail("booked_at", "before transacted_at")
		}
		booked = &t
	}
	c.currency("currency", r.Currency)
	amount := c.money("amount", r.Amount, r.Currency)
	c.text("description", r.Description, maxDescriptionLen, false)
	c.text("merchant_name", r.MerchantName, maxNameLen, false)
	c.digits("merchant_category_code", r.MerchantCategoryCode, 4, false)
	c.digits("card_last4", r.CardLast4, 4, false)
	if c.failed() {
		return c.fe
	}
	b.transactions = append(b.transactions, transactionRec{pos: p, providerID: r.ID, accountProviderID: r.AccountID, t: accounts.Transaction{
		ID: TransactionID(v.institutionID, r.ID), AccountID: v.accountID(r.AccountID), Status: r.Status,
		TransactedAt: transacted, BookedAt: booked, Amount: amount, Currency: r.Currency, Description: r.Description,
		MerchantName: r.MerchantName, MCC: r.MerchantCategoryCode, CardLast4: r.CardLast4,
	}})
	return nil
}

// looksLikePAN reports whether s holds what could be a full card number:
// 13 to 19 digits in a row, or consecutive groups of three or more digits
// joined by single spaces or hyphens ("4111 1111 1111 1111",
// "3782-822463-10005") that add up to 13 to 19 digits. It errs on the side
// of refusing: a long reference number is refused too and the provider
// masks it, whereas a stored card number could not be unstored.
func looksLikePAN(s string) bool {
	var buf [8]int
	groups := buf[:0] // digit counts of the current run of joined groups
	flush := func() bool {
		for i := range groups {
			sum := 0
			for _, n := range groups[i:] {
				if sum += n; sum > 19 {
					break
				}
				if sum >= 13 {
					return true
				}
			}
		}
		groups = groups[:0]
		return false
	}
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		n := j - i
		if n >= 13 && n <= 19 {
			return true
		}
		if n >= 3 {
			groups = append(groups, n)
			if j+1 < len(s) && (s[j] == ' ' || s[j] == '-') && isDigit(s[j+1]) {
				i = j + 1 // the run goes on
				continue
			}
		}
		if flush() {
			return true
		}
		i = j
	}
	return flush()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
