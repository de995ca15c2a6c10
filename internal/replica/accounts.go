package replica

import (
	"context"
	"errors"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
)

// Accounts is the data API's account store with its reads spread over the
// usable replicas: every read runs on one replica and, when that replica
// fails it, once more on the primary, so a lost replica costs a client
// nothing but a little latency. A row the replica does not have (an
// account, balance or payment numbers written within the lag) is read
// again on the primary too. Writes, and reads with no usable replica, go to
// the primary.
type Accounts struct {
	*accounts.SQLStore // the primary: writes, and whatever is not overridden
	set                *Set
	replicas           []*accounts.SQLStore // by node index
}

// Accounts returns the account store that reads through the Set's
// replicas, with primary as the store of the primary.
func (s *Set) Accounts(primary *accounts.SQLStore) *Accounts {
	a := &Accounts{SQLStore: primary, set: s}
	for _, n := range s.nodes {
		a.replicas = append(a.replicas, accounts.NewSQLStore(n.db))
	}
	return a
}

var (
	_ accounts.Store        = (*Accounts)(nil)
	_ accounts.PostedReader = (*Accounts)(nil)
	_ accounts.NumberStore  = (*Accounts)(nil)
)

// errBehindCursor: the replica has not replayed the changes a sync cursor
// already covers.
var errBehindCursor = errors.New("the replica is behind the sync cursor")

// errIncomplete: the replica lacks accounts the consent names.
var errIncomplete = errors.New("the replica lacks some of the accounts")

// ReadTimeout bounds one read on a replica: a replica that hangs (a
// network partition, a stopped process) costs a read this long, then the
// read is made on the primary and the replica leaves service until its
// next measurement succeeds.
const ReadTimeout = 2 * time.Second

// read runs fn on a usable replica, else (or when it fails there) on the
// primary.
func read[T any](a *Accounts, ctx context.Context, fn func(context.Context, *accounts.SQLStore) (T, error)) (T, error) {
	n := a.set.pick()
	if n == nil {
		if len(a.replicas) > 0 {
			a.set.fallbacks.WithLabelValues(reasonNoReplica).Inc()
		}
		a.set.reads.WithLabelValues("primary").Inc()
		return fn(ctx, a.SQLStore)
	}
	rctx, cancel := context.WithTimeout(ctx, ReadTimeout)
	v, err := fn(rctx, a.replicas[n.i])
	cancel()
	switch {
	case err == nil:
		a.set.reads.WithLabelValues("replica").Inc()
		return v, nil
	case ctx.Err() != nil, errors.Is(err, accounts.ErrInvalid):
		return v, err // the client left, or the query is wrong on any server
	case errors.Is(err, accounts.ErrNotFound), errors.Is(err, errIncomplete):
		a.set.fallbacks.WithLabelValues(reasonNotOnReplica).Inc()
	case errors.Is(err, errBehindCursor):
		a.set.fallbacks.WithLabelValues(reasonBehindCursor).Inc()
	default:
		a.set.failed(n, err)
		a.set.fallbacks.WithLabelValues(reasonError).Inc()
	}
	a.set.reads.WithLabelValues("primary").Inc()
	return fn(ctx, a.SQLStore)
}

type pair[A, B any] struct {
	a A
	b B
}

// ListByIDs implements accounts.Store: on a replica that lacks one of ids
// (an account linked within the lag), on the primary.
func (a *Accounts) ListByIDs(ctx context.Context, customerID string, ids []string) ([]accounts.Account, error) {
	return read(a, ctx, func(ctx context.Context, s *accounts.SQLStore) ([]accounts.Account, error) {
		as, err := s.ListByIDs(ctx, customerID, ids)
		if err == nil && s != a.SQLStore && len(as) < len(ids) {
			return nil, errIncomplete
		}
		return as, err
	})
}

// Get implements accounts.Store.
func (a *Accounts) Get(ctx context.Context, customerID, id string) (*accounts.Account, error) {
	return read(a, ctx, func(ctx context.Context, s *accounts.SQLStore) (*accounts.Account, error) {
		return s.Get(ctx, customerID, id)
	})
}

// Balance implements accounts.Store.
func (a *Accounts) Balance(ctx context.Context, accountID string) (*accounts.Balance, error) {
	return read(a, ctx, func(ctx context.Context, s *accounts.SQLStore) (*accounts.Balance, error) {
		return s.Balance(ctx, accountID)
	})
}

// Transactions implements accounts.Store.
func (a *Accounts) Transactions(ctx context.Context, q accounts.TxQuery) ([]accounts.Transaction, *accounts.TxKey, error) {
	p, err := read(a, ctx, func(ctx context.Context, s *accounts.SQLStore) (pair[[]accounts.Transaction, *accounts.TxKey], error) {
		txs, next, err := s.Transactions(ctx, q)
		return pair[[]accounts.Transaction, *accounts.TxKey]{txs, next}, err
	})
	return p.a, p.b, err
}

// PostedTransactions implements accounts.PostedReader.
func (a *Accounts) PostedTransactions(ctx context.Context, q accounts.PostedQuery) ([]accounts.Transaction, *accounts.PostedKey, error) {
	p, err := read(a, ctx, func(ctx context.Context, s *accounts.SQLStore) (pair[[]accounts.Transaction, *accounts.PostedKey], error) {
		txs, next, err := s.PostedTransactions(ctx, q)
		return pair[[]accounts.Transaction, *accounts.PostedKey]{txs, next}, err
	})
	return p.a, p.b, err
}

// PaymentNumbers implements accounts.NumberStore.
func (a *Accounts) PaymentNumbers(ctx context.Context, accountID string) (*accounts.PaymentNumbers, error) {
	return read(a, ctx, func(ctx context.Context, s *accounts.SQLStore) (*accounts.PaymentNumbers, error) {
		return s.PaymentNumbers(ctx, accountID)
	})
}

// ChangeHead returns the account's latest change ordinal as a usable
// replica has it: at most the lag bound older than the primary's. The sync
// handler never lets it move a cursor back (it starts a run at the
// cursor's position or later), and Sync reads the run's pages only where
// they are complete.
func (a *Accounts) ChangeHead(ctx context.Context, accountID string) (int64, error) {
	return read(a, ctx, func(ctx context.Context, s *accounts.SQLStore) (int64, error) { return s.ChangeHead(ctx, accountID) })
}

// Sync returns one page of the account's changes from a replica only if
// that replica has replayed the account's change sequence up to the page's
// head and the cursor's position (the account's head row is written in
// the transaction that records the changes, and a standby shows
// transactions in their commit order, so a head at least that high means
// every change up to it is there); otherwise from the primary. A page is
// therefore never read from a replica behind what the cursor already
// covers: the cursor never goes back and no change is skipped, whichever
// server answers each request (docs/scaling.md).
func (a *Accounts) Sync(ctx context.Context, q accounts.SyncQuery) (*accounts.SyncPage, error) {
	need := max(q.Head, q.AfterSeq)
	return read(a, ctx, func(ctx context.Context, s *accounts.SQLStore) (*accounts.SyncPage, error) {
		if s != a.SQLStore {
			head, err := s.ChangeHead(ctx, q.AccountID)
			if err != nil {
				return nil, err
			}
			if head < need {
				return nil, errBehindCursor
			}
		}
		return s.Sync(ctx, q)
	})
}
