package ingest

import (
	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/webhook"
)

// sequence numbers the batch's transaction changes in their accounts'
// change sequences (docs/sync.md): each written transaction is added (new)
// or modified, each reversed one removed, in batch order. New rows get the
// ordinal they were added at. It then schedules the change events of the
// accounts changed, in the same database transaction, so a batch and its
// notices commit together.
func (a *applier) sequence(write, remove []accounts.Transaction, existing map[string]accounts.Transaction) error {
	counts := map[string]int{}
	for _, t := range write {
		counts[t.AccountID]++
	}
	for _, t := range remove {
		counts[t.AccountID]++
	}
	if len(counts) == 0 {
		return nil
	}
	next, err := a.bulk.ReserveChanges(counts)
	if err != nil {
		return err
	}
	changes := make([]accounts.Change, 0, len(write)+len(remove))
	take := func(account string) int64 {
		seq := next[account]
		next[account] = seq + 1
		return seq
	}
	for i := range write {
		t := &write[i]
		c := accounts.Change{AccountID: t.AccountID, Seq: take(t.AccountID), TransactionID: t.ID,
			Kind: accounts.ChangeModified, TransactedAt: t.TransactedAt}
		if _, ok := existing[t.ID]; !ok {
			c.Kind, t.CreatedSeq = accounts.ChangeAdded, c.Seq
		}
		changes = append(changes, c)
	}
	for _, t := range remove {
		changes = append(changes, accounts.Change{AccountID: t.AccountID, Seq: take(t.AccountID), TransactionID: t.ID,
			Kind: accounts.ChangeRemoved, TransactedAt: t.TransactedAt})
	}
	now := store.FromMicros(a.now)
	if err := a.bulk.RecordChanges(changes, now); err != nil {
		return err
	}
	changed := make([]string, 0, len(counts))
	for id := range counts {
		changed = append(changed, id)
	}
	_, err = webhook.NoteSyncChanges(a.tx, changed, now)
	return err
}
