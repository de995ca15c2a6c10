package demo

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// memStore keeps what the generator writes, so data sets can be compared
// exactly. Methods the generator must not call are left to the embedded nil
// interface (they would panic).
type memStore struct {
	accounts.Store
	mu           sync.Mutex
	institutions map[string]accounts.Institution
	accts        map[string]accounts.Account
	balances     map[string]accounts.Balance
	txs          map[string]accounts.Transaction
	batches      []int
}

func newMemStore() *memStore {
	return &memStore{institutions: map[string]accounts.Institution{}, accts: map[string]accounts.Account{},
		balances: map[string]accounts.Balance{}, txs: map[string]accounts.Transaction{}}
}

func (m *memStore) UpsertInstitution(_ context.Context, in accounts.Institution) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.institutions[in.ID] = in
	return nil
}

func (m *memStore) UpsertAccount(_ context.Context, a accounts.Account) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.accts[a.ID] = a
	return nil
}

func (m *memStore) UpsertBalance(_ context.Context, b accounts.Balance) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.balances[b.AccountID] = b
	return nil
}

func (m *memStore) UpsertTransactions(_ context.Context, txs []accounts.Transaction) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batches = append(m.batches, len(txs))
	for _, t := range txs {
		if t.BookedAt != nil {
			b := *t.BookedAt
			t.BookedAt = &b // the caller may reuse its slice
		}
		m.txs[t.ID] = t
	}
	return nil
}

func (m *memStore) Balance(_ context.Context, id string) (*accounts.Balance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.balances[id]
	if !ok {
		return nil, accounts.ErrNotFound
	}
	return &b, nil
}

func (m *memStore) ListByCustomer(_ context.Context, customerID string) ([]accounts.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []accounts.Account
	for _, a := range m.accts {
		if a.CustomerID == customerID {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b accounts.Account) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// sortedTxs returns every transaction ordered by id.
func (m *memStore) sortedTxs() []accounts.Transaction {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]accounts.Transaction, 0, len(m.txs))
	for _, t := range m.txs {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b accounts.Transaction) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// fakeClients records registrations.
type fakeClients struct {
	mu      sync.Mutex
	created []ClientSpec
}

func (f *fakeClients) ClientExists(_ context.Context, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.created, func(s ClientSpec) bool { return s.ID == id }), nil
}

func (f *fakeClients) CreateClient(_ context.Context, s ClientSpec) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, s)
	return s.ID, s.Secret, nil
}

// testNow is a Tuesday morning; histories end here.
var testNow = time.Date(2026, 11, 3, 10, 15, 0, 0, time.UTC)

func newIdentity(t *testing.T) (*identity.Service, *store.DB) {
	t.Helper()
	db := testdb.Open(t, store.SQLite)
	return identity.NewService(db, func() time.Time { return testNow }), db
}
