package ingest

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/consentgate/consentgate/internal/apperr"
)

// Fuzz targets for what data providers send: API batches, JSON Lines and
// CSV import files. Each checks the contract of its parser: a batch is
// accepted whole (and then holds nothing that looks like a card number) or
// refused with each bad record named by index and field; an import line
// decodes to the record a JSON Lines writer would read back.

// FuzzParseJSON: any body is a batch of 1 to maxRecords records free of
// full card numbers, or *RecordsError naming records in order, or an
// invalid_request / payload_too_large problem.
func FuzzParseJSON(f *testing.F) {
	f.Add(uint8(4), []byte(`{"records":[`+goodTx+`]}`))
	f.Add(uint8(4), []byte(`{"records":[`+txWith("t2", "description", `"card 4111 1111 1111 1111"`)+`]}`))
	f.Add(uint8(4), []byte(`{"records":[`+goodTx+`,`+goodTx+`]}`))
	f.Add(uint8(4), []byte(`{"records":[{"id":1}], "records":[]}`))
	f.Add(uint8(0), []byte(`{"records":[{"record_type":"institution","id":"bank-a","name":"Bank A"}]}`))
	f.Add(uint8(1), []byte(`{"records":[{"id":"c1","display_name":"Carol\u0000"}]}`))
	f.Add(uint8(2), []byte(`{"records":[{"id":"a1","customer_id":"c1","type":"credit_card","display_name":"Card","last4":"4242","currency":"USD"}]}`))
	f.Add(uint8(3), []byte(`{"records":[{"account_id":"a1","currency":"USD","current":"1e400","as_of":"2025-06-30T00:00:00Z"}]}`))
	f.Add(uint8(4), []byte(`{"records":[{"id":"t","amount":"-0.001"}`))
	f.Add(uint8(4), []byte("{\"records\":[\xff]}"))
	f.Add(uint8(4), []byte(`[]`))
	const maxRecords = 20
	s := parseService()
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		k := Kinds()[int(kind)%len(Kinds())]
		b, err := s.ParseJSON("bank-a", k, body, maxRecords)
		var re *RecordsError
		switch {
		case err == nil:
			if b == nil || b.Len() < 1 || b.Len() > maxRecords {
				t.Fatalf("accepted batch of %d records", b.Len())
			}
			walkStrings(reflect.ValueOf(b).Elem(), func(s string) {
				if looksLikePAN(s) || !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
					t.Fatalf("accepted batch holds %q", s)
				}
			})
		case errors.As(err, &re):
			if re.Total < 1 || len(re.Errors) < 1 || len(re.Errors) > MaxListedErrors || re.Total < len(re.Errors) {
				t.Fatalf("records error %+v", re)
			}
			for i, fe := range re.Errors {
				if fe.Reason == "" || fe.Index < 0 || fe.Index >= maxRecords || (i > 0 && fe.Index <= re.Errors[i-1].Index) {
					t.Fatalf("record errors not one per record, in order, with reasons: %+v", re.Errors)
				}
			}
		default:
			var ae *apperr.E
			if !errors.As(err, &ae) || (ae.Code != apperr.InvalidRequest && ae.Code != apperr.PayloadTooLarge) || ae.Msg == "" {
				t.Fatalf("undocumented error %v", err)
			}
		}
	})
}

// walkStrings calls fn with every string held in v, exported or not.
func walkStrings(v reflect.Value, fn func(string)) {
	switch v.Kind() {
	case reflect.String:
		fn(v.String())
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkStrings(v.Elem(), fn)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			walkStrings(v.Field(i), fn)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkStrings(v.Index(i), fn)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			walkStrings(it.Key(), fn)
			walkStrings(it.Value(), fn)
		}
	}
}

// FuzzImportJSONLine: a JSON Lines record decodes to a record of a known
// type that encodes and decodes back to itself, or is refused with a
// reason (and, for a field's fault, the field's name).
func FuzzImportJSONLine(f *testing.F) {
	for _, s := range []string{
		`{"record_type":"institution","id":"bank-a","name":"Bank A"}`,
		`{"record_type":"customer","id":"c1","display_name":5}`,
		`{"record_type":"transaction","id":"t1","account_id":"a1","status":"pending","transacted_at":"2025-06-28T10:00:00Z","amount":"-1.23","currency":"USD"}`,
		`{"record_type":"transaction","id":"t1","reversed":true,"booked_at":null}`,
		`{"record_type":"payment","id":"p1"}`, `{"id":"x"}`, `[1,2]`, `{"record_type":7}`, `{"record_type":"account","pan":"4111111111111111"}`,
		`{"record_type":"account","id":"a","id":"b"}`, "{\"record_type\":\"customer\",\"display_name\":\"\xff\"}", `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		rec, fe := decodeLine(line)
		if fe != nil {
			if rec != nil || fe.Reason == "" {
				t.Fatalf("line %q: record %+v with error %+v", line, rec, fe)
			}
			return
		}
		if !slices.Contains(Kinds(), recordKind(rec)) {
			t.Fatalf("line %q decoded to %T", line, rec)
		}
		again, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		back, fe := decodeLine(again)
		if fe != nil || !reflect.DeepEqual(back, rec) {
			t.Fatalf("line %q → %+v → %s → %+v (%v)", line, rec, again, back, fe)
		}
	})
}

// FuzzImportCSV: a CSV file's header is accepted only with known columns,
// each once, record_type among them, and a refused header names the column
// (by name, or by position when it has none); every data row either decodes to a
// record of its record_type that the JSON Lines importer reads the same
// way, or is refused naming a column of the header (or none).
func FuzzImportCSV(f *testing.F) {
	for _, s := range []string{
		"record_type,id,name\ninstitution,bank-a,Bank A\n",
		"record_type,id,display_name,customer_id,type,last4,currency\ncustomer,c1,Carol,,,,\naccount,a1,Card,c1,credit_card,4242,USD\n",
		"record_type,id,amount,reversed\ntransaction,t1,-1.00,maybe\n",
		"\ufeffrecord_type,id\ncustomer,c1\n", "id,pan\n1,4111111111111111\n", "record_type,id,id\n",
		"record_type,id\n\"unterminated\n", "record_type,id,display_name\ncustomer,c1\n", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := csv.NewReader(bytes.NewReader(data))
		cr.FieldsPerRecord = -1
		header, err := cr.Read()
		if err != nil {
			return // the importer reports the line; nothing to decode
		}
		cols, fe := csvHeader(header)
		if fe != nil {
			if fe.Field == "" && !strings.HasPrefix(fe.Reason, "column ") {
				t.Fatalf("header %q refused without naming the column: %+v", header, fe)
			}
			return
		}
		for {
			row, err := cr.Read()
			if err == io.EOF || err != nil {
				return
			}
			rec, fe := decodeCSVRow(cols, row)
			if fe != nil {
				if rec != nil || fe.Reason == "" || (fe.Field != "" && !slices.Contains(cols, fe.Field)) {
					t.Fatalf("row %q (header %q): %+v %+v", row, cols, rec, fe)
				}
				continue
			}
			typ := row[slices.Index(cols, "record_type")]
			if string(recordKind(rec)) != typ {
				t.Fatalf("row %q decoded to %T", row, rec)
			}
			if !utf8.Valid(data) {
				continue // JSON would replace the invalid bytes; the validator refuses them
			}
			line, _ := json.Marshal(rec)
			back, fe := decodeLine(line)
			if fe != nil || !reflect.DeepEqual(back, rec) {
				t.Fatalf("row %q → %+v, but its JSON line %s → %+v (%v)", row, rec, line, back, fe)
			}
		}
	})
}
