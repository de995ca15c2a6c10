package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/apperr"
)

// testNow is the fixed clock of the package's tests.
var testNow = time.Date(2025, 6, 30, 12, 0, 0, 0, time.UTC)

func parseService() *Service {
	return &Service{now: func() time.Time { return testNow }}
}

func TestLooksLikePAN(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"4111111111111111", true},
		{"card 4111 1111 1111 1111 used", true},
		{"4111-1111-1111-1111", true},
		{"3782-822463-10005", true},        // Amex grouping, 15 digits
		{"4111 1111 1111 1111 2025", true}, // a PAN followed by a year
		{"1234567890123", true},            // 13 digits: refused, reference or not
		{"ref 123456789012", false},        // 12 digits
		{"12345678901234567890", false},    // 20 digits in a row: not a card number
		{"2024-01-15 123456789", false},    // a date and a number
		{"Coffee 12 34 56 78 90 12 34", false},
		{"", false},
		{"4242", false},
	}
	for _, tt := range tests {
		if got := looksLikePAN(tt.s); got != tt.want {
			t.Errorf("looksLikePAN(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

const goodTx = `{"id":"t1","account_id":"a1","status":"booked","transacted_at":"2025-06-01T10:00:00Z","booked_at":"2025-06-02T00:00:00Z","amount":"-12.34","currency":"USD","description":"Coffee","merchant_name":"Cafe","merchant_category_code":"5814","card_last4":"4242"}`

// txWith returns goodTx with id and the given members replaced (a value of
// "-" removes the member).
func txWith(id string, members ...string) string {
	m := map[string]string{
		"id": `"` + id + `"`, "account_id": `"a1"`, "status": `"booked"`, "transacted_at": `"2025-06-01T10:00:00Z"`,
		"booked_at": `"2025-06-02T00:00:00Z"`, "amount": `"-12.34"`, "currency": `"USD"`,
	}
	order := []string{"id", "account_id", "status", "transacted_at", "booked_at", "amount", "currency"}
	for i := 0; i+1 < len(members); i += 2 {
		if _, ok := m[members[i]]; !ok {
			order = append(order, members[i])
		}
		m[members[i]] = members[i+1]
	}
	var parts []string
	for _, k := range order {
		if m[k] != "-" {
			parts = append(parts, fmt.Sprintf("%q:%s", k, m[k]))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// Every bad record is refused with its index and field named, and the
// valid records around it do not hide it.
func TestParseJSONRecordErrors(t *testing.T) {
	s := parseService()
	tests := []struct {
		name, kind, record, field, reason string
	}{
		{"amount as a JSON number", "transaction", txWith("x", "amount", `-12.34`), "amount", "wrong type: want a string, got JSON number"},
		{"status of the wrong type", "transaction", txWith("x", "status", `true`), "status", "wrong type"},
		{"too many decimals", "transaction", txWith("x", "amount", `"-1.234"`), "amount", "more than 2 decimal places for USD"},
		{"decimals on JPY", "transaction", txWith("x", "amount", `"-1.5"`, "currency", `"JPY"`), "amount", "JPY has no minor unit"},
		{"exponent", "transaction", txWith("x", "amount", `"1e3"`), "amount", "not a decimal number"},
		{"unknown currency", "transaction", txWith("x", "currency", `"XYZ"`), "currency", `"XYZ" is not a known ISO 4217 currency code`},
		{"lower-case currency", "transaction", txWith("x", "currency", `"usd"`), "currency", "not a known ISO 4217"},
		{"unknown field", "transaction", txWith("x", "colour", `"red"`), "colour", "unknown field"},
		{"full card number field", "transaction", txWith("x", "card_number", `"4111111111111111"`), "card_number", "full card and account numbers are never accepted"},
		{"card number in the description", "transaction", txWith("x", "description", `"paid with 4111 1111 1111 1111"`), "description", "looks like a full card number"},
		{"card_last4 too long", "transaction", txWith("x", "card_last4", `"411111"`), "card_last4", "exactly 4 digits"},
		{"card number as the id", "transaction", txWith("4111111111111111"), "id", "looks like a full card number"},
		{"booked without booked_at", "transaction", txWith("x", "booked_at", "-"), "booked_at", "required when status is booked"},
		{"pending with booked_at", "transaction", txWith("x", "status", `"pending"`), "booked_at", "absent or null while pending"},
		{"booked before transacted", "transaction", txWith("x", "booked_at", `"2025-05-01T00:00:00Z"`), "booked_at", "before transacted_at"},
		{"not RFC 3339", "transaction", txWith("x", "transacted_at", `"2025-06-01"`), "transacted_at", "not an RFC 3339 date-time"},
		{"in the future", "transaction", txWith("x", "transacted_at", `"2026-01-01T00:00:00Z"`, "booked_at", `"2026-01-02T00:00:00Z"`), "transacted_at", "in the future"},
		{"unknown status", "transaction", txWith("x", "status", `"settled"`), "status", `"settled" is not one of booked, pending`},
		{"missing id", "transaction", txWith("x", "id", "-"), "id", "required"},
		{"reversal with an amount", "transaction", `{"id":"x","account_id":"a1","reversed":true,"amount":"1.00"}`, "amount", "a reversal carries only id"},
		{"reversed not a boolean", "transaction", `{"id":"x","account_id":"a1","reversed":"yes"}`, "reversed", "want true or false"},
		{"record_type of another endpoint", "transaction", `{"record_type":"account","id":"x","account_id":"a1"}`, "record_type", "this endpoint takes transaction records"},
		{"not an object", "transaction", `["x"]`, "", "a record must be a JSON object"},
		{"negative credit limit", "balance", `{"account_id":"a1","currency":"USD","current":"1.00","available":"1.00","credit_limit":"-5.00","as_of":"2025-06-01T00:00:00Z"}`, "credit_limit", "must not be negative"},
		{"balance without as_of", "balance", `{"account_id":"a1","currency":"USD","current":"1.00","available":"1.00"}`, "as_of", "required"},
		{"last4 of five digits", "account", `{"id":"a","customer_id":"c","type":"checking","display_name":"A","last4":"12345","currency":"EUR"}`, "last4", "exactly 4 digits"},
		{"account of another institution", "account", `{"id":"a","customer_id":"c","institution_id":"bank-b","type":"checking","display_name":"A","last4":"1234","currency":"EUR"}`, "institution_id", `institution "bank-b" is not yours`},
		{"account type", "account", `{"id":"a","customer_id":"c","type":"loan","display_name":"A","last4":"1234","currency":"EUR"}`, "type", "not one of checking, savings, credit_card"},
		{"account number field", "account", `{"id":"a","customer_id":"c","type":"checking","display_name":"A","last4":"1234","currency":"EUR","account_number":"DE89370400440532013000"}`, "account_number", "never accepted"},
		{"another institution's record", "institution", `{"id":"bank-b","name":"B"}`, "id", `institution "bank-b" is not yours`},
		{"customer without a name", "customer", `{"id":"c"}`, "display_name", "required"},
		{"control character", "customer", `{"id":"c","display_name":"a\u0000b"}`, "display_name", "control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := goodTx
			switch tt.kind {
			case "balance":
				good = `{"account_id":"a0","currency":"USD","current":"1.00","available":"1.00","as_of":"2025-06-01T00:00:00Z"}`
			case "account":
				good = `{"id":"a0","customer_id":"c","type":"checking","display_name":"A","last4":"1234","currency":"EUR"}`
			case "customer":
				good = `{"id":"c0","display_name":"C"}`
			case "institution":
				good = ""
			}
			records := tt.record
			index := 0
			if good != "" {
				records = good + "," + tt.record + "," + strings.NewReplacer(`"t1"`, `"t9"`, `"a0"`, `"a9"`, `"c0"`, `"c9"`).Replace(good)
				index = 1
			}
			_, err := s.ParseJSON("bank-a", Kind(tt.kind), []byte(`{"records":[`+records+`]}`), 0)
			var re *RecordsError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want *RecordsError", err)
			}
			if re.Total != 1 || len(re.Errors) != 1 {
				t.Fatalf("errors %+v, want exactly one", re.Errors)
			}
			fe := re.Errors[0]
			if fe.Index != index || fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
				t.Errorf("error %+v, want index %d field %q reason containing %q", fe, index, tt.field, tt.reason)
			}
		})
	}
}

func TestParseJSONDuplicatesAndMalformed(t *testing.T) {
	s := parseService()
	body := `{"records":[` + goodTx + `,` + txWith("t2") + `,` + goodTx + `]}`
	_, err := s.ParseJSON("bank-a", KindTransaction, []byte(body), 0)
	var re *RecordsError
	if !errors.As(err, &re) || len(re.Errors) != 1 || re.Errors[0].Index != 2 || re.Errors[0].Field != "id" ||
		!strings.Contains(re.Errors[0].Reason, "duplicate of record 0") {
		t.Fatalf("duplicate id: %v %+v", err, re)
	}

	// A syntax error inside record 1 names the record and the member being read.
	body = `{"records":[` + goodTx + `, {"id":"t2","amount": -12.3.4}]}`
	_, err = s.ParseJSON("bank-a", KindTransaction, []byte(body), 0)
	if !errors.As(err, &re) || len(re.Errors) != 1 || re.Errors[0].Index != 1 || re.Errors[0].Field != "amount" ||
		!strings.Contains(re.Errors[0].Reason, "malformed JSON") {
		t.Fatalf("malformed record: %v %+v", err, re)
	}
	// A body cut short.
	body = `{"records":[` + goodTx + `, {"id":"t2","amount":"-1`
	_, err = s.ParseJSON("bank-a", KindTransaction, []byte(body), 0)
	if !errors.As(err, &re) || re.Errors[0].Index != 1 || !strings.Contains(re.Errors[0].Reason, "malformed JSON") {
		t.Fatalf("truncated body: %v %+v", err, re)
	}
}

func TestParseJSONShape(t *testing.T) {
	s := parseService()
	for _, body := range []string{
		``, `not json`, `[]`, `{"records": {}}`, `{"records": null}`, `{"records": []}`, `{}`,
		`{"data": []}`, `{"records":[` + goodTx + `]} {}`, `{"records":[` + goodTx + `],"records":[]}`,
	} {
		_, err := s.ParseJSON("bank-a", KindTransaction, []byte(body), 0)
		if e := apperr.As(err); e.Code != apperr.InvalidRequest {
			t.Errorf("body %q: %v, want invalid_request", body, err)
		}
	}
	// One record over the limit is payload_too_large, however valid.
	records := strings.TrimSuffix(strings.Repeat(goodTx+",", 4), ",")
	_, err := s.ParseJSON("bank-a", KindTransaction, []byte(`{"records":[`+records+`]}`), 3)
	if e := apperr.As(err); e.Code != apperr.PayloadTooLarge {
		t.Errorf("4 records with a limit of 3: %v, want payload_too_large", err)
	}
}

func TestDerivedIDs(t *testing.T) {
	a, b := AccountID("bank-a", "1001"), AccountID("bank-b", "1001")
	if a == b || !strings.HasPrefix(a, "acc_") || len(a) != 30 {
		t.Errorf("AccountID: %q, %q", a, b)
	}
	if AccountID("bank-a", "1001") != a {
		t.Error("AccountID is not deterministic")
	}
	if TransactionID("bank-a", "1001") == a[4:] || CustomerID("bank-a", "x") == CustomerID("bank-ax", "") {
		t.Error("ids of different kinds or institutions meet")
	}
	if !ValidInstitutionID("inst_first_demo_bank") || ValidInstitutionID("a:b") || ValidInstitutionID("") {
		t.Error("ValidInstitutionID")
	}
}

// The reflection-free decoder agrees with encoding/json whenever it
// accepts a body.
func FuzzFastTransactions(f *testing.F) {
	f.Add([]byte(`{"records":[` + goodTx + `]}`))
	f.Add([]byte(`{"records":[` + goodTx + `,` + txWith("t2", "description", `"caf\u00e9 \"bar\" \\ ok"`, "booked_at", "null") + `]}`))
	f.Add([]byte(`{"records":[{"id":"x","account_id":"a","reversed":true}, {"record_type":"transaction","id":"é","account_id":"ü"}]}`))
	f.Add([]byte(`{"records":[{"record_type":"transaction","id":"x","booked_at":"2025-01-01T00:00:00Z","reversed":false}]}`))
	f.Add([]byte(` { "records" : [ { } ] } `))
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := fastTransactions(body)
		if !ok {
			return
		}
		var envelope struct {
			Records []TransactionRecord `json:"records"`
		}
		d := json.NewDecoder(bytes.NewReader(body))
		d.DisallowUnknownFields()
		if err := d.Decode(&envelope); err != nil {
			t.Fatalf("fast path accepted what encoding/json refuses (%v): %q", err, body)
		}
		if _, err := d.Token(); err != io.EOF {
			t.Fatalf("fast path accepted trailing data: %q", body)
		}
		if !reflect.DeepEqual(fast, envelope.Records) {
			t.Fatalf("fast path %+v, encoding/json %+v for %q", fast, envelope.Records, body)
		}
		// Each record alone, as a JSON Lines record, decodes the same way.
		for _, r := range fast {
			if r.RecordType != string(KindTransaction) {
				continue
			}
			line, _ := json.Marshal(r)
			got, fe := decodeLine(line)
			if fe != nil || !reflect.DeepEqual(got, &r) {
				t.Fatalf("line %s: %+v, %v", line, got, fe)
			}
		}
	})
}

// BenchmarkParseTransactions measures decoding and validating a batch of
// 5000 transactions, the Go side of the provider API's hot path.
func BenchmarkParseTransactions(b *testing.B) {
	var body strings.Builder
	body.WriteString(`{"records":[`)
	for j := range DefaultMaxRecords {
		if j > 0 {
			body.WriteByte(',')
		}
		body.WriteString(txWith(fmt.Sprintf("t%d", j), "description", `"Card purchase"`, "merchant_name", `"Merchant"`,
			"merchant_category_code", `"5411"`, "card_last4", `"4242"`))
	}
	body.WriteString(`]}`)
	s, raw := parseService(), []byte(body.String())
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := s.ParseJSON("bank-a", KindTransaction, raw, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*DefaultMaxRecords)/b.Elapsed().Seconds(), "records/s")
}

func TestCSVRows(t *testing.T) {
	if _, fe := csvHeader([]string{"record_type", "id", "pan"}); fe == nil || fe.Field != "pan" || !strings.Contains(fe.Reason, "never accepted") {
		t.Errorf("pan column: %+v", fe)
	}
	if _, fe := csvHeader([]string{"id", "display_name"}); fe == nil || fe.Field != "record_type" {
		t.Errorf("no record_type column: %+v", fe)
	}
	cols, fe := csvHeader([]string{"\ufeffrecord_type", "id", "display_name", "amount", "booked_at", "reversed"})
	if fe != nil {
		t.Fatal(fe)
	}
	if _, fe := decodeCSVRow(cols, []string{"customer", "c1", "Carol", "1.00", "", ""}); fe == nil || fe.Field != "amount" ||
		!strings.Contains(fe.Reason, "not a field of customer records") {
		t.Errorf("amount on a customer: %+v", fe)
	}
	if _, fe := decodeCSVRow(cols, []string{"transaction", "t1", "", "", "", "maybe"}); fe == nil || fe.Field != "reversed" {
		t.Errorf("reversed=maybe: %+v", fe)
	}
	rec, fe := decodeCSVRow(cols, []string{"transaction", "t1", "", "-1.00", "2025-01-01T00:00:00Z", "false"})
	if r, ok := rec.(*TransactionRecord); fe != nil || !ok || r.Amount != "-1.00" || r.BookedAt == nil || *r.BookedAt != "2025-01-01T00:00:00Z" {
		t.Errorf("transaction row: %+v %+v", rec, fe)
	}
}
