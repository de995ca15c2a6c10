package demo

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
)

// historyDays is how far back synthetic activity goes: a little more than a
// year, so yearly views and the 365-day history windows have data.
const historyDays = 400

// ledger is one account while its history is generated.
type ledger struct {
	acct   accounts.Account
	card   string // last4 of the card used on the account; "" for none
	target int    // transactions wanted; card purchases fill up to it
	// opening is the balance before the first generated day (savings only;
	// checking's is derived from the cushion so it never goes overdrawn).
	opening int64
}

// household is one customer's accounts and habits.
type household struct {
	checking, savings, credit *ledger // nil when absent
	employer                  string
	salary                    int64 // monthly, minor units; raised to cover spending
	bills                     []bill
	savingsTransfer           int64 // monthly, minor units
	cushion                   int64 // lowest checking balance over the period
	creditLimit               int64
	city                      string
}

func (h *household) ledgers() []*ledger {
	var out []*ledger
	for _, l := range []*ledger{h.checking, h.credit, h.savings} {
		if l != nil {
			out = append(out, l)
		}
	}
	return out
}

type eventKind int

const (
	purchase eventKind = iota
	refund
	recurring
	salary
	transfer
	interest
	cardPayment
)

type event struct {
	l        *ledger
	kind     eventKind
	at       time.Time
	lag      time.Duration // card items book this long after the purchase
	amount   int64
	desc     string
	merchant string
	mcc      string
	card     bool
	seq      int
	// pair is the other leg of a transfer or card payment, whose amount the
	// chronological pass sets together with this one.
	pair *event
	drop bool
}

// history is a household's generated transactions and closing balances.
type history struct {
	txs      []accounts.Transaction
	balances []accounts.Balance
}

// generateHistory makes historyDays of activity ending at now. Everything
// drawn from r happens in a fixed order, so one seed and one now give the
// same history.
func generateHistory(r *rand.Rand, h *household, now time.Time) history {
	now = now.UTC().Truncate(time.Second)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	first := today.AddDate(0, 0, -(historyDays - 1))
	g := &gen{r: r, now: now}

	// Calendar items: salary, bills, savings transfers, card payments, interest.
	for day := first; !day.After(today); day = day.AddDate(0, 0, 1) {
		dom, last := day.Day(), daysIn(day)
		if h.checking != nil && day.Equal(payday(day)) {
			g.add(&event{l: h.checking, kind: salary, at: g.clock(day, 6, 7), desc: "Salary " + h.employer, merchant: h.employer})
		}
		for _, b := range h.bills {
			if dom != min(b.day, last) {
				continue
			}
			l := h.credit
			if l == nil {
				l = h.checking
			}
			if l != nil {
				g.add(&event{l: l, kind: recurring, at: g.clock(day, 3, 6), lag: g.lag(), amount: -b.amount,
					desc: strings.ToUpper(b.merchant) + " MONTHLY", merchant: b.merchant, mcc: b.mcc, card: true})
			}
		}
		if h.checking != nil && h.savings != nil && dom == 26 {
			at := g.clock(day, 7, 8)
			out := &event{l: h.checking, kind: transfer, at: at, amount: -h.savingsTransfer, desc: "Transfer to " + h.savings.acct.DisplayName}
			in := &event{l: h.savings, kind: transfer, at: at, amount: h.savingsTransfer, desc: "Transfer from " + h.checking.acct.DisplayName}
			g.add(out)
			g.add(in)
		}
		if h.checking != nil && h.credit != nil && dom == 22 {
			at := g.clock(day, 8, 9)
			in := &event{l: h.credit, kind: cardPayment, at: at, desc: "Payment received, thank you"}
			out := &event{l: h.checking, kind: cardPayment, at: at, desc: "Payment to " + h.credit.acct.DisplayName}
			in.pair = out
			g.add(in) // first: the pass computes the amount on the card side
			g.add(out)
		}
		if h.savings != nil && dom == last {
			g.add(&event{l: h.savings, kind: interest, at: g.clock(day, 23, 24), desc: "Interest"})
		}
	}

	// Card purchases (and the odd refund) fill each card account up to its target.
	for _, l := range h.ledgers() {
		if l.card == "" {
			continue
		}
		for budget := l.target - g.count(l); budget > 0; budget-- {
			p := g.purchase(l, today, h.city)
			if cat := p.category; cat.refundable && budget > 1 && r.Float64() < 0.05 {
				amt := -p.ev.amount
				if r.Float64() < 0.3 { // partial refund
					amt = max(100, int64(float64(amt)*(0.2+0.5*r.Float64())))
				}
				at := p.ev.at.Add(time.Duration(3+r.IntN(18))*24*time.Hour + time.Duration(r.IntN(8*3600))*time.Second)
				if !at.After(now) {
					g.add(&event{l: l, kind: refund, at: at, lag: g.lag(), amount: amt, desc: "REFUND " + p.ev.desc,
						merchant: p.ev.merchant, mcc: p.ev.mcc, card: true})
					budget--
				}
			}
		}
	}

	// Salary covers the household's spending, so balances stay plausible
	// whatever the number of transactions asked for.
	var spent int64
	for _, e := range g.events {
		if e.amount < 0 && (e.kind == purchase || e.kind == recurring) {
			spent -= e.amount
		}
	}
	months := float64(historyDays) / 30.44
	salaryAmt := max(h.salary, roundTo(int64(float64(spent)/months*1.1)+h.savingsTransfer, 10000))
	for _, e := range g.events {
		if e.kind == salary {
			e.amount = salaryAmt
		}
	}
	return g.finish(h)
}

type gen struct {
	r      *rand.Rand
	now    time.Time
	events []*event
}

func (g *gen) add(e *event) {
	if e.at.After(g.now) {
		return // later today: has not happened yet
	}
	e.seq = len(g.events)
	g.events = append(g.events, e)
}

func (g *gen) count(l *ledger) int {
	n := 0
	for _, e := range g.events {
		if e.l == l {
			n++
		}
	}
	return n
}

// clock is a time on day between the hours from and to, to the second.
func (g *gen) clock(day time.Time, from, to int) time.Time {
	return day.Add(time.Duration(from)*time.Hour + time.Duration(g.r.IntN((to-from)*3600))*time.Second)
}

// lag is how long a card item stays pending: 6 to 54 hours, so items of the
// last two days or so are still pending at now.
func (g *gen) lag() time.Duration {
	return 6*time.Hour + time.Duration(g.r.IntN(48*3600))*time.Second
}

type purchased struct {
	ev       *event
	category *category
}

func (g *gen) purchase(l *ledger, today time.Time, city string) *purchased {
	r := g.r
	credit := l.acct.Type == accounts.TypeCreditCard
	var total float64
	for i := range categories {
		total += weight(&categories[i], credit)
	}
	x := r.Float64() * total
	cat := &categories[len(categories)-1]
	for i := range categories {
		if x -= weight(&categories[i], credit); x < 0 {
			cat = &categories[i]
			break
		}
	}
	if weight(cat, credit) == 0 { // float rounding landed on a category this card never sees
		cat = &categories[0]
	}
	merchant := cat.merchants[r.IntN(len(cat.merchants))]
	day := today.AddDate(0, 0, -r.IntN(historyDays))
	at := g.clock(day, cat.open, cat.close)
	if at.After(g.now) {
		at = at.AddDate(0, 0, -1) // later today has not happened: same time yesterday
	}
	var amount int64
	desc := strings.ToUpper(merchant) + " " + city
	if cat.atm {
		amount = atmNotes[r.IntN(len(atmNotes))] * 100
		desc = "CASH WITHDRAWAL " + strings.ToUpper(merchant)
	} else {
		amount = max(50, int64(math.Round(math.Exp(math.Log(cat.median)+cat.sigma*r.NormFloat64())*100)))
	}
	e := &event{l: l, kind: purchase, at: at, lag: g.lag(), amount: -amount, desc: desc, merchant: merchant, mcc: cat.mcc, card: true}
	g.add(e)
	return &purchased{ev: e, category: cat}
}

func weight(c *category, credit bool) float64 {
	if credit {
		return c.credit
	}
	return c.debit
}

// finish runs through the events in time order, settles card payments and
// interest from the running balances, numbers the transactions and
// computes closing balances.
func (g *gen) finish(h *household) history {
	slices.SortStableFunc(g.events, func(a, b *event) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.seq, b.seq))
	})
	opening := map[*ledger]int64{}
	running := map[*ledger]int64{}
	lowest := map[*ledger]int64{}
	var maxOwed int64
	for _, l := range h.ledgers() {
		opening[l], running[l] = l.opening, l.opening
	}
	// The card's booked balance: a payment settles what has booked by then,
	// not purchases still pending, as a statement would.
	var cardBooked int64
	var cardUnbooked []*event
	for _, e := range g.events {
		switch e.kind {
		case cardPayment:
			if e.pair != nil { // the card side: pay off the booked balance
				kept := cardUnbooked[:0]
				for _, u := range cardUnbooked {
					if u.at.Add(u.lag).After(e.at) {
						kept = append(kept, u)
					} else {
						cardBooked += u.amount
					}
				}
				cardUnbooked = kept
				owed := -cardBooked
				if owed <= 0 {
					e.drop, e.pair.drop = true, true
				} else {
					e.amount, e.pair.amount = owed, -owed
				}
			}
		case interest:
			e.amount = running[e.l] * 15 / 1000 / 12 // 1.5 % a year
			e.drop = e.amount <= 0
		}
		if e.drop {
			continue
		}
		running[e.l] += e.amount
		lowest[e.l] = min(lowest[e.l], running[e.l])
		if e.l == h.credit {
			maxOwed = max(maxOwed, -running[e.l])
			cardUnbooked = append(cardUnbooked, e)
		}
	}
	if h.checking != nil {
		// The opening balance keeps checking above the cushion throughout.
		opening[h.checking] = h.cushion - lowest[h.checking]
	}

	var out history
	seqs := map[*ledger]int{}
	booked := map[*ledger]int64{}
	pendingOut := map[*ledger]int64{}
	for _, e := range g.events {
		if e.drop {
			continue
		}
		seqs[e.l]++
		t := accounts.Transaction{
			ID:           fmt.Sprintf("txn_%s_%06d", strings.TrimPrefix(e.l.acct.ID, "acc_"), seqs[e.l]),
			AccountID:    e.l.acct.ID,
			TransactedAt: e.at,
			Amount:       e.amount,
			Currency:     e.l.acct.Currency,
			Description:  e.desc,
			MerchantName: e.merchant,
			MCC:          e.mcc,
		}
		if e.card {
			t.CardLast4 = e.l.card
		}
		if b := e.at.Add(e.lag); b.After(g.now) {
			t.Status = accounts.StatusPending
			if e.amount < 0 {
				pendingOut[e.l] += e.amount
			}
		} else {
			t.Status, t.BookedAt = accounts.StatusBooked, &b
			booked[e.l] += e.amount
		}
		out.txs = append(out.txs, t)
	}

	for _, l := range h.ledgers() {
		b := accounts.Balance{AccountID: l.acct.ID, Currency: l.acct.Currency, AsOf: g.now}
		b.Current = opening[l] + booked[l]
		b.Available = b.Current + pendingOut[l] // pending card payments are already held
		if l == h.credit {
			limit := h.creditLimit
			if maxOwed > limit*9/10 {
				limit = roundTo(maxOwed*5/4, 50000)
			}
			b.CreditLimit = &limit
			b.Available = max(0, limit+b.Current+pendingOut[l]) // limit minus what is owed and held
		}
		out.balances = append(out.balances, b)
	}
	return out
}

// payday is the 25th of day's month, or the Friday before when it falls on
// a weekend.
func payday(day time.Time) time.Time {
	p := time.Date(day.Year(), day.Month(), 25, 0, 0, 0, 0, time.UTC)
	switch p.Weekday() {
	case time.Saturday:
		return p.AddDate(0, 0, -1)
	case time.Sunday:
		return p.AddDate(0, 0, -2)
	}
	return p
}

func daysIn(day time.Time) int {
	return time.Date(day.Year(), day.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// roundTo rounds v up to a multiple of unit.
func roundTo(v, unit int64) int64 {
	return (v + unit - 1) / unit * unit
}
