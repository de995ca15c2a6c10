package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/consentgate/consentgate/internal/store"
)

const demoSecretSetting = "demo_secret"

// demoSecret returns the secret a --demo deployment generated earlier, or
// generates and persists one. Every node of a demo on one database agrees on
// it: the insert is first-writer-wins and everyone reads the stored value.
func demoSecret(ctx context.Context, db *store.DB) ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("demo secret: %w", err)
	}
	v, err := db.SettingOnce(ctx, demoSecretSetting, hex.EncodeToString(b))
	if err != nil {
		return nil, fmt.Errorf("demo secret: %w", err)
	}
	return []byte(v), nil
}

// StoredSecret returns the secret persisted by a --demo server, if any: the
// CLI uses it so `client create` works against a demo database without
// CONSENTGATE_SECRET.
func StoredSecret(ctx context.Context, db *store.DB) ([]byte, bool, error) {
	v, ok, err := db.Setting(ctx, demoSecretSetting)
	if err != nil || !ok {
		return nil, false, err
	}
	return []byte(v), true, nil
}

// syncCursorKeyUse and syncCursorSeedLabel name the sync cursor key in the
// key ring; the label is the one its key was derived under before the ring,
// so cursors handed out before it stay valid.
const (
	syncCursorKeyUse    = "httpapi/sync-cursor"
	syncCursorSeedLabel = "consentgate/httpapi/sync-cursor"
)
