package identity

import (
	"context"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

func TestPairwiseSubjects(t *testing.T) {
	p := NewPairwise([]byte(strings.Repeat("k", 32)))
	a1, a2 := p.Subject("app-one", "cust-alice"), p.Subject("app-one", "cust-alice")
	switch {
	case a1 != a2:
		t.Fatalf("not stable: %q vs %q", a1, a2)
	case len(a1) < 7:
		t.Fatalf("subject %q shorter than 7 characters", a1)
	case strings.Contains(a1, "alice"):
		t.Fatalf("subject %q reveals the customer id", a1)
	case a1 == p.Subject("app-two", "cust-alice"):
		t.Fatal("two clients see the same subject for one customer")
	case a1 == p.Subject("app-one", "cust-bob"):
		t.Fatal("two customers share a subject for one client")
	case p.Subject("ab", "c") == p.Subject("a", "bc"):
		t.Fatal("client and customer ids run together")
	}
	if other := NewPairwise([]byte(strings.Repeat("j", 32))); other.Subject("app-one", "cust-alice") == a1 {
		t.Fatal("subject does not depend on the salt")
	}
}

func TestLoadPairwiseIsSharedAndStable(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		p1, err := LoadPairwise(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := LoadPairwise(ctx, db) // a second node on the same database
		if err != nil {
			t.Fatal(err)
		}
		if p1.Subject("c", "u") != p2.Subject("c", "u") {
			t.Fatal("two loads of one database disagree")
		}
	})
}
