package ingest

import (
	"context"
	"slices"
	"testing"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// TestBatchesNumberChanges: every transaction a batch creates, updates,
// books or reverses is one entry of its account's change sequence, in
// batch order (writes, then reversals); a replay numbers nothing; a first
// sync walks the table in the order rows were added.
func TestBatchesNumberChanges(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.mustApply(t, "bank-a", KindCustomer, custC1)
		f.mustApply(t, "bank-a", KindAccount, acctA1)
		acct := AccountID("bank-a", "a1")
		t2 := `{"id":"t2","account_id":"a1","status":"pending","transacted_at":"2025-06-29T10:00:00Z","amount":"-5.00","currency":"USD"}`
		f.mustApply(t, "bank-a", KindTransaction, pendingT, t2)                                             // 1 t1 added, 2 t2 added
		f.mustApply(t, "bank-a", KindTransaction, pendingT)                                                 // a replay: nothing
		f.mustApply(t, "bank-a", KindTransaction, bookedT, `{"id":"t2","account_id":"a1","reversed":true}`) // 3 t1 modified, 4 t2 removed

		ctx := context.Background()
		head, err := f.acc.ChangeHead(ctx, acct)
		if err != nil || head != 4 {
			t.Fatalf("head %d, %v; want 4", head, err)
		}
		page, err := f.acc.Sync(ctx, accounts.SyncQuery{AccountID: acct, From: testNow.AddDate(-1, 0, 0), Head: head, AfterSeq: 1, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range page.Items {
			got = append(got, it.Kind+" "+it.Tx.ID)
		}
		// After ordinal 1 (t1 added): t2 added then removed is not reported; t1 was booked.
		if want := []string{"modified " + TransactionID("bank-a", "t1")}; !slices.Equal(got, want) {
			t.Errorf("changes after 1: %v, want %v", got, want)
		}
		page, err = f.acc.Sync(ctx, accounts.SyncQuery{AccountID: acct, From: testNow.AddDate(-1, 0, 0), Head: head, AfterSeq: 2, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		got = nil
		for _, it := range page.Items {
			got = append(got, it.Kind+" "+it.Tx.ID)
		}
		if want := []string{"modified " + TransactionID("bank-a", "t1"), "removed " + TransactionID("bank-a", "t2")}; !slices.Equal(got, want) {
			t.Errorf("changes after 2: %v, want %v", got, want)
		}
		snap, err := f.acc.Sync(ctx, accounts.SyncQuery{AccountID: acct, From: testNow.AddDate(-1, 0, 0), Head: head, Snapshot: true, AfterSeq: -1, Limit: 10})
		if err != nil || len(snap.Items) != 1 || snap.Items[0].Tx.Status != accounts.StatusBooked || snap.Items[0].Seq != 1 {
			t.Fatalf("snapshot: %+v, %v", snap, err)
		}
		// The window: nothing before From is reported.
		late, err := f.acc.Sync(ctx, accounts.SyncQuery{AccountID: acct, From: testNow, Head: head, AfterSeq: 0, Limit: 10})
		if err != nil || len(late.Items) != 0 {
			t.Fatalf("changes of transactions before the window: %+v, %v", late.Items, err)
		}
	})
}
