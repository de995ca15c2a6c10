package httpapi

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-jose/go-jose/v4"

	"github.com/consentgate/consentgate/internal/audit"
)

// knownEvent i of the auditor API tests (seq i+1): types, outcomes,
// customers, clients, grants and times vary with i so every filter selects
// a different subset.
func knownEvent(i int) audit.Event {
	types := []audit.Type{audit.DataAccess, audit.TokenIssued, audit.ConsentAuthorized}
	ev := audit.Event{
		Type: types[i%3], Outcome: audit.Allowed, CustomerID: alice, ClientID: "app",
		GrantID: "g-" + strconv.Itoa(i%5), OccurredAt: testNow.Add(time.Duration(i) * time.Minute),
		InteractionID: fmt.Sprintf("known-%02d", i), Scopes: []string{"accounts:read"},
	}
	if i%3 == 2 {
		ev.Outcome, ev.Reason = audit.Denied, "purpose_prohibited"
	}
	if i%2 == 1 {
		ev.CustomerID = bob
	}
	if i%4 >= 2 {
		ev.ClientID = "other"
	}
	return ev
}

const knownEvents = 30

// auditEnv is an env whose log holds the known events, in order.
func auditEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	for i := range knownEvents {
		if _, err := e.writer.Append(context.Background(), knownEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// seqsWhere lists the seqs of the known events that match.
func seqsWhere(match func(audit.Event) bool) []int64 {
	var out []int64
	for i := range knownEvents {
		if match(knownEvent(i)) {
			out = append(out, int64(i+1))
		}
	}
	return out
}

type page struct {
	Data       []audit.Event `json:"data"`
	NextCursor *string       `json:"next_cursor"`
}

func decodePage(t *testing.T, rec *httptest.ResponseRecorder) page {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var raw struct {
		Data       []json.RawMessage `json:"data"`
		NextCursor *string           `json:"next_cursor"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	p := page{NextCursor: raw.NextCursor}
	for _, m := range raw.Data {
		var ev struct {
			Seq           int64  `json:"seq"`
			Type          string `json:"type"`
			InteractionID string `json:"interaction_id"`
			Hash          string `json:"hash"`
		}
		if err := json.Unmarshal(m, &ev); err != nil {
			t.Fatal(err)
		}
		p.Data = append(p.Data, audit.Event{Seq: ev.Seq, Type: audit.Type(ev.Type), InteractionID: ev.InteractionID, Hash: ev.Hash})
	}
	return p
}

func seqs(evs []audit.Event) []int64 {
	out := []int64{}
	for _, ev := range evs {
		out = append(out, ev.Seq)
	}
	return out
}

// Only client_credentials tokens with audit:read get in (SPEC §6).
func TestAuditAPIScope(t *testing.T) {
	e := auditEnv(t)
	for _, path := range []string{"/v1/audit/events", "/v1/audit/verify"} {
		for _, tt := range []struct {
			name, token string
			status      int
			code        string
		}{
			{"no token", "", 401, "invalid_token"},
			{"unknown token", "nope", 401, "invalid_token"},
			{"a customer's consent token", "pfm", 403, "insufficient_scope"},
			{"a consent token carrying audit:read", "pfm-audit", 403, "insufficient_scope"},
			{"client_credentials without audit:read", "cc-ingest", 403, "insufficient_scope"},
			{"auditor", "cc", 200, ""},
		} {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				rec := e.do(t, tt.token, path)
				if tt.code == "" {
					if rec.Code != tt.status {
						t.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
					return
				}
				problem(t, rec, tt.status, tt.code)
				if tt.status == 403 && rec.Header().Get("WWW-Authenticate") != `Bearer error="insufficient_scope", scope="audit:read"` {
					t.Errorf("challenge %q", rec.Header().Get("WWW-Authenticate"))
				}
			})
		}
	}
}

func TestAuditAPIFilters(t *testing.T) {
	e := auditEnv(t)
	at := func(i int) string { return testNow.Add(time.Duration(i) * time.Minute).Format(time.RFC3339) }
	tests := []struct {
		name  string
		query url.Values
		match func(audit.Event) bool
	}{
		{"none", url.Values{}, func(audit.Event) bool { return true }},
		{"customer_id", url.Values{"customer_id": {bob}}, func(ev audit.Event) bool { return ev.CustomerID == bob }},
		{"client_id", url.Values{"client_id": {"other"}}, func(ev audit.Event) bool { return ev.ClientID == "other" }},
		{"grant_id", url.Values{"grant_id": {"g-3"}}, func(ev audit.Event) bool { return ev.GrantID == "g-3" }},
		{"type", url.Values{"type": {"token.issued"}}, func(ev audit.Event) bool { return ev.Type == audit.TokenIssued }},
		{"outcome", url.Values{"outcome": {"denied"}}, func(ev audit.Event) bool { return ev.Outcome == audit.Denied }},
		{"since inclusive, until exclusive", url.Values{"since": {at(5)}, "until": {at(12)}}, func(ev audit.Event) bool {
			return !ev.OccurredAt.Before(testNow.Add(5*time.Minute)) && ev.OccurredAt.Before(testNow.Add(12*time.Minute))
		}},
		{"several at once", url.Values{"customer_id": {alice}, "client_id": {"app"}, "outcome": {"allowed"}}, func(ev audit.Event) bool {
			return ev.CustomerID == alice && ev.ClientID == "app" && ev.Outcome == audit.Allowed
		}},
		{"nothing matches", url.Values{"grant_id": {"g-none"}}, func(audit.Event) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.query
			q.Set("limit", "1000")
			p := decodePage(t, e.do(t, "cc", "/v1/audit/events?"+q.Encode()))
			if got, want := seqs(p.Data), seqsWhere(tt.match); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("seqs %v, want %v", got, want)
			}
			if p.NextCursor != nil {
				t.Errorf("next_cursor %q on the only page", *p.NextCursor)
			}
		})
	}
}

func TestAuditAPIPagination(t *testing.T) {
	e := auditEnv(t)
	want := seqsWhere(func(ev audit.Event) bool { return ev.Type == audit.DataAccess })
	var got []int64
	q := url.Values{"type": {"data.access"}, "limit": {"3"}}
	for pages := 0; ; pages++ {
		if pages > len(want) {
			t.Fatal("pagination does not end")
		}
		p := decodePage(t, e.do(t, "cc", "/v1/audit/events?"+q.Encode()))
		if len(p.Data) > 3 {
			t.Fatalf("page of %d events with limit 3", len(p.Data))
		}
		got = append(got, seqs(p.Data)...)
		if p.NextCursor == nil {
			break
		}
		// A cursor is bound to its filters.
		if pages == 0 {
			other := url.Values{"type": {"token.issued"}, "cursor": {*p.NextCursor}}
			problem(t, e.do(t, "cc", "/v1/audit/events?"+other.Encode()), 400, "invalid_cursor")
		}
		q.Set("cursor", *p.NextCursor)
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages gave %v, want %v", got, want)
	}
	// Default page size is 100: everything here, no cursor.
	if p := decodePage(t, e.do(t, "cc", "/v1/audit/events")); len(p.Data) != knownEvents || p.NextCursor != nil {
		t.Errorf("default page: %d events, cursor %v", len(p.Data), p.NextCursor)
	}
}

func TestAuditAPIBadParameters(t *testing.T) {
	e := auditEnv(t)
	for _, tt := range []struct{ query, code, accept string }{
		{"type=bogus", "invalid_request", ""},
		{"outcome=maybe", "invalid_request", ""},
		{"since=yesterday", "invalid_request", ""},
		{"since=2025-07-01T00:00:00Z&until=2025-06-01T00:00:00Z", "invalid_request", ""},
		{"customer_id=a&customer_id=b", "invalid_request", ""},
		{"limit=0", "invalid_request", ""},
		{"limit=1001", "invalid_request", ""},
		{"limit=ten", "invalid_request", ""},
		{"limit=5&limit=6", "invalid_request", ""},
		{"cursor=garbage", "invalid_cursor", ""},
		{"cursor=", "invalid_cursor", ""},
		{"limit=5", "invalid_request", "application/x-ndjson"},
		{"cursor=abc", "invalid_request", "text/csv"},
		{"type=bogus", "invalid_request", "text/csv"},
	} {
		t.Run(tt.query+" "+tt.accept, func(t *testing.T) {
			var hdr []string
			if tt.accept != "" {
				hdr = []string{"Accept", tt.accept}
			}
			problem(t, e.do(t, "cc", "/v1/audit/events?"+tt.query, hdr...), 400, tt.code)
		})
	}
}

func TestAuditAPIExports(t *testing.T) {
	e := auditEnv(t)
	want := seqsWhere(func(ev audit.Event) bool { return ev.CustomerID == alice })
	page := e.do(t, "cc", "/v1/audit/events?customer_id="+alice)
	var objects struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(page.Body.Bytes(), &objects); err != nil {
		t.Fatal(err)
	}

	for _, accept := range []string{"application/x-ndjson", "text/csv;q=0, application/x-ndjson", "application/ndjson"} {
		rec := e.do(t, "cc", "/v1/audit/events?customer_id="+alice, "Accept", accept)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/x-ndjson" ||
			rec.Header().Get("Content-Disposition") != `attachment; filename="audit-events.ndjson"` {
			t.Fatalf("Accept %s: %d %v", accept, rec.Code, rec.Header())
		}
		lines := strings.Split(strings.TrimSuffix(rec.Body.String(), "\n"), "\n")
		if len(lines) != len(want) {
			t.Fatalf("Accept %s: %d lines, want %d", accept, len(lines), len(want))
		}
		for i, line := range lines {
			// Each line is exactly the event as the JSON pages show it.
			if line != string(objects.Data[i]) {
				t.Errorf("line %d\n got %s\nwant %s", i, line, objects.Data[i])
			}
		}
	}

	rec := e.do(t, "cc", "/v1/audit/events?customer_id="+alice, "Accept", "text/csv")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("csv: %d %v", rec.Code, rec.Header())
	}
	rows, err := csv.NewReader(rec.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows[0], audit.CSVHeader) || len(rows) != len(want)+1 {
		t.Fatalf("csv header %v, %d rows", rows[0], len(rows))
	}
	for i, row := range rows[1:] {
		if row[0] != strconv.FormatInt(want[i], 10) || row[7] != alice {
			t.Errorf("csv row %d: %v", i, row)
		}
	}

	// Anything else gets the JSON page.
	if rec := e.do(t, "cc", "/v1/audit/events?customer_id="+alice, "Accept", "text/html"); rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("Accept text/html: %v", rec.Header())
	}
}

func TestAuditAPIVerify(t *testing.T) {
	e := auditEnv(t)
	verify := func() map[string]any {
		t.Helper()
		rec := e.do(t, "cc", "/v1/audit/verify")
		var v map[string]any
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &v) != nil {
			t.Fatalf("verify: %d %s", rec.Code, rec.Body)
		}
		return v
	}
	cp, err := audit.NewCheckpointer(e.db, e.signer, audit.CheckpointerOptions{Issuer: "http://test"}).Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var headHash string
	if err := e.db.Raw(`SELECT hash FROM audit_events WHERE seq = ?`, cp.TreeSize).Row().Scan(&headHash); err != nil {
		t.Fatal(err)
	}
	v := verify()
	head, _ := v["head"].(map[string]any)
	if v["valid"] != true || v["events"] != float64(knownEvents) || head["seq"] != float64(knownEvents) || head["hash"] != headHash ||
		v["checkpoints"] != float64(1) || v["first_invalid_seq"] != nil {
		t.Fatalf("verify: %v", v)
	}

	// An edit behind the triggers' back is found at its seq.
	if err := e.db.Exec(`DROP TRIGGER audit_events_no_update`).Error; err != nil {
		t.Fatal(err)
	}
	if err := e.db.Exec(`UPDATE audit_events SET outcome = 'allowed' WHERE seq = 12`).Error; err != nil {
		t.Fatal(err)
	}
	v = verify()
	if v["valid"] != false || v["first_invalid_seq"] != float64(12) || v["events"] != float64(11) || v["reason"] == "" {
		t.Fatalf("verify after tampering: %v", v)
	}
}

// failingLog sends part of an export, then fails.
type failingLog struct{ AuditLog }

func (failingLog) Export(_ context.Context, _ audit.Filter, w io.Writer, _ string) (int64, error) {
	line := strings.Repeat("x", 1023) + "\n"
	for range 200 { // more than any buffer between here and the client
		if _, err := io.WriteString(w, line); err != nil {
			return 0, err
		}
	}
	w.(http.Flusher).Flush()
	return 200, errors.New("connection to the database lost")
}

// A failure mid-export breaks the transfer: a truncated export can never
// pass for a complete one.
func TestAuditExportAbortsMidStream(t *testing.T) {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(Middleware(nil)...)
	RegisterAudit(r, AuditDeps{Log: failingLog{}, Auth: fakeAuth{"cc": {ClientID: "auditor", Scopes: []string{ScopeAuditRead}}},
		Keys: &jose.JSONWebKeySet{}})
	srv := httptest.NewServer(r)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/audit/events", nil)
	req.Header.Set("Authorization", "Bearer cc")
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, bufio.NewReader(resp.Body))
	if resp.StatusCode != 200 || err == nil {
		t.Fatalf("status %d, read %d bytes, err %v: the broken export looked complete", resp.StatusCode, n, err)
	}
}
