package consent_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

func seed(t *testing.T, db *store.DB) {
	t.Helper()
	for _, q := range []string{
		`INSERT INTO institutions (id, name, created_at) VALUES ('inst', 'Bank', 0)`,
		`INSERT INTO customers (id, username, password_hash, display_name, created_at) VALUES ('alice', 'alice', 'x', 'Alice', 0), ('bob', 'bob', 'x', 'Bob', 0)`,
		`INSERT INTO accounts (id, customer_id, institution_id, type, display_name, last4, currency, status, created_at) VALUES
		 ('a1', 'alice', 'inst', 'checking', 'Everyday', '1234', 'USD', 'open', 0),
		 ('a2', 'alice', 'inst', 'savings', 'Savings', '5678', 'USD', 'open', 0),
		 ('b1', 'bob', 'inst', 'checking', 'Bob', '9999', 'USD', 'open', 0)`,
		`INSERT INTO oauth_clients (id, name, redirect_uris, grant_types, scopes, purposes, auth_method, created_at) VALUES ('app', 'App', '[]', '[]', '[]', '[]', 'client_secret_basic', 0)`,
	} {
		if err := db.Exec(q).Error; err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
}

func newConsent(id string, now time.Time) *consent.Consent {
	return &consent.Consent{ID: id, ClientID: "app", Scopes: []string{"accounts:read", "transactions:read"},
		Purpose: "personal_finance_management", HistoryDays: 730, Duration: 24 * time.Hour, CreatedAt: now}
}

// TestSQLStore pins the lifecycle rules on both dialects.
func TestSQLStore(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		seed(t, db)
		s := consent.NewSQLStore(db)
		now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

		if _, err := s.Get(ctx, "nope"); !errors.Is(err, consent.ErrNotFound) {
			t.Fatalf("Get unknown: %v, want ErrNotFound", err)
		}
		c := newConsent("g1", now)
		if err := s.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "g1")
		if err != nil || got.Status != consent.AwaitingAuthorization || got.Active(now) {
			t.Fatalf("after Create: %+v %v", got, err)
		}

		// Bob's account cannot be linked to Alice's consent.
		if _, err := s.Authorize(ctx, "g1", "alice", []string{"a1", "b1"}, now); !errors.Is(err, consent.ErrForeignAccount) {
			t.Fatalf("Authorize with a foreign account: %v, want ErrForeignAccount", err)
		}
		if got, _ := s.Get(ctx, "g1"); got.Status != consent.AwaitingAuthorization || len(got.AccountIDs) != 0 {
			t.Fatalf("failed Authorize left changes: %+v", got)
		}

		got, err = s.Authorize(ctx, "g1", "alice", []string{"a2", "a1"}, now)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != consent.Authorized || got.CustomerID != "alice" || !got.HasAccount("a1") || !got.HasAccount("a2") ||
			!got.ExpiresAt.Equal(now.Add(24*time.Hour)) || !got.Active(now) {
			t.Fatalf("after Authorize: %+v", got)
		}
		if _, err := s.Authorize(ctx, "g1", "alice", []string{"a1"}, now); !errors.Is(err, consent.ErrNotAwaiting) {
			t.Fatalf("second Authorize: %v, want ErrNotAwaiting", err)
		}
		// Expiry is effective at the instant, before any sweep.
		if got.Active(now.Add(24*time.Hour)) || got.StatusAt(now.Add(24*time.Hour)) != consent.Expired {
			t.Fatal("consent still active at its expiry")
		}

		list, err := s.ListByCustomer(ctx, "alice")
		if err != nil || len(list) != 1 || len(list[0].AccountIDs) != 2 {
			t.Fatalf("ListByCustomer: %+v %v", list, err)
		}

		changed, err := s.Revoke(ctx, "g1", "customer", now.Add(time.Hour))
		if err != nil || !changed {
			t.Fatalf("Revoke: %v %v", changed, err)
		}
		if changed, _ := s.Revoke(ctx, "g1", "customer", now.Add(time.Hour)); changed {
			t.Fatal("second Revoke reported a change")
		}
		if got, _ := s.Get(ctx, "g1"); got.Status != consent.Revoked || got.RevokedBy != "customer" || got.Active(now) {
			t.Fatalf("after Revoke: %+v", got)
		}

		// Reject only from awaiting.
		c2 := newConsent("g2", now)
		if err := s.Create(ctx, c2); err != nil {
			t.Fatal(err)
		}
		if err := s.Reject(ctx, "g2", "alice", now); err != nil {
			t.Fatal(err)
		}
		if err := s.Reject(ctx, "g2", "alice", now); !errors.Is(err, consent.ErrNotAwaiting) {
			t.Fatalf("second Reject: %v", err)
		}

		// The expiry sweep records expired consents once.
		c3 := newConsent("g3", now)
		if err := s.Create(ctx, c3); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authorize(ctx, "g3", "alice", []string{"a1"}, now); err != nil {
			t.Fatal(err)
		}
		if due, err := s.ExpireDue(ctx, now.Add(time.Hour)); err != nil || len(due) != 0 {
			t.Fatalf("ExpireDue early: %v %v", due, err)
		}
		due, err := s.ExpireDue(ctx, now.Add(25*time.Hour))
		if err != nil || len(due) != 1 || due[0].ID != "g3" || due[0].Status != consent.Expired {
			t.Fatalf("ExpireDue: %+v %v", due, err)
		}
		if due, _ := s.ExpireDue(ctx, now.Add(26*time.Hour)); len(due) != 0 {
			t.Fatalf("ExpireDue twice: %+v", due)
		}
	})
}
