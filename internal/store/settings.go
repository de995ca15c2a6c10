package store

import (
	"context"
	"fmt"
)

// SettingOnce stores value under name unless a value is stored already,
// and returns the stored one: first writer wins, so every node on one
// database agrees on a generated value (the demo secret, the pairwise
// salt).
func (db *DB) SettingOnce(ctx context.Context, name, value string) (string, error) {
	if err := db.WithContext(ctx).Exec(
		`INSERT INTO server_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, value).Error; err != nil {
		return "", fmt.Errorf("setting %s: %w", name, err)
	}
	v, ok, err := db.Setting(ctx, name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("setting %s: not found after it was written", name)
	}
	return v, nil
}

// Setting returns the value stored under name, if any.
func (db *DB) Setting(ctx context.Context, name string) (string, bool, error) {
	var v []string
	if err := db.WithContext(ctx).Raw(`SELECT value FROM server_settings WHERE name = ?`, name).Scan(&v).Error; err != nil {
		return "", false, fmt.Errorf("setting %s: %w", name, err)
	}
	if len(v) == 0 {
		return "", false, nil
	}
	return v[0], true, nil
}
