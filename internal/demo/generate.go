package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/identity"
)

// GeneratedPassword is the password of every generated customer (gen-1,
// gen-2, …). One shared password lets a run hash it once: argon2id per
// customer would take longer than generating millions of transactions.
const GeneratedPassword = "demo-password"

// Defaults for zero Options fields.
const (
	DefaultCustomers              = 10
	DefaultTransactionsPerAccount = 200
)

// batchSize is how many transactions go to one UpsertTransactions call.
const batchSize = 1000

// Options shape a synthetic data set.
type Options struct {
	Customers int // how many customers (cus_gen_1 … cus_gen_N); 0: DefaultCustomers
	// TransactionsPerAccount is the target for checking and credit card
	// accounts: their recurring items first, card purchases and refunds fill
	// up to it. Savings accounts have no card and get only their transfers
	// and interest. 0: DefaultTransactionsPerAccount.
	TransactionsPerAccount int
	Seed                   uint64    // the same seed (and Now) gives the same data
	Progress               io.Writer // nil: quiet
}

// Stats count what Generate wrote.
type Stats struct {
	Customers    int
	Accounts     int
	Transactions int
}

// Generate writes a synthetic data set: customers gen-1 … gen-N (password
// GeneratedPassword), each with one to three accounts at one or two
// institutions, and about 400 days of card activity ending at Deps.Now.
// Customer i's data depends only on the seed and i, so a larger run extends
// a smaller one. Running it again with the same options rewrites the same
// rows.
func Generate(ctx context.Context, d Deps, o Options) (Stats, error) {
	if d.Accounts == nil || d.Identity == nil {
		return Stats{}, errors.New("demo.Generate: Accounts and Identity are required")
	}
	if o.Customers < 0 || o.TransactionsPerAccount < 0 {
		return Stats{}, errors.New("demo.Generate: counts must not be negative")
	}
	if o.Customers == 0 {
		o.Customers = DefaultCustomers
	}
	if o.TransactionsPerAccount == 0 {
		o.TransactionsPerAccount = DefaultTransactionsPerAccount
	}
	now, log := d.now(), d.logger()
	start := time.Now()
	hash, err := identity.HashPassword(GeneratedPassword)
	if err != nil {
		return Stats{}, fmt.Errorf("demo.Generate: %w", err)
	}
	for _, in := range institutions {
		if err := d.Accounts.UpsertInstitution(ctx, accounts.Institution{ID: in.id, Name: in.name}); err != nil {
			return Stats{}, fmt.Errorf("demo.Generate: %w", err)
		}
	}
	var w sink = &upsertWriter{w: writer{store: d.Accounts}, identity: d.Identity, hash: hash}
	if l, ok := d.Accounts.(Loader); ok {
		w = &loadWriter{loader: l, identity: d.Identity, hash: hash}
	}
	st, err := generateAll(ctx, w, o, now, start)
	if err != nil {
		return st, fmt.Errorf("demo.Generate: %w", err)
	}
	log.InfoContext(ctx, "demo data generated", "customers", st.Customers, "accounts", st.Accounts,
		"transactions", st.Transactions, "seed", o.Seed, "duration", time.Since(start).Round(time.Millisecond))
	return st, nil
}

// generatedHousehold draws customer i's accounts and habits.
func generatedHousehold(r *rand.Rand, i, target int) (identity.Customer, *household) {
	cust := identity.Customer{
		ID:          fmt.Sprintf("cus_gen_%d", i),
		Username:    fmt.Sprintf("gen-%d", i),
		DisplayName: firstNames[r.IntN(len(firstNames))] + " " + lastNames[r.IntN(len(lastNames))],
	}
	home := institutions[r.IntN(2)] // the card issuer is never anyone's main bank
	other := home
	if r.IntN(2) == 0 {
		other = institutions[1+r.IntN(2)]
		if other == home {
			other = institutions[2]
		}
	}
	n := 1 + r.IntN(3)
	withCredit, withSavings := n == 3, n == 3
	if n == 2 {
		withCredit = r.Float64() < 0.6
		withSavings = !withCredit
	}
	account := func(typ string, in institution, names []string) accounts.Account {
		return accounts.Account{
			ID: fmt.Sprintf("acc_gen_%d_%s", i, typ), CustomerID: cust.ID, InstitutionID: in.id, InstitutionName: in.name,
			Type: typ, DisplayName: names[r.IntN(len(names))], Last4: digits4(r), Currency: "USD", Status: "open",
		}
	}
	h := &household{
		employer:        employers[r.IntN(len(employers))],
		salary:          roundTo(250000+int64(r.IntN(300000)), 10000),
		savingsTransfer: 10000 * int64(1+r.IntN(5)),
		cushion:         50000 + int64(r.IntN(300000)),
		creditLimit:     300000 + 100000*int64(r.IntN(8)),
		city:            cities[r.IntN(len(cities))],
	}
	h.checking = &ledger{acct: account(accounts.TypeChecking, home, checkingNames), card: digits4(r), target: target}
	if withCredit {
		a := account(accounts.TypeCreditCard, other, cardNames)
		h.credit = &ledger{acct: a, card: a.Last4, target: target}
	}
	if withSavings {
		in := home
		if !withCredit {
			in = other
		}
		h.savings = &ledger{acct: account(accounts.TypeSavings, in, savingsNames), opening: 100000 + int64(r.IntN(2000000))}
	}
	for _, b := range bills {
		if r.Float64() < 0.45 {
			h.bills = append(h.bills, b)
		}
	}
	if len(h.bills) == 0 {
		h.bills = append(h.bills, bills[r.IntN(len(bills))])
	}
	return cust, h
}

var cities = []string{"SPRINGFIELD", "RIVERTON", "LAKEVIEW", "FAIRVIEW", "MAPLETON", "BROOKSIDE", "HILLCREST", "OAKDALE"}

func digits4(r *rand.Rand) string { return fmt.Sprintf("%04d", r.IntN(10000)) }

// writer sends accounts straight away and transactions in batches.
type writer struct {
	store accounts.Store
	buf   []accounts.Transaction
}

func (w *writer) household(ctx context.Context, h *household, hist history) error {
	for _, l := range h.ledgers() {
		if err := w.store.UpsertAccount(ctx, l.acct); err != nil {
			return err
		}
	}
	w.buf = append(w.buf, hist.txs...)
	for len(w.buf) >= batchSize {
		if err := w.store.UpsertTransactions(ctx, w.buf[:batchSize]); err != nil {
			return err
		}
		w.buf = append(w.buf[:0], w.buf[batchSize:]...)
	}
	return nil
}

func (w *writer) flush(ctx context.Context) error {
	if len(w.buf) == 0 {
		return nil
	}
	if err := w.store.UpsertTransactions(ctx, w.buf); err != nil {
		return err
	}
	w.buf = w.buf[:0]
	return nil
}
