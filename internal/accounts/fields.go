package accounts

import "strings"

// TxFields is a set of a transaction's optional fields (SPEC §12: the ones
// a purpose may be denied). The zero value is the empty set.
type TxFields uint8

// The optional transaction fields; the others (id, account, status, times,
// amount, currency) are always read.
const (
	TxDescription TxFields = 1 << iota
	TxMerchantName
	TxMCC
	TxCardLast4
)

// txOptional maps each optional field to its column, in txColumns order.
var txOptional = []struct {
	field  TxFields
	column string
}{
	{TxDescription, "description"},
	{TxMerchantName, "merchant_name"},
	{TxMCC, "mcc"},
	{TxCardLast4, "card_last4"},
}

// Has reports whether f holds every field of g.
func (f TxFields) Has(g TxFields) bool { return f&g == g }

// txSelect is the column list of a transaction read that leaves out the
// hidden fields: a hidden column is not named at all (an empty string
// literal stands in for it), so the database never reads it for the caller.
// prefix qualifies the columns ("" or "t.").
func txSelect(prefix string, hidden TxFields) string {
	if hidden == 0 && prefix == "" {
		return txColumns
	}
	cols := []string{"id", "account_id", "status", "transacted_at", "booked_at", "amount_minor", "currency"}
	for i := range cols {
		cols[i] = prefix + cols[i]
	}
	for _, o := range txOptional {
		if hidden.Has(o.field) {
			cols = append(cols, "''")
		} else {
			cols = append(cols, prefix+o.column)
		}
	}
	return strings.Join(cols, ", ")
}
