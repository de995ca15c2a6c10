package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
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
	if err := db.WithContext(ctx).Exec(
		`INSERT INTO server_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`,
		demoSecretSetting, hex.EncodeToString(b)).Error; err != nil {
		return nil, fmt.Errorf("demo secret: %w", err)
	}
	var v []string
	if err := db.WithContext(ctx).Raw(`SELECT value FROM server_settings WHERE name = ?`, demoSecretSetting).
		Scan(&v).Error; err != nil || len(v) != 1 {
		return nil, fmt.Errorf("demo secret: read back: %v", err)
	}
	return []byte(v[0]), nil
}

// StoredSecret returns the secret persisted by a --demo server, if any: the
// CLI uses it so `client create` works against a demo database without
// CONSENTGATE_SECRET.
func StoredSecret(ctx context.Context, db *store.DB) ([]byte, bool, error) {
	var v []string
	if err := db.WithContext(ctx).Raw(`SELECT value FROM server_settings WHERE name = ?`, demoSecretSetting).
		Scan(&v).Error; err != nil {
		return nil, false, fmt.Errorf("stored secret: %w", err)
	}
	if len(v) == 0 {
		return nil, false, nil
	}
	return []byte(v[0]), true, nil
}

// syncCursorKey is the key of the data API's sync cursors, derived from the
// server secret: every node, and every restart, accepts the cursors of the
// others.
func syncCursorKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("consentgate/httpapi/sync-cursor"))
	return m.Sum(nil)
}
