package ingest

import (
	"encoding/json"
	"unicode/utf8"
)

// fastTransactions decodes a transaction batch {"records": [{…}, …]} of
// flat objects with the exact member names, without reflection: card
// transactions come by the million, and encoding/json costs more than the
// database writing them. It accepts only a subset of what encoding/json
// does and gives up (ok false) on anything else (other member names or
// cases, numbers, nested values, nulls other than booked_at, invalid UTF-8,
// malformed JSON); the callers then decode with encoding/json, which also
// explains refusals. When it succeeds, the result is what encoding/json
// (with DisallowUnknownFields) would give: FuzzFastTransactions checks it.
func fastTransactions(body []byte) (recs []TransactionRecord, ok bool) {
	p := fastParser{s: string(body)}
	if !p.expect('{') {
		return nil, false
	}
	if k, ok := p.str(); !ok || k != "records" || !p.expect(':') || !p.expect('[') {
		return nil, false
	}
	recs = make([]TransactionRecord, 0, 64)
	for {
		var r TransactionRecord
		if !p.expect('{') || !p.object(&r) {
			return nil, false
		}
		recs = append(recs, r)
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		break
	}
	if !p.expect(']') || !p.expect('}') {
		return nil, false
	}
	p.ws()
	return recs, p.i == len(p.s)
}

type fastParser struct {
	s string
	i int
}

func (p *fastParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) expect(c byte) bool {
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a JSON string. Strings without escapes are substrings of the
// body (no copy); escaped ones go through encoding/json.
func (p *fastParser) str() (string, bool) {
	p.ws()
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return "", false
	}
	start := p.i + 1
	escaped, high := false, false
	for j := start; j < len(p.s); j++ {
		switch c := p.s[j]; {
		case c == '"':
			p.i = j + 1
			raw := p.s[start:j]
			if high && !utf8.ValidString(raw) {
				return "", false // encoding/json would replace the bad bytes
			}
			if !escaped {
				return raw, true
			}
			var out string
			if json.Unmarshal([]byte(p.s[start-1:j+1]), &out) != nil {
				return "", false
			}
			return out, true
		case c == '\\':
			escaped = true
			j++ // skip the escaped byte (a quote or backslash among them)
		case c < 0x20:
			return "", false // not JSON
		case c >= 0x80:
			high = true
		}
	}
	return "", false
}

// literal reads true, false or null.
func (p *fastParser) literal() (string, bool) {
	p.ws()
	for _, lit := range []string{"true", "false", "null"} {
		if len(p.s)-p.i >= len(lit) && p.s[p.i:p.i+len(lit)] == lit {
			p.i += len(lit)
			return lit, true
		}
	}
	return "", false
}

// object reads the members of one transaction record after its '{'.
func (p *fastParser) object(r *TransactionRecord) bool {
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return true
	}
	for {
		name, ok := p.str()
		if !ok || !p.expect(':') {
			return false
		}
		if !p.member(r, name) {
			return false
		}
		p.ws()
		if p.i >= len(p.s) {
			return false
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return true
		default:
			return false
		}
	}
}

func (p *fastParser) member(r *TransactionRecord, name string) bool {
	var dst *string
	switch name {
	case "record_type":
		dst = &r.RecordType
	case "id":
		dst = &r.ID
	case "account_id":
		dst = &r.AccountID
	case "status":
		dst = &r.Status
	case "transacted_at":
		dst = &r.TransactedAt
	case "amount":
		dst = &r.Amount
	case "currency":
		dst = &r.Currency
	case "description":
		dst = &r.Description
	case "merchant_name":
		dst = &r.MerchantName
	case "merchant_category_code":
		dst = &r.MerchantCategoryCode
	case "card_last4":
		dst = &r.CardLast4
	case "booked_at":
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == 'n' {
			lit, ok := p.literal()
			r.BookedAt = nil
			return ok && lit == "null"
		}
		v, ok := p.str()
		r.BookedAt = &v
		return ok
	case "reversed":
		lit, ok := p.literal()
		if !ok || lit == "null" {
			return false
		}
		r.Reversed = lit == "true"
		return true
	default:
		return false
	}
	v, ok := p.str()
	*dst = v
	return ok
}

// fastTransactionLine decodes a JSON Lines transaction record the way
// fastTransactions decodes one of a batch's records.
func fastTransactionLine(line []byte) (*TransactionRecord, bool) {
	p := fastParser{s: string(line)}
	var r TransactionRecord
	if !p.expect('{') || !p.object(&r) || r.RecordType != string(KindTransaction) {
		return nil, false
	}
	p.ws()
	return &r, p.i == len(p.s)
}
