package httpapi

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/apperr"
)

// Transactions query limits (SPEC §3).
const (
	defaultTxLimit  = 100
	maxTxLimit      = 500
	defaultTxWindow = 90 * 24 * time.Hour
)

// historyWindow is how far back a consent lets the caller read at a moment.
type historyWindow struct {
	Start time.Time // earliest readable transacted_at
	Days  int       // 0: no transactions at all
}

// parseTxLimit reads limit: 1 to maxTxLimit, defaultTxLimit when absent.
func parseTxLimit(s string) (int, error) {
	if s == "" {
		return defaultTxLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxTxLimit {
		return 0, invalidRequest("limit must be a whole number from 1 to %d (default %d).", maxTxLimit, defaultTxLimit)
	}
	return n, nil
}

// window is the bounds a transactions query asked for, under the names
// its API gives them (from/to on /v1, startTime/endTime on FDX).
type window struct {
	from     time.Time
	hasFrom  bool
	to       time.Time
	hasTo    bool
	fromName string
	toName   string
}

// txWindow applies the rules every transactions query shares: no history
// at all is history_window_exceeded; an explicit bound before the history
// window is too; to defaults to now and from to 90 days before to, clipped
// to the history window silently; from after to is invalid_request. The
// explicit bounds are bound into b, so a cursor serves only its query.
func txWindow(w window, now time.Time, hw historyWindow, b *cursorBinding) (from, to time.Time, err error) {
	if hw.Days <= 0 {
		return from, to, apperr.New(apperr.HistoryWindowExceeded,
			"This consent grants no transaction history (a history window of 0 days), so no transactions can be read under it.")
	}
	if (w.hasFrom && w.from.Before(hw.Start)) || (w.hasTo && w.to.Before(hw.Start)) {
		return from, to, apperr.New(apperr.HistoryWindowExceeded, fmt.Sprintf(
			"This consent allows %d days of history: transactions from %s on. Ask for a later %s (and %s), or leave %s out.",
			hw.Days, hw.Start.UTC().Format(time.RFC3339), w.fromName, w.toName, w.fromName))
	}
	from, to = w.from, w.to
	if !w.hasTo {
		to = now
	}
	if !w.hasFrom {
		from = to.Add(-defaultTxWindow)
		if from.Before(hw.Start) {
			from = hw.Start
		}
	}
	if from.After(to) {
		return from, to, invalidRequest("%s must not be after %s.", w.fromName, w.toName)
	}
	if w.hasFrom {
		b.From = strconv.FormatInt(from.UnixMicro(), 10)
	}
	if w.hasTo {
		b.To = strconv.FormatInt(to.UnixMicro(), 10)
	}
	return from, to, nil
}

// parseTxQuery turns the query string of a transactions call into a store
// query and the binding of its cursors. Syntax errors are invalid_request
// (naming the parameter); an explicit bound before the history window is
// history_window_exceeded; the default window (90 days ending at to) is
// clipped to the history window silently.
func parseTxQuery(v url.Values, accountID string, now time.Time, hw historyWindow) (accounts.TxQuery, cursorBinding, error) {
	q := accounts.TxQuery{AccountID: accountID, Limit: defaultTxLimit}
	b := cursorBinding{AccountID: accountID}
	for _, name := range []string{"from", "to", "status", "limit", "cursor"} {
		if len(v[name]) > 1 {
			return q, b, invalidRequest("%s is given more than once; send it once.", name)
		}
	}
	from, hasFrom, err := parseBound("from", v.Get("from"), false)
	if err != nil {
		return q, b, err
	}
	to, hasTo, err := parseBound("to", v.Get("to"), true)
	if err != nil {
		return q, b, err
	}
	switch q.Status = v.Get("status"); q.Status {
	case "", accounts.StatusBooked, accounts.StatusPending:
	default:
		return q, b, invalidRequest("status must be booked or pending (or left out for both).")
	}
	if q.Limit, err = parseTxLimit(v.Get("limit")); err != nil {
		return q, b, err
	}
	if q.From, q.To, err = txWindow(window{from, hasFrom, to, hasTo, "from", "to"}, now, hw, &b); err != nil {
		return q, b, err
	}
	b.Status = q.Status
	if s := v.Get("cursor"); s != "" {
		if q.After, err = decodeCursor(s, b); err != nil {
			return q, b, err
		}
	}
	return q, b, nil
}

// parseBound reads from or to: a date (the whole day, UTC) or an RFC 3339
// date-time. Stored times have microsecond precision, so a finer bound is
// rounded inwards: the window never widens.
func parseBound(name, s string, upper bool) (time.Time, bool, error) {
	if s == "" {
		return time.Time{}, false, nil
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		if upper {
			return d.AddDate(0, 0, 1).Add(-time.Microsecond), true, nil
		}
		return d, true, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false, invalidRequest(
			"%s must be a date (2025-01-31) or an RFC 3339 date-time (2025-01-31T23:59:59Z).", name)
	}
	t = t.UTC()
	r := t.Truncate(time.Microsecond)
	if !upper && !r.Equal(t) {
		r = r.Add(time.Microsecond)
	}
	return r, true, nil
}

func invalidRequest(format string, args ...any) error {
	return apperr.New(apperr.InvalidRequest, fmt.Sprintf(format, args...))
}
