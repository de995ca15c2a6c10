package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// timeLayout is the one time format of the log: RFC 3339, UTC, always six
// fractional digits, so the canonical bytes of a time never vary.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// FormatTime renders t the way the log does (canonical encoding, exports).
func FormatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// Canonical returns the bytes an event's hash covers: a JSON object of every
// SPEC §6 field except prev_hash and hash, keys in byte order, no whitespace,
// occurred_at as FormatTime, scopes space-joined, seq and status as integers.
// This is exactly RFC 8785 (JCS) of that object; docs/audit.md has an example.
func Canonical(ev Event) []byte {
	return appendCanonical(make([]byte, 0, 512), &ev, strings.Join(ev.Scopes, " "))
}

func appendCanonical(b []byte, ev *Event, scopes string) []byte {
	b = append(b, `{"account_id":`...)
	b = appendString(b, ev.AccountID)
	b = append(b, `,"client_id":`...)
	b = appendString(b, ev.ClientID)
	b = append(b, `,"customer_id":`...)
	b = appendString(b, ev.CustomerID)
	b = append(b, `,"event_id":`...)
	b = appendString(b, ev.EventID)
	b = append(b, `,"grant_id":`...)
	b = appendString(b, ev.GrantID)
	b = append(b, `,"interaction_id":`...)
	b = appendString(b, ev.InteractionID)
	b = append(b, `,"method":`...)
	b = appendString(b, ev.Method)
	b = append(b, `,"occurred_at":"`...)
	b = ev.OccurredAt.UTC().AppendFormat(b, timeLayout)
	b = append(b, `","outcome":`...)
	b = appendString(b, string(ev.Outcome))
	b = append(b, `,"path":`...)
	b = appendString(b, ev.Path)
	b = append(b, `,"purpose":`...)
	b = appendString(b, ev.Purpose)
	b = append(b, `,"reason":`...)
	b = appendString(b, ev.Reason)
	b = append(b, `,"scopes":`...)
	b = appendString(b, scopes)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, ev.Seq, 10)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(ev.Status), 10)
	b = append(b, `,"type":`...)
	b = appendString(b, string(ev.Type))
	return append(b, '}')
}

// appendString writes s as a JSON string the RFC 8785 way: only '"', '\\'
// and control characters are escaped (short forms where JSON has them,
// otherwise \u00xx in lower case); every other character is literal UTF-8.
// Callers pass valid UTF-8 (normalize guarantees it for stored events).
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// ComputeHash returns hex(SHA-256(prev ‖ Canonical(ev))) where prev is the
// 32 bytes prevHash encodes.
func ComputeHash(prevHash string, ev Event) (string, error) {
	var h hasher
	return h.hash(prevHash, &ev, strings.Join(ev.Scopes, " "))
}

// hasher reuses its buffer across events: Verify hashes millions of them.
type hasher struct{ buf []byte }

func (h *hasher) hash(prevHash string, ev *Event, scopes string) (string, error) {
	if len(prevHash) != 2*sha256.Size {
		return "", fmt.Errorf("audit: prev_hash %q is not 64 hex digits", prevHash)
	}
	var zero [sha256.Size]byte
	h.buf = append(h.buf[:0], zero[:]...)
	if _, err := hex.Decode(h.buf[:sha256.Size], []byte(prevHash)); err != nil {
		return "", fmt.Errorf("audit: prev_hash %q: %w", prevHash, err)
	}
	h.buf = appendCanonical(h.buf, ev, scopes)
	sum := sha256.Sum256(h.buf)
	return hex.EncodeToString(sum[:]), nil
}

// leaf returns the RFC 9162 leaf hash of ev, reusing the buffer.
func (h *hasher) leaf(ev *Event, scopes string) []byte {
	h.buf = append(h.buf[:0], 0x00)
	h.buf = appendCanonical(h.buf, ev, scopes)
	sum := sha256.Sum256(h.buf)
	return sum[:]
}

// MarshalJSON renders the event as the API and NDJSON exports show it: SPEC
// field names and order, occurred_at as FormatTime, scopes as an array,
// absent strings as "".
func (ev Event) MarshalJSON() ([]byte, error) {
	return appendJSON(make([]byte, 0, 640), &ev), nil
}

func appendJSON(b []byte, ev *Event) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, ev.Seq, 10)
	b = append(b, `,"event_id":`...)
	b = appendString(b, ev.EventID)
	b = append(b, `,"occurred_at":"`...)
	b = ev.OccurredAt.UTC().AppendFormat(b, timeLayout)
	b = append(b, `","type":`...)
	b = appendString(b, string(ev.Type))
	b = append(b, `,"outcome":`...)
	b = appendString(b, string(ev.Outcome))
	for _, f := range [...]struct{ k, v string }{
		{"reason", ev.Reason}, {"client_id", ev.ClientID}, {"customer_id", ev.CustomerID},
		{"grant_id", ev.GrantID}, {"account_id", ev.AccountID}, {"method", ev.Method}, {"path", ev.Path},
	} {
		b = append(b, `,"`...)
		b = append(b, f.k...)
		b = append(b, `":`...)
		b = appendString(b, f.v)
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(ev.Status), 10)
	b = append(b, `,"purpose":`...)
	b = appendString(b, ev.Purpose)
	b = append(b, `,"scopes":[`...)
	for i, s := range ev.Scopes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	b = append(b, `],"interaction_id":`...)
	b = appendString(b, ev.InteractionID)
	b = append(b, `,"prev_hash":`...)
	b = appendString(b, ev.PrevHash)
	b = append(b, `,"hash":`...)
	b = appendString(b, ev.Hash)
	return append(b, '}')
}
