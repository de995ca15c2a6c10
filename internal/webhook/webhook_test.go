package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
	"github.com/consentgate/consentgate/internal/webhook"
)

const (
	issuer = "https://bank.example"
	secret = "webhook-test-secret-0123456789abcdef"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// receiver is an app's webhook endpoint: it answers fail with 503, then 204,
// and keeps every request it saw.
type receiver struct {
	mu   sync.Mutex
	fail int
	got  []received
}

type received struct {
	header http.Header
	body   []byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.got = append(rc.got, received{r.Header.Clone(), b})
	if rc.fail > 0 {
		rc.fail--
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) failNext(n int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.fail = n
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

type env struct {
	db       *store.DB
	clock    *clock
	consents *consent.SQLStore
	hooks    *webhook.Store
	signer   *webhook.Signer
	recv     *receiver
	url      string
}

func newEnv(t *testing.T, db *store.DB) *env {
	t.Helper()
	for _, q := range []string{
		`INSERT INTO institutions (id, name, created_at) VALUES ('inst', 'Bank', 0)`,
		`INSERT INTO customers (id, username, password_hash, display_name, created_at) VALUES ('alice', 'alice', 'x', 'Alice', 0)`,
		`INSERT INTO accounts (id, customer_id, institution_id, type, display_name, last4, currency, status, created_at) VALUES
		 ('a1', 'alice', 'inst', 'checking', 'Everyday', '1234', 'USD', 'open', 0)`,
		`INSERT INTO oauth_clients (id, name, redirect_uris, grant_types, scopes, purposes, auth_method, created_at) VALUES
		 ('app', 'App', '[]', '[]', '[]', '[]', 'client_secret_basic', 0), ('quiet', 'Quiet', '[]', '[]', '[]', '[]', 'client_secret_basic', 0)`,
	} {
		if err := db.Exec(q).Error; err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	clk := &clock{t: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)}
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	e := &env{db: db, clock: clk, consents: consent.NewSQLStore(db), hooks: webhook.NewStore(db, clk.Now),
		signer: webhook.NewSigner([]byte(secret)), recv: rc, url: srv.URL + "/hooks/consentgate"}
	if err := e.hooks.SetURL(context.Background(), "app", e.url); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) dispatcher(backoff ...time.Duration) *webhook.Dispatcher {
	return webhook.New(e.hooks, e.signer, webhook.Options{Issuer: issuer, Now: e.clock.Now, Backoff: backoff})
}

// authorize creates an authorized consent of client lasting d.
func (e *env) authorize(t *testing.T, id, client string, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	if err := e.consents.Create(ctx, &consent.Consent{ID: id, ClientID: client, Scopes: []string{"accounts:read"},
		Purpose: "personal_finance_management", HistoryDays: 90, Duration: d, CreatedAt: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.consents.Authorize(ctx, id, "alice", []string{"a1"}, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
}

func runOnce(t *testing.T, d *webhook.Dispatcher) webhook.Round {
	t.Helper()
	r, err := d.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return r
}

// verify checks a delivery the way docs/webhooks.md tells apps to: the JWS
// against the published JWKS (as JSON), then its claims against the body.
func verify(t *testing.T, jwks []byte, got received) (webhook.Claims, webhook.Body) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(got.header.Get("X-Consentgate-Signature"), []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatalf("signature header: %v", err)
	}
	h := jws.Signatures[0].Protected
	keys := set.Key(h.KeyID)
	if len(keys) != 1 || h.ExtraHeaders[jose.HeaderType] != "webhook+jwt" {
		t.Fatalf("signature header: kid %q typ %v", h.KeyID, h.ExtraHeaders[jose.HeaderType])
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("signature does not verify with the JWKS: %v", err)
	}
	var c webhook.Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if c.BodySHA256 != webhook.BodyHash(got.body) {
		t.Fatalf("body_sha256 %q does not match the body", c.BodySHA256)
	}
	var b webhook.Body
	if err := json.Unmarshal(got.body, &b); err != nil {
		t.Fatal(err)
	}
	if c.Issuer != issuer || c.Audience != b.Grant.ClientID || c.ID != b.ID || c.Event != b.Type ||
		got.header.Get("X-Consentgate-Delivery") != b.ID || got.header.Get("Content-Type") != "application/json" {
		t.Fatalf("claims %+v do not match the delivery %+v / %v", c, b, got.header)
	}
	return c, b
}

// TestWebhookRevokedRetried: a revocation is announced, signed; the first
// attempt fails, the retry comes after the backoff with the same id and
// body, and then nothing more is sent.
func TestWebhookRevokedRetried(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{e.signer.PublicJWK()}})
		e.authorize(t, "g1", "app", 365*24*time.Hour)
		d := e.dispatcher()
		if r := runOnce(t, d); r != (webhook.Round{}) {
			t.Fatalf("round before any event: %+v", r)
		}
		e.clock.Advance(time.Minute)
		if _, err := e.consents.Revoke(ctx, "g1", "customer", e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		e.recv.failNext(1)
		if r := runOnce(t, d); r.Enqueued != 1 || r.Failed != 1 || r.Delivered != 0 {
			t.Fatalf("first round: %+v", r)
		}
		list, err := e.hooks.Deliveries(ctx, "app", 10)
		if err != nil || len(list) != 1 || list[0].State() != "pending" || list[0].Attempts != 1 || list[0].LastStatus != 503 ||
			!list[0].NextAttemptAt.Equal(e.clock.Now().Add(30*time.Second)) {
			t.Fatalf("after a failed attempt: %+v %v", list, err)
		}
		// Not yet due: nothing is sent.
		e.clock.Advance(29 * time.Second)
		if r := runOnce(t, d); r != (webhook.Round{}) || len(e.recv.requests()) != 1 {
			t.Fatalf("round before the backoff: %+v", r)
		}
		e.clock.Advance(2 * time.Second)
		if r := runOnce(t, d); r.Delivered != 1 || r.Enqueued != 0 {
			t.Fatalf("retry round: %+v", r)
		}
		if r := runOnce(t, d); r != (webhook.Round{}) {
			t.Fatalf("round after delivery: %+v", r)
		}
		got := e.recv.requests()
		if len(got) != 2 || string(got[0].body) != string(got[1].body) {
			t.Fatalf("want two identical attempts, got %d", len(got))
		}
		c1, b := verify(t, jwks, got[0])
		c2, _ := verify(t, jwks, got[1])
		if c1.ID != c2.ID || c2.IssuedAt <= c1.IssuedAt {
			t.Fatalf("retry claims %+v after %+v", c2, c1)
		}
		if b.Type != webhook.EventRevoked || b.Grant.GrantID != "g1" || b.Grant.Status != "revoked" ||
			b.Grant.RevokedBy != "customer" || b.Grant.RevokedAt == nil || b.Grant.ExpiresAt == nil {
			t.Fatalf("body: %s", got[0].body)
		}
		list, _ = e.hooks.Deliveries(ctx, "app", 10)
		if list[0].State() != "delivered" || list[0].Attempts != 2 || list[0].LastStatus != 204 || list[0].LastError != "" {
			t.Fatalf("delivery record: %+v", list[0])
		}

		// A tampered body no longer matches its signature's hash.
		if webhook.BodyHash(append(got[0].body, ' ')) == c1.BodySHA256 {
			t.Fatal("body hash ignores a changed body")
		}
	})
}

// TestWebhookExpiringAndNodes: consent.expiring once per term, a renewed
// term is announced again, clients without a webhook and revocations from
// before the registration get nothing, and two nodes running rounds at the
// same time send each delivery once.
func TestWebhookExpiringAndNodes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		e.authorize(t, "quiet-1", "quiet", 24*time.Hour) // client without a webhook
		e.authorize(t, "long", "app", 30*24*time.Hour)
		e.authorize(t, "soon", "app", 3*24*time.Hour)
		nodeA, nodeB := e.dispatcher(), e.dispatcher()
		var wg sync.WaitGroup
		rounds := make([]webhook.Round, 2)
		errs := make([]error, 2)
		for i, d := range []*webhook.Dispatcher{nodeA, nodeB} {
			wg.Add(1)
			go func() { defer wg.Done(); rounds[i], errs[i] = d.RunOnce(ctx) }()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("concurrent rounds: %v", errs)
		}
		if n := rounds[0].Delivered + rounds[1].Delivered; n != 1 {
			t.Fatalf("two nodes delivered %d times: %+v", n, rounds)
		}
		got := e.recv.requests()
		if len(got) != 1 {
			t.Fatalf("receiver got %d requests", len(got))
		}
		var b webhook.Body
		_ = json.Unmarshal(got[0].body, &b)
		if b.Type != webhook.EventExpiring || b.Grant.GrantID != "soon" || b.Grant.Status != "authorized" {
			t.Fatalf("expiring body: %s", got[0].body)
		}

		// 24 days on, "long" enters the window; "soon" has expired quietly.
		e.clock.Advance(24 * 24 * time.Hour)
		if r := runOnce(t, nodeA); r.Delivered != 1 || r.Enqueued != 1 {
			t.Fatalf("round for long: %+v", r)
		}
		if r := runOnce(t, nodeB); r != (webhook.Round{}) {
			t.Fatalf("second node repeats: %+v", r)
		}
		// A renewal starts a new term, announced again when it nears its end.
		newExp := store.Micros(e.clock.Now().Add(5 * 24 * time.Hour))
		if err := db.Exec(`UPDATE consents SET expires_at = ? WHERE id = 'long'`, newExp).Error; err != nil {
			t.Fatal(err)
		}
		if r := runOnce(t, nodeA); r.Delivered != 1 {
			t.Fatalf("round after renewal: %+v", r)
		}

		// Revoked before the client registered: not announced.
		e.authorize(t, "before", "quiet", 24*time.Hour)
		if _, err := e.consents.Revoke(ctx, "before", "client", e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)
		if err := e.hooks.SetURL(ctx, "quiet", e.url); err != nil {
			t.Fatal(err)
		}
		if r := runOnce(t, nodeA); r != (webhook.Round{}) {
			t.Fatalf("old revocation announced: %+v", r)
		}
		if n := len(e.recv.requests()); n != 3 {
			t.Fatalf("receiver got %d requests, want 3", n)
		}
	})
}

// TestWebhookGivesUp: after the last backoff step the delivery is failed
// for good, with the last error recorded; a client without a URL fails too.
func TestWebhookGivesUp(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		e.authorize(t, "g1", "app", 365*24*time.Hour)
		if _, err := e.consents.Revoke(ctx, "g1", "client", e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		e.recv.failNext(5)
		d := e.dispatcher(time.Second)
		if r := runOnce(t, d); r.Failed != 1 {
			t.Fatalf("first: %+v", r)
		}
		e.clock.Advance(time.Second)
		if r := runOnce(t, d); r.Failed != 1 {
			t.Fatalf("second: %+v", r)
		}
		e.clock.Advance(time.Hour)
		if r := runOnce(t, d); r != (webhook.Round{}) {
			t.Fatalf("attempt after giving up: %+v", r)
		}
		list, _ := e.hooks.Deliveries(ctx, "", 10)
		if len(list) != 1 || list[0].State() != "failed" || list[0].Attempts != 2 || list[0].LastError == "" {
			t.Fatalf("given-up delivery: %+v", list)
		}

		if err := e.hooks.SetURL(ctx, "nobody", e.url); err != webhook.ErrUnknownClient {
			t.Fatalf("SetURL for an unknown client: %v", err)
		}
		for _, bad := range []string{"ftp://x/y", "/relative", "https://user:pw@x/", "https://x/#frag", "javascript:alert(1)"} {
			if err := e.hooks.SetURL(ctx, "app", bad); err != webhook.ErrBadURL {
				t.Errorf("SetURL(%q): %v, want ErrBadURL", bad, err)
			}
		}
		if ok, err := e.hooks.RemoveURL(ctx, "app"); !ok || err != nil {
			t.Fatalf("RemoveURL: %v %v", ok, err)
		}
		e.authorize(t, "g2", "app", 2*24*time.Hour)
		if r := runOnce(t, d); r.Enqueued != 0 {
			t.Fatalf("enqueued without a webhook: %+v", r)
		}
	})
}
