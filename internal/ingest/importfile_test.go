package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// The same records as JSON Lines and as CSV give the same data; a file
// books and reverses transactions it created earlier.
func TestImportFile(t *testing.T) {
	for _, format := range []string{FormatJSONL, FormatCSV} {
		t.Run(format, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *store.DB) {
				svc := NewService(db, func() time.Time { return testNow })
				open := func() *os.File {
					f, err := os.Open("testdata/import." + format)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { f.Close() })
					return f
				}
				var progress bytes.Buffer
				// No --institution: the file's first record names it.
				st, err := ImportFile(context.Background(), svc, "", format, open(), &progress)
				if err != nil {
					t.Fatal(err)
				}
				want := Stats{Records: 9, Created: 7, Updated: 1, Reversed: 1, Lines: st.Lines}
				if st != want || st.Lines < 10 {
					t.Errorf("stats %+v, want %+v", st, want)
				}
				if !strings.Contains(progress.String(), "9 records written") {
					t.Errorf("progress %q", progress.String())
				}
				acc := accounts.NewSQLStore(db)
				txs, _, err := acc.Transactions(context.Background(), accounts.TxQuery{AccountID: AccountID("bank-a", "a1"),
					From: testNow.AddDate(0, -1, 0), To: testNow, Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				if len(txs) != 2 || txs[0].ID != TransactionID("bank-a", "t1") || txs[0].Status != accounts.StatusBooked ||
					txs[0].Amount != -2200 || txs[0].Description != "Coffee + tip" || txs[1].Amount != -10050 {
					t.Errorf("transactions %+v", txs)
				}
				// Again, with the institution given: nothing changes (the
				// pending copies of t1 and t3 are late, so they are no-ops).
				st, err = ImportFile(context.Background(), svc, "bank-a", format, open(), nil)
				if err != nil {
					t.Fatal(err)
				}
				if want := (Stats{Records: 9, Unchanged: 9, Lines: st.Lines}); st != want {
					t.Errorf("second import: %+v, want %+v", st, want)
				}
			})
		})
	}
}

// Bad lines are reported by line number, and nothing of their chunk is
// written.
func TestImportFileBadLines(t *testing.T) {
	tests := []struct {
		file  string
		lines []string // "line N: field: reason" prefixes, in order
	}{
		{"bad.jsonl", []string{
			"line 2: display_name: wrong type",
			"line 3: amount: more than 2 decimal places for USD",
			"line 4: id: malformed JSON", // the member whose value is missing
			"line 5: record_type: \"widget\" is not one of",
			"line 7: currency: \"XYZ\" is not a known ISO 4217 currency code",
		}},
		{"bad.csv", []string{
			"line 3: last4: must be exactly 4 digits",
			"line 4: display_name: required",
			"line 5: 8 cells, the header has 7",
			"line 6: id: looks like a full card number",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *store.DB) {
				f := newFixture(t, db)
				in, err := os.Open("testdata/" + tt.file)
				if err != nil {
					t.Fatal(err)
				}
				defer in.Close()
				format := tt.file[strings.IndexByte(tt.file, '.')+1:]
				_, err = ImportFile(context.Background(), f.svc, "bank-a", format, in, nil)
				var ie *ImportError
				var re *RecordsError
				if !errors.As(err, &ie) || !errors.As(err, &re) {
					t.Fatalf("err = %v, want *ImportError with records", err)
				}
				if len(re.Errors) != len(tt.lines) {
					t.Fatalf("errors:\n%v\nwant %d", err, len(tt.lines))
				}
				for i, want := range tt.lines {
					if got := re.Errors[i].String(); !strings.HasPrefix(got, want) {
						t.Errorf("error %d = %q, want prefix %q", i, got, want)
					}
				}
				if !strings.Contains(err.Error(), "nothing was written") || f.count(t, "customers") != 0 {
					t.Errorf("something was written: %v", err)
				}
			})
		})
	}
}

// A long file goes in chunks; a problem in a later chunk keeps the chunks
// before it and says so; an unknown account is named by its line.
func TestImportFileChunks(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		defer func(n int) { importChunk = n }(importChunk)
		importChunk = 100
		var b strings.Builder
		b.WriteString(`{"record_type":"customer","id":"c1","display_name":"Carol"}` + "\n")
		b.WriteString(`{"record_type":"account","id":"a1","customer_id":"c1","type":"checking","display_name":"C","last4":"1234","currency":"EUR"}` + "\n")
		for i := range 1000 {
			fmt.Fprintf(&b, `{"record_type":"transaction","id":"t%d","account_id":"a1","status":"booked","transacted_at":"2025-06-01T10:00:00Z","booked_at":"2025-06-01T10:00:00Z","amount":"-%d.00","currency":"EUR"}`+"\n", i, i)
		}
		good := b.String()
		st, err := ImportFile(context.Background(), f.svc, "bank-a", FormatJSONL, strings.NewReader(good), nil)
		if err != nil || st.Records != 1002 || st.Created != 1002 || st.Lines != 1002 {
			t.Fatalf("import: %+v, %v", st, err)
		}
		bad := good + `{"record_type":"transaction","id":"x1","account_id":"a1","status":"pending","transacted_at":"2025-06-01T10:00:00Z","amount":"-1.00","currency":"EUR"}` + "\n" +
			`{"record_type":"transaction","id":"x2","account_id":"nope","status":"pending","transacted_at":"2025-06-01T10:00:00Z","amount":"-1.00","currency":"EUR"}` + "\n"
		st, err = ImportFile(context.Background(), f.svc, "bank-a", FormatJSONL, strings.NewReader(bad), nil)
		var ie *ImportError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), `line 1004: account_id: unknown account "nope"`) {
			t.Fatalf("err = %v", err)
		}
		if ie.CommittedLines != 1000 || st.Unchanged != 1000 {
			t.Errorf("committed through line %d with %+v; want line 1000 (the first ten chunks)", ie.CommittedLines, st)
		}
		if n := f.count(t, "transactions"); n != 1000 {
			t.Errorf("%d transactions, want 1000 (x1 shares the refused chunk)", n)
		}
	})
}

func TestImportFileNeedsInstitution(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		in := `{"record_type":"customer","id":"c1","display_name":"Carol"}` + "\n" + `{"record_type":"customer","id":"c2","display_name":"Dan"}` + "\n"
		_, err := ImportFile(context.Background(), f.svc, "", FormatJSONL, strings.NewReader(in), nil)
		var re *RecordsError
		if !errors.As(err, &re) || re.Total != 1 || !strings.HasPrefix(re.Errors[0].String(), "line 1: record_type: the first record must be an institution record") {
			t.Errorf("err = %v", err)
		}
		// A given institution that does not exist, and no institution record.
		_, err = ImportFile(context.Background(), f.svc, "bank-z", FormatJSONL, strings.NewReader(in), nil)
		if !errors.Is(err, ErrUnknownInstitution) {
			t.Errorf("err = %v, want ErrUnknownInstitution", err)
		}
		if _, err := ImportFile(context.Background(), f.svc, "bank-a", "xml", strings.NewReader(in), nil); err == nil {
			t.Error("unknown format accepted")
		}
	})
}
