package consent_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// A consent read through Joined (as the token check reads it, in the
// token's own query) is the consent Get returns: every field, accounts
// sorted, none as an empty list; and no consent at all reads as nil.
func TestJoinedMatchesGet(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		seed(t, db)
		s := consent.NewSQLStore(db)
		now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		for _, c := range []struct {
			id       string
			accounts []string // nil: left awaiting authorization
			revoke   bool
		}{{"pending", nil, false}, {"one", []string{"a1"}, false}, {"two", []string{"a2", "a1"}, true}} {
			if err := s.Create(ctx, newConsent(c.id, now)); err != nil {
				t.Fatal(err)
			}
			if c.accounts != nil {
				if _, err := s.Authorize(ctx, c.id, "alice", c.accounts, now); err != nil {
					t.Fatal(err)
				}
			}
			if c.revoke {
				if _, err := s.Revoke(ctx, c.id, "customer", now.Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
		}
		// The token side of the join: ids that name a consent, and one that
		// names none (as a client_credentials token's request id does).
		query := `SELECT ` + consent.JoinedColumns(db.Dialect, "c") + `
			FROM (SELECT $1 AS id) t LEFT JOIN consents c ON c.id = t.id`
		for _, id := range []string{"pending", "one", "two", "none"} {
			var j consent.Joined
			if err := db.SQL().QueryRowContext(ctx, query, id).Scan(j.Dest()...); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			got, err := j.Consent()
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			if id == "none" {
				if got != nil {
					t.Errorf("no consent read as %+v", got)
				}
				continue
			}
			want, err := s.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s:\n joined %+v\n get    %+v", id, got, want)
			}
		}
	})
}
