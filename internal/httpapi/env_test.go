package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/httpapi/openapitest"
	"github.com/consentgate/consentgate/internal/purpose"
	"github.com/consentgate/consentgate/internal/store"
)

const specPath = "../../openapi.yaml"

// testNow is the fixed clock of the data API tests.
var testNow = time.Date(2025, 6, 30, 12, 0, 0, 0, time.UTC)

// Seeded ids: alice owns checking, savings, card and a new account without
// a balance; bob owns one account.
const (
	accChecking = "acc-chk"
	accSavings  = "acc-sav"
	accCard     = "acc-card"
	accNew      = "acc-new"
	accBob      = "acc-bob"
	alice       = "cust-alice"
	bob         = "cust-bob"
)

// env is a data API on a seeded SQLite database with a fake authenticator
// and the real audit log on the same database; every response it sees is
// checked against openapi.yaml.
type env struct {
	engine *gin.Engine
	db     *store.DB
	store  *countingStore
	auth   fakeAuth
	audit  *audit.Reader
	writer *audit.Writer // nil when newEnvWith was given a recorder
	signer *audit.Signer
	v      *openapitest.V
	logs   *syncBuffer
	usage  *memUsage
	// cardTxs are the card's transactions, newest first.
	cardTxs []accounts.Transaction
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith records data calls with rec; nil means a durable audit.Writer
// on the test database.
func newEnvWith(t *testing.T, rec audit.Recorder) *env {
	t.Helper()
	gin.SetMode(gin.TestMode)
	db, err := store.Open("sqlite:"+filepath.Join(t.TempDir(), "api.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	if err := db.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	s := accounts.NewSQLStore(db)
	e := &env{db: db, store: &countingStore{Store: s, calls: map[string]int{}}, audit: audit.NewReader(db), logs: &syncBuffer{},
		signer: audit.NewSigner([]byte(testSecret)), v: openapitest.Validator(t, specPath)}
	e.cardTxs = seed(t, db, s)
	e.auth = fakeAuth{
		"pfm":      principal(purposePFM, 730, allData, accCard, accChecking, accNew, accBob),
		"accounts": principal(purposePFM, 730, []string{purpose.ScopeAccounts}, accCard),
		"verify":   principal("account_verification", 0, []string{purpose.ScopeAccounts, purpose.ScopeBalances}, accCard),
		// The token carries transactions:read but the purpose policy does not allow it.
		"verify-tx":    principal("account_verification", 0, allData, accCard),
		"zero-history": principal(purposePFM, 0, allData, accCard),
		"fraud-30":     principal("fraud_prevention", 30, allData, accCard),
		// Granted 365 days; the fraud_prevention policy allows 90.
		"fraud-365": principal("fraud_prevention", 365, allData, accCard),
		"cc":        {GrantID: "cc-grant", ClientID: "auditor", Scopes: []string{"audit:read"}},
		"cc-ingest": {GrantID: "cc-ingest-grant", ClientID: "provider", Scopes: []string{"provider:write"}},
	}
	narrow := principal(purposePFM, 730, allData, accCard)
	narrow.Scopes = []string{purpose.ScopeAccounts} // the token is narrower than its consent
	e.auth["narrow-token"] = narrow
	revoked := principal(purposePFM, 730, allData, accCard)
	revoked.Consent.Status = consent.Revoked
	e.auth["revoked"] = revoked
	expired := principal(purposePFM, 730, allData, accCard)
	past := testNow.Add(-time.Second)
	expired.Consent.ExpiresAt = &past
	e.auth["expired"] = expired
	mismatch := principal(purposePFM, 730, allData, accCard)
	mismatch.CustomerID = bob
	e.auth["mismatch"] = mismatch
	// A customer's consent token that somehow carries audit:read.
	e.auth["pfm-audit"] = principal(purposePFM, 730, append(slices.Clone(allData), ScopeAuditRead), accCard)

	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if rec == nil {
		w := audit.NewWriter(db, audit.WriterOptions{Logger: log})
		t.Cleanup(func() { _ = w.Close() }) // registered after the database's Close: runs first
		rec, e.writer = w, w
	}
	e.engine = gin.New()
	e.engine.Use(Middleware(log)...)
	e.usage = &memUsage{n: map[string]int{}}
	RegisterData(e.engine, Deps{Accounts: e.store, Auth: e.auth, Audit: rec, Usage: e.usage, Logger: log, Now: func() time.Time { return testNow }})
	RegisterAudit(e.engine, AuditDeps{Log: e.audit, Auth: e.auth, Keys: e.signer.KeySet(), Logger: log})
	return e
}

const purposePFM = "personal_finance_management"

// memUsage counts unattended calls in memory (the SQL counter is tested in
// package consent).
type memUsage struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *memUsage) CountUnattended(_ context.Context, id string, u consent.Usage, now time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := id + now.UTC().Format("2006-01-02") + u.Resource + "/" + u.AccountID
	m.n[k]++
	return m.n[k], nil
}

func (m *memUsage) UncountUnattended(_ context.Context, id string, u consent.Usage, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := id + now.UTC().Format("2006-01-02") + u.Resource + "/" + u.AccountID
	if m.n[k] > 0 {
		m.n[k]--
	}
	return nil
}

// testSecret derives the checkpoint key of the auditor API tests.
const testSecret = "httpapi-test-secret-0123456789abcdef"

var allData = []string{purpose.ScopeAccounts, purpose.ScopeBalances, purpose.ScopeTransactions, purpose.ScopeOffline}

func principal(purposeCode string, historyDays int, scopes []string, accountIDs ...string) *Principal {
	authorized := testNow.Add(-24 * time.Hour)
	expires := testNow.Add(30 * 24 * time.Hour)
	c := &consent.Consent{
		ID: "grant-" + purposeCode, ClientID: "app", CustomerID: alice, Status: consent.Authorized,
		Scopes: scopes, Purpose: purposeCode, HistoryDays: historyDays, AccountIDs: slices.Sorted(slices.Values(accountIDs)),
		AuthorizedAt: &authorized, ExpiresAt: &expires,
	}
	return &Principal{GrantID: c.ID, ClientID: c.ClientID, CustomerID: alice, Scopes: scopes, Purpose: purposeCode, Consent: c}
}

func seed(t *testing.T, db *store.DB, s *accounts.SQLStore) []accounts.Transaction {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []string{alice, bob} {
		must(db.Exec(`INSERT INTO customers (id, username, password_hash, display_name, created_at) VALUES (?, ?, ?, ?, ?)`,
			c, c, "x", c, store.Micros(testNow)).Error)
	}
	must(s.UpsertInstitution(ctx, accounts.Institution{ID: "bank-1", Name: "First Demo Bank"}))
	for _, a := range []accounts.Account{
		{ID: accChecking, CustomerID: alice, Type: accounts.TypeChecking, DisplayName: "Everyday", Last4: "1111"},
		{ID: accSavings, CustomerID: alice, Type: accounts.TypeSavings, DisplayName: "Savings", Last4: "2222"},
		{ID: accCard, CustomerID: alice, Type: accounts.TypeCreditCard, DisplayName: "Card", Last4: "4242"},
		{ID: accNew, CustomerID: alice, Type: accounts.TypeChecking, DisplayName: "New", Last4: "3333"},
		{ID: accBob, CustomerID: bob, Type: accounts.TypeChecking, DisplayName: "Bob's", Last4: "9999"},
	} {
		a.InstitutionID, a.Currency, a.Status = "bank-1", "EUR", "open"
		must(s.UpsertAccount(ctx, a))
	}
	limit := int64(500000)
	for _, b := range []accounts.Balance{
		// A credit limit stored on a checking account must still show as null.
		{AccountID: accChecking, Current: 123456, Available: 120000, CreditLimit: &limit, AsOf: testNow},
		{AccountID: accCard, Current: -12345, Available: 487655, CreditLimit: &limit, AsOf: testNow},
		{AccountID: accBob, Current: 1, Available: 1, AsOf: testNow},
	} {
		must(s.UpsertBalance(ctx, b))
	}
	// Two card transactions per day over 400 days, sharing a timestamp so the
	// id tie-break shows; the last three days are pending.
	var txs []accounts.Transaction
	for i := 0; i < 800; i++ {
		at := testNow.Add(-time.Duration(i/2)*12*time.Hour - time.Hour)
		tx := accounts.Transaction{
			ID: fmt.Sprintf("tx-%04d", i), AccountID: accCard, Status: accounts.StatusBooked, TransactedAt: at,
			Amount: -int64(100 + i), Currency: "EUR", Description: "Coffee", MerchantName: "Café", MCC: "5814", CardLast4: "4242",
		}
		if testNow.Sub(at) < 3*24*time.Hour {
			tx.Status = accounts.StatusPending
		} else {
			booked := at.Add(26 * time.Hour)
			tx.BookedAt = &booked
		}
		txs = append(txs, tx)
	}
	txs = append(txs, accounts.Transaction{ID: "tx-refund", AccountID: accCard, Status: accounts.StatusPending,
		TransactedAt: testNow.Add(-30 * time.Minute), Amount: 2500, Currency: "EUR", Description: "Refund", MerchantName: "Shop", MCC: "5411"})
	must(s.UpsertTransactions(ctx, txs))
	// Checking transactions at the same times: never in the card's pages.
	var chk []accounts.Transaction
	for i := 0; i < 20; i++ {
		booked := testNow
		chk = append(chk, accounts.Transaction{ID: fmt.Sprintf("chk-%02d", i), AccountID: accChecking, Status: accounts.StatusBooked,
			TransactedAt: testNow.Add(-time.Duration(i) * time.Hour), BookedAt: &booked, Amount: 100, Currency: "EUR"})
	}
	must(s.UpsertTransactions(ctx, chk))
	slices.SortFunc(txs, func(a, b accounts.Transaction) int {
		if c := b.TransactedAt.Compare(a.TransactedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return txs
}

// fakeAuth maps bearer tokens to principals. Token "panic" panics and
// "broken" fails like an unreachable database.
type fakeAuth map[string]*Principal

func (f fakeAuth) Authenticate(_ context.Context, r *http.Request) (*Principal, error) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	switch {
	case h == "":
		return nil, &TokenError{Description: "No access token: send Authorization: Bearer <token>."}
	case !ok:
		return nil, &TokenError{Description: "Unsupported authorization scheme."}
	case tok == "panic":
		panic("secret-panic-value")
	case tok == "broken":
		return nil, errors.New("dial tcp 10.0.0.7:5432: connection refused")
	case tok == "db-down":
		return nil, apperr.Wrap(apperr.Unavailable, "The token cannot be checked right now; retry shortly.",
			errors.New("dial tcp 10.0.0.7:5432: connection refused"))
	}
	p, known := f[tok]
	if !known {
		return nil, &TokenError{Description: "The access token is unknown, expired or revoked."}
	}
	cp := *p // handlers must not see each other's changes
	if p.Consent != nil {
		c := *p.Consent
		cp.Consent = &c
	}
	return &cp, nil
}

// countingStore counts the reads that reach the store, to prove that a
// refused call read no data.
type countingStore struct {
	accounts.Store
	mu    sync.Mutex
	calls map[string]int
}

func (s *countingStore) count(m string) {
	s.mu.Lock()
	s.calls[m]++
	s.mu.Unlock()
}

func (s *countingStore) reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

func (s *countingStore) ListByIDs(ctx context.Context, customerID string, ids []string) ([]accounts.Account, error) {
	s.count("ListByIDs")
	return s.Store.ListByIDs(ctx, customerID, ids)
}

func (s *countingStore) ListByCustomer(ctx context.Context, customerID string) ([]accounts.Account, error) {
	s.count("ListByCustomer")
	return s.Store.ListByCustomer(ctx, customerID)
}

func (s *countingStore) Get(ctx context.Context, customerID, id string) (*accounts.Account, error) {
	s.count("Get")
	return s.Store.Get(ctx, customerID, id)
}

func (s *countingStore) Balance(ctx context.Context, accountID string) (*accounts.Balance, error) {
	s.count("Balance")
	return s.Store.Balance(ctx, accountID)
}

func (s *countingStore) Transactions(ctx context.Context, q accounts.TxQuery) ([]accounts.Transaction, *accounts.TxKey, error) {
	s.count("Transactions")
	return s.Store.Transactions(ctx, q)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// do sends a GET with token (none when "") and extra headers as name,
// value pairs, checks the response against openapi.yaml and returns it.
// do sends a GET as an app whose customer is present (so the daily
// unattended limit stays out of the way); pass HeaderCustomerIP "" to call
// unattended.
func (e *env) do(t *testing.T, token, target string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set(HeaderCustomerIP, "198.51.100.7")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == HeaderCustomerIP {
			req.Header.Del(HeaderCustomerIP)
			if headers[i+1] == "" {
				continue
			}
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	e.engine.ServeHTTP(rec, req)
	e.v.Check(t, req, rec.Code, rec.Header(), rec.Body.Bytes())
	return rec
}

// problem decodes a problem+json response and checks its invariants.
func problem(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) Problem {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Code != code || p.Status != status || p.Type != ProblemTypeBase+code || p.Title == "" || p.Detail == "" {
		t.Fatalf("problem %+v, want code %s status %d", p, code, status)
	}
	if p.InteractionID == "" || p.InteractionID != rec.Header().Get(HeaderInteractionID) {
		t.Errorf("problem interaction_id %q, header %q", p.InteractionID, rec.Header().Get(HeaderInteractionID))
	}
	return p
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, body %s", rec.Code, rec.Body)
	}
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	return v
}
