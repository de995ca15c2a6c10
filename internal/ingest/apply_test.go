package ingest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// fixture is a migrated database with institutions bank-a and bank-b.
type fixture struct {
	db  *store.DB
	svc *Service
	acc *accounts.SQLStore
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	f := &fixture{db: db, svc: NewService(db, func() time.Time { return testNow }), acc: accounts.NewSQLStore(db)}
	for _, in := range []accounts.Institution{{ID: "bank-a", Name: "Bank A"}, {ID: "bank-b", Name: "Bank B"}} {
		if err := f.acc.UpsertInstitution(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// apply parses records of kind for institution and applies them.
func (f *fixture) apply(t *testing.T, institution string, kind Kind, records ...string) (Stats, error) {
	t.Helper()
	b, err := f.svc.ParseJSON(institution, kind, []byte(`{"records":[`+strings.Join(records, ",")+`]}`), 0)
	if err != nil {
		return Stats{}, err
	}
	return f.svc.Apply(context.Background(), b)
}

func (f *fixture) mustApply(t *testing.T, institution string, kind Kind, records ...string) Stats {
	t.Helper()
	st, err := f.apply(t, institution, kind, records...)
	if err != nil {
		t.Fatalf("apply %s: %v", kind, err)
	}
	return st
}

// refused checks that err refuses exactly one record, at index, naming
// field, with a reason containing reason.
func refused(t *testing.T, err error, index int, field, reason string) {
	t.Helper()
	var re *RecordsError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want *RecordsError", err)
	}
	if len(re.Errors) != 1 || re.Errors[0].Index != index || re.Errors[0].Field != field || !strings.Contains(re.Errors[0].Reason, reason) {
		t.Fatalf("errors %+v, want one at index %d field %q reason containing %q", re.Errors, index, field, reason)
	}
}

func (f *fixture) count(t *testing.T, table string) int64 {
	t.Helper()
	var n int64
	if err := f.db.Raw("SELECT COUNT(*) FROM " + table).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// transactions returns the account's transactions, newest first.
func (f *fixture) transactions(t *testing.T, accountID string) []accounts.Transaction {
	t.Helper()
	txs, _, err := f.acc.Transactions(context.Background(), accounts.TxQuery{AccountID: accountID,
		From: testNow.AddDate(-2, 0, 0), To: testNow.AddDate(0, 0, 3), Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return txs
}

const (
	custC1   = `{"id":"c1","display_name":"Carol"}`
	acctA1   = `{"id":"a1","customer_id":"c1","type":"credit_card","display_name":"Carol's card","last4":"4242","currency":"USD"}`
	balA1    = `{"account_id":"a1","currency":"USD","current":"-120.50","available":"879.50","credit_limit":"1000.00","as_of":"2025-06-30T00:00:00Z"}`
	pendingT = `{"id":"t1","account_id":"a1","status":"pending","transacted_at":"2025-06-28T10:00:00Z","amount":"-20.00","currency":"USD","description":"Coffee","card_last4":"4242"}`
	bookedT  = `{"id":"t1","account_id":"a1","status":"booked","transacted_at":"2025-06-28T10:00:00Z","booked_at":"2025-06-29T00:00:00Z","amount":"-22.00","currency":"USD","description":"Coffee + tip","card_last4":"4242"}`
)

func (f *fixture) seedA1(t *testing.T) {
	t.Helper()
	f.mustApply(t, "bank-a", KindCustomer, custC1)
	f.mustApply(t, "bank-a", KindAccount, acctA1)
}

// The same batch twice: created, then unchanged, and the same state.
func TestApplyIdempotent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		batches := []struct {
			kind    Kind
			records []string
		}{
			{KindCustomer, []string{custC1, `{"id":"c2","display_name":"Dan"}`}},
			{KindAccount, []string{acctA1, `{"id":"a2","customer_id":"c2","type":"checking","display_name":"Dan","last4":"1234","currency":"JPY"}`}},
			{KindBalance, []string{balA1}},
			{KindTransaction, []string{pendingT,
				`{"id":"t2","account_id":"a2","status":"booked","transacted_at":"2025-06-27T10:00:00Z","booked_at":"2025-06-27T10:00:00Z","amount":"-1500","currency":"JPY"}`}},
		}
		for _, b := range batches {
			st := f.mustApply(t, "bank-a", b.kind, b.records...)
			if st != (Stats{Records: len(b.records), Created: len(b.records)}) {
				t.Errorf("%s first time: %+v", b.kind, st)
			}
		}
		before := f.transactions(t, AccountID("bank-a", "a2"))
		for _, b := range batches {
			st := f.mustApply(t, "bank-a", b.kind, b.records...)
			if st != (Stats{Records: len(b.records), Unchanged: len(b.records)}) {
				t.Errorf("%s again: %+v, want all unchanged", b.kind, st)
			}
		}
		after := f.transactions(t, AccountID("bank-a", "a2"))
		if len(before) != 1 || len(after) != 1 || !sameTransaction(before[0], after[0]) || after[0].Amount != -1500 {
			t.Errorf("state changed: %+v → %+v", before, after)
		}
		// The customer exists with a login name and no usable password.
		var rows []struct{ Username, PasswordHash string }
		db.Raw(`SELECT username, password_hash FROM customers WHERE id = ?`, CustomerID("bank-a", "c1")).Scan(&rows)
		if len(rows) != 1 || rows[0].Username != "bank-a:c1" || rows[0].PasswordHash != UnusablePasswordHash {
			t.Errorf("customer row %+v", rows)
		}
		acc, err := f.acc.Get(context.Background(), CustomerID("bank-a", "c1"), AccountID("bank-a", "a1"))
		if err != nil || acc.InstitutionID != "bank-a" || acc.InstitutionName != "Bank A" || acc.Status != "open" {
			t.Errorf("account %+v, %v", acc, err)
		}
		bal, err := f.acc.Balance(context.Background(), AccountID("bank-a", "a1"))
		if err != nil || bal.Current != -12050 || bal.CreditLimit == nil || *bal.CreditLimit != 100000 {
			t.Errorf("balance %+v, %v", bal, err)
		}
		// Updates are counted as such.
		st := f.mustApply(t, "bank-a", KindCustomer, `{"id":"c1","display_name":"Carol B."}`)
		if st.Updated != 1 {
			t.Errorf("rename: %+v", st)
		}
	})
}

func TestApplyPendingBookedReversed(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.seedA1(t)
		acc := AccountID("bank-a", "a1")
		f.mustApply(t, "bank-a", KindTransaction, pendingT)
		if st := f.mustApply(t, "bank-a", KindTransaction, bookedT); st.Updated != 1 {
			t.Errorf("pending → booked: %+v", st)
		}
		txs := f.transactions(t, acc)
		if len(txs) != 1 || txs[0].Status != accounts.StatusBooked || txs[0].Amount != -2200 || txs[0].BookedAt == nil ||
			txs[0].ID != TransactionID("bank-a", "t1") {
			t.Fatalf("after booking: %+v", txs)
		}
		// Booked is final: a late pending copy changes nothing, a new amount
		// or a reversal is refused.
		if st := f.mustApply(t, "bank-a", KindTransaction, pendingT); st.Unchanged != 1 {
			t.Errorf("late pending copy: %+v, want unchanged", st)
		}
		if txs := f.transactions(t, acc); txs[0].Status != accounts.StatusBooked || txs[0].Amount != -2200 {
			t.Errorf("a late pending copy changed a booked transaction: %+v", txs[0])
		}
		_, err := f.apply(t, "bank-a", KindTransaction, strings.Replace(bookedT, `"-22.00"`, `"-23.00"`, 1))
		refused(t, err, 0, "amount", "final")
		_, err = f.apply(t, "bank-a", KindTransaction, `{"id":"t1","account_id":"a1","reversed":true}`)
		refused(t, err, 0, "reversed", "send a refund")
		// A booked transaction may still get better details.
		if st := f.mustApply(t, "bank-a", KindTransaction, strings.Replace(bookedT, "Coffee + tip", "Coffee and tip", 1)); st.Updated != 1 {
			t.Errorf("description update: %+v", st)
		}

		// Reversal of a pending transaction.
		t2 := `{"id":"t2","account_id":"a1","status":"pending","transacted_at":"2025-06-29T10:00:00Z","amount":"-5.00","currency":"USD"}`
		f.mustApply(t, "bank-a", KindTransaction, t2)
		reversal := `{"id":"t2","account_id":"a1","reversed":true}`
		if st := f.mustApply(t, "bank-a", KindTransaction, reversal); st.Reversed != 1 {
			t.Errorf("reversal: %+v", st)
		}
		if txs := f.transactions(t, acc); len(txs) != 1 {
			t.Errorf("after reversal: %d transactions, want 1", len(txs))
		}
		if st := f.mustApply(t, "bank-a", KindTransaction, reversal); st.Unchanged != 1 {
			t.Errorf("second reversal: %+v, want unchanged", st)
		}
		if st := f.mustApply(t, "bank-a", KindTransaction, t2); st.Unchanged != 1 {
			t.Errorf("late pending copy of a reversed transaction: %+v, want unchanged", st)
		}
		t2Booked := strings.Replace(t2, `"pending"`, `"booked","booked_at":"2025-06-29T12:00:00Z"`, 1)
		_, err = f.apply(t, "bank-a", KindTransaction, t2Booked)
		refused(t, err, 0, "id", "was reversed")
		_, err = f.apply(t, "bank-a", KindTransaction, `{"id":"nope","account_id":"a1","reversed":true}`)
		refused(t, err, 0, "id", "no pending transaction")
	})
}

// One bad record and nothing of its batch is written.
func TestApplyAllOrNothing(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.seedA1(t)
		before := f.count(t, "transactions")
		_, err := f.apply(t, "bank-a", KindTransaction, pendingT,
			`{"id":"t2","account_id":"a1","status":"pending","transacted_at":"2025-06-29T10:00:00Z","amount":"-5.00","currency":"USD"}`,
			`{"id":"t3","account_id":"missing","status":"pending","transacted_at":"2025-06-29T10:00:00Z","amount":"-5.00","currency":"USD"}`)
		refused(t, err, 2, "account_id", `unknown account "missing"`)
		if n := f.count(t, "transactions"); n != before {
			t.Errorf("%d transactions written by a refused batch", n-before)
		}
		// Accounts need their customer; nothing of the batch is written.
		_, err = f.apply(t, "bank-a", KindAccount,
			`{"id":"a9","customer_id":"c1","type":"savings","display_name":"S","last4":"0001","currency":"USD"}`,
			`{"id":"a8","customer_id":"ghost","type":"savings","display_name":"S","last4":"0001","currency":"USD"}`)
		refused(t, err, 1, "customer_id", `unknown customer "ghost"`)
		if n := f.count(t, "accounts"); n != 1 {
			t.Errorf("%d accounts, want 1", n)
		}
	})
}

func TestApplyRules(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.seedA1(t)
		f.mustApply(t, "bank-a", KindCustomer, `{"id":"c2","display_name":"Dan"}`)
		f.mustApply(t, "bank-a", KindAccount, `{"id":"chk","customer_id":"c2","type":"checking","display_name":"D","last4":"1111","currency":"USD"}`)
		tests := []struct {
			name, kind, record, field, reason string
		}{
			{"account to another customer", "account", strings.Replace(acctA1, `"c1"`, `"c2"`, 1), "customer_id", "never changes owner"},
			{"account currency change", "account", strings.Replace(acctA1, `"USD"`, `"EUR"`, 1), "currency", "never changes"},
			{"balance in another currency", "balance", strings.Replace(balA1, `"USD"`, `"EUR"`, 1), "currency", "the account's currency is USD"},
			{"credit limit on a checking account", "balance", strings.Replace(balA1, `"a1"`, `"chk"`, 1), "credit_limit", "only credit_card"},
			{"balance of an unknown account", "balance", strings.Replace(balA1, `"a1"`, `"zz"`, 1), "account_id", "unknown account"},
			{"transaction moving account", "transaction", strings.Replace(pendingT, `"a1"`, `"chk"`, 1), "account_id", "never moves"},
		}
		f.mustApply(t, "bank-a", KindTransaction, pendingT)
		for _, tt := range tests {
			_, err := f.apply(t, "bank-a", Kind(tt.kind), tt.record)
			t.Run(tt.name, func(t *testing.T) { refused(t, err, 0, tt.field, tt.reason) })
		}
		// A balance older than the stored one changes nothing.
		f.mustApply(t, "bank-a", KindBalance, balA1)
		older := strings.NewReplacer(`"2025-06-30T00:00:00Z"`, `"2025-06-01T00:00:00Z"`, `"-120.50"`, `"-1.00"`).Replace(balA1)
		if st := f.mustApply(t, "bank-a", KindBalance, older); st.Unchanged != 1 {
			t.Errorf("older balance: %+v", st)
		}
		if b, _ := f.acc.Balance(context.Background(), AccountID("bank-a", "a1")); b.Current != -12050 {
			t.Errorf("older balance overwrote the newer: %+v", b)
		}
	})
}

// A provider only ever reaches its own institution's data: the same
// provider ids at another institution are other things, and another
// institution's records are refused.
func TestApplyInstitutionsApart(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.seedA1(t)
		f.mustApply(t, "bank-a", KindTransaction, pendingT)
		// bank-b cannot name bank-a's account, by provider id or by served id.
		_, err := f.apply(t, "bank-b", KindTransaction, pendingT)
		refused(t, err, 0, "account_id", `unknown account "a1"`)
		_, err = f.apply(t, "bank-b", KindTransaction, strings.Replace(pendingT, `"a1"`, `"`+AccountID("bank-a", "a1")+`"`, 1))
		refused(t, err, 0, "account_id", "unknown account")
		_, err = f.apply(t, "bank-b", KindAccount, strings.Replace(acctA1, `"customer_id"`, `"institution_id":"bank-a","customer_id"`, 1))
		refused(t, err, 0, "institution_id", "not yours")
		_, err = f.apply(t, "bank-b", KindInstitution, `{"id":"bank-a","name":"Mine now"}`)
		refused(t, err, 0, "id", "not yours")
		// The same provider ids at bank-b are bank-b's own, apart from bank-a's.
		f.mustApply(t, "bank-b", KindCustomer, custC1)
		f.mustApply(t, "bank-b", KindAccount, acctA1)
		f.mustApply(t, "bank-b", KindTransaction, bookedT)
		if a, b := f.transactions(t, AccountID("bank-a", "a1")), f.transactions(t, AccountID("bank-b", "a1")); len(a) != 1 || len(b) != 1 ||
			a[0].Status != accounts.StatusPending || b[0].Status != accounts.StatusBooked {
			t.Errorf("institutions mixed: %+v / %+v", a, b)
		}
		if st := f.mustApply(t, "bank-b", KindInstitution, `{"id":"bank-b","name":"Bank B Renamed"}`); st.Updated != 1 {
			t.Errorf("rename own institution: %+v", st)
		}
	})
}

func TestRegisterClient(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		insertClient(t, db, "prov")
		if _, err := f.svc.InstitutionOf(ctx, "prov"); !errors.Is(err, ErrNotRegistered) {
			t.Errorf("unregistered: %v", err)
		}
		if err := f.svc.RegisterClient(ctx, "prov", "nope"); !errors.Is(err, ErrUnknownInstitution) {
			t.Errorf("unknown institution: %v", err)
		}
		if err := f.svc.RegisterClient(ctx, "prov", "bank-a"); err != nil {
			t.Fatal(err)
		}
		if inst, err := f.svc.InstitutionOf(ctx, "prov"); err != nil || inst != "bank-a" {
			t.Errorf("InstitutionOf = %q, %v", inst, err)
		}
	})
}

// insertClient adds a bare OAuth client row (the oauth package is not
// needed to test the mapping).
func insertClient(t testing.TB, db *store.DB, id string) {
	t.Helper()
	err := db.Exec(`INSERT INTO oauth_clients (id, name, redirect_uris, grant_types, scopes, purposes, auth_method, dpop, created_at)
		VALUES (?, ?, '', 'client_credentials', 'provider:write', '', 'client_secret_basic', ?, ?)`, id, id, false, store.Micros(testNow)).Error
	if err != nil {
		t.Fatal(err)
	}
}

// SPEC §11: a customer record may link the customer to its IdP subject;
// one subject opens one customer, so a second customer claiming it (in a
// later batch or the same one) is refused; resending the record is a no-op
// and an empty subject unlinks.
func TestApplyIDPSubject(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		ident := identity.NewService(db, nil)
		if st := f.mustApply(t, "bank-a", KindCustomer, `{"id":"c1","display_name":"C One","idp_subject":"00112233445566778899"}`); st.Created != 1 {
			t.Fatalf("create: %+v", st)
		}
		c, err := ident.CustomerByIDPSubject(ctx, "00112233445566778899")
		if err != nil || c.ID != CustomerID("bank-a", "c1") {
			t.Fatalf("by subject: %+v %v", c, err)
		}
		if st := f.mustApply(t, "bank-a", KindCustomer, `{"id":"c1","display_name":"C One","idp_subject":"00112233445566778899"}`); st.Unchanged != 1 {
			t.Fatalf("resend: %+v", st)
		}
		_, err = f.apply(t, "bank-a", KindCustomer, `{"id":"c2","display_name":"C Two","idp_subject":"00112233445566778899"}`)
		refused(t, err, 0, "idp_subject", "already linked to another customer")
		_, err = f.apply(t, "bank-a", KindCustomer, `{"id":"c3","display_name":"C3","idp_subject":"s-9"}`, `{"id":"c4","display_name":"C4","idp_subject":"s-9"}`)
		refused(t, err, 1, "idp_subject", "already linked to another customer")
		_, err = f.apply(t, "bank-a", KindCustomer, `{"id":"c5","display_name":"C5","idp_subject":"bad\u0007"}`)
		refused(t, err, 0, "idp_subject", "control characters")
		if st := f.mustApply(t, "bank-a", KindCustomer, `{"id":"c1","display_name":"C One"}`); st.Updated != 1 {
			t.Fatalf("unlink: %+v", st)
		}
		if _, err := ident.CustomerByIDPSubject(ctx, "00112233445566778899"); !errors.Is(err, identity.ErrNotFound) {
			t.Fatalf("after unlink: %v", err)
		}
	})
}
