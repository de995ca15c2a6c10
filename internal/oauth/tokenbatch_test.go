package oauth

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"testing"
)

// TestConcurrentClientCredentials issues many client_credentials tokens at
// once: the rows are group-committed, and every token handed out must be
// in the database and valid the moment its response is written.
func TestConcurrentClientCredentials(t *testing.T) {
	e := newEnv(t)
	const n = 40
	tokens := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rec := e.post("/oauth2/token", auditorID, auditorSec, url.Values{"grant_type": {"client_credentials"}})
			if rec.Code == 200 {
				tokens[i] = e.tokens(rec).AccessToken
			}
		})
	}
	wg.Wait()
	for i, tk := range tokens {
		if tk == "" {
			t.Fatalf("request %d got no token", i)
		}
		if _, err := e.bearer("Bearer " + tk); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
}

// A batch commits or fails as a whole, and every waiter hears its fate.
func TestTokenBatchFailsTogether(t *testing.T) {
	e := newEnv(t)
	b := e.p.store.batch
	row := func(sig string) []any {
		return []any{kindAccess, sig, "req", auditorID, "", true, int64(1), int64(2), "{}", nil}
	}
	ctx := context.Background()
	if err := b.insert(ctx, row("sig-1")...); err != nil {
		t.Fatal(err)
	}
	// The same primary key again fails; so does its whole batch.
	err := b.commit([]*tokenInsert{{args: row("sig-2")}, {args: row("sig-1")}})
	if err == nil || !errors.Is(err, ErrStorage) {
		t.Fatalf("duplicate in batch: %v, want a storage error", err)
	}
	var n int64
	if err := e.p.store.db.Raw(`SELECT count(*) FROM oauth_tokens WHERE signature_hash = 'sig-2'`).Scan(&n).Error; err != nil || n != 0 {
		t.Fatalf("a row of a failed batch was committed (%d, %v)", n, err)
	}
}
