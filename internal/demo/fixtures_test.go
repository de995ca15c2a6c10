package demo

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// readAll reads every account, balance and transaction back through the
// store, the way the data API will.
func readAll(t *testing.T, s accounts.Store, customers ...string) (map[string]accounts.Account, []accounts.Transaction, map[string]accounts.Balance) {
	t.Helper()
	ctx := context.Background()
	accts := map[string]accounts.Account{}
	bals := map[string]accounts.Balance{}
	var txs []accounts.Transaction
	for _, c := range customers {
		list, err := s.ListByCustomer(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range list {
			accts[a.ID] = a
			b, err := s.Balance(ctx, a.ID)
			if err != nil {
				t.Fatalf("balance %s: %v", a.ID, err)
			}
			bals[a.ID] = *b
			q := accounts.TxQuery{AccountID: a.ID, From: testNow.AddDate(-2, 0, 0), To: testNow.Add(time.Hour), Limit: 500}
			for {
				page, next, err := s.Transactions(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				txs = append(txs, page...)
				if next == nil {
					break
				}
				q.After = next
			}
		}
	}
	return accts, txs, bals
}

// TestSeedFixtures pins SPEC §9 on the real store, on every dialect.
func TestSeedFixtures(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		id := identity.NewService(db, func() time.Time { return testNow })
		s := accounts.NewSQLStore(db)
		clients := &fakeClients{}
		d := Deps{Accounts: s, Identity: id, Clients: clients, Now: func() time.Time { return testNow }}

		created, err := SeedFixtures(ctx, d)
		if err != nil || !created {
			t.Fatalf("first SeedFixtures: created=%v err=%v", created, err)
		}
		for user, pw := range map[string]string{"alice": "alice-password-1", "bob": "bob-password-1"} {
			if _, err := id.Authenticate(ctx, user, pw, "192.0.2.1"); err != nil {
				t.Fatalf("%s cannot log in: %v", user, err)
			}
		}
		accts, txs, bals := readAll(t, s, "cus_alice", "cus_bob")
		checkRealistic(t, accts, txs, bals)

		types := map[string][]string{}
		for _, a := range accts {
			types[a.CustomerID] = append(types[a.CustomerID], a.Type)
			if a.InstitutionName != "First Demo Bank" || a.InstitutionID != "inst_first_demo_bank" {
				t.Errorf("%s at %s/%s", a.ID, a.InstitutionID, a.InstitutionName)
			}
		}
		for c, want := range map[string][]string{"cus_alice": {"checking", "credit_card", "savings"}, "cus_bob": {"checking", "savings"}} {
			got := types[c]
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s has accounts %v, want %v", c, got, want)
			}
		}

		// alice: ≥ 500 card transactions over the last 400 days, some pending,
		// mostly on the credit card and checking.
		var card, pending int
		perAcct := map[string]int{}
		oldest := testNow
		for _, tx := range txs {
			if accts[tx.AccountID].CustomerID != "cus_alice" {
				continue
			}
			perAcct[tx.AccountID]++
			if tx.CardLast4 != "" {
				card++
			}
			if tx.Status == accounts.StatusPending {
				pending++
			}
			if tx.TransactedAt.Before(oldest) {
				oldest = tx.TransactedAt
			}
		}
		if card < 500 || pending == 0 {
			t.Errorf("alice: %d card transactions, %d pending; want ≥ 500 and some", card, pending)
		}
		if age := testNow.Sub(oldest); age < 380*24*time.Hour || age > 400*24*time.Hour {
			t.Errorf("alice's history starts %v ago, want about 400 days", age)
		}
		if perAcct["acc_alice_savings"] >= perAcct["acc_alice_checking"] || perAcct["acc_alice_checking"] >= perAcct["acc_alice_credit_card"] {
			t.Errorf("alice's activity per account %v: want most on the card, then checking", perAcct)
		}

		wantClients := []ClientSpec{
			{ID: "demo-pfm", Secret: "demo-pfm-secret", AuthMethod: "client_secret_basic",
				GrantTypes:   []string{"authorization_code", "refresh_token"},
				RedirectURIs: []string{"http://127.0.0.1:8765/callback", "http://localhost:8765/callback"},
				Scopes:       []string{"accounts:read", "balances:read", "transactions:read", "offline_access"},
				Purposes:     []string{"personal_finance_management", "account_verification"}},
			{ID: "demo-aggregator", Secret: "demo-aggregator-secret", AuthMethod: "client_secret_basic",
				GrantTypes:   []string{"authorization_code", "refresh_token"},
				RedirectURIs: []string{"http://127.0.0.1:8766/callback"},
				Scopes: []string{"openid", "profile", "email", "offline_access", "accounts:read", "balances:read",
					"transactions:read", "identity:read", "account_numbers:read"},
				Purposes:    []string{"personal_finance_management", "account_verification"},
				PAROptional: true, DefaultPurpose: "personal_finance_management", Aggregator: true},
			{ID: "demo-auditor", Secret: "demo-auditor-secret", AuthMethod: "client_secret_basic", GrantTypes: []string{"client_credentials"}, Scopes: []string{"audit:read"}},
			{ID: "demo-provider", Secret: "demo-provider-secret", AuthMethod: "client_secret_basic", GrantTypes: []string{"client_credentials"}, Scopes: []string{"provider:write"}},
			{ID: "demo-operator", Secret: "demo-operator-secret", AuthMethod: "client_secret_basic", GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin:clients"}},
		}
		if len(clients.created) != len(wantClients) {
			t.Fatalf("%d clients created, want %d", len(clients.created), len(wantClients))
		}
		for i, w := range wantClients {
			got := clients.created[i]
			got.Name = "" // free text
			if !reflect.DeepEqual(got, w) || clients.created[i].Name == "" {
				t.Errorf("client %d = %+v, want %+v", i, clients.created[i], w)
			}
		}

		// Again, later: nothing changes, nothing is created.
		d.Now = func() time.Time { return testNow.Add(26 * time.Hour) }
		created, err = SeedFixtures(ctx, d)
		if err != nil || created {
			t.Fatalf("second SeedFixtures: created=%v err=%v", created, err)
		}
		accts2, txs2, bals2 := readAll(t, s, "cus_alice", "cus_bob")
		if !reflect.DeepEqual(accts, accts2) || !reflect.DeepEqual(txs, txs2) || !reflect.DeepEqual(bals, bals2) || len(clients.created) != len(wantClients) {
			t.Fatal("second SeedFixtures changed the data")
		}

		// A customer left half-written (no balances yet) is completed.
		if err := db.Exec(`DELETE FROM balances WHERE account_id = 'acc_bob_savings'`).Error; err != nil {
			t.Fatal(err)
		}
		d.Now = func() time.Time { return testNow }
		created, err = SeedFixtures(ctx, d)
		if err != nil || !created {
			t.Fatalf("SeedFixtures after a partial run: created=%v err=%v", created, err)
		}
		accts3, txs3, bals3 := readAll(t, s, "cus_alice", "cus_bob")
		if !reflect.DeepEqual(accts, accts3) || !reflect.DeepEqual(txs, txs3) || !reflect.DeepEqual(bals, bals3) {
			t.Fatal("completing bob gave different data than the first run at the same time")
		}
	})
}

// Generate through the real store: what it reports is what the store holds.
func TestGenerateSQL(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		id := identity.NewService(db, func() time.Time { return testNow })
		s := accounts.NewSQLStore(db)
		d := Deps{Accounts: s, Identity: id, Now: func() time.Time { return testNow }}
		o := Options{Customers: 4, TransactionsPerAccount: 300, Seed: 11}
		st, err := Generate(ctx, d, o)
		if err != nil {
			t.Fatal(err)
		}
		customers := []string{"cus_gen_1", "cus_gen_2", "cus_gen_3", "cus_gen_4"}
		accts, txs, bals := readAll(t, s, customers...)
		if len(accts) != st.Accounts || len(txs) != st.Transactions {
			t.Fatalf("stats %+v, store has %d accounts and %d transactions", st, len(accts), len(txs))
		}
		checkRealistic(t, accts, txs, bals)
		// Running again rewrites the same rows.
		if _, err := Generate(ctx, d, o); err != nil {
			t.Fatal(err)
		}
		accts2, txs2, bals2 := readAll(t, s, customers...)
		if !reflect.DeepEqual(accts, accts2) || !reflect.DeepEqual(txs, txs2) || !reflect.DeepEqual(bals, bals2) {
			t.Fatal("a second identical Generate changed the data")
		}
	})
}
