package keys_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/keys"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

const (
	secretA = "ring-secret-A-0123456789abcdef0123456789"
	secretB = "ring-secret-B-0123456789abcdef0123456789"
)

var seeds = []keys.Seed{
	{Use: keys.UseAudit, Kind: keys.KindEd25519, Label: "audit-label"},
	{Use: keys.UseIDToken, Kind: keys.KindES256, Label: "id-label"},
	{Use: "mac", Kind: keys.KindHMAC, Label: "mac-label"},
}

func TestRing(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(testdb.URL(t, d), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if err := db.Migrate(ctx, nil); err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			clock := func() time.Time { return now }
			open := func(secret, previous string) (*keys.Ring, error) {
				var prev []byte
				if previous != "" {
					prev = []byte(previous)
				}
				return keys.OpenRing(ctx, db, keys.RingOptions{Secret: []byte(secret), Previous: prev, Seeds: seeds,
					Retention: time.Hour, Now: clock})
			}
			r, err := open(secretA, "")
			if err != nil {
				t.Fatal(err)
			}
			// The seeds are the keys derived from the secret before the ring.
			if got, want := r.Ed25519(keys.UseAudit).Public.KeyID, keys.DeriveEd25519([]byte(secretA), "audit-label").Public.KeyID; got != want {
				t.Fatalf("seeded audit key %s, derived %s", got, want)
			}
			if got, want := string(r.HMAC("mac")), string(keys.DeriveHMAC([]byte(secretA), "mac-label")); got != want {
				t.Fatal("seeded MAC key is not the derived one")
			}
			// Nothing in the table is the key in the clear.
			var sealed []string
			db.Raw(`SELECT sealed FROM key_ring`).Scan(&sealed)
			for _, s := range sealed {
				if strings.Contains(s, string(r.HMAC("mac"))) {
					t.Fatal("a key is stored in the clear")
				}
			}

			first := r.Ed25519(keys.UseAudit).Public.KeyID
			kids, err := r.Rotate(ctx, []string{keys.UseAudit}, now.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			status := func() map[string]string {
				m := map[string]string{}
				for _, k := range r.List() {
					m[k.KID] = k.Status
				}
				return m
			}
			if s := status(); s[kids[0]] != "pending" || s[first] != "active" || r.Ed25519(keys.UseAudit).Public.KeyID != first {
				t.Fatalf("before activation: %v", s)
			}
			if len(r.Published()) != 3 { // two audit keys and the id_token key; MAC keys never
				t.Fatalf("published %d keys", len(r.Published()))
			}
			now = now.Add(2 * time.Minute)
			if s := status(); s[kids[0]] != "active" || s[first] != "published" || r.Ed25519(keys.UseAudit).Public.KeyID != kids[0] {
				t.Fatalf("after activation: %v", s)
			}
			// Past retention an id_token key leaves /jwks; audit keys never do.
			idFirst := r.ES256(keys.UseIDToken).Public.KeyID
			idKids, err := r.Rotate(ctx, []string{keys.UseIDToken}, now)
			if err != nil {
				t.Fatal(err)
			}
			now = now.Add(2 * time.Hour)
			if s := status(); s[idFirst] != "retired" || s[idKids[0]] != "active" || s[first] != "published" {
				t.Fatalf("after retention: %v", s)
			}
			if len(r.KeySet(keys.UseAudit).Keys) != 2 || len(r.Published()) != 3 {
				t.Fatalf("audit key set %d, published %d", len(r.KeySet(keys.UseAudit).Keys), len(r.Published()))
			}
			if _, err := r.Rotate(ctx, []string{"mac"}, now); err == nil {
				t.Fatal("rotated a MAC key")
			}

			// Master secret: B alone cannot open the ring; B with A as
			// previous re-seals it; then B alone can, with the same keys.
			if _, err := open(secretB, ""); err == nil || !strings.Contains(err.Error(), "CONSENTGATE_SECRET_PREVIOUS") {
				t.Fatalf("wrong secret: %v", err)
			}
			if _, err := open(secretB, secretA); err != nil {
				t.Fatal(err)
			}
			rb, err := open(secretB, "")
			if err != nil {
				t.Fatal(err)
			}
			if rb.Ed25519(keys.UseAudit).Public.KeyID != kids[0] || string(rb.HMAC("mac")) != string(r.HMAC("mac")) {
				t.Fatal("the keys changed with the secret")
			}
			// A node still on A keeps its keys and publishes new ones it
			// cannot open from their public halves, but never signs with them.
			newer, err := rb.Rotate(ctx, []string{keys.UseAudit}, now)
			if err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Second)
			if err := r.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if len(r.KeySet(keys.UseAudit).Keys) != 3 || r.Ed25519(keys.UseAudit).Public.KeyID == newer[0] {
				t.Fatalf("old-secret node: %d audit keys, signing with %s", len(r.KeySet(keys.UseAudit).Keys), r.Ed25519(keys.UseAudit).Public.KeyID)
			}
		})
	}
}
