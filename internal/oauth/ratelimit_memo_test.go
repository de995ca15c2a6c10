package oauth

import (
	"context"
	"testing"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// TestClientRowReadOncePerRequest: the rate limit reads the client of a
// PAR or token request before fosite authenticates it; the second read of
// that request reuses the row instead of querying again (the token
// endpoint's hot path), and only for the same client id. A new request
// (a new context) reads the database, so a suspension shows on it.
func TestClientRowReadOncePerRequest(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		p := newTestProvider(t, db, newClock(), &eventLog{})
		ctx := context.Background()
		row, err := p.store.client(ctx, appID)
		if err != nil {
			t.Fatal(err)
		}
		// The database changes after the row was read in this request.
		if err := db.Exec(`UPDATE oauth_clients SET name = 'Renamed' WHERE id = ?`, appID).Error; err != nil {
			t.Fatal(err)
		}
		reqCtx := withClientRow(ctx, row)
		if again, err := p.store.client(reqCtx, appID); err != nil || again != row {
			t.Fatalf("a second read in the same request went to the database: %v, %+v", err, again)
		}
		if other, err := p.store.client(reqCtx, otherID); err != nil || other.ID != otherID {
			t.Fatalf("another client in the same request: %v, %+v", err, other)
		}
		if fresh, err := p.store.client(ctx, appID); err != nil || fresh.Name != "Renamed" {
			t.Fatalf("a new request must read the database: %v, %+v", err, fresh)
		}
	})
}
