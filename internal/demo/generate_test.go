package demo

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
)

func generateInto(t *testing.T, o Options) (*memStore, Stats) {
	t.Helper()
	id, _ := newIdentity(t)
	m := newMemStore()
	st, err := Generate(context.Background(), Deps{Accounts: m, Identity: id, Now: func() time.Time { return testNow }}, o)
	if err != nil {
		t.Fatal(err)
	}
	return m, st
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, sa := generateInto(t, Options{Customers: 6, TransactionsPerAccount: 120, Seed: 7})
	b, sb := generateInto(t, Options{Customers: 6, TransactionsPerAccount: 120, Seed: 7})
	if sa != sb || !reflect.DeepEqual(a.sortedTxs(), b.sortedTxs()) || !reflect.DeepEqual(a.accts, b.accts) || !reflect.DeepEqual(a.balances, b.balances) {
		t.Fatal("the same seed gave different data")
	}
	c, _ := generateInto(t, Options{Customers: 6, TransactionsPerAccount: 120, Seed: 8})
	if reflect.DeepEqual(a.sortedTxs(), c.sortedTxs()) || reflect.DeepEqual(a.accts, c.accts) {
		t.Fatal("different seeds gave the same data")
	}
	// Customer i depends only on (seed, i): a smaller run is a prefix.
	small, _ := generateInto(t, Options{Customers: 2, TransactionsPerAccount: 120, Seed: 7})
	for id, tx := range small.txs {
		if !reflect.DeepEqual(a.txs[id], tx) {
			t.Fatalf("transaction %s differs between a 2- and a 6-customer run", id)
		}
	}
}

func TestGenerateStatsAndBatches(t *testing.T) {
	var progress bytes.Buffer
	m, st := generateInto(t, Options{Customers: 12, TransactionsPerAccount: 150, Seed: 1, Progress: &progress})
	if st.Customers != 12 || st.Accounts != len(m.accts) || st.Transactions != len(m.txs) {
		t.Fatalf("stats %+v, store has %d accounts and %d transactions", st, len(m.accts), len(m.txs))
	}
	if st.Accounts < 12 || st.Accounts > 36 {
		t.Fatalf("%d accounts for 12 customers, want 1–3 each", st.Accounts)
	}
	for i, n := range m.batches {
		if n > batchSize || (n < batchSize && i != len(m.batches)-1) {
			t.Fatalf("batches %v: want full batches of %d and one last partial", m.batches, batchSize)
		}
	}
	if !strings.Contains(progress.String(), "12/12 customers") {
		t.Fatalf("progress output %q", progress.String())
	}
	for _, a := range m.accts {
		if a.Type == accounts.TypeSavings {
			continue
		}
		n := 0
		for _, tx := range m.txs {
			if tx.AccountID == a.ID {
				n++
			}
		}
		if n < 150-20 || n > 150 {
			t.Errorf("%s (%s): %d transactions, want about 150", a.ID, a.Type, n)
		}
	}
}

// catalogue maps every merchant to its MCC.
func catalogue() map[string]string {
	out := map[string]string{}
	for _, c := range categories {
		for _, m := range c.merchants {
			out[m] = c.mcc
		}
	}
	for _, b := range bills {
		out[b.merchant] = b.mcc
	}
	return out
}

func TestCatalogueCodes(t *testing.T) {
	// ISO 18245 codes for the kinds of spending the catalogue claims.
	want := map[string]string{
		"groceries": "5411", "restaurants": "5812", "fast_food": "5814", "bakery": "5462", "transit": "4111",
		"taxi": "4121", "fuel": "5541", "pharmacy": "5912", "electronics": "5732", "clothing": "5651",
		"department_store": "5311", "books": "5942", "misc_retail": "5999", "cinema": "7832", "hotels": "7011",
		"airlines": "4511", "atm": "6011",
	}
	names := map[string]bool{}
	for _, c := range categories {
		if want[c.key] != c.mcc {
			t.Errorf("category %s has MCC %s, want %s", c.key, c.mcc, want[c.key])
		}
		for _, m := range c.merchants {
			if names[m] {
				t.Errorf("merchant %q listed twice", m)
			}
			names[m] = true
		}
	}
	billCodes := map[string]string{"StreamFlix": "4899", "Tunely Music": "4899", "CableOne TV": "4899", "Telnova Mobile": "4814",
		"Fibrelink Broadband": "4814", "IronWorks Gym": "7997", "Safeguard Insurance": "6300"}
	for _, b := range bills {
		if billCodes[b.merchant] != b.mcc || names[b.merchant] {
			t.Errorf("bill %s: MCC %s (want %s) or name clash", b.merchant, b.mcc, billCodes[b.merchant])
		}
	}
	if n := len(catalogue()); n < 40 {
		t.Fatalf("%d merchants, want at least 40", n)
	}
}

var longDigits = regexp.MustCompile(`\d{5,}`)

// checkRealistic pins the rules every generated data set follows.
func checkRealistic(t *testing.T, accts map[string]accounts.Account, txs []accounts.Transaction, bals map[string]accounts.Balance) {
	t.Helper()
	cat := catalogue()
	oldest := testNow.AddDate(0, 0, -historyDays)
	cardOf := map[string]string{}
	byAcct := map[string][]accounts.Transaction{}
	for _, tx := range txs {
		a, ok := accts[tx.AccountID]
		if !ok {
			t.Fatalf("%s: unknown account %s", tx.ID, tx.AccountID)
		}
		byAcct[tx.AccountID] = append(byAcct[tx.AccountID], tx)
		if !strings.HasPrefix(tx.ID, "txn_"+strings.TrimPrefix(a.ID, "acc_")+"_") {
			t.Errorf("%s: id not derived from account %s", tx.ID, a.ID)
		}
		// Time rules: nothing in the future, nothing older than the period,
		// pending only for the last days, booked after it happened.
		if tx.TransactedAt.After(testNow) || tx.TransactedAt.Before(oldest) {
			t.Errorf("%s: transacted_at %v outside the last %d days", tx.ID, tx.TransactedAt, historyDays)
		}
		switch tx.Status {
		case accounts.StatusPending:
			if tx.BookedAt != nil || tx.TransactedAt.Before(testNow.Add(-3*24*time.Hour)) || tx.CardLast4 == "" {
				t.Errorf("%s: pending item older than 3 days, booked or not a card item", tx.ID)
			}
		case accounts.StatusBooked:
			if tx.BookedAt == nil || tx.BookedAt.Before(tx.TransactedAt) || tx.BookedAt.After(testNow) {
				t.Errorf("%s: booked_at %v", tx.ID, tx.BookedAt)
			}
		default:
			t.Errorf("%s: status %q", tx.ID, tx.Status)
		}
		// Cards: last four digits only, the same card per account, and
		// merchants with their real category codes.
		for _, s := range []string{tx.Description, tx.MerchantName} {
			if longDigits.MatchString(s) {
				t.Errorf("%s: %q carries a long digit string", tx.ID, s)
			}
		}
		if tx.CardLast4 != "" {
			if len(tx.CardLast4) != 4 || strings.Trim(tx.CardLast4, "0123456789") != "" {
				t.Errorf("%s: card_last4 %q", tx.ID, tx.CardLast4)
			}
			if prev, ok := cardOf[a.ID]; ok && prev != tx.CardLast4 {
				t.Errorf("%s: two cards on account %s", tx.ID, a.ID)
			}
			cardOf[a.ID] = tx.CardLast4
			if a.Type == accounts.TypeCreditCard && tx.CardLast4 != a.Last4 {
				t.Errorf("%s: credit card item with card %s, account last4 %s", tx.ID, tx.CardLast4, a.Last4)
			}
			if want, ok := cat[tx.MerchantName]; !ok || want != tx.MCC {
				t.Errorf("%s: merchant %q with MCC %q, catalogue says %q", tx.ID, tx.MerchantName, tx.MCC, want)
			}
			if a.Type == accounts.TypeSavings {
				t.Errorf("%s: card item on a savings account", tx.ID)
			}
		} else if tx.MCC != "" {
			t.Errorf("%s: MCC %s on a non-card item", tx.ID, tx.MCC)
		}
		if tx.MCC == "6011" && (a.Type != accounts.TypeChecking || tx.Amount%1000 != 0) {
			t.Errorf("%s: ATM withdrawal of %d on %s", tx.ID, tx.Amount, a.Type)
		}
		if tx.Amount == 0 || tx.Currency != a.Currency {
			t.Errorf("%s: amount %d %s", tx.ID, tx.Amount, tx.Currency)
		}
	}

	for id, list := range byAcct {
		a := accts[id]
		sort.Slice(list, func(i, j int) bool { return list[i].TransactedAt.Before(list[j].TransactedAt) })
		// Refunds are positive and name a merchant bought from earlier.
		for i, tx := range list {
			if tx.Amount > 0 && tx.CardLast4 != "" {
				if !slices.ContainsFunc(list[:i], func(p accounts.Transaction) bool { return p.Amount < 0 && p.MerchantName == tx.MerchantName }) {
					t.Errorf("%s: refund from %s without an earlier purchase there", tx.ID, tx.MerchantName)
				}
			}
		}
		// Bills come on a fixed day of the month.
		days := map[string]map[int]bool{}
		for _, tx := range list {
			for _, b := range bills {
				if tx.MerchantName == b.merchant && tx.Amount < 0 {
					if days[b.merchant] == nil {
						days[b.merchant] = map[int]bool{}
					}
					days[b.merchant][tx.TransactedAt.Day()] = true
				}
			}
		}
		for m, ds := range days {
			if len(ds) > 2 { // the 29th–31st clamp in short months
				t.Errorf("%s: bill %s on days %v", id, m, ds)
			}
		}
		// Salary: monthly on checking.
		if a.Type == accounts.TypeChecking {
			n := 0
			for _, tx := range list {
				if strings.HasPrefix(tx.Description, "Salary ") && tx.Amount > 0 {
					n++
				}
			}
			if n < 12 || n > 14 {
				t.Errorf("%s: %d salary credits in %d days", id, n, historyDays)
			}
		}
		// Balances follow the transactions.
		b, ok := bals[id]
		if !ok {
			t.Fatalf("%s: no balance", id)
		}
		var pendingOut int64
		for _, tx := range list {
			if tx.Status == accounts.StatusPending && tx.Amount < 0 {
				pendingOut += tx.Amount
			}
		}
		switch a.Type {
		case accounts.TypeCreditCard:
			if b.CreditLimit == nil || b.Current > 0 || b.Available != max(0, *b.CreditLimit+b.Current+pendingOut) {
				t.Errorf("%s: card balance %+v (limit %v), pending %d", id, b, b.CreditLimit, pendingOut)
			}
		default:
			if b.CreditLimit != nil || b.Current <= 0 || b.Available != b.Current+pendingOut {
				t.Errorf("%s: balance %+v, pending %d", id, b, pendingOut)
			}
		}
	}
}

func TestGeneratedDataIsRealistic(t *testing.T) {
	m, _ := generateInto(t, Options{Customers: 15, TransactionsPerAccount: 400, Seed: 42})
	txs := m.sortedTxs()
	checkRealistic(t, m.accts, txs, m.balances)

	// Purchases happen in opening hours and cost about what the category says.
	amounts := map[string][]float64{}
	hours := map[string]*category{}
	for i := range categories {
		for _, name := range categories[i].merchants {
			hours[name] = &categories[i]
		}
	}
	refunds, pending := 0, 0
	for _, tx := range txs {
		c := hours[tx.MerchantName]
		if tx.Status == accounts.StatusPending {
			pending++
		}
		if c == nil {
			continue
		}
		if tx.Amount > 0 {
			refunds++
			continue
		}
		if h := tx.TransactedAt.Hour(); h < c.open || h >= c.close {
			t.Errorf("%s: %s at %02d:00, open %d–%d", tx.ID, tx.MerchantName, h, c.open, c.close)
		}
		amounts[c.key] = append(amounts[c.key], float64(-tx.Amount)/100)
	}
	if refunds == 0 || pending == 0 {
		t.Fatalf("%d refunds and %d pending items: want some of each", refunds, pending)
	}
	for _, c := range categories {
		a := amounts[c.key]
		if c.atm || len(a) < 60 {
			continue
		}
		slices.Sort(a)
		if med := a[len(a)/2]; math.Abs(math.Log(med/c.median)) > 0.35 {
			t.Errorf("%s: median %.2f over %d purchases, want about %.2f", c.key, med, len(a), c.median)
		}
	}
}

func TestGenerateRejectsBadInput(t *testing.T) {
	id, _ := newIdentity(t)
	if _, err := Generate(context.Background(), Deps{Identity: id}, Options{}); err == nil {
		t.Fatal("Generate without Accounts succeeded")
	}
	if _, err := Generate(context.Background(), Deps{Identity: id, Accounts: newMemStore()}, Options{Customers: -1}); err == nil {
		t.Fatal("negative customers accepted")
	}
}

func TestGeneratedCustomersCanLogIn(t *testing.T) {
	id, _ := newIdentity(t)
	m := newMemStore()
	if _, err := Generate(context.Background(), Deps{Accounts: m, Identity: id, Now: func() time.Time { return testNow }},
		Options{Customers: 3, TransactionsPerAccount: 20, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		c, err := id.Authenticate(context.Background(), fmt.Sprintf("gen-%d", i), GeneratedPassword, "192.0.2.1")
		if err != nil || c.ID != fmt.Sprintf("cus_gen_%d", i) {
			t.Fatalf("gen-%d: %+v %v", i, c, err)
		}
	}
}
