package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/purpose"
)

// SyncStore reads an account's change sequence (docs/sync.md).
type SyncStore interface {
	// ChangeHead returns the account's latest change ordinal (0 before any).
	ChangeHead(ctx context.Context, accountID string) (int64, error)
	// Sync returns one page of the account's changes.
	Sync(ctx context.Context, q accounts.SyncQuery) (*accounts.SyncPage, error)
}

// Sync page sizes.
const (
	defaultSyncCount = 100
	maxSyncCount     = 500
)

// listSync answers GET /v1/accounts/{account_id}/transactions/sync: the
// changes since the cursor, up to the head of the account's change
// sequence when the run began. Without a cursor it starts with everything
// the consent's history window allows (all added), then continues with the
// changes. A page with has_more hands out a continuation cursor: the run
// goes on to the same head, and its pages are free of the daily limit
// (decide). The last page's cursor starts the next run.
func (h *dataHandler) listSync(c *gin.Context) {
	p, accountID := PrincipalFrom(c), accountIDFrom(c)
	ctx := c.Request.Context()
	now := h.now()
	v := c.Request.URL.Query()
	for _, name := range []string{"cursor", "count"} {
		if len(v[name]) > 1 {
			WriteProblem(c, invalidRequest("%s is given more than once; send it once.", name))
			return
		}
	}
	count := defaultSyncCount
	if s := v.Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxSyncCount {
			WriteProblem(c, invalidRequest("count must be a whole number from 1 to %d (default %d).", maxSyncCount, defaultSyncCount))
			return
		}
		count = n
	}
	pos, err := h.syncPosition(c, p.Consent.ID, accountID)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	head := pos.Head
	if !pos.Continuation {
		if head, err = h.sync.ChangeHead(ctx, accountID); err != nil {
			readFailed(c, "reading the account's changes", err)
			return
		}
		// A head read on a read replica may be older than where the
		// cursor's last run ended: the new run starts there at the
		// earliest, so a cursor never goes back (docs/scaling.md).
		head = max(head, pos.Seq)
	}
	q := accounts.SyncQuery{AccountID: accountID, CustomerID: p.Consent.CustomerID, From: h.history(p.Consent, now).Start,
		Head: head, Snapshot: pos.Snapshot, AfterSeq: pos.Seq, AfterID: pos.ID, Limit: count,
		Hidden: hiddenTxFields(h.fields(p.Consent))}
	page, err := h.sync.Sync(ctx, q)
	switch {
	case errors.Is(err, accounts.ErrNotFound):
		WriteProblem(c, errAccountNotFound)
		return
	case err != nil:
		readFailed(c, "reading the account's changes", err)
		return
	}
	next := syncPosition{Head: 0, Seq: head}
	if page.More {
		next = syncPosition{Snapshot: pos.Snapshot, Continuation: true, Seq: page.NextSeq, ID: page.NextID, Head: head}
	}
	cursor := encodeSyncCursor(h.cursorKey, next, p.Consent.ID, accountID)
	writeSyncPage(c, page, cursor, q.Hidden)
}

// syncPosition is where the request's cursor points, or the start.
func (h *dataHandler) syncPosition(c *gin.Context, grantID, accountID string) (syncPosition, error) {
	s := c.Query("cursor")
	if s == "" {
		return syncStart, nil
	}
	return decodeSyncCursor(h.cursorKey, s, grantID, accountID)
}

// freeSync reports whether a sync call continues a run (a valid
// continuation cursor of this grant and account): such a page does not
// count against the daily limit, the run's first page did.
func (h *dataHandler) freeSync(c *gin.Context, cons *consent.Consent) bool {
	s := c.Query("cursor")
	if s == "" {
		return false
	}
	pos, err := decodeSyncCursor(h.cursorKey, s, cons.ID, c.Param("account_id"))
	return err == nil && pos.Continuation
}

// fields is what the consent's purpose may see of the optional fields.
func (h *dataHandler) fields(cons *consent.Consent) purpose.FieldSet {
	p, _ := h.purposes.Lookup(cons.Purpose) // known: the gate's decision checked it
	return p.Fields()
}

// hiddenTxFields maps the purpose's hidden transaction fields onto the
// store's columns.
func hiddenTxFields(fs purpose.FieldSet) accounts.TxFields {
	var out accounts.TxFields
	for _, m := range []struct {
		name  string
		field accounts.TxFields
	}{
		{purpose.FieldDescription, accounts.TxDescription},
		{purpose.FieldMerchantName, accounts.TxMerchantName},
		{purpose.FieldMerchantCategoryCode, accounts.TxMCC},
		{purpose.FieldCardLast4, accounts.TxCardLast4},
	} {
		if !fs.Sees(m.name) {
			out |= m.field
		}
	}
	return out
}

// writeSyncPage answers 200 with {"added","modified","removed","next_cursor","has_more"}.
func writeSyncPage(c *gin.Context, page *accounts.SyncPage, cursor string, hidden accounts.TxFields) {
	buf := make([]byte, 0, 512+len(page.Items)*300)
	for _, kind := range []string{accounts.ChangeAdded, accounts.ChangeModified, accounts.ChangeRemoved} {
		if kind == accounts.ChangeAdded {
			buf = append(buf, `{"added":[`...)
		} else {
			buf = append(buf, `],"`+kind+`":[`...)
		}
		first := true
		for i := range page.Items {
			it := &page.Items[i]
			if it.Kind != kind {
				continue
			}
			if !first {
				buf = append(buf, ',')
			}
			first = false
			if kind == accounts.ChangeRemoved {
				buf = append(buf, `{"transaction_id":`...)
				buf = appendJSONString(buf, it.Tx.ID)
				buf = append(buf, '}')
				continue
			}
			buf = appendTransactionShaped(buf, &it.Tx, hidden)
		}
	}
	buf = append(buf, `],"next_cursor":`...)
	buf = appendJSONString(buf, cursor)
	buf = append(buf, `,"has_more":`...)
	buf = strconv.AppendBool(buf, page.More)
	buf = append(buf, '}')
	c.Data(http.StatusOK, "application/json; charset=utf-8", buf)
}
