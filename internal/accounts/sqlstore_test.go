package accounts

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
)

// TestSQLStore runs the store suite on SQLite and, when
// CONSENTGATE_TEST_POSTGRES_URL names a server, on a fresh PostgreSQL
// database created for this run.
func TestSQLStore(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { storeSuite(t, openSQLite(t)) })
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv("CONSENTGATE_TEST_POSTGRES_URL")
		if base == "" {
			t.Skip("CONSENTGATE_TEST_POSTGRES_URL not set")
		}
		storeSuite(t, openPostgres(t, base))
	})
}

// storeSuite is the behaviour every Store implementation on db must show.
// Subtests share db and keep apart by id prefix.
func storeSuite(t *testing.T, db *store.DB) {
	t.Run("Accounts", func(t *testing.T) { testAccounts(t, db, "acc") })
	t.Run("Balances", func(t *testing.T) { testBalances(t, db, "bal") })
	t.Run("TransactionPages", func(t *testing.T) { testTransactionPages(t, db, "pag") })
	t.Run("TransactionUpserts", func(t *testing.T) { testTransactionUpserts(t, db, "ups") })
	t.Run("AccountsArePermanent", func(t *testing.T) { testAccountsPermanent(t, db, "perm") })
	t.Run("HiddenFields", func(t *testing.T) { testHiddenFields(t, db, "hid") })
}

// Accounts are never deleted and never change id or owner: on PostgreSQL
// this is what keeps a transaction's account from disappearing now that no
// foreign key checks every inserted transaction (migration 00060), and what
// lets the data API trust a consent's account list (00061).
func testAccountsPermanent(t *testing.T, db *store.DB, p string) {
	f := newFixture(t, db, p)
	a := f.account(t, p+"-acct", f.alice, TypeChecking)
	if err := f.s.UpsertTransactions(context.Background(), genTransactions(a.ID, p+"-tx", 3, time.Now())); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DELETE FROM accounts WHERE id = '` + a.ID + `'`,
		`UPDATE accounts SET id = 'renamed' WHERE id = '` + a.ID + `'`,
		`UPDATE accounts SET customer_id = '` + f.bob + `' WHERE id = '` + a.ID + `'`,
	} {
		if err := db.Exec(q).Error; err == nil {
			t.Errorf("%s: succeeded, want it refused", q)
		}
	}
	if db.Dialect == store.Postgres {
		if err := db.Exec(`TRUNCATE accounts CASCADE`).Error; err == nil {
			t.Error("TRUNCATE accounts: succeeded, want it refused")
		}
	}
	if _, err := f.s.Get(context.Background(), f.alice, a.ID); err != nil {
		t.Errorf("the account after the refused changes: %v", err)
	}
	// A status change is how an account ends.
	if err := db.Exec(`UPDATE accounts SET status = 'closed' WHERE id = ?`, a.ID).Error; err != nil {
		t.Errorf("closing the account: %v", err)
	}
}

func openSQLite(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open("sqlite:"+filepath.Join(t.TempDir(), "accounts.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return db
}

func openPostgres(t testing.TB, base string) *store.DB {
	t.Helper()
	ctx := context.Background()
	admin, err := store.Open(base, store.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	var b [6]byte
	_, _ = crand.Read(b[:])
	name := "cg_test_accounts_" + hex.EncodeToString(b[:])
	if err := admin.WithContext(ctx).Exec("CREATE DATABASE " + name).Error; err != nil {
		t.Fatalf("create database: %v", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	db, err := store.Open(u.String(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = db.Close()
		if err := admin.Exec("DROP DATABASE " + name + " WITH (FORCE)").Error; err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	if err := db.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return db
}

// fixture creates an institution and two customers, alice and bob, whose
// ids start with prefix.
type fixture struct {
	s                          *SQLStore
	bank, alice, bob, bankName string
}

func newFixture(t testing.TB, db *store.DB, prefix string) fixture {
	t.Helper()
	ctx := context.Background()
	f := fixture{s: NewSQLStore(db), bank: prefix + "-bank", alice: prefix + "-alice", bob: prefix + "-bob", bankName: "Bank " + prefix}
	if err := f.s.UpsertInstitution(ctx, Institution{ID: f.bank, Name: f.bankName}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{f.alice, f.bob} {
		// Customers belong to the identity package; a row is all this needs.
		if err := db.Exec(`INSERT INTO customers (id, username, password_hash, display_name, created_at) VALUES (?, ?, ?, ?, ?)`,
			c, c, "x", c, store.Micros(time.Now())).Error; err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f fixture) account(t testing.TB, id, customer, typ string) Account {
	t.Helper()
	a := Account{ID: id, CustomerID: customer, InstitutionID: f.bank, Type: typ, DisplayName: "Acct " + id,
		Last4: "1234", Currency: "EUR", Status: "open"}
	if err := f.s.UpsertAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	a.InstitutionName = f.bankName
	return a
}

func testAccounts(t *testing.T, db *store.DB, p string) {
	ctx := context.Background()
	f := newFixture(t, db, p)
	b := f.account(t, p+"-b", f.alice, TypeSavings)
	a := f.account(t, p+"-a", f.alice, TypeChecking)
	c := f.account(t, p+"-c", f.alice, TypeCreditCard)
	bobs := f.account(t, p+"-z", f.bob, TypeChecking)

	got, err := f.s.ListByCustomer(ctx, f.alice)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Account{a, b, c}; !slices.Equal(got, want) {
		t.Errorf("ListByCustomer = %+v, want %+v ordered by id with the institution name", got, want)
	}

	got, err = f.s.ListByIDs(ctx, f.alice, []string{c.ID, bobs.ID, "unknown", a.ID})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Account{a, c}; !slices.Equal(got, want) {
		t.Errorf("ListByIDs = %+v, want only alice's selected accounts %+v", got, want)
	}
	if got, err := f.s.ListByIDs(ctx, f.alice, nil); err != nil || got == nil || len(got) != 0 {
		t.Errorf("ListByIDs(no ids) = %v, %v; want an empty list", got, err)
	}

	if got, err := f.s.Get(ctx, f.alice, c.ID); err != nil || *got != c {
		t.Errorf("Get = %+v, %v; want %+v", got, err, c)
	}
	if _, err := f.s.Get(ctx, f.alice, bobs.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(someone else's account) error = %v, want ErrNotFound", err)
	}
	if _, err := f.s.Get(ctx, f.alice, "unknown"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unknown) error = %v, want ErrNotFound", err)
	}

	// An upsert updates in place; renaming the institution shows through.
	a.DisplayName, a.Status = "Renamed", "closed"
	if err := f.s.UpsertAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := f.s.UpsertInstitution(ctx, Institution{ID: f.bank, Name: "New Name"}); err != nil {
		t.Fatal(err)
	}
	a.InstitutionName = "New Name"
	if got, err := f.s.Get(ctx, f.alice, a.ID); err != nil || *got != a {
		t.Errorf("after update Get = %+v, %v; want %+v", got, err, a)
	}

	// An account never changes owner.
	moved := bobs
	moved.CustomerID = f.alice
	if err := f.s.UpsertAccount(ctx, moved); !errors.Is(err, ErrConflict) {
		t.Errorf("UpsertAccount(move to another customer) error = %v, want ErrConflict", err)
	}
	if _, err := f.s.Get(ctx, f.bob, bobs.ID); err != nil {
		t.Errorf("bob lost his account after a refused move: %v", err)
	}

	for name, bad := range map[string]Account{
		"type":     {ID: p + "-x", CustomerID: f.alice, InstitutionID: f.bank, Type: "loan", DisplayName: "x", Last4: "1234", Currency: "EUR", Status: "open"},
		"last4":    {ID: p + "-x", CustomerID: f.alice, InstitutionID: f.bank, Type: TypeChecking, DisplayName: "x", Last4: "4111111111111111", Currency: "EUR", Status: "open"},
		"currency": {ID: p + "-x", CustomerID: f.alice, InstitutionID: f.bank, Type: TypeChecking, DisplayName: "x", Last4: "1234", Currency: "eur", Status: "open"},
		"status":   {ID: p + "-x", CustomerID: f.alice, InstitutionID: f.bank, Type: TypeChecking, DisplayName: "x", Last4: "1234", Currency: "EUR", Status: "frozen"},
	} {
		if err := f.s.UpsertAccount(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("UpsertAccount(bad %s) error = %v, want ErrInvalid", name, err)
		}
	}
}

func testBalances(t *testing.T, db *store.DB, p string) {
	ctx := context.Background()
	f := newFixture(t, db, p)
	chk := f.account(t, p+"-chk", f.alice, TypeChecking)
	card := f.account(t, p+"-card", f.alice, TypeCreditCard)
	asOf := time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)
	limit := int64(500000)

	if _, err := f.s.Balance(ctx, chk.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Balance before any upsert: %v, want ErrNotFound", err)
	}
	want := []Balance{
		{AccountID: chk.ID, Currency: "EUR", Current: 123456, Available: 120000, AsOf: asOf},
		{AccountID: card.ID, Currency: "EUR", Current: -4512, Available: 495488, CreditLimit: &limit, AsOf: asOf},
	}
	for _, b := range want {
		if err := f.s.UpsertBalance(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// A second upsert replaces the first, credit limit included.
	want[0].Current, want[0].AsOf = 1, asOf.Add(time.Hour)
	if err := f.s.UpsertBalance(ctx, want[0]); err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		got, err := f.s.Balance(ctx, w.AccountID)
		if err != nil {
			t.Fatal(err)
		}
		if got.AccountID != w.AccountID || got.Currency != w.Currency || got.Current != w.Current ||
			got.Available != w.Available || !got.AsOf.Equal(w.AsOf) || got.AsOf.Location() != time.UTC ||
			(got.CreditLimit == nil) != (w.CreditLimit == nil) || (w.CreditLimit != nil && *got.CreditLimit != *w.CreditLimit) {
			t.Errorf("Balance(%s) = %+v, want %+v", w.AccountID, got, w)
		}
	}
	if err := f.s.UpsertBalance(ctx, Balance{AccountID: "unknown", AsOf: asOf}); err == nil {
		t.Error("UpsertBalance for an unknown account succeeded")
	}
}

// genTransactions makes n transactions on account, three per timestamp so
// that the id tie-break matters, every seventh one pending. Ids are
// zero-padded digits so byte order and any collation agree.
func genTransactions(account, prefix string, n int, newest time.Time) []Transaction {
	out := make([]Transaction, n)
	for i := range out {
		at := newest.Add(-time.Duration(i/3) * time.Hour)
		t := Transaction{
			ID: fmt.Sprintf("%s-%06d", prefix, i), AccountID: account, Status: StatusBooked,
			TransactedAt: at, Amount: -int64(100 + i), Currency: "EUR",
			Description: "Purchase " + fmt.Sprint(i), MerchantName: "Shop", MCC: "5411", CardLast4: "4242",
		}
		if i%7 == 0 {
			t.Status = StatusPending
		} else {
			booked := at.Add(24 * time.Hour)
			t.BookedAt = &booked
		}
		out[i] = t
	}
	return out
}

func newestFirst(a, b Transaction) int {
	if c := b.TransactedAt.Compare(a.TransactedAt); c != 0 {
		return c
	}
	return cmp.Compare(b.ID, a.ID)
}

func testTransactionPages(t *testing.T, db *store.DB, p string) {
	ctx := context.Background()
	f := newFixture(t, db, p)
	card := f.account(t, p+"-card", f.alice, TypeCreditCard)
	other := f.account(t, p+"-other", f.alice, TypeChecking)
	newest := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	// 1203 rows: more than two insert chunks, inserted in random order.
	all := genTransactions(card.ID, p+"-tx", 1203, newest)
	shuffled := slices.Clone(all)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if err := f.s.UpsertTransactions(ctx, shuffled); err != nil {
		t.Fatal(err)
	}
	// Same times on another account: must never leak into card's pages.
	if err := f.s.UpsertTransactions(ctx, genTransactions(other.ID, p+"-ot", 50, newest)); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(all, newestFirst)

	// Bounds that fall exactly on rows: both ends are inclusive.
	from, to := all[900].TransactedAt, all[30].TransactedAt
	tests := []struct {
		name     string
		from, to time.Time
		status   string
		limits   []int
	}{
		{"whole history", newest.Add(-1000 * time.Hour), newest, "", []int{1, 7, 100, 401, 1203, 1204}},
		{"inclusive window", from, to, "", []int{3, 87, 500}},
		{"pending only", newest.Add(-1000 * time.Hour), newest, StatusPending, []int{5, 172, 173}},
		{"booked in window", from, to, StatusBooked, []int{10}},
		{"empty window", newest.Add(time.Hour), newest.Add(2 * time.Hour), "", []int{10}},
	}
	for _, tt := range tests {
		var want []Transaction
		for _, tx := range all {
			if !tx.TransactedAt.Before(tt.from) && !tx.TransactedAt.After(tt.to) && (tt.status == "" || tx.Status == tt.status) {
				want = append(want, tx)
			}
		}
		for _, limit := range tt.limits {
			t.Run(fmt.Sprintf("%s/limit=%d", tt.name, limit), func(t *testing.T) {
				var got []Transaction
				q := TxQuery{AccountID: card.ID, From: tt.from, To: tt.to, Status: tt.status, Limit: limit}
				for page := 0; ; page++ {
					if page > len(want)+1 {
						t.Fatal("pagination does not end")
					}
					rows, next, err := f.s.Transactions(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if len(rows) > limit || (next != nil && len(rows) != limit) {
						t.Fatalf("page %d: %d rows with next=%v for limit %d", page, len(rows), next, limit)
					}
					if len(rows) == 0 && page > 0 {
						t.Fatalf("page %d is empty: the previous page should have had no next key", page)
					}
					got = append(got, rows...)
					if next == nil {
						break
					}
					if last := rows[len(rows)-1]; next.ID != last.ID || !next.TransactedAt.Equal(last.TransactedAt) {
						t.Fatalf("next key %+v is not the page's last row %s", next, last.ID)
					}
					q.After = next
				}
				if !slices.EqualFunc(got, want, txEqual) {
					t.Fatalf("got %d rows, want %d newest first without gaps or duplicates (first diff at %d)",
						len(got), len(want), firstDiff(got, want))
				}
			})
		}
	}

	// With the owner named, the page is the same; for anyone else, or an
	// unknown account, ErrNotFound, also where the range holds no rows.
	owned, _, err := f.s.Transactions(ctx, TxQuery{AccountID: card.ID, CustomerID: f.alice, From: from, To: to, Limit: 50})
	if err != nil || len(owned) != 50 || owned[0].ID != all[30].ID {
		t.Errorf("owner's page: %d rows, err %v", len(owned), err)
	}
	empty := TxQuery{AccountID: card.ID, CustomerID: f.alice, From: newest.Add(time.Hour), To: newest.Add(2 * time.Hour), Limit: 5}
	if rows, next, err := f.s.Transactions(ctx, empty); err != nil || len(rows) != 0 || next != nil {
		t.Errorf("owner's empty range: %d rows, next %v, err %v", len(rows), next, err)
	}
	for _, q := range []TxQuery{
		{AccountID: card.ID, CustomerID: f.bob, From: from, To: to, Limit: 50},
		{AccountID: card.ID, CustomerID: f.bob, From: empty.From, To: empty.To, Limit: 5},
		{AccountID: p + "-nope", CustomerID: f.alice, From: from, To: to, Limit: 50},
	} {
		if rows, _, err := f.s.Transactions(ctx, q); !errors.Is(err, ErrNotFound) || len(rows) != 0 {
			t.Errorf("%s as %s: %d rows, err %v, want ErrNotFound", q.AccountID, q.CustomerID, len(rows), err)
		}
	}

	if _, _, err := f.s.Transactions(ctx, TxQuery{AccountID: card.ID, From: from, To: to, Limit: 0}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Transactions(limit 0) error = %v, want ErrInvalid", err)
	}
}

func txEqual(a, b Transaction) bool {
	return a.ID == b.ID && a.AccountID == b.AccountID && a.Status == b.Status && a.TransactedAt.Equal(b.TransactedAt) &&
		((a.BookedAt == nil && b.BookedAt == nil) || (a.BookedAt != nil && b.BookedAt != nil && a.BookedAt.Equal(*b.BookedAt))) &&
		a.Amount == b.Amount && a.Currency == b.Currency && a.Description == b.Description &&
		a.MerchantName == b.MerchantName && a.MCC == b.MCC && a.CardLast4 == b.CardLast4
}

func firstDiff(a, b []Transaction) int {
	for i := range min(len(a), len(b)) {
		if !txEqual(a[i], b[i]) {
			return i
		}
	}
	return min(len(a), len(b))
}

func testTransactionUpserts(t *testing.T, db *store.DB, p string) {
	ctx := context.Background()
	f := newFixture(t, db, p)
	card := f.account(t, p+"-card", f.alice, TypeCreditCard)
	bobs := f.account(t, p+"-bob", f.bob, TypeChecking)
	newest := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	window := TxQuery{AccountID: card.ID, From: newest.Add(-24 * time.Hour), To: newest, Limit: 100}
	read := func() map[string]Transaction {
		t.Helper()
		rows, _, err := f.s.Transactions(ctx, window)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]Transaction{}
		for _, r := range rows {
			m[r.ID] = r
		}
		return m
	}

	txs := genTransactions(card.ID, p+"-tx", 3, newest)
	if err := f.s.UpsertTransactions(ctx, txs); err != nil {
		t.Fatal(err)
	}
	// A pending transaction books: status, booked_at and amount change in place.
	pending := txs[0]
	booked := newest.Add(time.Minute)
	pending.Status, pending.BookedAt, pending.Amount = StatusBooked, &booked, -999
	// The same id twice in one batch: the last one wins.
	first, second := txs[1], txs[1]
	first.Description, second.Description = "first", "second"
	if err := f.s.UpsertTransactions(ctx, []Transaction{pending, first, second}); err != nil {
		t.Fatal(err)
	}
	got := read()
	if len(got) != 3 || !txEqual(got[pending.ID], pending) || got[second.ID].Description != "second" {
		t.Errorf("after updates got %+v", got)
	}

	// Moving a transaction to another account fails the whole batch.
	fresh := genTransactions(card.ID, p+"-new", 1, newest)[0]
	moved := txs[2]
	moved.AccountID = bobs.ID
	if err := f.s.UpsertTransactions(ctx, []Transaction{fresh, moved}); !errors.Is(err, ErrConflict) {
		t.Errorf("UpsertTransactions(move to another account) error = %v, want ErrConflict", err)
	}
	if got := read(); len(got) != 3 || got[moved.ID].AccountID != card.ID {
		t.Errorf("a refused batch left changes behind: %+v", got)
	}

	bookedAt := newest
	for name, mutate := range map[string]func(*Transaction){
		"booked without booked_at": func(x *Transaction) { x.Status, x.BookedAt = StatusBooked, nil },
		"pending with booked_at":   func(x *Transaction) { x.Status, x.BookedAt = StatusPending, &bookedAt },
		"unknown status":           func(x *Transaction) { x.Status = "settled" },
		"full card number":         func(x *Transaction) { x.CardLast4 = "4111111111111111" },
		"no time":                  func(x *Transaction) { x.TransactedAt = time.Time{} },
		"no id":                    func(x *Transaction) { x.ID = "" },
	} {
		bad := fresh
		mutate(&bad)
		if err := f.s.UpsertTransactions(ctx, []Transaction{bad}); !errors.Is(err, ErrInvalid) {
			t.Errorf("UpsertTransactions(%s) error = %v, want ErrInvalid", name, err)
		}
	}
	if err := f.s.UpsertTransactions(ctx, nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}

// The page query must walk the indexes of the migration in order (no table
// scan, no sort): checked with SQLite's planner; PostgreSQL's plan depends
// on table statistics, so it is not pinned here.
func TestTransactionsQueryUsesIndex(t *testing.T) {
	db := openSQLite(t)
	now := time.Now()
	after := &TxKey{TransactedAt: now, ID: "x"}
	for _, q := range []struct {
		q     TxQuery
		index string
	}{
		{TxQuery{AccountID: "a", From: now, To: now, Limit: 10}, "transactions_account_time_idx"},
		{TxQuery{AccountID: "a", From: now, To: now, Limit: 10, After: after}, "transactions_account_time_idx"},
		{TxQuery{AccountID: "a", From: now, To: now, Status: StatusPending, Limit: 10}, "transactions_account_pending_time_idx"},
		{TxQuery{AccountID: "a", From: now, To: now, Status: StatusPending, Limit: 10, After: after}, "transactions_account_pending_time_idx"},
		{TxQuery{AccountID: "a", From: now, To: now, Status: StatusBooked, Limit: 10}, "transactions_account_time_idx"},
		{TxQuery{AccountID: "a", From: now, To: now, Status: StatusBooked, Limit: 10, After: after}, "transactions_account_time_idx"},
		{TxQuery{AccountID: "a", CustomerID: "c", From: now, To: now, Limit: 10}, "transactions_account_time_idx"},
		{TxQuery{AccountID: "a", CustomerID: "c", From: now, To: now, Limit: 10, After: after}, "transactions_account_time_idx"},
		{TxQuery{AccountID: "a", CustomerID: "c", From: now, To: now, Status: StatusPending, Limit: 10}, "transactions_account_pending_time_idx"},
	} {
		query, args := txPageSQL(q.q)
		rows, err := db.SQL().Query("EXPLAIN QUERY PLAN "+query, args...)
		if err != nil {
			t.Fatal(err)
		}
		var details []string
		for rows.Next() {
			var id, parent, notUsed int
			var detail string
			if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
				t.Fatal(err)
			}
			details = append(details, detail)
		}
		rows.Close() //nolint:sqlclosecheck // closed before the loop's next query, not at the test's end
		all := strings.Join(details, "; ")
		if !strings.Contains(all, q.index) || strings.Contains(all, "TEMP B-TREE") {
			t.Errorf("status=%q after=%v: plan %q, want a walk of %s without a sort", q.q.Status, q.q.After != nil, all, q.index)
		}
	}
	// A cursor starts the index walk at its own position: the range's upper
	// bound is the cursor's time, not the window's end, so a deep page
	// costs what the first one does.
	deep := TxKey{TransactedAt: now.Add(-300 * 24 * time.Hour), ID: "x"}
	_, args := txPageSQL(TxQuery{AccountID: "a", From: now.Add(-400 * 24 * time.Hour), To: now, Limit: 10, After: &deep})
	if args[2] != store.Micros(deep.TransactedAt) {
		t.Errorf("upper bound %v, want the cursor's time %v", args[2], store.Micros(deep.TransactedAt))
	}
}
