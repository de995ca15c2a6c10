package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"unicode/utf8"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/store"
)

// A transactions cursor is the keyset position of the last row of a page,
// bound to the query it came from:
//
//	base64url( version | tag (12 bytes) | varint transacted_at µs | transaction id )
//	tag = SHA-256(label, version, position, account id, from, to, status)[:12]
//
// The tag is a plain hash, not a MAC, on purpose: a cursor grants nothing.
// Every page is still bounded by the consent's accounts, its history window
// and the request's filters, so a forged position can only pick rows the
// caller may read anyway. The tag catches a cursor replayed with other
// filters or on another account (a client bug that would silently skip or
// repeat rows) and any corruption.

const (
	cursorVersion = 1
	cursorTagLen  = 12
	// maxCursorLen bounds the query parameter before decoding; ids are at
	// most 128 bytes (accounts.validateTransaction).
	maxCursorLen = 256
)

// cursorBinding is what a cursor is valid for. From and To hold the
// explicit bounds of the request in µs, or "" when defaulted: a default
// window moves with the clock, so pages of one walk still match.
type cursorBinding struct {
	AccountID, From, To, Status string
}

// tag hashes the position with the binding; every field is length-prefixed
// so that no two different inputs share an encoding.
func (b cursorBinding) tag(micros int64, id string) []byte {
	in := append([]byte("consentgate transactions cursor"), cursorVersion)
	in = binary.AppendVarint(in, micros)
	for _, s := range []string{id, b.AccountID, b.From, b.To, b.Status} {
		in = binary.AppendVarint(in, int64(len(s)))
		in = append(in, s...)
	}
	sum := sha256.Sum256(in)
	return sum[:cursorTagLen]
}

func encodeCursor(k accounts.TxKey, b cursorBinding) string {
	micros := store.Micros(k.TransactedAt)
	buf := append([]byte{cursorVersion}, b.tag(micros, k.ID)...)
	buf = binary.AppendVarint(buf, micros)
	buf = append(buf, k.ID...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

var errInvalidCursor = apperr.New(apperr.InvalidCursor,
	"cursor is not a next_cursor of this query. Send it back unchanged, with the same account, from, to and status as the request that returned it; or leave it out to start from the newest transaction.")

func decodeCursor(s string, b cursorBinding) (*accounts.TxKey, error) {
	if len(s) > maxCursorLen {
		return nil, errInvalidCursor
	}
	buf, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(buf) < 1+cursorTagLen || buf[0] != cursorVersion {
		return nil, errInvalidCursor
	}
	tag, rest := buf[1:1+cursorTagLen], buf[1+cursorTagLen:]
	micros, n := binary.Varint(rest)
	if n <= 0 || len(rest) == n {
		return nil, errInvalidCursor // no position, or no id after it
	}
	id := string(rest[n:])
	if !utf8.ValidString(id) || !bytes.Equal(tag, b.tag(micros, id)) {
		return nil, errInvalidCursor
	}
	return &accounts.TxKey{TransactedAt: store.FromMicros(micros), ID: id}, nil
}
