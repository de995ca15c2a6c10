// Package demo makes believable, deterministic data for demos, tests and
// benchmarks: the fixed fixtures of SPEC §9 (alice, bob and the demo
// clients) and a synthetic generator of customers with realistic card
// activity. It writes only through accounts.Store, identity.Service and a
// ClientCreator, never with its own SQL, and it must never produce a full
// card number: cards appear as their last four digits only.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/identity"
)

// ClientSpec describes an OAuth client to register; the field names mirror
// oauth.ClientSpec so the server can convert one into the other.
type ClientSpec struct {
	ID           string
	Name         string
	Secret       string
	RedirectURIs []string
	GrantTypes   []string
	Scopes       []string
	Purposes     []string
	AuthMethod   string // client_secret_basic | private_key_jwt
	JWKS         []byte
	DPoP         bool
	JWKSURI      string // private_key_jwt: where the keys are, instead of JWKS
	// PAROptional: exempt from PAR (front-channel authorization requests).
	PAROptional    bool
	DefaultPurpose string // the purpose of a request that names none
	Aggregator     bool   // passes the data on to other apps
}

// ClientCreator registers OAuth clients (the authorization server).
type ClientCreator interface {
	// ClientExists reports whether a client with id is registered.
	ClientExists(ctx context.Context, id string) (bool, error)
	// CreateClient registers spec and returns its id and secret.
	CreateClient(ctx context.Context, spec ClientSpec) (clientID, secret string, err error)
}

// Deps are where the demo data goes.
type Deps struct {
	Accounts accounts.Store
	Identity *identity.Service
	Clients  ClientCreator    // SeedFixtures only
	Now      func() time.Time // nil: time.Now; histories end at Now
	Logger   *slog.Logger     // nil: discard
}

func (d Deps) now() time.Time {
	if d.Now == nil {
		return time.Now().UTC()
	}
	return d.Now().UTC()
}

func (d Deps) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// InstitutionID is First Demo Bank, the institution of the SPEC §9 customers.
const InstitutionID = "inst_first_demo_bank"

// ProviderClientID is the demo data provider client; it feeds InstitutionID.
const ProviderClientID = "demo-provider"

// The demo clients of SPEC §9. Their secrets are published in SPEC §9 and
// the README on purpose: they exist only in --demo deployments.
var fixtureClients = []ClientSpec{
	{ // #nosec G101 -- the SPEC §9 demo credentials, public by design
		ID: "demo-pfm", Name: "Demo Budget Planner", Secret: "demo-pfm-secret", AuthMethod: "client_secret_basic",
		GrantTypes:   []string{"authorization_code", "refresh_token"},
		RedirectURIs: []string{"http://127.0.0.1:8765/callback", "http://localhost:8765/callback"},
		Scopes:       []string{"accounts:read", "balances:read", "transactions:read", "offline_access"},
		Purposes:     []string{"personal_finance_management", "account_verification"},
	},
	{ // #nosec G101 -- the SPEC §9 demo credentials, public by design
		ID: "demo-aggregator", Name: "Demo Aggregator", Secret: "demo-aggregator-secret", AuthMethod: "client_secret_basic",
		GrantTypes:   []string{"authorization_code", "refresh_token"},
		RedirectURIs: []string{"http://127.0.0.1:8766/callback"},
		Scopes: []string{"openid", "profile", "email", "offline_access", "accounts:read", "balances:read",
			"transactions:read", "identity:read", "account_numbers:read"},
		Purposes:    []string{"personal_finance_management", "account_verification"},
		PAROptional: true, DefaultPurpose: "personal_finance_management", Aggregator: true,
	},
	{ // #nosec G101 -- the SPEC §9 demo credentials, public by design
		ID: "demo-auditor", Name: "Demo Auditor", Secret: "demo-auditor-secret", AuthMethod: "client_secret_basic",
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"audit:read"},
	},
	{ // #nosec G101 -- the SPEC §9 demo credentials, public by design
		ID: ProviderClientID, Name: "Demo Data Provider", Secret: "demo-provider-secret", AuthMethod: "client_secret_basic",
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"provider:write"},
	},
	{ // #nosec G101 -- the SPEC §9 demo credentials, public by design
		ID: "demo-operator", Name: "Demo Bank Operations", Secret: "demo-operator-secret", AuthMethod: "client_secret_basic",
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin:clients"},
	},
}

// fixtureSeed fixes the fixtures' random stream: alice's history looks the
// same on every install, shifted to end at the time of seeding.
const fixtureSeed = 20260901

type fixtureCustomer struct {
	customer  identity.Customer
	password  string
	stream    uint64
	household func() *household
	// profile and numbers (SPEC §9: alice's identity and the payment
	// numbers of her deposit accounts) are written on every seeding, so an
	// install seeded before they existed gets them too.
	profile *identity.Profile
	numbers []accounts.PaymentNumbers
}

// demoRoutingNumber is First Demo Bank's ABA routing number: it passes the
// check digit rule but belongs to no real bank.
const demoRoutingNumber = "123456780"

var firstDemoBank = institutions[0]

func fixtureAccount(id, customerID, typ, name, last4 string) accounts.Account {
	return accounts.Account{ID: id, CustomerID: customerID, InstitutionID: firstDemoBank.id, InstitutionName: firstDemoBank.name,
		Type: typ, DisplayName: name, Last4: last4, Currency: "USD", Status: "open"}
}

func billsNamed(names ...string) []bill {
	var out []bill
	for _, b := range bills {
		for _, n := range names {
			if b.merchant == n {
				out = append(out, b)
			}
		}
	}
	return out
}

// fixtureCustomers are alice (checking, savings, credit card; most card
// activity on the card and checking) and bob (checking and savings).
func fixtureCustomers() []fixtureCustomer {
	return []fixtureCustomer{
		{
			customer: identity.Customer{ID: "cus_alice", Username: "alice", DisplayName: "Alice Anders"},
			password: "alice-password-1", stream: 1,
			household: func() *household {
				return &household{
					checking: &ledger{acct: fixtureAccount("acc_alice_checking", "cus_alice", accounts.TypeChecking, "Everyday Checking", "4821"), card: "3390", target: 330},
					credit:   &ledger{acct: fixtureAccount("acc_alice_credit_card", "cus_alice", accounts.TypeCreditCard, "Rewards Credit Card", "7719"), card: "7719", target: 560},
					savings:  &ledger{acct: fixtureAccount("acc_alice_savings", "cus_alice", accounts.TypeSavings, "Rainy Day Savings", "9034"), opening: 850000},
					employer: "Lumen Software", salary: 300000, savingsTransfer: 30000, cushion: 150000, creditLimit: 600000,
					bills: billsNamed("StreamFlix", "Tunely Music", "Telnova Mobile", "IronWorks Gym", "Safeguard Insurance"),
					city:  "SPRINGFIELD",
				}
			},
			profile: &identity.Profile{
				CustomerID: "cus_alice", FullName: "Alice Anders", GivenName: "Alice", FamilyName: "Anders",
				Email: "alice.anders@example.com", PhoneCountryCode: "1", PhoneNumber: "5555550142",
				Address: identity.Address{Line1: "742 Evergreen Terrace", City: "Springfield", Region: "IL", PostalCode: "62704", Country: "US"},
			},
			// Tokenized account numbers: what the bank's core hands out in
			// place of the real numbers (docs/fdx.md).
			numbers: []accounts.PaymentNumbers{
				{AccountID: "acc_alice_checking", RoutingNumber: demoRoutingNumber, AccountNumberToken: "990017265031"},
				{AccountID: "acc_alice_savings", RoutingNumber: demoRoutingNumber, AccountNumberToken: "990048150927"},
			},
		},
		{
			customer: identity.Customer{ID: "cus_bob", Username: "bob", DisplayName: "Bob Brennan"},
			password: "bob-password-1", stream: 2,
			household: func() *household {
				return &household{
					checking: &ledger{acct: fixtureAccount("acc_bob_checking", "cus_bob", accounts.TypeChecking, "Everyday Checking", "1357"), card: "2468", target: 260},
					savings:  &ledger{acct: fixtureAccount("acc_bob_savings", "cus_bob", accounts.TypeSavings, "Savings Account", "8642"), opening: 320000},
					employer: "Riverside School District", salary: 240000, savingsTransfer: 15000, cushion: 60000,
					bills: billsNamed("StreamFlix", "Fibrelink Broadband", "Telnova Mobile"),
					city:  "SHELBYVILLE",
				}
			},
		},
	}
}

// SeedFixtures creates the SPEC §9 demo data that is missing and reports
// whether it wrote anything. Running it again changes nothing. A customer
// whose data was only partly written (a crash mid-way) is written again in
// full: the balances, written last, mark a customer as complete.
func SeedFixtures(ctx context.Context, d Deps) (created bool, err error) {
	if d.Accounts == nil || d.Identity == nil || d.Clients == nil {
		return false, errors.New("demo.SeedFixtures: Accounts, Identity and Clients are required")
	}
	now, log := d.now(), d.logger()
	for _, fc := range fixtureCustomers() {
		wrote, err := seedCustomer(ctx, d, fc, now)
		if err != nil {
			return created, fmt.Errorf("demo.SeedFixtures: %s: %w", fc.customer.Username, err)
		}
		if wrote {
			log.InfoContext(ctx, "demo customer seeded", "username", fc.customer.Username, "customer_id", fc.customer.ID)
			created = true
		}
	}
	for _, spec := range fixtureClients {
		exists, err := d.Clients.ClientExists(ctx, spec.ID)
		if err != nil {
			return created, fmt.Errorf("demo.SeedFixtures: client %s: %w", spec.ID, err)
		}
		if exists {
			continue
		}
		if _, _, err := d.Clients.CreateClient(ctx, spec); err != nil {
			return created, fmt.Errorf("demo.SeedFixtures: create client %s: %w", spec.ID, err)
		}
		log.InfoContext(ctx, "demo client registered", "client_id", spec.ID)
		created = true
	}
	return created, nil
}

func seedCustomer(ctx context.Context, d Deps, fc fixtureCustomer, now time.Time) (bool, error) {
	if err := d.Identity.CreateCustomer(ctx, fc.customer, fc.password); err != nil {
		return false, err
	}
	h := fc.household()
	ls := h.ledgers()
	switch _, err := d.Accounts.Balance(ctx, ls[len(ls)-1].acct.ID); {
	case err == nil:
		return false, seedIdentity(ctx, d, fc) // complete already, but for data added since
	case !errors.Is(err, accounts.ErrNotFound):
		return false, err
	}
	hist := generateHistory(rand.New(rand.NewPCG(fixtureSeed, fc.stream)), h, now) // #nosec G404 -- reproducible demo data, nothing secret
	if err := d.Accounts.UpsertInstitution(ctx, accounts.Institution{ID: firstDemoBank.id, Name: firstDemoBank.name}); err != nil {
		return false, err
	}
	w := &writer{store: d.Accounts}
	if err := w.household(ctx, h, hist); err != nil {
		return false, err
	}
	if err := w.flush(ctx); err != nil {
		return false, err
	}
	if err := seedIdentity(ctx, d, fc); err != nil {
		return false, err
	}
	for _, b := range hist.balances { // last: they mark the customer complete
		if err := d.Accounts.UpsertBalance(ctx, b); err != nil {
			return false, err
		}
	}
	return true, nil
}

// seedIdentity writes a fixture customer's profile and payment numbers
// (idempotent upserts) once the accounts exist.
func seedIdentity(ctx context.Context, d Deps, fc fixtureCustomer) error {
	if fc.profile != nil {
		if err := d.Identity.UpsertProfile(ctx, *fc.profile); err != nil {
			return err
		}
	}
	if len(fc.numbers) == 0 {
		return nil
	}
	ns, ok := d.Accounts.(accounts.NumberStore)
	if !ok {
		return errors.New("demo: Deps.Accounts does not store payment numbers (accounts.NumberStore)")
	}
	for _, n := range fc.numbers {
		if err := ns.UpsertPaymentNumbers(ctx, n); err != nil {
			return err
		}
	}
	return nil
}
