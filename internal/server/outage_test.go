package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
)

// outageLoad reads transactions in a loop and keeps what it saw: the
// interaction id of every 200, and any answer that breaks the rules.
type outageLoad struct {
	mu       sync.Mutex
	served   []string // interaction ids answered 200
	statuses map[int]int
	bad      []string // answers that break "no audit, no data" or carry a 500
	n        atomic.Int64
}

func (l *outageLoad) servedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.served)
}

func (l *outageLoad) call(client *http.Client, u, token string) {
	id := fmt.Sprintf("outage-%d", l.n.Add(1))
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("x-fapi-interaction-id", id)
	req.Header.Set("x-fapi-customer-ip-address", "203.0.113.7")
	resp, err := client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses[resp.StatusCode]++
	switch {
	case resp.StatusCode == http.StatusOK:
		l.served = append(l.served, id)
	case resp.StatusCode == http.StatusServiceUnavailable:
		var p struct {
			Code string          `json:"code"`
			Data json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(body, &p)
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") || p.Data != nil ||
			(p.Code != "service_unavailable" && p.Code != "audit_unavailable") {
			l.bad = append(l.bad, fmt.Sprintf("503 %s %s", resp.Header.Get("Content-Type"), body))
		}
	default:
		l.bad = append(l.bad, fmt.Sprintf("%d %s", resp.StatusCode, body))
	}
}

// TestDatabaseOutage stops PostgreSQL under load and starts it again. While
// it is down: /readyz is 503, data calls get 503 problem+json and no data,
// the token endpoint answers 503 temporarily_unavailable (RFC 6749), never
// a 500. Once it is back, the same process serves again within seconds,
// and every 200 the load saw has its data.access event.
func TestDatabaseOutage(t *testing.T) {
	pg := newPGCluster(t)
	s := testutil.Start(t, store.Postgres, testutil.Options{DatabaseURL: pg.URL()})
	fr := testutil.DemoFlow()
	tok := s.Authorize(t, fr)
	path := s.URL + "/v1/accounts/" + cardAccount(t, s, tok.AccessToken) + "/transactions?limit=5"

	load := &outageLoad{statuses: map[int]int{}}
	// The load's own connections, closed before the node shuts down: a
	// connection dialled and never used would hold its shutdown for 5 s.
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	client := &http.Client{Timeout: 20 * time.Second, Transport: tr}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		http.DefaultTransport.(*http.Transport).CloseIdleConnections() // raw's
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				load.call(client, path, tok.AccessToken)
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); load.servedCount() < 20 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	// While it is down, every kind of call fails cleanly.
	if st, _, body := raw(t, "GET", s.URL+"/readyz", "", "", nil); st != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database down: %d %s", st, body)
	}
	if st, _, body := raw(t, "GET", s.URL+"/healthz", "", "", nil); st != http.StatusOK {
		t.Errorf("/healthz (the process is up) with the database down: %d %s", st, body)
	}
	form := "application/x-www-form-urlencoded"
	basic := func(id, secret string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(id, secret) }
	}
	_, challenge := testutil.PKCE()
	for _, c := range []struct{ name, path, body string }{
		{"refresh", "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}.Encode()},
		{"client_credentials", "/oauth2/token", "grant_type=client_credentials&scope=audit:read"},
		{"PAR", "/oauth2/par", testutil.PARForm(fr, "st", challenge).Encode()},
		{"introspect", "/oauth2/introspect", "token=" + url.QueryEscape(tok.AccessToken)},
		{"revoke", "/oauth2/revoke", "token=" + url.QueryEscape(tok.AccessToken)},
	} {
		id, secret := fr.ClientID, fr.ClientSecret
		if c.name == "client_credentials" {
			id, secret = "demo-auditor", "demo-auditor-secret"
		}
		st, _, body := raw(t, "POST", s.URL+c.path, form, c.body, basic(id, secret))
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if st != http.StatusServiceUnavailable || e.Error != "temporarily_unavailable" {
			t.Errorf("%s with the database down: %d %s, want 503 temporarily_unavailable", c.name, st, body)
		}
	}
	time.Sleep(time.Second) // the load meets the outage too

	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	var recovered time.Duration
	for {
		st, _, _ := raw(t, "GET", path, "", "", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			r.Header.Set("x-fapi-customer-ip-address", "203.0.113.7")
		})
		if st == http.StatusOK {
			recovered = time.Since(restarted)
			break
		}
		if time.Since(restarted) > 30*time.Second {
			t.Fatalf("30 s after PostgreSQL came back the node still answers %d", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st, _, body := raw(t, "GET", s.URL+"/readyz", "", "", nil); st != http.StatusOK {
		t.Errorf("/readyz after recovery: %d %s", st, body)
	}
	if r := s.Refresh(t, fr, tok.RefreshToken); r.StatusCode != http.StatusOK {
		t.Errorf("the refresh token after the outage: %d %s (an outage must not end a grant)", r.StatusCode, r.Body)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	load.mu.Lock()
	defer load.mu.Unlock()
	if len(load.bad) > 0 {
		t.Fatalf("%d answers broke the rules during the outage, e.g. %s", len(load.bad), load.bad[0])
	}
	if load.statuses[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("the load never met the outage: %v", load.statuses)
	}
	ctx := context.Background()
	reader := audit.NewReader(s.DB)
	for _, id := range load.served {
		evs, err := reader.ByInteractionID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Type != audit.DataAccess || evs[0].Status != http.StatusOK {
			t.Fatalf("response %s was served 200; its events: %+v", id, evs)
		}
	}
	if rep, err := audit.Verify(ctx, s.DB, s.Node.AuditKeys()); err != nil || !rep.Valid {
		t.Fatalf("the audit log after the outage: %+v %v", rep, err)
	}
	t.Logf("outage of %s: load answers %v; the same process served again %s after PostgreSQL restarted",
		restarted.Sub(down).Round(time.Millisecond), load.statuses, recovered.Round(time.Millisecond))
}
