package purpose

import (
	"fmt"
	"slices"
)

// Purpose-shaped fields (SPEC §12): a policy names the optional fields of
// accounts and transactions its purpose may see. The others are never read
// for it and are served as null (/v1) or left out (/fdx/v6).

// Optional transaction fields, by their /v1 names.
const (
	FieldDescription          = "description"
	FieldMerchantName         = "merchant_name"
	FieldMerchantCategoryCode = "merchant_category_code"
	FieldCardLast4            = "card_last4"
)

// Optional account fields, by their /v1 names.
const (
	FieldDisplayName  = "display_name"
	FieldMaskedNumber = "masked_number"
)

// TransactionFields are the optional transaction fields, in display order;
// the rest (id, account, status, dates, amount, currency) every purpose
// with transactions:read sees.
var TransactionFields = []string{FieldDescription, FieldMerchantName, FieldMerchantCategoryCode, FieldCardLast4}

// AccountFields are the optional account fields, in display order.
var AccountFields = []string{FieldDisplayName, FieldMaskedNumber}

// fieldWords are the plain words the consent screen uses for a field.
var fieldWords = map[string]string{
	FieldDescription:          "the description of each payment",
	FieldMerchantName:         "the names of the shops you pay",
	FieldMerchantCategoryCode: "what kind of shop each payment went to",
	FieldCardLast4:            "which of your cards you paid with (its last 4 digits)",
	FieldDisplayName:          "the names you gave your accounts",
	FieldMaskedNumber:         "the last 4 digits of your account numbers",
}

// defaultHidden are the fields SPEC §12 keeps from a purpose by default.
var defaultHidden = map[string][]string{
	"credit_underwriting": {FieldDescription, FieldMerchantName, FieldCardLast4},
	"tax_preparation":     {FieldCardLast4},
}

// FieldSet is what a purpose may see of the optional fields: a small pure
// value the renderers (/v1, /fdx/v6) and the store queries share.
type FieldSet struct {
	hidden map[string]bool
}

// Sees reports whether the purpose may see field. Fields that are not
// optional are always seen.
func (f FieldSet) Sees(field string) bool { return !f.hidden[field] }

// Hidden lists the optional fields the purpose may not see, transaction
// fields first, in display order.
func (f FieldSet) Hidden() []string {
	var out []string
	for _, name := range append(slices.Clone(TransactionFields), AccountFields...) {
		if f.hidden[name] {
			out = append(out, name)
		}
	}
	return out
}

// FieldWords says in plain words what a field is, for customers.
func FieldWords(field string) string { return fieldWords[field] }

// IsTransactionField reports whether field is an optional transaction field
// (else it is an account field, or not optional).
func IsTransactionField(field string) bool { return slices.Contains(TransactionFields, field) }

// NotSeenWords says in plain words, one phrase per field, what the app will
// not see.
func (f FieldSet) NotSeenWords() []string {
	var out []string
	for _, name := range f.Hidden() {
		out = append(out, fieldWords[name])
	}
	return out
}

// Fields is the policy's field set: the fields it lists (transaction_fields
// and account_fields in the policy file), or the SPEC §12 defaults of its
// code when it lists none.
func (p Policy) Fields() FieldSet {
	hidden := map[string]bool{}
	if p.TransactionFields == nil {
		for _, f := range defaultHidden[p.Code] {
			hidden[f] = true
		}
	} else {
		for _, f := range TransactionFields {
			hidden[f] = !slices.Contains(p.TransactionFields, f)
		}
	}
	if p.AccountFields != nil {
		for _, f := range AccountFields {
			hidden[f] = !slices.Contains(p.AccountFields, f)
		}
	}
	return FieldSet{hidden: hidden}
}

// checkFields validates a policy's field lists: known names only, and a
// purpose of SPEC §12 can only be tightened, never shown a field its
// default hides.
func checkFields(p Policy) error {
	for _, f := range p.TransactionFields {
		if !slices.Contains(TransactionFields, f) {
			return fmt.Errorf("purpose policy: %q: unknown transaction field %q (optional fields: %v)", p.Code, f, TransactionFields)
		}
		if slices.Contains(defaultHidden[p.Code], f) {
			return fmt.Errorf("purpose policy: %q may never see the transaction field %q (SPEC §12); a policy file can only take fields away", p.Code, f)
		}
	}
	for _, f := range p.AccountFields {
		if !slices.Contains(AccountFields, f) {
			return fmt.Errorf("purpose policy: %q: unknown account field %q (optional fields: %v)", p.Code, f, AccountFields)
		}
	}
	return nil
}
