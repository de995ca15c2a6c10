package accounts

import (
	"strings"
	"testing"
	"time"
)

// TestHiddenFieldsNotSelected: the page and sync queries of a purpose that
// may not see description, merchant name or card digits do not name those
// columns at all (SPEC §12: never read), so no row of them leaves the
// database for that caller.
func TestHiddenFieldsNotSelected(t *testing.T) {
	hidden := TxDescription | TxMerchantName | TxCardLast4
	page, _ := txPageSQL(TxQuery{AccountID: "a", From: time.Unix(0, 0), To: time.Now(), Limit: 10, Hidden: hidden})
	queries := map[string]string{"transactions page": page, "sync": "SELECT " + txSelect("", hidden) + " FROM transactions"}
	for name, q := range queries {
		for _, col := range []string{"description", "merchant_name", "card_last4"} {
			if strings.Contains(q, col) {
				t.Errorf("%s query names %s: %s", name, col, q)
			}
		}
		if !strings.Contains(q, "mcc") || !strings.Contains(q, "amount_minor") {
			t.Errorf("%s query lost a visible column: %s", name, q)
		}
	}
	if all, _ := txPageSQL(TxQuery{AccountID: "a", Limit: 1}); !strings.Contains(all, "description") {
		t.Errorf("with nothing hidden the page reads every column: %s", all)
	}
}
