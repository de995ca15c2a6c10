package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/accounts"
)

// legacyTxView is the transaction view the page was rendered through with
// encoding/json before txjson.go, kept here as the reference the writer must
// match byte for byte. It is a copy on purpose: were transactionView in
// data.go changed, these tests must still say what the API used to send.
type legacyTxView struct {
	TransactionID        string  `json:"transaction_id"`
	AccountID            string  `json:"account_id"`
	Status               string  `json:"status"`
	TransactedAt         string  `json:"transacted_at"`
	BookedAt             *string `json:"booked_at"`
	Amount               string  `json:"amount"`
	Currency             string  `json:"currency"`
	Description          string  `json:"description"`
	MerchantName         *string `json:"merchant_name"`
	MerchantCategoryCode *string `json:"merchant_category_code"`
	CardLast4            *string `json:"card_last4"`
}

type legacyTxPage struct {
	Data       []legacyTxView `json:"data"`
	NextCursor *string        `json:"next_cursor"`
}

// legacyPage is listTransactions' rendering before txjson.go: the view
// built as it was, then json.Marshal as gin's c.JSON calls it.
func legacyPage(txs []accounts.Transaction, nextCursor *string) legacyTxPage {
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	orNil := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	out := legacyTxPage{Data: make([]legacyTxView, len(txs))}
	for i, t := range txs {
		out.Data[i] = legacyTxView{
			TransactionID: t.ID, AccountID: t.AccountID, Status: t.Status, TransactedAt: stamp(t.TransactedAt),
			Amount: accounts.FormatMinor(t.Amount, t.Currency), Currency: t.Currency, Description: t.Description,
			MerchantName: orNil(t.MerchantName), MerchantCategoryCode: orNil(t.MCC), CardLast4: orNil(t.CardLast4),
		}
		if t.Status == accounts.StatusBooked && t.BookedAt != nil {
			s := stamp(*t.BookedAt)
			out.Data[i].BookedAt = &s
		}
	}
	if nextCursor != nil {
		s := *nextCursor
		out.NextCursor = &s
	}
	return out
}

func legacyJSON(t testing.TB, txs []accounts.Transaction, nextCursor *string) []byte {
	t.Helper()
	b, err := json.Marshal(legacyPage(txs, nextCursor))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameAsLegacy fails t unless the writer's bytes are encoding/json's.
func sameAsLegacy(t testing.TB, txs []accounts.Transaction, nextCursor *string) {
	t.Helper()
	want := legacyJSON(t, txs, nextCursor)
	// A non-empty dst shows that the writer appends and leaves dst alone.
	got := AppendTransactionPage([]byte("prefix"), txs, nextCursor)
	if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len("prefix"):], want) {
		t.Fatalf("writer and encoding/json differ\n got: %q\nwant: %q", got, want)
	}
}

func ptr[T any](v T) *T { return &v }

// A booked card transaction with every field set.
func sampleTx() accounts.Transaction {
	at := time.Date(2026, 3, 12, 9, 30, 15, 123456000, time.UTC)
	return accounts.Transaction{
		ID: "txn_01HZX3", AccountID: "acc_1", Status: accounts.StatusBooked, TransactedAt: at,
		BookedAt: ptr(at.Add(26 * time.Hour)), Amount: -1299, Currency: "EUR",
		Description: "CARD PAYMENT TO TESCO STORES 3297", MerchantName: "Tesco", MCC: "5411", CardLast4: "4242",
	}
}

func TestTransactionPageEmpty(t *testing.T) {
	const want = `{"data":[],"next_cursor":null}`
	for _, txs := range [][]accounts.Transaction{nil, {}} {
		if got := string(AppendTransactionPage(nil, txs, nil)); got != want {
			t.Errorf("empty page %#v: %s, want %s", txs, got, want)
		}
		// encoding/json said the same: make(…, 0) is [], never null.
		if got := string(legacyJSON(t, txs, nil)); got != want {
			t.Errorf("encoding/json empty page %#v: %s, want %s", txs, got, want)
		}
	}
}

func TestTransactionPageMatchesEncodingJSON(t *testing.T) {
	with := func(edit func(*accounts.Transaction)) accounts.Transaction {
		tx := sampleTx()
		edit(&tx)
		return tx
	}
	pending := with(func(tx *accounts.Transaction) { tx.Status, tx.BookedAt = accounts.StatusPending, nil })
	tests := []struct {
		name   string
		txs    []accounts.Transaction
		cursor *string
	}{
		{"booked card payment", []accounts.Transaction{sampleTx()}, nil},
		{"pending without booked_at", []accounts.Transaction{pending}, nil},
		{"pending with a booked_at is rendered without it", []accounts.Transaction{
			with(func(tx *accounts.Transaction) { tx.Status = accounts.StatusPending })}, nil},
		{"booked without a booked_at", []accounts.Transaction{with(func(tx *accounts.Transaction) { tx.BookedAt = nil })}, nil},
		{"not a card: nulls", []accounts.Transaction{with(func(tx *accounts.Transaction) {
			tx.MerchantName, tx.MCC, tx.CardLast4, tx.Description = "", "", "", "SEPA transfer"
		})}, nil},
		{"empty strings everywhere", []accounts.Transaction{{}}, nil},
		{"quotes and backslashes", []accounts.Transaction{with(func(tx *accounts.Transaction) {
			tx.Description, tx.MerchantName = `say "hi" \ C:\path\`, `"`
		})}, nil},
		{"html characters", []accounts.Transaction{with(func(tx *accounts.Transaction) {
			tx.Description, tx.MerchantName, tx.ID = "<script>alert(1)</script> & more", "A&B", "<>&"
		})}, nil},
		{"control characters", []accounts.Transaction{with(func(tx *accounts.Transaction) {
			tx.Description = "a\x00b\x01c\bd\fe\nf\rg\th\x1fi\x7fj"
			tx.MerchantName = "\u0080\u009f"
		})}, nil},
		{"invalid UTF-8", []accounts.Transaction{with(func(tx *accounts.Transaction) {
			tx.Description, tx.MerchantName, tx.CardLast4 = "ok\xffnot\xc3", "\xe2\x80", "\xed\xa0\x80" // a lone surrogate
		})}, nil},
		{"line and paragraph separators", []accounts.Transaction{with(func(tx *accounts.Transaction) {
			tx.Description = "one\u2028two\u2029three\u2027\u202a"
		})}, nil},
		{"non-ASCII and emoji", []accounts.Transaction{with(func(tx *accounts.Transaction) {
			tx.Description, tx.MerchantName = "Café Müller – 東京 💳👍🏽", "Zürich Hbf €"
		})}, nil},
		{"zero amount", []accounts.Transaction{with(func(tx *accounts.Transaction) { tx.Amount = 0 })}, nil},
		{"positive amount under one unit", []accounts.Transaction{with(func(tx *accounts.Transaction) { tx.Amount = 7 })}, nil},
		{"largest amounts", []accounts.Transaction{
			with(func(tx *accounts.Transaction) { tx.Amount = math.MaxInt64 }),
			with(func(tx *accounts.Transaction) { tx.Amount = math.MinInt64 }),
		}, nil},
		{"currencies with 0, 2, 3 and 4 decimals", []accounts.Transaction{
			with(func(tx *accounts.Transaction) { tx.Amount, tx.Currency = -123456, "JPY" }),
			with(func(tx *accounts.Transaction) { tx.Amount, tx.Currency = 5, "KWD" }),
			with(func(tx *accounts.Transaction) { tx.Amount, tx.Currency = -1000, "BHD" }),
			with(func(tx *accounts.Transaction) { tx.Amount, tx.Currency = 12345, "CLF" }),
			with(func(tx *accounts.Transaction) { tx.Amount, tx.Currency = 100, "XYZ" }),
			with(func(tx *accounts.Transaction) { tx.Amount, tx.Currency = 100, "" }),
		}, nil},
		{"times: whole seconds, zones, far years", []accounts.Transaction{
			with(func(tx *accounts.Transaction) { tx.TransactedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }),
			with(func(tx *accounts.Transaction) {
				tx.TransactedAt = time.Date(2026, 6, 1, 23, 59, 59, 1, time.FixedZone("CEST", 2*3600))
			}),
			with(func(tx *accounts.Transaction) { tx.TransactedAt, tx.BookedAt = time.Time{}, ptr(time.Unix(1<<40, 0)) }),
			with(func(tx *accounts.Transaction) { tx.TransactedAt = time.Date(-5, 2, 3, 4, 5, 6, 7, time.UTC) }),
		}, nil},
		{"a cursor", []accounts.Transaction{sampleTx(), pending}, ptr("AQyZ3d-_x0")},
		{"an empty page with a cursor", nil, ptr("")},
		{"a cursor that needs escaping", []accounts.Transaction{sampleTx()}, ptr("a\"b<c>\u2028\xff")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { sameAsLegacy(t, tt.txs, tt.cursor) })
	}
}

// A page of many transactions, as a full 500-row answer is written.
func TestTransactionPageMatchesEncodingJSONForAFullPage(t *testing.T) {
	sameAsLegacy(t, benchPage(maxTxLimit), ptr("next"))
}

// Every single byte and a run of runes around the special cases: the
// escaping is encoding/json's, character by character.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	check := func(s string) {
		t.Helper()
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
	for b := range 256 {
		check(string([]byte{byte(b)}))
		check("x" + string([]byte{byte(b)}) + "y")
	}
	for r := rune(0x7f); r < 0x800; r++ {
		check(string(r))
	}
	for r := rune(0x2000); r < 0x2100; r++ {
		check(string(r))
	}
	for _, s := range []string{"", "plain", "\U0001F600", "\xf0\x9f\x98", "\xef\xbf\xbd", "\uFFFD\uFEFF", strings.Repeat("<&>", 100)} {
		check(s)
	}
}

// Through gin, the writer answers as c.JSON answered: status, headers and
// body.
func TestWriteTransactionPageAnswersAsGinJSON(t *testing.T) {
	gin.SetMode(gin.TestMode)
	txs := []accounts.Transaction{sampleTx(), sampleTx()}
	txs[1].Description = "<&> \u2028"
	cursor := ptr("AQ")

	oldRec := httptest.NewRecorder()
	oldCtx, _ := gin.CreateTestContext(oldRec)
	oldCtx.JSON(http.StatusOK, legacyPage(txs, cursor))

	newRec := httptest.NewRecorder()
	newCtx, _ := gin.CreateTestContext(newRec)
	WriteTransactionPage(newCtx, txs, cursor)

	if newRec.Code != oldRec.Code {
		t.Errorf("status %d, c.JSON gave %d", newRec.Code, oldRec.Code)
	}
	if got, want := fmt.Sprint(newRec.Header()), fmt.Sprint(oldRec.Header()); got != want {
		t.Errorf("headers %s, c.JSON gave %s", got, want)
	}
	if !bytes.Equal(newRec.Body.Bytes(), oldRec.Body.Bytes()) {
		t.Errorf("body\n got: %s\nwant: %s", newRec.Body.Bytes(), oldRec.Body.Bytes())
	}
	if len(newCtx.Errors) != 0 || newCtx.IsAborted() {
		t.Errorf("errors %v, aborted %v", newCtx.Errors, newCtx.IsAborted())
	}

	// A Content-Type set before is kept, as c.JSON keeps it.
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	c.Header("Content-Type", "application/vnd.test+json")
	WriteTransactionPage(c, nil, nil)
	if got := rec.Header().Get("Content-Type"); got != "application/vnd.test+json" {
		t.Errorf("Content-Type %q replaced", got)
	}
	if got := rec.Body.String(); got != `{"data":[],"next_cursor":null}` {
		t.Errorf("empty page %s", got)
	}
}

// A pooled buffer handed out again does not change an answer already
// written: the bytes were copied out before the buffer went back.
func TestWriteTransactionPageReusesBuffersSafely(t *testing.T) {
	gin.SetMode(gin.TestMode)
	var bodies [][]byte
	var wants [][]byte
	for i := range 20 {
		txs := benchPage(i * 7)
		rec := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(rec)
		WriteTransactionPage(c, txs, nil)
		bodies = append(bodies, rec.Body.Bytes())
		wants = append(wants, legacyJSON(t, txs, nil))
	}
	for i := range bodies {
		if !bytes.Equal(bodies[i], wants[i]) {
			t.Fatalf("page %d changed after later pages were written", i)
		}
	}
}

// FuzzTransactionPageJSON: for any text, amount, currency and times, the
// writer's page is byte for byte encoding/json's rendering of the old view.
func FuzzTransactionPageJSON(f *testing.F) {
	f.Add("txn_1", "booked", "CARD PAYMENT", "Tesco", "5411", "4242", "EUR", int64(-1299), int64(1773307815), int64(123456000), true, int64(86400), "AQ", true)
	f.Add("", "pending", "", "", "", "", "", int64(0), int64(0), int64(0), false, int64(0), "", false)
	f.Add("<&>", "booked", "say \"hi\" \\ \x00\x1f\x7f", "\xff\xc3", "\u2028", "\u2029", "JPY", int64(math.MinInt64), int64(-62135596800), int64(1), true, int64(-1), "\"<", true)
	f.Add("id", "booked", "Café 💳 東京", "Zürich €", "\xed\xa0\x80", "12", "KWD", int64(math.MaxInt64), int64(1<<40), int64(999999999), true, int64(1<<35), "x", false)
	f.Add("id", "Booked", "d", "m", "c", "l", "CLF", int64(5), int64(-1<<40), int64(-5), true, int64(3), "", true)
	f.Fuzz(func(t *testing.T, id, status, desc, merchant, mcc, card, currency string, amount, sec, nsec int64,
		booked bool, bookedAfter int64, cursor string, hasCursor bool) {
		tx := accounts.Transaction{
			ID: id, AccountID: id + "/acc", Status: status, TransactedAt: time.Unix(sec, nsec),
			Amount: amount, Currency: currency, Description: desc, MerchantName: merchant, MCC: mcc, CardLast4: card,
		}
		if booked {
			tx.BookedAt = ptr(tx.TransactedAt.Add(time.Duration(bookedAfter)))
		}
		var next *string
		if hasCursor {
			next = &cursor
		}
		second := tx
		second.Status, second.Description, second.MerchantName = accounts.StatusBooked, merchant, desc
		sameAsLegacy(t, []accounts.Transaction{tx, second}, next)
	})
}

// benchPage is a page of n transactions as a bank sends them: mostly card
// payments with merchants, some transfers without, a few pending, some
// descriptions beyond ASCII.
func benchPage(n int) []accounts.Transaction {
	txs := make([]accounts.Transaction, n)
	at := time.Date(2026, 11, 20, 18, 4, 5, 123456000, time.UTC)
	for i := range txs {
		tx := accounts.Transaction{
			ID: fmt.Sprintf("txn_01JD%08d", i), AccountID: "acc_01JC4Z8Q2M", Status: accounts.StatusBooked,
			TransactedAt: at.Add(-time.Duration(i) * 97 * time.Minute), Amount: int64(-(i*7919)%250000 - 1), Currency: "EUR",
			Description: fmt.Sprintf("CARD PAYMENT TO MERCHANT %d ON 20/11", i), MerchantName: "Merchant " + fmt.Sprint(i%40),
			MCC: "5411", CardLast4: "4242",
		}
		booked := tx.TransactedAt.Add(25 * time.Hour)
		tx.BookedAt = &booked
		switch {
		case i%10 == 0:
			tx.Status, tx.BookedAt = accounts.StatusPending, nil
		case i%7 == 0:
			tx.Description, tx.MerchantName, tx.MCC, tx.CardLast4 = "SEPA CREDIT TRANSFER Salary", "", "", ""
			tx.Amount = 350000
		case i%5 == 0:
			tx.Description, tx.MerchantName = "Café Müller – Zürich", "Café Müller"
		}
		txs[i] = tx
	}
	return txs
}

// BenchmarkTransactionPageJSON compares the rendering of a page of 100
// transactions through the old view and json.Marshal (what c.JSON did) with
// the writer appending into a reused buffer (what the pool gives it).
func BenchmarkTransactionPageJSON(b *testing.B) {
	txs := benchPage(100)
	cursor := ptr("AQyZ3d-_x0AQyZ3d-_x0")
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(legacyPage(txs, cursor)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("writer", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = AppendTransactionPage(buf[:0], txs, cursor)
		}
		b.SetBytes(int64(len(buf)))
	})
}
