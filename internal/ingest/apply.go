package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/store"
)

// applyAttempts bounds the retries of a batch that lost a race with a
// concurrent writer (a lock conflict, or rows that changed between the
// batch's read and its write): the next attempt reads the new state and
// either succeeds or names the records that now break a rule.
const applyAttempts = 3

var errRefused = errors.New("ingest: records refused")

// Apply writes a validated batch in one transaction, in dependency order
// (institution, customers, accounts, balances, transactions), after checking
// each record against the stored state. Errors: *RecordsError when records
// break a rule (nothing written); an error wrapping ErrUnknownInstitution
// when the institution does not exist and the batch does not create it;
// *apperr.E conflict or service_unavailable when concurrent writers kept
// getting in the way.
func (s *Service) Apply(ctx context.Context, b *Batch) (Stats, error) {
	var (
		st   Stats
		errs RecordsError
		err  error
	)
	for attempt := 1; attempt <= applyAttempts; attempt++ {
		err = s.db.Tx(ctx, func(tx *gorm.DB) error {
			st, errs = Stats{Records: b.Len()}, RecordsError{}
			a := &applier{b: b, tx: tx, bulk: s.accounts.Bulk(tx), now: store.Micros(s.now()), st: &st, errs: &errs}
			return a.run()
		})
		if !errors.Is(err, accounts.ErrConflict) && !store.IsSerializationFailure(err) {
			break
		}
	}
	switch {
	case err == nil:
		return st, nil
	case errors.Is(err, errRefused):
		return Stats{}, &errs
	case errors.Is(err, accounts.ErrConflict):
		return Stats{}, apperr.Wrap(apperr.Conflict, "Concurrent batches kept changing these records; send the batch again.", err)
	case store.IsSerializationFailure(err):
		return Stats{}, &apperr.E{Code: apperr.Unavailable, Msg: "The database is busy; send the batch again.", Err: err, RetryAfter: 1}
	}
	return Stats{}, fmt.Errorf("ingest.Apply: %w", err)
}

// applier is one attempt at writing a batch inside its transaction.
type applier struct {
	b    *Batch
	tx   *gorm.DB
	bulk *accounts.Bulk
	now  int64
	st   *Stats
	errs *RecordsError
	// accounts known after this batch's account records: by consentgate id.
	accounts map[string]accounts.Account
	// customers known to exist after this batch's customer records.
	customers map[string]bool
}

func (a *applier) run() error {
	steps := []func() error{a.institution, a.customerRecords, a.accountRecords, a.balanceRecords, a.transactionRecords}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	if !a.errs.empty() {
		return errRefused
	}
	return nil
}

func (a *applier) refuse(p pos, field, reason string) { a.errs.add(p.err(field, reason)) }

func (a *applier) institution() error {
	name, exists, err := a.bulk.InstitutionName(a.b.institutionID)
	if err != nil {
		return err
	}
	in := a.b.institution
	switch {
	case in == nil && !exists:
		return fmt.Errorf("%w %q: add an institution record first", ErrUnknownInstitution, a.b.institutionID)
	case in == nil:
		return nil
	case exists && name == in.in.Name:
		a.st.Unchanged++
		return nil
	case exists:
		a.st.Updated++
	default:
		a.st.Created++
	}
	return a.bulk.UpsertInstitution(in.in)
}

func (a *applier) customerRecords() error {
	a.customers = map[string]bool{}
	cs := a.b.customers
	if len(cs) == 0 {
		return nil
	}
	ids, usernames := make([]string, len(cs)), make([]string, len(cs))
	for i, c := range cs {
		ids[i], usernames[i] = c.id, c.username
	}
	existing, err := existingCustomers(a.tx, ids, usernames)
	if err != nil {
		return err
	}
	byUsername := make(map[string]string, len(existing))
	for _, r := range existing {
		byUsername[r.Username] = r.ID
	}
	profiles, err := a.storedProfiles()
	if err != nil {
		return err
	}
	var subjects []string
	inBatch := map[string]string{} // subject → the batch's customer claiming it
	for _, c := range cs {
		if c.idpSubject != "" {
			subjects = append(subjects, c.idpSubject)
		}
	}
	owners, err := idpSubjectOwners(a.tx, subjects)
	if err != nil {
		return err
	}
	var (
		write        []customerRec
		writeProfile []identity.Profile
	)
	for _, c := range cs {
		ex, ok := existing[c.id]
		holder, held := owners[c.idpSubject]
		claimant, claimed := inBatch[c.idpSubject]
		if c.profile != nil {
			if stored, has := profiles[c.id]; !has || stored != *c.profile {
				writeProfile = append(writeProfile, *c.profile)
				if ok && ex.Username == c.username && ex.DisplayName == c.displayName {
					ex.DisplayName = "" // the profile changed: the customer is updated
				}
			}
		}
		switch {
		case ok && ex.Username != c.username:
			a.refuse(c.pos, "id", "this id collides with another customer's")
			continue
		case !ok && byUsername[c.username] != "":
			a.refuse(c.pos, "id", fmt.Sprintf("the username %q is taken by another customer", c.username))
			continue
		case c.idpSubject != "" && ((held && holder != c.id) || (claimed && claimant != c.id)):
			a.refuse(c.pos, "idp_subject", "this IdP subject is already linked to another customer: one IdP login opens one customer")
			continue
		case ok && ex.DisplayName == c.displayName && ptrString(ex.IDPSubject) == c.idpSubject:
			a.st.Unchanged++
		case ok:
			a.st.Updated++
			write = append(write, c)
		default:
			a.st.Created++
			write = append(write, c)
		}
		a.customers[c.id] = true
		if c.idpSubject != "" {
			inBatch[c.idpSubject] = c.id
		}
	}
	if !a.errs.empty() {
		return nil
	}
	if err := upsertCustomers(a.tx, write, a.now); err != nil {
		return err
	}
	return identity.UpsertProfiles(a.tx, writeProfile, a.now)
}

// storedProfiles reads the profiles on record of the batch's customers
// that carry one.
func (a *applier) storedProfiles() (map[string]identity.Profile, error) {
	var ids []string
	for _, c := range a.b.customers {
		if c.profile != nil {
			ids = append(ids, c.id)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return identity.ProfilesByCustomer(a.tx, ids)
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// loadAccounts makes a.accounts hold the given accounts that exist.
func (a *applier) loadAccounts(ids []string) error {
	if a.accounts == nil {
		a.accounts = map[string]accounts.Account{}
	}
	var missing []string
	seen := map[string]bool{}
	for _, id := range ids {
		if _, ok := a.accounts[id]; !ok && !seen[id] {
			seen[id] = true
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	found, err := a.bulk.AccountsByID(missing)
	if err != nil {
		return err
	}
	for id, acc := range found {
		a.accounts[id] = acc
	}
	return nil
}

// account returns an account of this institution known to the batch.
func (a *applier) account(id string) (accounts.Account, bool) {
	acc, ok := a.accounts[id]
	return acc, ok && acc.InstitutionID == a.b.institutionID
}

func (a *applier) accountRecords() error {
	as := a.b.accounts
	if len(as) == 0 {
		return nil
	}
	ids := make([]string, len(as))
	var customerIDs []string
	for i, r := range as {
		ids[i] = r.a.ID
		if !a.customers[r.a.CustomerID] {
			customerIDs = append(customerIDs, r.a.CustomerID)
		}
	}
	if err := a.loadAccounts(ids); err != nil {
		return err
	}
	found, err := customersExist(a.tx, customerIDs)
	if err != nil {
		return err
	}
	var numberIDs []string
	for _, r := range as {
		if r.numbers != nil {
			numberIDs = append(numberIDs, r.a.ID)
		}
	}
	var storedNumbers map[string]accounts.PaymentNumbers
	if len(numberIDs) > 0 {
		if storedNumbers, err = a.bulk.PaymentNumbersByAccount(numberIDs); err != nil {
			return err
		}
	}
	var (
		write        []accounts.Account
		writeNumbers []accounts.PaymentNumbers
	)
	for _, r := range as {
		ex, exists := a.accounts[r.a.ID]
		numbersChanged := false
		if r.numbers != nil {
			if stored, has := storedNumbers[r.a.ID]; !has || stored != *r.numbers {
				numbersChanged = true
			}
		}
		switch {
		case !a.customers[r.a.CustomerID] && !found[r.a.CustomerID]:
			a.refuse(r.pos, "customer_id", fmt.Sprintf("unknown customer %q: send it first (a customer record)", r.customerProviderID))
			continue
		case exists && ex.InstitutionID != r.a.InstitutionID:
			a.refuse(r.pos, "id", "this id collides with another institution's account")
			continue
		case exists && ex.CustomerID != r.a.CustomerID:
			a.refuse(r.pos, "customer_id", "the account belongs to another customer: an account never changes owner (consents name it)")
			continue
		case exists && ex.Currency != r.a.Currency:
			a.refuse(r.pos, "currency", fmt.Sprintf("the account's currency is %s and never changes", ex.Currency))
			continue
		case exists && ex.Type == r.a.Type && ex.DisplayName == r.a.DisplayName && ex.Last4 == r.a.Last4 && ex.Status == r.a.Status && !numbersChanged:
			a.st.Unchanged++
		case exists:
			a.st.Updated++
			write = append(write, r.a)
		default:
			a.st.Created++
			write = append(write, r.a)
		}
		a.accounts[r.a.ID] = r.a
		if numbersChanged {
			writeNumbers = append(writeNumbers, *r.numbers)
		}
	}
	if !a.errs.empty() {
		return nil
	}
	if err := a.bulk.UpsertAccounts(write); err != nil {
		return err
	}
	if len(writeNumbers) == 0 {
		return nil
	}
	return a.bulk.UpsertPaymentNumbers(writeNumbers)
}

func (a *applier) balanceRecords() error {
	bs := a.b.balances
	if len(bs) == 0 {
		return nil
	}
	ids := make([]string, len(bs))
	for i, r := range bs {
		ids[i] = r.b.AccountID
	}
	if err := a.loadAccounts(ids); err != nil {
		return err
	}
	existing, err := a.bulk.BalancesByAccount(ids)
	if err != nil {
		return err
	}
	var write []accounts.Balance
	for _, r := range bs {
		acc, ok := a.account(r.b.AccountID)
		ex, exists := existing[r.b.AccountID]
		switch {
		case !ok:
			a.refuse(r.pos, "account_id", fmt.Sprintf("unknown account %q: send it first (an account record)", r.accountProviderID))
		case acc.Currency != r.b.Currency:
			a.refuse(r.pos, "currency", fmt.Sprintf("the account's currency is %s", acc.Currency))
		case r.b.CreditLimit != nil && acc.Type != accounts.TypeCreditCard:
			a.refuse(r.pos, "credit_limit", "only credit_card accounts have a credit limit")
		case exists && ex.AsOf.After(r.b.AsOf):
			a.st.Unchanged++ // a newer balance is stored already
		case exists && ex.AsOf.Equal(r.b.AsOf) && ex.Current == r.b.Current && ex.Available == r.b.Available &&
			equalInt64(ex.CreditLimit, r.b.CreditLimit):
			a.st.Unchanged++
		case exists:
			a.st.Updated++
			write = append(write, r.b)
		default:
			a.st.Created++
			write = append(write, r.b)
		}
	}
	if !a.errs.empty() {
		return nil
	}
	return a.bulk.UpsertBalances(write)
}

func (a *applier) transactionRecords() error {
	ts := a.b.transactions
	if len(ts) == 0 {
		return nil
	}
	ids := make([]string, len(ts))
	accountIDs := make([]string, 0, 4)
	seenAccount := map[string]bool{}
	for i, r := range ts {
		ids[i] = r.t.ID
		if !seenAccount[r.t.AccountID] {
			seenAccount[r.t.AccountID] = true
			accountIDs = append(accountIDs, r.t.AccountID)
		}
	}
	if err := a.loadAccounts(accountIDs); err != nil {
		return err
	}
	existing, err := a.bulk.TransactionsByID(ids)
	if err != nil {
		return err
	}
	reversed, err := reversedIDs(a.tx, ids)
	if err != nil {
		return err
	}
	var write, remove []accounts.Transaction
	for _, r := range ts {
		t := r.t
		ex, exists := existing[t.ID]
		if _, ok := a.account(t.AccountID); !ok {
			a.refuse(r.pos, "account_id", fmt.Sprintf("unknown account %q: send it first (an account record)", r.accountProviderID))
			continue
		}
		if reversed[t.ID] {
			if r.reversed || t.Status == accounts.StatusPending {
				// Reversed before, or a late copy of the pending record
				// the reversal ended: nothing to do.
				a.st.Unchanged++
			} else {
				a.refuse(r.pos, "id", fmt.Sprintf("transaction %q was reversed: a reversed id is never used again; send a new id", r.providerID))
			}
			continue
		}
		switch {
		case exists && ex.AccountID != t.AccountID:
			a.refuse(r.pos, "account_id", fmt.Sprintf("transaction %q belongs to another account: a transaction never moves", r.providerID))
		case r.reversed && !exists:
			a.refuse(r.pos, "id", fmt.Sprintf("no pending transaction %q to reverse", r.providerID))
		case r.reversed && ex.Status == accounts.StatusBooked:
			a.refuse(r.pos, "reversed", fmt.Sprintf("transaction %q is booked: only pending transactions are reversed; send a refund as a new transaction with a positive amount", r.providerID))
		case r.reversed:
			a.st.Reversed++
			remove = append(remove, ex)
		case exists && ex.Status == accounts.StatusBooked && t.Status == accounts.StatusPending:
			// A late copy of the pending record: booking is final, so it
			// changes nothing (replaying old batches is safe).
			a.st.Unchanged++
		case exists && ex.Status == accounts.StatusBooked && (ex.Amount != t.Amount || ex.Currency != t.Currency):
			field := "amount"
			if ex.Currency != t.Currency {
				field = "currency"
			}
			a.refuse(r.pos, field, fmt.Sprintf("transaction %q is booked: its amount and currency are final; send a correction as a new transaction", r.providerID))
		case exists && sameTransaction(ex, t):
			a.st.Unchanged++
		case exists:
			a.st.Updated++
			write = append(write, t)
		default:
			a.st.Created++
			write = append(write, t)
		}
	}
	if !a.errs.empty() {
		return nil
	}
	if err := a.sequence(write, remove, existing); err != nil {
		return err
	}
	if err := a.bulk.UpsertTransactions(write); err != nil {
		return err
	}
	if len(remove) == 0 {
		return nil
	}
	removeIDs := make([]string, len(remove))
	for i, t := range remove {
		removeIDs[i] = t.ID
	}
	if err := a.bulk.DeletePendingTransactions(removeIDs); err != nil {
		return err
	}
	return recordReversals(a.tx, remove, a.now)
}

func sameTransaction(x, y accounts.Transaction) bool {
	return x.Status == y.Status && x.TransactedAt.Equal(y.TransactedAt) && equalTime(x.BookedAt, y.BookedAt) &&
		x.Amount == y.Amount && x.Currency == y.Currency && x.Description == y.Description &&
		x.MerchantName == y.MerchantName && x.MCC == y.MCC && x.CardLast4 == y.CardLast4
}

func equalInt64(x, y *int64) bool {
	return (x == nil) == (y == nil) && (x == nil || *x == *y)
}

func equalTime(x, y *time.Time) bool {
	return (x == nil) == (y == nil) && (x == nil || x.Equal(*y))
}
