package bench

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"time"
)

// IngestBatch is how many transactions one ingestion request carries: the
// provider API's largest batch (ingest.DefaultMaxRecords), as a bank's
// loader would send them.
const IngestBatch = 5000

// prefixLen is the length of the per-request id prefix: lower-case letters
// (26⁷ ≈ 8·10⁹ requests), so that no id looks like a card number.
const prefixLen = 7

// IngestBodies makes the bodies of ingestion requests
// (POST /v1/provider/transactions): IngestBatch new booked card
// transactions on one account, whose provider ids start with a prefix of
// their own request. The batch is formatted once; each request gets a copy
// with its prefix written in at the recorded offsets, so that every request
// creates new rows and the load generator spends little CPU on it.
// Safe for concurrent use.
type IngestBodies struct {
	tmpl []byte
	offs []int // where each record's id prefix starts in tmpl
	seq  atomic.Uint64
}

// NewIngestBodies formats the batch for the provider's account accountID
// (USD), the transactions a minute apart going back from now.
func NewIngestBodies(accountID string, now time.Time) *IngestBodies {
	placeholder := bytes.Repeat([]byte{'@'}, prefixLen)
	var b bytes.Buffer
	b.WriteString(`{"records":[`)
	b.Grow(IngestBatch * 300)
	for j := range IngestBatch {
		if j > 0 {
			b.WriteByte(',')
		}
		at := now.UTC().Add(-time.Duration(j) * time.Minute).Format(time.RFC3339)
		fmt.Fprintf(&b, `{"id":"%s-t%d","account_id":%q,"status":"booked","transacted_at":"%s","booked_at":"%s",`+
			`"amount":"-%d.%02d","currency":"USD","description":"Card purchase","merchant_name":"Merchant %d",`+
			`"merchant_category_code":"5411","card_last4":"4242"}`,
			placeholder, j, accountID, at, at, 1+j%500, j%100, j%97)
	}
	b.WriteString(`]}`)
	ib := &IngestBodies{tmpl: b.Bytes()}
	for off := 0; ; {
		i := bytes.Index(ib.tmpl[off:], placeholder)
		if i < 0 {
			break
		}
		ib.offs = append(ib.offs, off+i)
		off += i + prefixLen
	}
	return ib
}

// Next is the body of the next request: the batch with ids new to the
// database.
func (ib *IngestBodies) Next() []byte {
	prefix := idPrefix(ib.seq.Add(1))
	body := bytes.Clone(ib.tmpl)
	for _, off := range ib.offs {
		copy(body[off:off+prefixLen], prefix[:])
	}
	return body
}

// idPrefix spells n in prefixLen base-26 letters.
func idPrefix(n uint64) [prefixLen]byte {
	var p [prefixLen]byte
	for i := prefixLen - 1; i >= 0; i-- {
		p[i] = byte('a' + n%26)
		n /= 26
	}
	return p
}
