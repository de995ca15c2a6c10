package consent_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// TestCountUnattended: concurrent calls get distinct counts, per UTC day,
// resource and account; a call taken back frees its place.
func TestCountUnattended(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		seed(t, db)
		s := consent.NewSQLStore(db)
		now := time.Date(2026, 11, 1, 23, 59, 0, 0, time.UTC)
		bal := consent.Usage{Resource: consent.ResourceBalances, AccountID: "a1"}
		if err := s.Create(ctx, newConsent("g1", now)); err != nil {
			t.Fatal(err)
		}
		const n = 20
		seen := make(chan int, n)
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := s.CountUnattended(ctx, "g1", bal, now)
				if err != nil {
					t.Error(err)
				}
				seen <- c
			}()
		}
		wg.Wait()
		close(seen)
		got := map[int]bool{}
		for c := range seen {
			if got[c] {
				t.Fatalf("count %d handed out twice", c)
			}
			got[c] = true
		}
		for i := 1; i <= n; i++ {
			if !got[i] {
				t.Fatalf("count %d missing: %v", i, got)
			}
		}
		if c, _ := s.CountUnattended(ctx, "g1", bal, now.Add(2*time.Minute)); c != 1 {
			t.Fatalf("a new UTC day starts at 1, got %d", c)
		}
		// Each resource of each account has its own count (SPEC §12).
		for _, u := range []consent.Usage{{Resource: consent.ResourceBalances, AccountID: "a2"},
			{Resource: consent.ResourceTransactions, AccountID: "a1"}, {Resource: consent.ResourceAccounts}} {
			if c, _ := s.CountUnattended(ctx, "g1", u, now); c != 1 {
				t.Errorf("%+v: first count %d, want 1", u, c)
			}
		}
		// A call taken back (not served) frees its place.
		if err := s.UncountUnattended(ctx, "g1", bal, now); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.CountUnattended(ctx, "g1", bal, now); c != n {
			t.Fatalf("after taking one back the next count is %d, want %d", c, n)
		}
	})
}
