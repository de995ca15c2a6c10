package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/identity"
)

// Loader is the bulk write path of a store (accounts.SQLStore.Load): when
// Deps.Accounts has it, Generate writes through it in large batches, which
// is what takes a data set to ten million transactions in minutes.
type Loader interface {
	Load(ctx context.Context, b accounts.LoadBatch) error
}

// loadRows is how many transactions Generate hands a Loader at once: large
// enough that commits cost nothing next to the rows, small enough that a
// batch stays a few tens of megabytes.
const loadRows = 50_000

// generated is one customer's data, ready to write.
type generated struct {
	customer identity.Customer
	h        *household
	hist     history
}

// sink writes generated customers in order.
type sink interface {
	household(ctx context.Context, g generated) error
	flush(ctx context.Context) error
}

// upsertWriter writes each customer through the Store's upserts, the
// transactions in batches of batchSize.
type upsertWriter struct {
	w        writer
	identity *identity.Service
	hash     string
}

func (u *upsertWriter) household(ctx context.Context, g generated) error {
	if err := u.identity.CreateCustomerWithHash(ctx, g.customer, u.hash); err != nil {
		return err
	}
	if err := u.w.household(ctx, g.h, g.hist); err != nil {
		return err
	}
	for _, b := range g.hist.balances {
		if err := u.w.store.UpsertBalance(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

func (u *upsertWriter) flush(ctx context.Context) error { return u.w.flush(ctx) }

// loadWriter creates each customer at once (accounts refer to them) and
// gathers accounts, balances and transactions into Loader batches.
type loadWriter struct {
	loader   Loader
	identity *identity.Service
	hash     string
	batch    accounts.LoadBatch
}

func (w *loadWriter) household(ctx context.Context, g generated) error {
	if err := w.identity.CreateCustomerWithHash(ctx, g.customer, w.hash); err != nil {
		return err
	}
	for _, l := range g.h.ledgers() {
		w.batch.Accounts = append(w.batch.Accounts, l.acct)
	}
	w.batch.Balances = append(w.batch.Balances, g.hist.balances...)
	w.batch.Transactions = append(w.batch.Transactions, g.hist.txs...)
	if len(w.batch.Transactions) >= loadRows {
		return w.flush(ctx)
	}
	return nil
}

func (w *loadWriter) flush(ctx context.Context) error {
	if len(w.batch.Accounts)+len(w.batch.Balances)+len(w.batch.Transactions) == 0 {
		return nil
	}
	if err := w.loader.Load(ctx, w.batch); err != nil {
		return err
	}
	w.batch = accounts.LoadBatch{
		Accounts: w.batch.Accounts[:0], Balances: w.batch.Balances[:0], Transactions: w.batch.Transactions[:0],
	}
	return nil
}

// generateAll draws the customers on one goroutine and writes them on
// this one, so that drawing the next customers overlaps writing the last
// ones. Customer i's data depends only on (seed, i), never on timing.
func generateAll(ctx context.Context, w sink, o Options, now, start time.Time) (Stats, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan generated, 4)
	go func() {
		defer close(ch)
		for i := 1; i <= o.Customers; i++ {
			r := rand.New(rand.NewPCG(o.Seed, uint64(i))) // #nosec G404 -- synthetic demo data must be reproducible from its seed; nothing secret
			cust, h := generatedHousehold(r, i, o.TransactionsPerAccount)
			select {
			case ch <- generated{customer: cust, h: h, hist: generateHistory(r, h, now)}:
			case <-ctx.Done():
				return
			}
		}
	}()
	var st Stats
	p := progress{o: o, start: start}
	for g := range ch {
		if err := w.household(ctx, g); err != nil {
			return st, fmt.Errorf("%s: %w", g.customer.ID, err)
		}
		st.Customers++
		st.Accounts += len(g.h.ledgers())
		st.Transactions += len(g.hist.txs)
		p.report(st)
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if err := w.flush(ctx); err != nil {
		return st, err
	}
	if o.Progress != nil {
		d := time.Since(start)
		fmt.Fprintf(o.Progress, "demo: done: %d customers, %d accounts, %d transactions in %v (%.0f transactions/s)\n",
			st.Customers, st.Accounts, st.Transactions, d.Round(100*time.Millisecond), float64(st.Transactions)/d.Seconds())
	}
	return st, nil
}

// progress prints a line every twentieth of the customers, and at least
// every few seconds on long runs.
type progress struct {
	o     Options
	start time.Time
	last  time.Time
}

const progressEvery = 5 * time.Second

func (p *progress) report(st Stats) {
	if p.o.Progress == nil {
		return
	}
	every := max(1, p.o.Customers/20)
	if st.Customers%every != 0 && st.Customers != p.o.Customers && time.Since(p.last) < progressEvery {
		return
	}
	p.last = time.Now()
	elapsed := time.Since(p.start)
	fmt.Fprintf(p.o.Progress, "demo: %d/%d customers (%d%%), %d accounts, %d transactions, %.0f transactions/s, %v elapsed\n",
		st.Customers, p.o.Customers, 100*st.Customers/p.o.Customers, st.Accounts, st.Transactions,
		float64(st.Transactions)/elapsed.Seconds(), elapsed.Round(time.Second))
}
