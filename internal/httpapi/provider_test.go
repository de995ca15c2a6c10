package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/httpapi/openapitest"
	"github.com/consentgate/consentgate/internal/ingest"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// providerEnv is the provider API on a fresh database: institutions bank-a
// and bank-b, provider clients prov-a and prov-b registered for them, and
// a client unreg that is nobody's provider.
type providerEnv struct {
	engine *gin.Engine
	db     *store.DB
	svc    *ingest.Service
	rec    *fakeRecorder
	v      *openapitest.V
}

func newProviderEnv(t testing.TB, db *store.DB) *providerEnv {
	t.Helper()
	gin.SetMode(gin.TestMode)
	ctx := context.Background()
	e := &providerEnv{db: db, svc: ingest.NewService(db, func() time.Time { return testNow }), v: openapitest.Validator(t, specPath)}
	e.rec = &fakeRecorder{db: db}
	acc := accounts.NewSQLStore(db)
	for _, in := range []string{"bank-a", "bank-b"} {
		if err := acc.UpsertInstitution(ctx, accounts.Institution{ID: in, Name: strings.ToUpper(in)}); err != nil {
			t.Fatal(err)
		}
	}
	for client, in := range map[string]string{"prov-a": "bank-a", "prov-b": "bank-b", "unreg": ""} {
		if err := db.Exec(`INSERT INTO oauth_clients (id, name, redirect_uris, grant_types, scopes, purposes, auth_method, dpop, created_at)
			VALUES (?, ?, '', 'client_credentials', 'provider:write', '', 'client_secret_basic', ?, ?)`,
			client, client, false, store.Micros(testNow)).Error; err != nil {
			t.Fatal(err)
		}
		if in != "" {
			if err := e.svc.RegisterClient(ctx, client, in); err != nil {
				t.Fatal(err)
			}
		}
	}
	auth := fakeAuth{
		"prov-a":   {ClientID: "prov-a", Scopes: []string{ScopeProviderWrite}},
		"prov-b":   {ClientID: "prov-b", Scopes: []string{ScopeProviderWrite}},
		"unreg":    {ClientID: "unreg", Scopes: []string{ScopeProviderWrite}},
		"no-scope": {ClientID: "prov-a", Scopes: []string{"audit:read"}},
		"customer": principal(purposePFM, 730, allData, accCard),
	}
	e.engine = gin.New()
	e.engine.Use(Middleware(nil)...)
	RegisterProvider(e.engine, ProviderDeps{Ingest: e.svc, Auth: auth, Audit: e.rec})
	return e
}

// fakeRecorder keeps audit events; with fail set it is down. It notes how
// many transactions were stored when each event was recorded, to prove
// that the audit comes before the write.
type fakeRecorder struct {
	db     *store.DB
	mu     sync.Mutex
	fail   bool
	events []recordedEvent
}

type recordedEvent struct {
	audit.Event
	txsStored int64
}

func (r *fakeRecorder) Record(_ context.Context, ev audit.Event) (audit.Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return audit.Event{}, apperr.Wrap(apperr.AuditUnavailable, "audit log unavailable", errors.New("disk full"))
	}
	var n int64
	r.db.Raw(`SELECT COUNT(*) FROM transactions`).Scan(&n)
	r.events = append(r.events, recordedEvent{Event: ev, txsStored: n})
	return ev, nil
}

// nopRecorder accepts every event and keeps none.
type nopRecorder struct{}

func (nopRecorder) Record(_ context.Context, ev audit.Event) (audit.Event, error) { return ev, nil }

func (r *fakeRecorder) take() []recordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// post sends body to /v1/provider/<what> with token and checks the
// response against openapi.yaml.
func (e *providerEnv) post(t testing.TB, token, what, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/provider/"+what, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	e.engine.ServeHTTP(rec, req)
	e.v.Check(t, req, rec.Code, rec.Header(), rec.Body.Bytes())
	return rec
}

func records(rs ...string) string { return `{"records":[` + strings.Join(rs, ",") + `]}` }

func (e *providerEnv) result(t *testing.T, rec *httptest.ResponseRecorder) ingest.Stats {
	t.Helper()
	return decode[ingest.Stats](t, rec)
}

func (e *providerEnv) count(t *testing.T, table string) int64 {
	t.Helper()
	var n int64
	if err := e.db.Raw("SELECT COUNT(*) FROM " + table).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// recordErrors decodes an invalid_records problem.
func recordErrors(t *testing.T, rec *httptest.ResponseRecorder) []ingest.FieldError {
	t.Helper()
	problem(t, rec, http.StatusUnprocessableEntity, "invalid_records")
	var p struct {
		Errors     []ingest.FieldError `json:"errors"`
		ErrorCount int                 `json:"error_count"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.ErrorCount != len(p.Errors) || len(p.Errors) == 0 {
		t.Fatalf("error_count %d, errors %+v", p.ErrorCount, p.Errors)
	}
	return p.Errors
}

const (
	pCust    = `{"id":"c1","display_name":"Carol"}`
	pAcct    = `{"id":"a1","customer_id":"c1","type":"credit_card","display_name":"Card","last4":"4242","currency":"USD"}`
	pBal     = `{"account_id":"a1","currency":"USD","current":"-10.00","available":"990.00","credit_limit":"1000.00","as_of":"2025-06-30T00:00:00Z"}`
	pPending = `{"id":"t1","account_id":"a1","status":"pending","transacted_at":"2025-06-28T10:00:00Z","amount":"-20.00","currency":"USD","description":"Coffee","merchant_name":"Cafe","merchant_category_code":"5814","card_last4":"4242"}`
	pBooked  = `{"id":"t1","account_id":"a1","status":"booked","transacted_at":"2025-06-28T10:00:00Z","booked_at":"2025-06-29T00:00:00Z","amount":"-22.00","currency":"USD","description":"Coffee","merchant_name":"Cafe","merchant_category_code":"5814","card_last4":"4242"}`
)

func (e *providerEnv) seed(t *testing.T) {
	t.Helper()
	for _, s := range []struct{ what, rec string }{{"customers", pCust}, {"accounts", pAcct}} {
		if rec := e.post(t, "prov-a", s.what, records(s.rec)); rec.Code != http.StatusOK {
			t.Fatalf("seed %s: %d %s", s.what, rec.Code, rec.Body)
		}
	}
}

// The whole feed, twice: the second time changes nothing; every batch is
// audited before it is written.
func TestProviderIdempotentFeed(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		e := newProviderEnv(t, db)
		feed := []struct{ what, body string }{
			{"institutions", records(`{"id":"bank-a","name":"Bank A"}`)},
			{"customers", records(pCust)},
			{"accounts", records(pAcct)},
			{"balances", records(pBal)},
			{"transactions", records(pPending, strings.NewReplacer(`"t1"`, `"t2"`, `"-20.00"`, `"15.00"`).Replace(pPending))},
		}
		for round, want := range []string{"created", "unchanged"} {
			for _, f := range feed {
				st := e.result(t, e.post(t, "prov-a", f.what, f.body))
				n := map[string]int{"created": st.Created, "unchanged": st.Unchanged}[want]
				if f.what == "institutions" && round == 0 {
					n = st.Updated // the institution exists: the provider renames it
				}
				if n != st.Records || st.Records == 0 {
					t.Errorf("round %d %s: %+v, want all %s", round, f.what, st, want)
				}
			}
		}
		if n := e.count(t, "transactions"); n != 2 {
			t.Errorf("%d transactions, want 2", n)
		}
		events := e.rec.take()
		if len(events) != 2*len(feed) {
			t.Fatalf("%d audit events, want one per batch (%d)", len(events), 2*len(feed))
		}
		for _, ev := range events {
			if ev.Type != EventProviderWrite || ev.Outcome != audit.Allowed || ev.ClientID != "prov-a" || ev.Status != http.StatusOK ||
				ev.Method != http.MethodPost || !strings.HasPrefix(ev.Path, "/v1/provider/") || ev.InteractionID == "" {
				t.Errorf("event %+v", ev.Event)
			}
		}
		if ev := events[4]; ev.Reason != "transactions: 2 records" || ev.txsStored != 0 {
			t.Errorf("transactions event %q recorded with %d transactions stored; want it before the write", ev.Reason, ev.txsStored)
		}
	})
}

func TestProviderPendingBookedReversal(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		e := newProviderEnv(t, db)
		e.seed(t)
		e.result(t, e.post(t, "prov-a", "transactions", records(pPending)))
		if st := e.result(t, e.post(t, "prov-a", "transactions", records(pBooked))); st.Updated != 1 {
			t.Errorf("pending → booked: %+v", st)
		}
		txs, _, err := accounts.NewSQLStore(db).Transactions(context.Background(), accounts.TxQuery{
			AccountID: ingest.AccountID("bank-a", "a1"), From: testNow.AddDate(0, -1, 0), To: testNow, Limit: 10})
		if err != nil || len(txs) != 1 || txs[0].Status != accounts.StatusBooked || txs[0].Amount != -2200 {
			t.Fatalf("booked transaction: %+v, %v", txs, err)
		}
		pending2 := strings.Replace(pPending, `"t1"`, `"t2"`, 1)
		e.result(t, e.post(t, "prov-a", "transactions", records(pending2)))
		reversal := `{"id":"t2","account_id":"a1","reversed":true}`
		if st := e.result(t, e.post(t, "prov-a", "transactions", records(reversal))); st.Reversed != 1 {
			t.Errorf("reversal: %+v", st)
		}
		if st := e.result(t, e.post(t, "prov-a", "transactions", records(reversal))); st.Unchanged != 1 {
			t.Errorf("reversal again: %+v", st)
		}
		errs := recordErrors(t, e.post(t, "prov-a", "transactions", records(`{"id":"t1","account_id":"a1","reversed":true}`)))
		if errs[0].Index != 0 || errs[0].Field != "reversed" || !strings.Contains(errs[0].Reason, "refund") {
			t.Errorf("reversal of a booked transaction: %+v", errs)
		}
		if n := e.count(t, "transactions"); n != 1 {
			t.Errorf("%d transactions, want 1", n)
		}
	})
}

// Each kind of bad input is a 4xx naming the record and the field, and
// nothing of the batch is written.
func TestProviderBadInput(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		e := newProviderEnv(t, db)
		e.seed(t)
		good := strings.Replace(pPending, `"t1"`, `"ok"`, 1)
		tx := func(old, new string) string { return strings.Replace(pPending, old, new, 1) }
		tests := []struct {
			name, token, what, body string
			index                   int
			field, reason           string
		}{
			{"malformed JSON in a record", "prov-a", "transactions", `{"records":[` + good + `,{"id":"t1","amount":-1..0}]}`, 1, "amount", "malformed JSON"},
			{"wrong type", "prov-a", "transactions", records(good, tx(`"-20.00"`, `-20`)), 1, "amount", "wrong type"},
			{"negative credit limit", "prov-a", "balances", records(strings.Replace(pBal, `"1000.00"`, `"-1.00"`, 1)), 0, "credit_limit", "must not be negative"},
			{"unknown currency", "prov-a", "transactions", records(good, tx(`"USD"`, `"ABC"`)), 1, "currency", "not a known ISO 4217"},
			{"too many decimals", "prov-a", "transactions", records(good, tx(`"-20.00"`, `"-20.001"`)), 1, "amount", "more than 2 decimal places for USD"},
			{"duplicate id in one batch", "prov-a", "transactions", records(pPending, good, pPending), 2, "id", "duplicate of record 0"},
			{"full card number", "prov-a", "transactions", records(good, tx(`"Coffee"`, `"Coffee 4111111111111111"`)), 1, "description", "full card number"},
			{"card number field", "prov-a", "accounts", records(strings.Replace(pAcct, `"last4"`, `"card_number":"4111111111111111","last4"`, 1)), 0, "card_number", "never accepted"},
			{"another institution's account", "prov-b", "transactions", records(pPending), 0, "account_id", `unknown account "a1"`},
			{"another institution named", "prov-b", "accounts", records(strings.Replace(pAcct, `"customer_id"`, `"institution_id":"bank-a","customer_id"`, 1)), 0, "institution_id", "not yours"},
			{"another institution renamed", "prov-b", "institutions", records(`{"id":"bank-a","name":"Mine"}`), 0, "id", "not yours"},
		}
		before := e.count(t, "transactions")
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				errs := recordErrors(t, e.post(t, tt.token, tt.what, tt.body))
				if errs[0].Index != tt.index || errs[0].Field != tt.field || !strings.Contains(errs[0].Reason, tt.reason) {
					t.Errorf("errors %+v, want index %d field %q reason containing %q", errs, tt.index, tt.field, tt.reason)
				}
			})
		}
		for _, body := range []string{`not json`, `{"records":[]}`, `{"data":[]}`, `[` + good + `]`} {
			problem(t, e.post(t, "prov-a", "transactions", body), http.StatusBadRequest, "invalid_request")
		}
		if n := e.count(t, "transactions"); n != before {
			t.Errorf("refused batches wrote %d transactions", n-before)
		}
		// Every refusal ends in a denied event with the status answered
		// (after an allowed one when the stored state refused the batch).
		last := map[string]audit.Event{}
		var order []string
		for _, ev := range e.rec.take()[2:] { // after the two seed batches
			if _, ok := last[ev.InteractionID]; !ok {
				order = append(order, ev.InteractionID)
			}
			last[ev.InteractionID] = ev.Event
		}
		if len(order) != len(tests)+4 {
			t.Errorf("%d audited requests, want %d", len(order), len(tests)+4)
		}
		for _, id := range order {
			if ev := last[id]; ev.Outcome != audit.Denied || (ev.Status != http.StatusUnprocessableEntity && ev.Status != http.StatusBadRequest) {
				t.Errorf("refusal audited as %+v", ev)
			}
		}
	})
}

func TestProviderTooLarge(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		e := newProviderEnv(t, db)
		e.seed(t)
		var rs []string
		for i := range ingest.DefaultMaxRecords + 1 {
			rs = append(rs, strings.Replace(pPending, `"t1"`, fmt.Sprintf(`"t%d"`, i), 1))
		}
		problem(t, e.post(t, "prov-a", "transactions", records(rs...)), http.StatusRequestEntityTooLarge, "payload_too_large")
		big := `{"records":[` + pPending + `],"pad":"` + strings.Repeat("x", ingest.DefaultMaxBodyBytes) + `"}`
		problem(t, e.post(t, "prov-a", "transactions", big), http.StatusRequestEntityTooLarge, "payload_too_large")
		if n := e.count(t, "transactions"); n != 0 {
			t.Errorf("%d transactions written", n)
		}
	})
}

func TestProviderAuth(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		e := newProviderEnv(t, db)
		body := records(pCust)
		rec := e.post(t, "", "customers", body)
		problem(t, rec, http.StatusUnauthorized, "invalid_token")
		if ch := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(ch, `Bearer error="invalid_token"`) {
			t.Errorf("WWW-Authenticate %q", ch)
		}
		problem(t, e.post(t, "customer", "customers", body), http.StatusUnauthorized, "invalid_token")
		rec = e.post(t, "no-scope", "customers", body)
		problem(t, rec, http.StatusForbidden, "insufficient_scope")
		if ch := rec.Header().Get("WWW-Authenticate"); ch != `Bearer error="insufficient_scope", scope="provider:write"` {
			t.Errorf("WWW-Authenticate %q", ch)
		}
		problem(t, e.post(t, "unreg", "customers", body), http.StatusForbidden, "provider_not_registered")
		if n := e.count(t, "customers"); n != 0 {
			t.Errorf("%d customers written", n)
		}
		events := e.rec.take()
		if len(events) != 3 { // the anonymous 401 is not audited
			t.Fatalf("events %+v", events)
		}
		for i, want := range []string{"invalid_token", "insufficient_scope", "provider_not_registered"} {
			if ev := events[i]; ev.Outcome != audit.Denied || !strings.HasPrefix(ev.Reason, want) || ev.ClientID == "" {
				t.Errorf("event %d: %+v, want denied %s", i, ev.Event, want)
			}
		}
	})
}

// No audit, no write.
func TestProviderAuditFailsClosed(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		e := newProviderEnv(t, db)
		e.rec.fail = true
		problem(t, e.post(t, "prov-a", "customers", records(pCust)), http.StatusServiceUnavailable, "audit_unavailable")
		if n := e.count(t, "customers"); n != 0 {
			t.Errorf("%d customers written without an audit event", n)
		}
	})
}

// A batch refused after its audit event (a rule the stored state breaks)
// gets a second, denied event.
func TestProviderAuditRefusedAfterAttempt(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		e := newProviderEnv(t, db)
		recordErrors(t, e.post(t, "prov-a", "accounts", records(pAcct))) // customer c1 does not exist
		events := e.rec.take()
		if len(events) != 2 || events[0].Outcome != audit.Allowed || events[1].Outcome != audit.Denied ||
			events[1].Status != http.StatusUnprocessableEntity || events[0].InteractionID != events[1].InteractionID ||
			events[1].Reason != "invalid_records: 1 record(s) refused (accounts: 1 records)" {
			t.Errorf("events %+v", events)
		}
	})
}

// Every route RegisterProvider mounts is in openapi.yaml.
func TestOpenAPIMatchesProviderRoutes(t *testing.T) {
	doc := loadSpec(t)
	gin.SetMode(gin.TestMode)
	r := gin.New()
	RegisterProvider(r, ProviderDeps{})
	param := regexp.MustCompile(`:([a-z_]+)`)
	if n := len(r.Routes()); n != 5 {
		t.Errorf("RegisterProvider mounted %d routes, the test knows 5", n)
	}
	for _, rt := range r.Routes() {
		path := param.ReplaceAllString(rt.Path, "{$1}")
		if item := doc.Paths.Value(path); item == nil || item.GetOperation(rt.Method) == nil {
			t.Errorf("route %s %s is not in openapi.yaml", rt.Method, path)
		}
	}
}

// BenchmarkIngestTransactions posts batches of 5000 new card transactions
// through the real handler and store (and the audit writer once it knows
// provider.write), on SQLite and, under scripts/with-postgres, PostgreSQL:
// one client at a time ("serial"), and four clients at once ("4-clients"),
// as a provider's loader would post. Metric: transactions/s.
func BenchmarkIngestTransactions(b *testing.B) {
	for _, d := range testdb.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			db := testdb.Open(b, d)
			e := newProviderEnv(b, db)
			// The real audit writer once it accepts provider.write events;
			// until then one that keeps nothing (the test recorder counts
			// the stored transactions at every event).
			var rec audit.Recorder = nopRecorder{}
			if EventProviderWrite.Valid() {
				w := audit.NewWriter(db, audit.WriterOptions{})
				b.Cleanup(func() { w.Close() })
				rec = w
			}
			handler, path := gin.New(), "/v1/provider/transactions"
			handler.Use(Middleware(nil)...)
			RegisterProvider(handler, ProviderDeps{Ingest: e.svc, Audit: rec,
				Auth: fakeAuth{"prov-a": {ClientID: "prov-a", Scopes: []string{ScopeProviderWrite}}}})
			for _, s := range []struct{ what, rec string }{{"customers", pCust}, {"accounts", pAcct}} {
				if rec := e.post(b, "prov-a", s.what, records(s.rec)); rec.Code != http.StatusOK {
					b.Fatalf("seed: %s", rec.Body)
				}
			}
			const batch = ingest.DefaultMaxRecords
			var tmpl strings.Builder
			tmpl.WriteString(`{"records":[`)
			for j := range batch {
				if j > 0 {
					tmpl.WriteByte(',')
				}
				at := testNow.Add(-time.Duration(j) * time.Minute).Format(time.RFC3339)
				fmt.Fprintf(&tmpl, `{"id":"@-%d","account_id":"a1","status":"booked","transacted_at":"%s","booked_at":"%s","amount":"-%d.%02d","currency":"USD","description":"Card purchase","merchant_name":"Merchant %d","merchant_category_code":"5411","card_last4":"4242"}`,
					j, at, at, j%500, j%100, j%97)
			}
			tmpl.WriteString(`]}`)
			var seq atomic.Int64
			post := func(b *testing.B) {
				body := strings.ReplaceAll(tmpl.String(), `"@-`, fmt.Sprintf(`"b%d-`, seq.Add(1)))
				req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer prov-a")
				rec := httptest.NewRecorder()
				handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Errorf("status %d: %.500s", rec.Code, rec.Body)
				}
			}
			b.Run("serial", func(b *testing.B) {
				for range b.N {
					post(b)
				}
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "transactions/s")
			})
			b.Run("4-clients", func(b *testing.B) {
				b.SetParallelism(4 / max(1, runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						post(b)
					}
				})
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "transactions/s")
			})
		})
	}
}
