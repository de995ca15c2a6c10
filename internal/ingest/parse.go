package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/consentgate/consentgate/internal/apperr"
)

// ParseJSON parses and validates an API batch of kind for institutionID:
// the JSON object {"records": [...]} holding at most maxRecords records
// (0: DefaultMaxRecords). It returns:
//   - *RecordsError when some records are invalid (each named by index and
//     field; a syntax error inside a record names that record and, when it
//     can tell, the member being read);
//   - *apperr.E invalid_request when the body is not such an object;
//   - *apperr.E payload_too_large when it holds more than maxRecords.
func (s *Service) ParseJSON(institutionID string, kind Kind, body []byte, maxRecords int) (*Batch, error) {
	if maxRecords <= 0 {
		maxRecords = DefaultMaxRecords
	}
	if newRecord(kind) == nil {
		return nil, fmt.Errorf("ingest.ParseJSON: unknown kind %q", kind)
	}
	v := &validator{institutionID: institutionID, now: s.now()}
	if b, err, ok := parseFast(v, kind, body, maxRecords); ok {
		return b, err
	}
	b := newBatch(institutionID)
	var errs RecordsError
	dec := json.NewDecoder(bytes.NewReader(body))
	const shape = `The body must be a JSON object {"records": [...]}.`
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, apperr.Wrap(apperr.InvalidRequest, shape+" "+syntaxHint(err), err)
	}
	seen := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, apperr.Wrap(apperr.InvalidRequest, shape+" "+syntaxHint(err), err)
		}
		name, _ := tok.(string)
		if name != "records" {
			return nil, apperr.New(apperr.InvalidRequest, fmt.Sprintf("Unknown member %q. %s", name, shape))
		}
		if seen {
			return nil, apperr.New(apperr.InvalidRequest, `"records" is given twice. `+shape)
		}
		seen = true
		if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
			return nil, apperr.Wrap(apperr.InvalidRequest, `"records" must be an array. `+syntaxHint(err), err)
		}
		for i := 0; dec.More(); i++ {
			if i >= maxRecords {
				return nil, apperr.New(apperr.PayloadTooLarge,
					fmt.Sprintf("A batch holds at most %d records: split it into several requests.", maxRecords))
			}
			start := dec.InputOffset()
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				var se *json.SyntaxError
				if !errors.As(err, &se) && !errors.Is(err, io.ErrUnexpectedEOF) {
					return nil, apperr.Wrap(apperr.InvalidRequest, shape, err)
				}
				// The stream is broken here: nothing after it can be read.
				end := len(body)
				if se != nil {
					end = min(len(body), int(start+se.Offset)+1)
				}
				errs.add(FieldError{Index: i, Field: lastMember(body[min(int(start), end):end]), Reason: "malformed JSON: " + jsonMessage(err)})
				return nil, &errs
			}
			rec := newRecord(kind)
			if fe := decodeStrict(raw, rec); fe != nil {
				fe.Index = i
				errs.add(*fe)
				continue
			}
			if rt := recordType(rec); rt != "" && rt != string(kind) {
				errs.add(FieldError{Index: i, Field: "record_type", Reason: fmt.Sprintf("this endpoint takes %s records, not %q", kind, rt)})
				continue
			}
			if fe := v.add(b, pos{index: i}, rec); fe != nil {
				errs.add(*fe)
			}
		}
		if _, err := dec.Token(); err != nil { // ']'
			return nil, apperr.Wrap(apperr.InvalidRequest, shape+" "+syntaxHint(err), err)
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, apperr.Wrap(apperr.InvalidRequest, shape+" "+syntaxHint(err), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, apperr.New(apperr.InvalidRequest, "Unexpected data after the JSON object. "+shape)
	}
	if !errs.empty() {
		return nil, &errs
	}
	if !seen || b.Len() == 0 {
		return nil, apperr.New(apperr.InvalidRequest, `"records" is missing or empty: send 1 to `+strconv.Itoa(maxRecords)+" records.")
	}
	return b, nil
}

// parseFast decodes a well-formed batch in one pass. It gives up (ok false)
// on anything the record-by-record path must explain (malformed JSON, wrong
// types, unknown members, the wrong shape), so that every refusal still
// names its record and field.
func parseFast(v *validator, kind Kind, body []byte, maxRecords int) (b *Batch, err error, ok bool) {
	switch kind {
	case KindInstitution:
		return decodeAll[InstitutionRecord](v, body, maxRecords)
	case KindCustomer:
		return decodeAll[CustomerRecord](v, body, maxRecords)
	case KindAccount:
		return decodeAll[AccountRecord](v, body, maxRecords)
	case KindBalance:
		return decodeAll[BalanceRecord](v, body, maxRecords)
	case KindTransaction:
		if recs, ok := fastTransactions(body); ok {
			b, err := validateAll(v, recs, maxRecords)
			return b, err, true
		}
		return decodeAll[TransactionRecord](v, body, maxRecords)
	}
	return nil, nil, false
}

func decodeAll[T any](v *validator, body []byte, maxRecords int) (*Batch, error, bool) {
	var envelope struct {
		Records []T `json:"records"`
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&envelope); err != nil {
		return nil, nil, false
	}
	if _, err := d.Token(); err != io.EOF || len(envelope.Records) == 0 {
		return nil, nil, false
	}
	b, err := validateAll(v, envelope.Records, maxRecords)
	return b, err, true
}

// validateAll validates decoded records into a batch.
func validateAll[T any](v *validator, recs []T, maxRecords int) (*Batch, error) {
	if len(recs) > maxRecords {
		return nil, apperr.New(apperr.PayloadTooLarge,
			fmt.Sprintf("A batch holds at most %d records: split it into several requests.", maxRecords))
	}
	b := newBatch(v.institutionID)
	b.grow(len(recs))
	var errs RecordsError
	for i := range recs {
		rec := any(&recs[i])
		if rt := recordType(rec); rt != "" && rt != string(recordKind(rec)) {
			errs.add(FieldError{Index: i, Field: "record_type", Reason: fmt.Sprintf("this endpoint takes %s records, not %q", recordKind(rec), rt)})
			continue
		}
		if fe := v.add(b, pos{index: i}, rec); fe != nil {
			errs.add(*fe)
		}
	}
	if !errs.empty() {
		return nil, &errs
	}
	return b, nil
}

func recordKind(rec any) Kind {
	k, _ := recordKey(rec)
	return k
}

func syntaxHint(err error) string {
	if err == nil {
		return ""
	}
	return "(" + jsonMessage(err) + ")"
}

// jsonMessage is err's message without the "json: " prefix, with the byte
// offset of a syntax error.
func jsonMessage(err error) string {
	var se *json.SyntaxError
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "unexpected end of JSON input"
	}
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (byte %d of the record)", msg, se.Offset)
	}
	return msg
}

// recordType is the record_type member of a decoded record.
func recordType(rec any) string {
	switch r := rec.(type) {
	case *InstitutionRecord:
		return r.RecordType
	case *CustomerRecord:
		return r.RecordType
	case *AccountRecord:
		return r.RecordType
	case *BalanceRecord:
		return r.RecordType
	case *TransactionRecord:
		return r.RecordType
	}
	return ""
}

// decodeStrict decodes one JSON record into rec, refusing unknown members
// and values of the wrong type, and names the member at fault.
func decodeStrict(raw []byte, rec any) *FieldError {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return &FieldError{Reason: "a record must be a JSON object"}
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	err := d.Decode(rec)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return &FieldError{Field: te.Field, Reason: fmt.Sprintf("wrong type: want %s, got JSON %s", wantType(te.Type), te.Value)}
	case errors.As(err, &se):
		end := min(len(raw), int(se.Offset)+1)
		return &FieldError{Field: lastMember(raw[:end]), Reason: "malformed JSON: " + jsonMessage(err)}
	}
	if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
		name = strings.TrimSuffix(name, `"`)
		return &FieldError{Field: name, Reason: unknownFieldReason(name)}
	}
	return &FieldError{Reason: "malformed JSON: " + jsonMessage(err)}
}

func wantType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Pointer:
		return wantType(t.Elem()) + " or null"
	case reflect.Struct:
		return "an object"
	}
	return t.String()
}

// unknownFieldReason explains an unknown member; members that would carry
// a full card or account number get the rule spelled out.
func unknownFieldReason(name string) string {
	n := strings.ToLower(name)
	for _, w := range []string{"pan", "card_number", "cardnumber", "card_no", "account_number", "number"} {
		if n == w || strings.HasSuffix(n, "_"+w) {
			return "full card and account numbers are never accepted: send only the last four digits (last4, card_last4)"
		}
	}
	return "unknown field"
}

// lastMember finds the name of the last object member that starts in a
// fragment of JSON (the member a syntax error interrupted), or "".
func lastMember(b []byte) string {
	last := ""
	for i := 0; i < len(b); i++ {
		if b[i] != '"' {
			continue
		}
		j := i + 1
		for j < len(b) && b[j] != '"' {
			if b[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(b) {
			break
		}
		str := b[i+1 : j]
		k := j + 1
		for k < len(b) && (b[k] == ' ' || b[k] == '\t' || b[k] == '\r' || b[k] == '\n') {
			k++
		}
		if k < len(b) && b[k] == ':' {
			var name string
			if json.Unmarshal(b[i:j+1], &name) == nil {
				last = name
			} else {
				last = string(str)
			}
		}
		i = j
	}
	return last
}

// decodeLine decodes one JSON Lines record: an object whose record_type
// member says what it is.
func decodeLine(line []byte) (any, *FieldError) {
	if r, ok := fastTransactionLine(line); ok {
		return r, nil
	}
	var peek struct {
		RecordType *string `json:"record_type"`
	}
	if err := json.Unmarshal(line, &peek); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te) && te.Field == "record_type":
			return nil, &FieldError{Field: "record_type", Reason: "wrong type: want a string"}
		case errors.As(err, &se):
			end := min(len(line), int(se.Offset)+1)
			return nil, &FieldError{Field: lastMember(line[:end]), Reason: "malformed JSON: " + jsonMessage(err)}
		case errors.As(err, &te):
			return nil, &FieldError{Reason: "a record must be a JSON object"}
		}
		return nil, &FieldError{Reason: "malformed JSON: " + jsonMessage(err)}
	}
	if peek.RecordType == nil {
		return nil, &FieldError{Field: "record_type", Reason: "required: one of " + kindList()}
	}
	rec := newRecord(Kind(*peek.RecordType))
	if rec == nil {
		return nil, &FieldError{Field: "record_type", Reason: fmt.Sprintf("%q is not one of %s", *peek.RecordType, kindList())}
	}
	if fe := decodeStrict(line, rec); fe != nil {
		return nil, fe
	}
	return rec, nil
}

func kindList() string {
	var names []string
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}

// CSV. A file has a header row naming its columns: record_type and the
// record fields (the JSON member names). A row's empty cells are absent
// fields; a non-empty cell in a column its record type does not have is an
// error.

// csvFields maps each kind's field names to their struct field index.
var csvFields = func() map[Kind]map[string]int {
	out := map[Kind]map[string]int{}
	for _, k := range Kinds() {
		t := reflect.TypeOf(newRecord(k)).Elem()
		m := map[string]int{}
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			m[name] = i
		}
		out[k] = m
	}
	return out
}()

// csvHeader checks a header row and returns the column names.
func csvHeader(row []string) ([]string, *FieldError) {
	cols := make([]string, len(row))
	seen := map[string]bool{}
	hasType := false
	for i, c := range row {
		c = strings.TrimSpace(strings.TrimPrefix(c, "\ufeff"))
		known := false
		for _, fields := range csvFields {
			if _, ok := fields[c]; ok {
				known = true
			}
		}
		switch {
		case c == "":
			return nil, &FieldError{Reason: fmt.Sprintf("column %d of the header has no name", i+1)}
		case !known:
			return nil, &FieldError{Field: c, Reason: "unknown column: " + unknownFieldReason(c)}
		case seen[c]:
			return nil, &FieldError{Field: c, Reason: "column given twice"}
		}
		seen[c] = true
		hasType = hasType || c == "record_type"
		cols[i] = c
	}
	if !hasType {
		return nil, &FieldError{Field: "record_type", Reason: "the header needs a record_type column"}
	}
	return cols, nil
}

// decodeCSVRow builds the record of one data row.
func decodeCSVRow(cols, row []string) (any, *FieldError) {
	if len(row) != len(cols) {
		return nil, &FieldError{Reason: fmt.Sprintf("%d cells, the header has %d", len(row), len(cols))}
	}
	var kind Kind
	for i, c := range cols {
		if c == "record_type" {
			kind = Kind(row[i])
		}
	}
	rec := newRecord(kind)
	if rec == nil {
		if kind == "" {
			return nil, &FieldError{Field: "record_type", Reason: "required: one of " + kindList()}
		}
		return nil, &FieldError{Field: "record_type", Reason: fmt.Sprintf("%q is not one of %s", kind, kindList())}
	}
	fields := csvFields[kind]
	v := reflect.ValueOf(rec).Elem()
	for i, c := range cols {
		cell := row[i]
		if cell == "" {
			continue
		}
		idx, ok := fields[c]
		if !ok {
			return nil, &FieldError{Field: c, Reason: fmt.Sprintf("not a field of %s records: leave it empty", kind)}
		}
		f := v.Field(idx)
		switch f.Kind() {
		case reflect.String:
			f.SetString(cell)
		case reflect.Pointer:
			s := cell
			f.Set(reflect.ValueOf(&s))
		case reflect.Bool:
			b, err := strconv.ParseBool(cell)
			if err != nil {
				return nil, &FieldError{Field: c, Reason: fmt.Sprintf("%q is not true or false", cell)}
			}
			f.SetBool(b)
		}
	}
	return rec, nil
}
