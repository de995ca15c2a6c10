package httpapi

import (
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/accounts"
)

// A transactions page is the largest and most frequent answer of the data
// API: up to 500 transactions. Rendering it through encoding/json cost 5–8%
// of the CPU of a gated page (reflection, and a string and a pointer per
// timestamp, amount and nullable field, all garbage a moment later). The
// writer below appends the same bytes into one pooled buffer instead. Its
// output is byte for byte what json.Marshal gives for the transaction view
// of SPEC §3 (transactionView in data.go): txjson_test.go holds it to that,
// by table and by fuzzing.

// jsonContentType is the Content-Type gin's c.JSON sets, so that a client
// cannot tell which of the two wrote the answer.
var jsonContentType = []string{"application/json; charset=utf-8"}

// maxPooledPage bounds the buffers kept for reuse: a page of long
// descriptions may grow one far past the usual size, and the pool should
// not pin that memory for the life of the process.
const maxPooledPage = 1 << 20

var pageBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// WriteTransactionPage answers 200 with a page of transactions, as the data
// API's list of transactions renders it: {"data":[...],"next_cursor":...},
// next_cursor null when nextCursor is nil. It writes what c.JSON would have
// written for the same page, headers included.
func WriteTransactionPage(c *gin.Context, txs []accounts.Transaction, nextCursor *string) {
	writeTransactionPage(c, txs, nextCursor, 0)
}

// writeTransactionPage is WriteTransactionPage with the hidden fields of
// the caller's purpose served as null.
func writeTransactionPage(c *gin.Context, txs []accounts.Transaction, nextCursor *string, hidden accounts.TxFields) {
	bp := pageBuffers.Get().(*[]byte)
	buf := appendTransactionPage((*bp)[:0], txs, nextCursor, hidden)
	// As gin's render.JSON does: the status is set first (gin sends it with
	// the first byte), and a Content-Type set earlier is kept.
	c.Status(http.StatusOK)
	if h := c.Writer.Header(); len(h["Content-Type"]) == 0 {
		h["Content-Type"] = jsonContentType
	}
	if _, err := c.Writer.Write(buf); err != nil {
		_ = c.Error(err)
		c.Abort()
	}
	// A ResponseWriter does not keep the slice it was given (the audit
	// step's held response copies it), so the buffer is free again here.
	if cap(buf) <= maxPooledPage {
		*bp = buf[:0]
		pageBuffers.Put(bp)
	}
}

// AppendTransactionPage appends the JSON of a page of transactions to dst
// and returns the extended slice. The rules are the data API's (SPEC §3):
// times RFC 3339 in UTC with the nanoseconds there are, amounts as decimal
// strings in major units, booked_at only for a booked transaction, and
// null for an absent merchant, merchant category code or card.
func AppendTransactionPage(dst []byte, txs []accounts.Transaction, nextCursor *string) []byte {
	return appendTransactionPage(dst, txs, nextCursor, 0)
}

func appendTransactionPage(dst []byte, txs []accounts.Transaction, nextCursor *string, hidden accounts.TxFields) []byte {
	dst = append(dst, `{"data":[`...)
	for i := range txs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendTransactionShaped(dst, &txs[i], hidden)
	}
	dst = append(dst, `],"next_cursor":`...)
	if nextCursor == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendJSONString(dst, *nextCursor)
	}
	return append(dst, '}')
}

// appendTransactionShaped appends one transaction, its fields in the order
// of transactionView's, with the hidden fields null (SPEC §12: the fields
// its purpose may not see, which were never read).
func appendTransactionShaped(dst []byte, t *accounts.Transaction, hidden accounts.TxFields) []byte {
	dst = append(dst, `{"transaction_id":`...)
	dst = appendJSONString(dst, t.ID)
	dst = append(dst, `,"account_id":`...)
	dst = appendJSONString(dst, t.AccountID)
	dst = append(dst, `,"status":`...)
	dst = appendJSONString(dst, t.Status)
	dst = append(dst, `,"transacted_at":`...)
	dst = appendTimestamp(dst, t.TransactedAt)
	dst = append(dst, `,"booked_at":`...)
	if t.Status == accounts.StatusBooked && t.BookedAt != nil {
		dst = appendTimestamp(dst, *t.BookedAt)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"amount":"`...)
	// An amount is digits, a point and a minus sign: nothing to escape.
	dst = accounts.AppendMinor(dst, t.Amount, t.Currency)
	dst = append(dst, `","currency":`...)
	dst = appendJSONString(dst, t.Currency)
	dst = append(dst, `,"description":`...)
	if hidden.Has(accounts.TxDescription) {
		dst = append(dst, "null"...)
	} else {
		dst = appendJSONString(dst, t.Description)
	}
	dst = append(dst, `,"merchant_name":`...)
	dst = appendStringOrNull(dst, t.MerchantName)
	dst = append(dst, `,"merchant_category_code":`...)
	dst = appendStringOrNull(dst, t.MCC)
	dst = append(dst, `,"card_last4":`...)
	dst = appendStringOrNull(dst, t.CardLast4)
	return append(dst, '}')
}

// appendTimestamp appends timestamp(t) as a JSON string. RFC 3339 in UTC
// is digits, '-', ':', '.', 'T' and 'Z' (and a '-' before a year before
// year 0): nothing to escape.
func appendTimestamp(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// appendStringOrNull is orNull's rule: the store keeps absent text as "",
// the API says null.
func appendStringOrNull(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return appendJSONString(dst, s)
}

// htmlSafe marks the ASCII bytes encoding/json writes as they are when it
// escapes HTML, as json.Marshal does: every printable byte (DEL included)
// but '"', '\\', '<', '>' and '&'.
var htmlSafe = func() (safe [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		safe[b] = b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
	}
	return safe
}()

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string exactly as json.Marshal
// writes a string (encoding/json's appendString with HTML escaping):
// '"' and '\\' escaped with a backslash, \b \f \n \r \t by name, other
// control characters and '<', '>', '&' as \u00XX, each byte of invalid
// UTF-8 as \ufffd, and U+2028 and U+2029 as \u2028 and \u2029 (JSONP
// would end a line at them). Valid UTF-8 is otherwise copied unchanged.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if htmlSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
