package httpapi

import (
	"net/url"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/apperr"
)

// The FDX transactions query (Core Exchange: startTime, endTime on
// postedTimestamp; limit; the opaque offset from page.nextOffset). Its
// offsets are the /v1 cursors (cursor.go) of a posting-order position,
// bound to the query with the part of the page they point into.

const (
	fdxPartPending = "fdx-pending"
	fdxPartPosted  = "fdx-posted"
)

var errInvalidOffset = apperr.New(apperr.InvalidCursor,
	"offset is not a page.nextOffset of this query. Send it back unchanged, with the same account, startTime and endTime as the request that returned it; or leave it out to start from the first page.")

// parseFDXTxQuery turns the query string of an FDX transactions call into
// a store query and the binding of its offsets. Every problem with the
// dates (syntax, startTime after endTime, before the consent's history
// window) is FDX error 703; so are a bad limit or offset.
func parseFDXTxQuery(v url.Values, accountID string, now time.Time, hw historyWindow) (accounts.PostedQuery, cursorBinding, error) {
	q := accounts.PostedQuery{AccountID: accountID, Limit: defaultTxLimit, NotBefore: hw.Start}
	b := cursorBinding{AccountID: accountID}
	for _, name := range []string{"startTime", "endTime", "limit", "offset"} {
		if len(v[name]) > 1 {
			return q, b, invalidRequest("%s is given more than once; send it once.", name)
		}
	}
	from, hasFrom, err := parseFDXTime("startTime", v.Get("startTime"), false)
	if err != nil {
		return q, b, err
	}
	to, hasTo, err := parseFDXTime("endTime", v.Get("endTime"), true)
	if err != nil {
		return q, b, err
	}
	if q.Limit, err = parseTxLimit(v.Get("limit")); err != nil {
		return q, b, err
	}
	if q.From, q.To, err = txWindow(window{from, hasFrom, to, hasTo, "startTime", "endTime"}, now, hw, &b); err != nil {
		return q, b, err
	}
	if s := v.Get("offset"); s != "" {
		if q.After, err = decodeOffset(s, b); err != nil {
			return q, b, err
		}
	}
	return q, b, nil
}

// parseFDXTime reads startTime or endTime: an ISO 8601 date (the whole
// day, UTC) as Core Exchange sends it, or an RFC 3339 date-time.
func parseFDXTime(name, s string, upper bool) (time.Time, bool, error) {
	t, ok, err := parseBound(name, s, upper)
	if err != nil {
		return t, ok, invalidRequest("%s must be a date (2025-01-31) or an RFC 3339 date-time (2025-01-31T23:59:59Z).", name)
	}
	return t, ok, nil
}

// encodeOffset is page.nextOffset for the position k.
func encodeOffset(k accounts.PostedKey, b cursorBinding) string {
	b.Status = fdxPartPosted
	if k.Pending {
		b.Status = fdxPartPending
	}
	return encodeCursor(accounts.TxKey{TransactedAt: k.At, ID: k.ID}, b)
}

// decodeOffset reads an offset of this query, in whichever part it points.
func decodeOffset(s string, b cursorBinding) (*accounts.PostedKey, error) {
	for _, part := range []string{fdxPartPending, fdxPartPosted} {
		b.Status = part
		if k, err := decodeCursor(s, b); err == nil {
			return &accounts.PostedKey{Pending: part == fdxPartPending, At: k.TransactedAt, ID: k.ID}, nil
		}
	}
	return nil, errInvalidOffset
}
