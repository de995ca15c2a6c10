package oauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/purpose"
	"github.com/consentgate/consentgate/internal/store"
)

// testClock is the provider's clock in tests; fosite itself reads real time,
// so the clock starts at the real now and only ever moves forward.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock { return &testClock{t: time.Now().UTC()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// eventLog records the provider's events.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) OAuthEvent(_ context.Context, e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// find returns the events of a type.
func (l *eventLog) find(typ string) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, e := range l.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func openSQLite(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open("sqlite:"+t.TempDir()+"/t.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return db
}

// postgresURLEnv names a PostgreSQL server URL (of a database the tests may
// connect to in order to CREATE DATABASE); when set, the store suite runs on
// PostgreSQL too, each test in a fresh database.
const postgresURLEnv = "CONSENTGATE_TEST_POSTGRES_URL"

func openPostgres(t testing.TB) *store.DB {
	t.Helper()
	base := os.Getenv(postgresURLEnv)
	if base == "" {
		t.Skip(postgresURLEnv + " not set")
	}
	admin, err := store.Open(base, store.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "cg_oauth_" + hex.EncodeToString(b)
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		_ = admin.Close()
		t.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	db, err := store.Open(u.String(), store.Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = db.Close()
		if err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)").Error; err != nil {
			t.Logf("drop %s: %v", name, err)
		}
		_ = admin.Close()
	})
	if err := db.Migrate(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return db
}

// Fixture ids.
const (
	custAlice = "cust-alice"
	custBob   = "cust-bob"
	accAlice1 = "acc-alice-1"
	accAlice2 = "acc-alice-2"
	accBob1   = "acc-bob-1"

	appID       = "app"
	appSecret   = "app-secret-0123456789"
	appRedirect = "http://127.0.0.1:8765/callback"
	otherID     = "other-app"
	otherSecret = "other-secret-0123456789"
	otherRedir  = "https://other.example/cb"
	auditorID   = "auditor"
	auditorSec  = "auditor-secret-0123456789"
)

// seedPeople inserts an institution, alice (two accounts) and bob (one).
func seedPeople(t testing.TB, db *store.DB) {
	t.Helper()
	stmts := []string{
		`INSERT INTO institutions (id, name, created_at) VALUES ('inst-1', 'First Demo Bank', 0)`,
		`INSERT INTO customers (id, username, password_hash, display_name, created_at) VALUES ('cust-alice', 'alice', 'x', 'Alice', 0)`,
		`INSERT INTO customers (id, username, password_hash, display_name, created_at) VALUES ('cust-bob', 'bob', 'x', 'Bob', 0)`,
		`INSERT INTO accounts (id, customer_id, institution_id, type, display_name, last4, currency, status, created_at)
			VALUES ('acc-alice-1', 'cust-alice', 'inst-1', 'checking', 'Checking', '1234', 'EUR', 'open', 0)`,
		`INSERT INTO accounts (id, customer_id, institution_id, type, display_name, last4, currency, status, created_at)
			VALUES ('acc-alice-2', 'cust-alice', 'inst-1', 'credit_card', 'Card', '9876', 'EUR', 'open', 0)`,
		`INSERT INTO accounts (id, customer_id, institution_id, type, display_name, last4, currency, status, created_at)
			VALUES ('acc-bob-1', 'cust-bob', 'inst-1', 'savings', 'Savings', '5555', 'EUR', 'open', 0)`,
	}
	for _, s := range stmts {
		if err := db.Exec(s).Error; err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
}

// newTestProvider builds a provider on db with the test clock and event log,
// and registers the fixture clients.
func newTestProvider(t testing.TB, db *store.DB, clock *testClock, events *eventLog) *Provider {
	t.Helper()
	p, err := New(Deps{
		DB: db, Consents: consent.NewSQLStore(db), Purposes: purpose.Default(),
		Issuer: "https://as.example", Secret: []byte(strings.Repeat("s", 32)),
		Now: clock.Now, Events: events, Subjects: identity.NewPairwise([]byte(strings.Repeat("p", 32))),
	})
	if err != nil {
		t.Fatal(err)
	}
	data := []string{purpose.ScopeAccounts, purpose.ScopeBalances, purpose.ScopeTransactions, purpose.ScopeOffline}
	for _, spec := range []ClientSpec{
		{ID: appID, Name: "Budget App", Secret: appSecret, RedirectURIs: []string{appRedirect},
			Scopes: data, Purposes: []string{"personal_finance_management", "account_verification"}},
		{ID: otherID, Name: "Other App", Secret: otherSecret, RedirectURIs: []string{otherRedir},
			Scopes: data, Purposes: []string{"personal_finance_management"}},
		{ID: auditorID, Name: "Auditor", Secret: auditorSec, GrantTypes: []string{GrantClientCredentials},
			Scopes: []string{ScopeAuditRead}},
	} {
		if _, _, err := p.CreateClient(context.Background(), spec); err != nil {
			t.Fatalf("client %s: %v", spec.ID, err)
		}
	}
	return p
}

// authorizedConsent creates a consent for alice, authorized now, with the
// given id, for the app client.
func authorizedConsent(t testing.TB, p *Provider, id string) *consent.Consent {
	t.Helper()
	ctx := context.Background()
	c := &consent.Consent{ID: id, ClientID: appID, Scopes: []string{purpose.ScopeAccounts}, Purpose: "personal_finance_management",
		HistoryDays: 90, Duration: time.Hour, CreatedAt: p.now()}
	if err := p.consents.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := p.consents.Authorize(ctx, id, custAlice, []string{accAlice1}, p.now())
	if err != nil {
		t.Fatal(fmt.Errorf("authorize %s: %w", id, err))
	}
	return got
}
