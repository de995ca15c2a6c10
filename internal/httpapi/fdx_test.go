package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/identity"
)

// withFDX mounts the FDX routes on e's engine, beside /v1, with the same
// authenticator, audit recorder and usage counter.
func (e *env) withFDX(t *testing.T, rec audit.Recorder) *env {
	t.Helper()
	s := accounts.NewSQLStore(e.db)
	if rec == nil {
		rec = e.writer
	}
	RegisterFDX(e.engine, FDXDeps{
		Deps:     Deps{Accounts: e.store, Auth: e.auth, Audit: rec, Usage: e.usage, Now: func() time.Time { return testNow }},
		Profiles: identity.NewService(e.db, nil), Numbers: s, Posted: s,
		Subjects: func(clientID, customerID string) string { return "pairwise-" + clientID + "-" + customerID },
	})
	return e
}

type fdxErrorBody struct {
	Code         int    `json:"code"`
	Message      string `json:"message"`
	DebugMessage string `json:"debugMessage"`
}

func wantFDXError(t *testing.T, rec *httptest.ResponseRecorder, status, code int, reason string) fdxErrorBody {
	t.Helper()
	var b fdxErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || rec.Code != status || b.Code != code ||
		!strings.HasPrefix(b.DebugMessage, reason+": ") || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %s %s, want %d FDX %d %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body, status, code, reason)
	}
	return b
}

// One gate, two renderers: the same refusals as on /v1, the FDX entity on
// /fdx/v6, problem+json still on /v1 of the same engine; a refused call
// reads nothing; 5xx bodies say nothing internal.
func TestFDXRefusalsRenderAsFDX(t *testing.T) {
	e := newEnv(t)
	e.withFDX(t, nil)
	for _, tt := range []struct {
		name, token, path string
		headers           []string
		status, code      int
		reason            string
	}{
		{"no token", "", "/fdx/v6/accounts", nil, 401, 602, "invalid_token"},
		{"revoked consent", "revoked", "/fdx/v6/accounts", nil, 401, 602, "invalid_token"},
		{"expired consent", "expired", "/fdx/v6/accounts", nil, 401, 602, "invalid_token"},
		{"client credentials", "cc", "/fdx/v6/accounts", nil, 401, 602, "invalid_token"},
		{"scope missing", "accounts", "/fdx/v6/accounts/" + accCard + "/transactions", nil, 403, 602, "insufficient_scope"},
		{"scope the purpose forbids", "verify-tx", "/fdx/v6/accounts/" + accCard + "/transactions", nil, 403, 602, "insufficient_scope"},
		{"prohibited purpose", "pfm", "/fdx/v6/accounts", []string{"Data-Purpose", "marketing"}, 403, 602, "purpose_prohibited"},
		{"account outside the consent", "accounts", "/fdx/v6/accounts/" + accChecking, nil, 404, 701, "account_not_found"},
		{"zero history", "zero-history", "/fdx/v6/accounts/" + accCard + "/transactions", nil, 400, 703, "history_window_exceeded"},
		{"bad customer ip", "pfm", "/fdx/v6/accounts", []string{HeaderCustomerIP, "nope"}, 400, 703, "invalid_request"},
		{"database down", "db-down", "/fdx/v6/accounts", nil, 503, 501, "service_unavailable"},
		{"authenticator broken", "broken", "/fdx/v6/accounts", nil, 500, 500, "internal_error"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.store.reads()
			rec := e.do(t, tt.token, tt.path, tt.headers...)
			b := wantFDXError(t, rec, tt.status, tt.code, tt.reason)
			if tt.status == 401 && !strings.Contains(rec.Header().Get("WWW-Authenticate"), `Bearer error="invalid_token"`) ||
				tt.status == 403 && tt.reason == "insufficient_scope" && !strings.Contains(rec.Header().Get("WWW-Authenticate"), `scope="transactions:read"`) {
				t.Errorf("WWW-Authenticate %q", rec.Header().Get("WWW-Authenticate"))
			}
			if strings.Contains(b.DebugMessage, "10.0.0.7") || strings.Contains(rec.Body.String(), "tx-") {
				t.Errorf("body leaks: %s", rec.Body)
			}
			if e.store.reads() != before {
				t.Errorf("a refused call read %d times", e.store.reads()-before)
			}
		})
	}
	// The same refusal on /v1 of the same engine is still problem+json.
	problem(t, e.do(t, "accounts", "/v1/accounts/"+accChecking), http.StatusNotFound, "account_not_found")
}

// No audit, no data, in FDX: the refusal to answer is the FDX entity too.
func TestFDXNoAuditNoData(t *testing.T) {
	down := apperr.Wrap(apperr.AuditUnavailable, "The audit log could not record this request.",
		fmt.Errorf("%w: disk full", audit.ErrUnavailable))
	rec := recorderFunc(func(context.Context, audit.Event) (audit.Event, error) { return audit.Event{}, down })
	e := newEnvWith(t, rec)
	e.withFDX(t, rec)
	for _, path := range []string{"/fdx/v6/accounts", "/fdx/v6/accounts/" + accCard + "/transactions"} {
		r := e.do(t, "pfm", path)
		wantFDXError(t, r, http.StatusServiceUnavailable, 501, "audit_unavailable")
		if strings.Contains(r.Body.String(), accCard) {
			t.Errorf("503 body carries data: %s", r.Body)
		}
	}
}

// Every route RegisterFDX mounts is in openapi.yaml, with the same method.
func TestOpenAPIMatchesFDXRoutes(t *testing.T) {
	doc := loadSpec(t)
	gin.SetMode(gin.TestMode)
	r := gin.New()
	s := &accounts.SQLStore{} // never queried: the routes are only listed
	RegisterFDX(r, FDXDeps{
		Deps: Deps{Audit: recorderFunc(func(_ context.Context, ev audit.Event) (audit.Event, error) { return ev, nil }),
			Usage: &memUsage{n: map[string]int{}}},
		Profiles: identity.NewService(nil, nil), Numbers: s, Posted: s, Subjects: func(string, string) string { return "" },
	})
	param := regexp.MustCompile(`:account_id`)
	routes := r.Routes()
	if len(routes) != 6 {
		t.Errorf("RegisterFDX mounted %d routes, the test knows 6", len(routes))
	}
	for _, rt := range routes {
		path := param.ReplaceAllString(rt.Path, "{accountId}")
		if item := doc.Paths.Value(path); item == nil || item.GetOperation(rt.Method) == nil {
			t.Errorf("route %s %s is not in openapi.yaml", rt.Method, path)
		}
	}
}

// Every consentgate code the gate or the FDX handlers can answer with has
// its own FDX code, not the fallback.
func TestFDXCodes(t *testing.T) {
	for _, c := range []string{
		string(apperr.AccountNotFound), string(apperr.HistoryWindowExceeded), string(apperr.InvalidRequest),
		string(apperr.InvalidCursor), string(apperr.AccountTypeNotSupported), string(apperr.NotFound),
		string(apperr.PurposeProhibited), string(apperr.PurposeNotConsented), string(apperr.AccessExceeded),
		string(apperr.AuditUnavailable), string(apperr.Unavailable),
		"invalid_token", "insufficient_scope", "invalid_dpop_proof", "use_dpop_nonce",
	} {
		if _, ok := fdxCodes[c]; !ok {
			t.Errorf("%s has no FDX code", c)
		}
	}
}

// FuzzFDXTxQuery: any query string gives FDX 703 (one of the 400 codes
// that map to it) or a query whose bounds are ordered, never before the
// history window, with a sane limit; an offset round-trips.
func FuzzFDXTxQuery(f *testing.F) {
	for _, q := range []string{
		"", "limit=10", "startTime=2026-01-01&endTime=2026-02-01", "startTime=2026-13-45", "limit=0", "limit=501",
		"startTime=2026-06-02&endTime=2026-06-01", "endTime=2026-11-20T10:00:00Z", "offset=AQ", "limit=1&limit=2",
		"startTime=1999-01-01", "startTime=%00", "pageKey=x&startDate=2026-01-01",
	} {
		f.Add(q)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	hw := historyWindow{Start: now.Add(-730 * 24 * time.Hour), Days: 730}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, b, err := parseFDXTxQuery(v, "acc_1", now, hw)
		if err != nil {
			if fdxCodes[string(apperr.As(err).Code)].Code != 703 {
				t.Fatalf("error %v is not FDX 703", err)
			}
			return
		}
		if q.From.After(q.To) || q.NotBefore != hw.Start || q.Limit < 1 || q.Limit > maxTxLimit || q.From.Before(hw.Start) && v.Get("startTime") != "" {
			t.Fatalf("query %+v from %q", q, raw)
		}
		if q.After != nil {
			if again, err := decodeOffset(encodeOffset(*q.After, b), b); err != nil || *again != *q.After {
				t.Fatalf("offset does not round-trip: %+v", q.After)
			}
		}
	})
}
