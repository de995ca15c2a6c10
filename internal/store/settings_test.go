package store_test

import (
	"context"
	"testing"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// TestSettingOnce: the first value written under a name is the one every
// later writer (another node) reads back.
func TestSettingOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, ok, err := db.Setting(ctx, "s"); err != nil || ok {
			t.Fatalf("unset setting: ok %v, %v", ok, err)
		}
		first, err := db.SettingOnce(ctx, "s", "one")
		if err != nil || first != "one" {
			t.Fatalf("first write: %q, %v", first, err)
		}
		if second, err := db.SettingOnce(ctx, "s", "two"); err != nil || second != "one" {
			t.Fatalf("second writer got %q, %v; want the first value", second, err)
		}
		if v, ok, err := db.Setting(ctx, "s"); err != nil || !ok || v != "one" {
			t.Fatalf("Setting = %q %v %v", v, ok, err)
		}
	})
}
