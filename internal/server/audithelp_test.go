package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/server"
	"github.com/consentgate/consentgate/internal/testutil"
)

// auditEvent is an event as the auditor API shows it (SPEC §6 fields).
type auditEvent struct {
	Seq           int64    `json:"seq"`
	EventID       string   `json:"event_id"`
	OccurredAt    string   `json:"occurred_at"`
	Type          string   `json:"type"`
	Outcome       string   `json:"outcome"`
	Reason        string   `json:"reason"`
	ClientID      string   `json:"client_id"`
	CustomerID    string   `json:"customer_id"`
	GrantID       string   `json:"grant_id"`
	AccountID     string   `json:"account_id"`
	Method        string   `json:"method"`
	Path          string   `json:"path"`
	Status        int      `json:"status"`
	Purpose       string   `json:"purpose"`
	Scopes        []string `json:"scopes"`
	InteractionID string   `json:"interaction_id"`
	PrevHash      string   `json:"prev_hash"`
	Hash          string   `json:"hash"`
}

// The demo auditor of SPEC §9.
const (
	auditorID     = "demo-auditor"
	auditorSecret = "demo-auditor-secret"
)

// auditorToken is a client_credentials token of the demo auditor.
func auditorToken(t testing.TB, s *testutil.Server) string {
	t.Helper()
	r := s.ClientCredentials(t, auditorID, auditorSecret, "audit:read")
	var tok testutil.Tokens
	r.JSON(t, &tok)
	if r.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("auditor token: %d %s", r.StatusCode, r.Body)
	}
	return tok.AccessToken
}

// listAudit reads every event matching query through the auditor API,
// following the cursors.
func listAudit(t testing.TB, s *testutil.Server, token string, query url.Values) []auditEvent {
	t.Helper()
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("limit", "1000")
	var all []auditEvent
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("audit pages do not end")
		}
		r := s.Get(t, "/v1/audit/events?"+q.Encode(), token)
		var page struct {
			Data       []auditEvent `json:"data"`
			NextCursor *string      `json:"next_cursor"`
		}
		if r.StatusCode != http.StatusOK {
			t.Fatalf("audit events: %d %s", r.StatusCode, r.Body)
		}
		r.JSON(t, &page)
		all = append(all, page.Data...)
		if page.NextCursor == nil {
			return all
		}
		q.Set("cursor", *page.NextCursor)
	}
}

// byInteraction returns the events of one request.
func byInteraction(evs []auditEvent, id string) []auditEvent {
	var out []auditEvent
	for _, ev := range evs {
		if ev.InteractionID == id {
			out = append(out, ev)
		}
	}
	return out
}

// startNode runs one more node on dbURL with server options testutil.Start
// does not offer, and stops it when the test ends. It returns its base URL.
func startNode(t testing.TB, dbURL string, opts server.Options) (string, *server.Server) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	cfg := &config.Config{Addr: l.Addr().String(), DatabaseURL: dbURL, Issuer: base, Secret: []byte(testutil.TestSecret),
		Demo: true, ShutdownTimeout: 5 * time.Second}
	node, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		node.Close()
	})
	return base, node
}

// checkpoints reads the first page of signed tree heads.
func checkpoints(t testing.TB, s *testutil.Server, auditor string) []audit.TreeHead {
	t.Helper()
	r := s.Get(t, "/v1/audit/checkpoints", auditor)
	var page struct {
		Data []audit.TreeHead `json:"data"`
	}
	r.JSON(t, &page)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("checkpoints: %d %s", r.StatusCode, r.Body)
	}
	return page.Data
}
