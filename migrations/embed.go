// Package migrations holds the versioned SQL schema, one directory per
// dialect, embedded into the binary and applied by goose. Never edit a
// released file: add the next version instead.
package migrations

import "embed"

// FS holds sqlite/*.sql and postgres/*.sql.
//
//go:embed sqlite/*.sql postgres/*.sql
var FS embed.FS
