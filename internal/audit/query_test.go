package audit

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

func at(sec int) *time.Time { t := base.Add(time.Duration(sec) * time.Second); return &t }

// matches is the reference implementation of Filter the SQL must agree with.
func (f Filter) matches(ev Event) bool {
	return (f.CustomerID == "" || ev.CustomerID == f.CustomerID) && (f.ClientID == "" || ev.ClientID == f.ClientID) &&
		(f.GrantID == "" || ev.GrantID == f.GrantID) && (f.Type == "" || ev.Type == f.Type) &&
		(f.Outcome == "" || ev.Outcome == f.Outcome) && (f.Since == nil || !ev.OccurredAt.Before(*f.Since)) &&
		(f.Until == nil || ev.OccurredAt.Before(*f.Until))
}

func wantCode(t *testing.T, err error, code apperr.Code, mention string) {
	t.Helper()
	var e *apperr.E
	if !errors.As(err, &e) || e.Code != code || !strings.Contains(e.Msg, mention) {
		t.Fatalf("error %v, want %s mentioning %q", err, code, mention)
	}
}

func TestQueryPages(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		load(t, db, 0, 100)
		all := allEvents(t, db)
		r := NewReader(db)
		for _, f := range []Filter{
			{},
			{CustomerID: "cust-1"},
			{ClientID: "client-0", Outcome: Denied},
			{GrantID: "grant-2", Type: DataAccess},
			{Type: ConsentRevoked},
			{Since: at(10), Until: at(50)},
			{CustomerID: "cust-0", Since: at(33)},
			{Until: at(0)},
			{CustomerID: "nobody"},
		} {
			var want []int64
			for _, ev := range all {
				if f.matches(ev) {
					want = append(want, ev.Seq)
				}
			}
			var got []int64
			cursor := ""
			for pages := 0; ; pages++ {
				evs, next, err := r.Query(ctx, f, 7, cursor)
				if err != nil {
					t.Fatalf("%+v: %v", f, err)
				}
				if len(evs) > 7 || (next != "" && len(evs) != 7) || pages > 20 {
					t.Fatalf("%+v: page of %d with next %q", f, len(evs), next)
				}
				for _, ev := range evs {
					got = append(got, ev.Seq)
					if !f.matches(ev) || ev.Hash != all[ev.Seq-1].Hash || strings.Join(ev.Scopes, " ") != "accounts:read transactions:read" {
						t.Fatalf("%+v returned a wrong event %+v", f, ev)
					}
				}
				if next == "" {
					break
				}
				cursor = next
			}
			if len(want) == 0 && f.CustomerID != "nobody" && f.Until == nil {
				t.Fatalf("filter %+v selects nothing: the test data no longer covers it", f)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%+v: paged %v, want %v", f, got, want)
			}
		}
		// Exactly DefaultLimit events: one full page and no next cursor.
		if evs, next, err := r.Query(ctx, Filter{}, 0, ""); err != nil || len(evs) != DefaultLimit || next != "" {
			t.Fatalf("default limit over 100 events: %d events, next %q, %v", len(evs), next, err)
		}
	})
}

func TestQueryRejects(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		load(t, db, 0, 10)
		r := NewReader(db)
		_, next, err := r.Query(ctx, Filter{CustomerID: "cust-1"}, 1, "")
		if err != nil || next == "" {
			t.Fatal(next, err)
		}
		// A cursor is bound to the filters it was issued for.
		_, _, err = r.Query(ctx, Filter{CustomerID: "cust-2"}, 1, next)
		wantCode(t, err, apperr.InvalidCursor, "cursor")
		_, _, err = r.Query(ctx, Filter{CustomerID: "cust-1", Since: at(0)}, 1, next)
		wantCode(t, err, apperr.InvalidCursor, "cursor")
		for _, bad := range []string{"!!", "AAAA", next + "A", next[:len(next)-2], strings.Repeat("_", 22)} {
			_, _, err := r.Query(ctx, Filter{CustomerID: "cust-1"}, 1, bad)
			wantCode(t, err, apperr.InvalidCursor, "cursor")
		}
		for _, c := range []struct {
			f       Filter
			limit   int
			mention string
		}{
			{Filter{Type: "data.read"}, 10, "type"},
			{Filter{Outcome: "maybe"}, 10, "outcome"},
			{Filter{Since: at(10), Until: at(5)}, 10, "since"},
			{Filter{}, MaxLimit + 1, "limit"},
			{Filter{}, -1, "limit"},
		} {
			_, _, err := r.Query(ctx, c.f, c.limit, "")
			wantCode(t, err, apperr.InvalidRequest, c.mention)
		}
		_, err = r.GrantHistory(ctx, "grant-1", MaxLimit+1, 0)
		wantCode(t, err, apperr.InvalidRequest, "limit")
		_, err = r.GrantHistory(ctx, "", 10, 0)
		wantCode(t, err, apperr.InvalidRequest, "grant_id")
	})
}

func TestParseFilter(t *testing.T) {
	f, err := ParseFilter(url.Values{"customer_id": {"c"}, "client_id": {"k"}, "grant_id": {"g"}, "type": {"token.issued"},
		"outcome": {"denied"}, "since": {"2026-11-01T10:00:00Z"}, "until": {"2026-11-01T12:00:00.5+01:00"}, "limit": {"5"}})
	if err != nil {
		t.Fatal(err)
	}
	if f.CustomerID != "c" || f.ClientID != "k" || f.GrantID != "g" || f.Type != TokenIssued || f.Outcome != Denied ||
		!f.Since.Equal(base) || !f.Until.Equal(base.Add(time.Hour+500*time.Millisecond)) {
		t.Fatalf("ParseFilter = %+v", f)
	}
	if f, err := ParseFilter(url.Values{}); err != nil || f != (Filter{}) {
		t.Fatalf("empty: %+v, %v", f, err)
	}
	for _, c := range []struct {
		q       url.Values
		mention string
	}{
		{url.Values{"since": {"yesterday"}}, "since"},
		{url.Values{"until": {"2026-11-01"}}, "until"},
		{url.Values{"type": {"data.access", "token.issued"}}, "type"},
		{url.Values{"outcome": {"yes"}}, "outcome"},
		{url.Values{"since": {"2026-11-02T00:00:00Z"}, "until": {"2026-11-01T00:00:00Z"}}, "since"},
	} {
		_, err := ParseFilter(c.q)
		wantCode(t, err, apperr.InvalidRequest, c.mention)
	}
}

func TestGrantHistoryAndLastAccess(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		load(t, db, 0, 60)
		all := allEvents(t, db)
		r := NewReader(db)
		var want []int64
		last := map[string]time.Time{}
		for i := len(all) - 1; i >= 0; i-- {
			ev := all[i]
			if ev.GrantID == "grant-1" {
				want = append(want, ev.Seq)
			}
			if ev.Type == DataAccess && ev.Outcome == Allowed && ev.OccurredAt.After(last[ev.GrantID]) {
				last[ev.GrantID] = ev.OccurredAt
			}
		}
		var got []int64
		before := int64(0)
		for {
			evs, err := r.GrantHistory(ctx, "grant-1", 4, before)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			for _, ev := range evs {
				got = append(got, ev.Seq)
			}
			before = evs[len(evs)-1].Seq
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || len(want) != 15 {
			t.Fatalf("GrantHistory newest first = %v, want %v", got, want)
		}

		la, err := r.LastAccess(ctx, []string{"grant-0", "grant-1", "grant-2", "grant-3", "never"})
		if err != nil {
			t.Fatal(err)
		}
		if len(last) == 0 || len(la) != len(last) {
			t.Fatalf("LastAccess = %v, want %v", la, last)
		}
		for g, ts := range last {
			if !la[g].Equal(ts) {
				t.Fatalf("LastAccess[%s] = %v, want %v", g, la[g], ts)
			}
		}
		if la, err := r.LastAccess(ctx, nil); err != nil || len(la) != 0 {
			t.Fatal(la, err)
		}

		evs, err := r.ByInteractionID(ctx, "ia-42")
		if err != nil || len(evs) != 1 || evs[0].Seq != 43 {
			t.Fatalf("ByInteractionID = %+v, %v", evs, err)
		}
	})
}
