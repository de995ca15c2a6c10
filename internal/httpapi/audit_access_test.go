package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/audit"
)

// recorderFunc is an audit.Recorder made of a function.
type recorderFunc func(ctx context.Context, ev audit.Event) (audit.Event, error)

func (f recorderFunc) Record(ctx context.Context, ev audit.Event) (audit.Event, error) {
	return f(ctx, ev)
}

// The one event a request left in the log, found by its interaction id.
func eventOf(t *testing.T, e *env, interactionID string) audit.Event {
	t.Helper()
	evs, err := e.audit.ByInteractionID(context.Background(), interactionID)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("interaction %s has %d audit events, want 1: %+v", interactionID, len(evs), evs)
	}
	return evs[0]
}

// SPEC §6: every data call, allowed or refused, leaves one data.access event
// with its status and reason, and as much of who asked as the gate learnt.
func TestDataAccessEvents(t *testing.T) {
	e := newEnv(t)
	grant := "grant-" + purposePFM
	tx := "/v1/accounts/" + accCard + "/transactions"
	tests := []struct {
		name, token, path string
		headers           []string
		status            int
		want              audit.Event // Type, Method, Path, Status and InteractionID are checked for every row
	}{
		{"allowed", "pfm", tx + "?limit=2", nil, 200, audit.Event{Outcome: audit.Allowed, Reason: "ok",
			ClientID: "app", CustomerID: alice, GrantID: grant, AccountID: accCard, Purpose: purposePFM, Scopes: allData}},
		{"allowed, list of accounts", "pfm", "/v1/accounts", nil, 200, audit.Event{Outcome: audit.Allowed, Reason: "ok",
			ClientID: "app", CustomerID: alice, GrantID: grant, Purpose: purposePFM, Scopes: allData}},
		{"no token: nobody is known", "", tx, nil, 401, audit.Event{Outcome: audit.Denied, Reason: "invalid_token",
			AccountID: accCard}},
		{"client_credentials token: the client is known", "cc", "/v1/accounts", nil, 401, audit.Event{Outcome: audit.Denied,
			Reason: "invalid_token", ClientID: "auditor", GrantID: "cc-grant", Scopes: []string{"audit:read"}}},
		{"revoked consent", "revoked", tx, nil, 401, audit.Event{Outcome: audit.Denied, Reason: "invalid_token",
			ClientID: "app", CustomerID: alice, GrantID: grant, AccountID: accCard, Purpose: purposePFM, Scopes: allData}},
		{"missing scope", "accounts", "/v1/accounts/" + accCard + "/balances", nil, 403, audit.Event{Outcome: audit.Denied,
			Reason: "insufficient_scope", ClientID: "app", CustomerID: alice, GrantID: grant, AccountID: accCard,
			Purpose: purposePFM, Scopes: []string{"accounts:read"}}},
		{"prohibited purpose: the declared purpose is recorded", "pfm", tx, []string{"Data-Purpose", "advertising"}, 403,
			audit.Event{Outcome: audit.Denied, Reason: "purpose_prohibited", ClientID: "app", CustomerID: alice, GrantID: grant,
				AccountID: accCard, Purpose: "advertising", Scopes: allData}},
		{"purpose not consented", "pfm", tx, []string{"Data-Purpose", "credit_underwriting"}, 403, audit.Event{Outcome: audit.Denied,
			Reason: "purpose_not_consented", ClientID: "app", CustomerID: alice, GrantID: grant, AccountID: accCard,
			Purpose: "credit_underwriting", Scopes: allData}},
		{"account outside the consent: the account asked for is recorded", "pfm", "/v1/accounts/" + accSavings, nil, 404,
			audit.Event{Outcome: audit.Denied, Reason: "account_not_found", ClientID: "app", CustomerID: alice, GrantID: grant,
				AccountID: accSavings, Purpose: purposePFM, Scopes: allData}},
		{"no balance yet", "pfm", "/v1/accounts/" + accNew + "/balances", nil, 404, audit.Event{Outcome: audit.Denied,
			Reason: "not_found", ClientID: "app", CustomerID: alice, GrantID: grant, AccountID: accNew, Purpose: purposePFM, Scopes: allData}},
		{"bad cursor", "pfm", tx + "?cursor=garbage", nil, 400, audit.Event{Outcome: audit.Denied, Reason: "invalid_cursor",
			ClientID: "app", CustomerID: alice, GrantID: grant, AccountID: accCard, Purpose: purposePFM, Scopes: allData}},
		{"history window", "pfm", tx + "?from=2020-01-01", nil, 400, audit.Event{Outcome: audit.Denied, Reason: "history_window_exceeded",
			ClientID: "app", CustomerID: alice, GrantID: grant, AccountID: accCard, Purpose: purposePFM, Scopes: allData}},
		{"authenticator down", "broken", "/v1/accounts", nil, 500, audit.Event{Outcome: audit.Denied, Reason: "internal_error"}},
		{"handler panics", "panic", "/v1/accounts", nil, 500, audit.Event{Outcome: audit.Denied, Reason: "internal_error"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("access-%02d", i)
			rec := e.do(t, tt.token, tt.path, append([]string{HeaderInteractionID, id}, tt.headers...)...)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			got := eventOf(t, e, id)
			want := tt.want
			want.Type, want.Method, want.Status, want.InteractionID = audit.DataAccess, http.MethodGet, tt.status, id
			if want.Reason == "purpose_prohibited" || want.Reason == "purpose_not_consented" {
				want.Type = audit.PurposeBlocked // SPEC §4: refused purposes are purpose blocks
			}
			want.Path, _, _ = strings.Cut(tt.path, "?")
			if want.Scopes == nil {
				want.Scopes = []string{}
			}
			if got.Scopes == nil {
				got.Scopes = []string{}
			}
			got.Seq, got.EventID, got.OccurredAt, got.PrevHash, got.Hash = 0, "", want.OccurredAt, "", ""
			slices.Sort(got.Scopes)
			slices.Sort(want.Scopes)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("event\n got %+v\nwant %+v", got, want)
			}
		})
	}
	rep, err := e.audit.Verify(context.Background(), e.signer.KeySet())
	if err != nil || !rep.Valid || rep.Events != int64(len(tests)) {
		t.Errorf("verify: %+v %v", rep, err)
	}
}

// No audit, no data: the answer is held until its event is recorded, and
// when recording fails the caller gets 503 audit_unavailable and nothing
// else, for a refusal as for data.
func TestNoAuditNoData(t *testing.T) {
	down := apperr.Wrap(apperr.AuditUnavailable, "The audit log could not record this request.",
		fmt.Errorf("%w: disk full", audit.ErrUnavailable))
	e := newEnvWith(t, recorderFunc(func(context.Context, audit.Event) (audit.Event, error) { return audit.Event{}, down }))
	for _, tt := range []struct{ name, token, path string }{
		{"transactions", "pfm", "/v1/accounts/" + accCard + "/transactions"},
		{"account", "pfm", "/v1/accounts/" + accCard},
		{"refusal for a token", "", "/v1/accounts"},
		{"refusal for a scope", "accounts", "/v1/accounts/" + accCard + "/balances"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.do(t, tt.token, tt.path)
			problem(t, rec, http.StatusServiceUnavailable, "audit_unavailable")
			for _, leak := range []string{accCard, "tx-", "****", `"data"`} {
				if strings.Contains(rec.Body.String(), leak) {
					t.Errorf("503 body carries data (%q): %s", leak, rec.Body)
				}
			}
			if h := rec.Header().Get("WWW-Authenticate"); h != "" {
				t.Errorf("the withheld answer's challenge leaked: %q", h)
			}
		})
	}

	// The real writer, closed: the same.
	e = newEnv(t)
	_ = e.writer.Close()
	rec := e.do(t, "pfm", "/v1/accounts/"+accCard+"/transactions")
	problem(t, rec, http.StatusServiceUnavailable, "audit_unavailable")
	if strings.Contains(rec.Body.String(), "tx-") {
		t.Errorf("503 body carries data: %s", rec.Body)
	}
}

// The event is recorded before a byte of the answer goes out.
func TestAnswerHeldUntilRecorded(t *testing.T) {
	var rec *httptest.ResponseRecorder
	var recorded []audit.Event
	e := newEnvWith(t, recorderFunc(func(_ context.Context, ev audit.Event) (audit.Event, error) {
		if n := rec.Body.Len(); n != 0 {
			t.Errorf("%d bytes of the answer were written before its event was recorded", n)
		}
		recorded = append(recorded, ev)
		return ev, nil
	}))
	for _, path := range dataPaths {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer pfm")
		rec = httptest.NewRecorder()
		e.engine.ServeHTTP(rec, req)
		e.v.Check(t, req, rec.Code, rec.Header(), rec.Body.Bytes())
		if rec.Code != http.StatusOK || rec.Body.Len() == 0 || rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("%s: %d %q %s", path, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
	}
	if len(recorded) != len(dataPaths) {
		t.Errorf("%d events for %d calls", len(recorded), len(dataPaths))
	}
}

func TestRegisterDataRequiresAudit(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("RegisterData without an audit recorder did not refuse")
		}
	}()
	RegisterData(gin.New(), Deps{Accounts: newEnv(t).store, Auth: fakeAuth{}})
}
