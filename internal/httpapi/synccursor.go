package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"unicode/utf8"

	"github.com/consentgate/consentgate/internal/apperr"
)

// A sync cursor is a position in an account's changes (docs/sync.md):
//
//	base64url( version | flags | varint seq | varint head | id | mac (16 bytes) )
//	mac = HMAC-SHA256(key, label | everything before it | grant id | account id)[:16]
//
// flags: bit 0 the position is in the first sync's snapshot (seq and id
// are a (created_seq, id) position, head its end); bit 1 the cursor
// continues a run that has more (head bounds it, and the page is free of
// the daily limit). Unlike the transactions cursor this one is a MAC: a
// continuation is not counted against the unattended limit, so a client
// must not be able to forge one. The key is derived from the server
// secret, the same on every node and across restarts.

const (
	syncCursorVersion = 1
	syncCursorMACLen  = 16

	syncSnapshot     = 1 << 0
	syncContinuation = 1 << 1
)

// syncPosition is what a sync cursor carries.
type syncPosition struct {
	Snapshot     bool
	Continuation bool
	Seq, Head    int64
	ID           string
}

// syncStart is the position of a sync without a cursor: the snapshot from
// its beginning.
var syncStart = syncPosition{Snapshot: true, Seq: -1}

func syncMAC(key []byte, body []byte, grantID, accountID string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("consentgate sync cursor"))
	m.Write(body)
	for _, s := range []string{grantID, accountID} {
		m.Write(binary.AppendVarint(nil, int64(len(s))))
		m.Write([]byte(s))
	}
	return m.Sum(nil)[:syncCursorMACLen]
}

func encodeSyncCursor(key []byte, p syncPosition, grantID, accountID string) string {
	var flags byte
	if p.Snapshot {
		flags |= syncSnapshot
	}
	if p.Continuation {
		flags |= syncContinuation
	}
	buf := []byte{syncCursorVersion, flags}
	buf = binary.AppendVarint(buf, p.Seq)
	buf = binary.AppendVarint(buf, p.Head)
	buf = append(buf, p.ID...)
	buf = append(buf, syncMAC(key, buf, grantID, accountID)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

var errInvalidSyncCursor = apperr.New(apperr.InvalidCursor,
	"cursor is not a next_cursor of this account's sync under this grant. Send the last next_cursor back unchanged, or leave it out to start again from everything the consent allows.")

func decodeSyncCursor(key []byte, s, grantID, accountID string) (syncPosition, error) {
	var p syncPosition
	if len(s) > maxCursorLen {
		return p, errInvalidSyncCursor
	}
	buf, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(buf) < 2+syncCursorMACLen || buf[0] != syncCursorVersion {
		return p, errInvalidSyncCursor
	}
	body, mac := buf[:len(buf)-syncCursorMACLen], buf[len(buf)-syncCursorMACLen:]
	if !hmac.Equal(mac, syncMAC(key, body, grantID, accountID)) {
		return p, errInvalidSyncCursor
	}
	flags, rest := body[1], body[2:]
	seq, n := binary.Varint(rest)
	if n <= 0 {
		return p, errInvalidSyncCursor
	}
	rest = rest[n:]
	head, n := binary.Varint(rest)
	if n <= 0 || !utf8.Valid(rest[n:]) {
		return p, errInvalidSyncCursor
	}
	return syncPosition{Snapshot: flags&syncSnapshot != 0, Continuation: flags&syncContinuation != 0,
		Seq: seq, Head: head, ID: string(rest[n:])}, nil
}
