package httpapi

import (
	"net/url"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/apperr"
)

// FuzzCursor: any string is either refused as invalid_cursor or decodes to
// a position that encodes back to exactly the same cursor; and a cursor
// never works for another binding.
func FuzzCursor(f *testing.F) {
	b := cursorBinding{AccountID: "acc_1", From: "1700000000000000", Status: "booked"}
	f.Add(encodeCursor(accounts.TxKey{TransactedAt: time.Unix(1700000000, 123000).UTC(), ID: "txn_1"}, b))
	f.Add("")
	f.Add("AQ")
	f.Add("not-a-cursor")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := decodeCursor(s, b)
		if err != nil {
			if e := apperr.As(err); e.Code != apperr.InvalidCursor {
				t.Fatalf("error code %s", e.Code)
			}
			return
		}
		if again := encodeCursor(*k, b); again != s {
			t.Fatalf("cursor %q decodes to %+v which encodes to %q", s, k, again)
		}
		other := b
		other.AccountID = "acc_2"
		if _, err := decodeCursor(s, other); err == nil {
			t.Fatalf("cursor %q accepted for another account", s)
		}
	})
}

// FuzzTxQuery: any query string gives a documented 400 code or a query
// whose bounds are ordered, inside the history window, with a sane limit.
func FuzzTxQuery(f *testing.F) {
	for _, q := range []string{
		"", "limit=10", "from=2026-01-01&to=2026-02-01", "from=2026-13-45", "limit=0", "limit=-1", "limit=501",
		"status=pending", "status=settled", "from=2026-06-02&to=2026-06-01", "to=2026-11-20T10:00:00Z",
		"cursor=AQ", "limit=1&limit=2", "from=1999-01-01", "from=%00", "limit=9999999999999999999999",
	} {
		f.Add(q)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	hw := historyWindow{Start: now.Add(-730 * 24 * time.Hour), Days: 730}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return // the server answers a malformed query string before parsing it
		}
		q, _, err := parseTxQuery(v, "acc_1", now, hw)
		if err != nil {
			switch apperr.As(err).Code {
			case apperr.InvalidRequest, apperr.InvalidCursor, apperr.HistoryWindowExceeded:
			default:
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		if q.Limit < 1 || q.Limit > maxTxLimit {
			t.Fatalf("limit %d", q.Limit)
		}
		if q.From.After(q.To) {
			t.Fatalf("from %v after to %v", q.From, q.To)
		}
		if q.From.Before(hw.Start) {
			t.Fatalf("from %v before the history window %v", q.From, hw.Start)
		}
	})
}
