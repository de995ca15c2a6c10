package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/consentgate/consentgate/internal/demo"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/ingest"
	"github.com/consentgate/consentgate/internal/server"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
	"github.com/consentgate/consentgate/internal/webhook"
)

// syncFeed is a provider of the demo institution feeding a customer, dave,
// who can log in: his id is the one the provider's records derive, so the
// provider's account records name him.
type syncFeed struct {
	s     *testutil.Server
	token string
}

const daveProviderID = "c-sync"

func newSyncFeed(t *testing.T, s *testutil.Server) *syncFeed {
	t.Helper()
	ids := identity.NewService(s.DB, nil)
	err := ids.CreateCustomer(t.Context(), identity.Customer{ID: ingest.CustomerID(demo.InstitutionID, daveProviderID),
		Username: "dave", DisplayName: "Dave Sync"}, "dave-password-1")
	if err != nil {
		t.Fatal(err)
	}
	var tok testutil.Tokens
	s.ClientCredentials(t, "demo-provider", "demo-provider-secret", "provider:write").JSON(t, &tok)
	f := &syncFeed{s: s, token: tok.AccessToken}
	var accts, bals []string
	for i := 1; i <= 3; i++ {
		accts = append(accts, fmt.Sprintf(`{"id":"a-%d","customer_id":%q,"type":"checking","display_name":"Account %d","last4":"100%d","currency":"USD"}`, i, daveProviderID, i, i))
		bals = append(bals, fmt.Sprintf(`{"account_id":"a-%d","current":"10.00","available":"10.00","currency":"USD","as_of":%q}`, i, time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)))
	}
	f.post(t, "/v1/provider/accounts", accts...)
	f.post(t, "/v1/provider/balances", bals...)
	return f
}

func (f *syncFeed) post(t *testing.T, path string, records ...string) {
	t.Helper()
	req := f.s.NewRequest(t, http.MethodPost, path, bytes.NewBufferString(`{"records":[`+strings.Join(records, ",")+`]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+f.token)
	if r := f.s.Do(t, req); r.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", path, r.StatusCode, r.Body)
	}
}

// tx is a provider transaction record on account a-N.
func tx(id, account, status, amount string, at time.Time) string {
	rec := fmt.Sprintf(`{"id":%q,"account_id":%q,"status":%q,"transacted_at":%q,"amount":%q,"currency":"USD","description":"Card payment %s","merchant_name":"Shop %s","merchant_category_code":"5411","card_last4":"4242"`,
		id, account, status, at.Format(time.RFC3339), amount, id, id)
	if status == "booked" {
		rec += fmt.Sprintf(`,"booked_at":%q`, at.Add(time.Hour).Format(time.RFC3339))
	}
	return rec + "}"
}

func removal(id, account string) string {
	return fmt.Sprintf(`{"id":%q,"account_id":%q,"reversed":true}`, id, account)
}

func daveFlow() testutil.FlowRequest {
	fr := testutil.DemoFlow()
	fr.Username, fr.Password = "dave", "dave-password-1"
	return fr
}

type syncTx struct {
	TransactionID string  `json:"transaction_id"`
	AccountID     string  `json:"account_id"`
	Status        string  `json:"status"`
	Amount        string  `json:"amount"`
	Description   *string `json:"description"`
	MerchantName  *string `json:"merchant_name"`
	CardLast4     *string `json:"card_last4"`
}

type syncPage struct {
	Added, Modified []syncTx
	Removed         []struct {
		TransactionID string `json:"transaction_id"`
	}
	NextCursor string `json:"next_cursor"`
	HasMore    bool   `json:"has_more"`
}

// syncRun follows one run to its end, alternating nodes, and returns what
// it saw as "kind id" lines in order, and the final cursor.
func syncRun(t *testing.T, nodes []*testutil.Server, token, account, cursor string, count int, headers ...string) ([]string, string) {
	t.Helper()
	var seen []string
	for i := 0; ; i++ {
		q := url.Values{"count": {strconv.Itoa(count)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r := nodes[i%len(nodes)].Get(t, "/v1/accounts/"+account+"/transactions/sync?"+q.Encode(), token, headers...)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("sync page %d: %d %s", i, r.StatusCode, r.Body)
		}
		var p syncPage
		r.JSON(t, &p)
		for _, x := range p.Added {
			seen = append(seen, "added "+x.TransactionID+" "+x.Status+" "+x.Amount)
		}
		for _, x := range p.Modified {
			seen = append(seen, "modified "+x.TransactionID+" "+x.Status+" "+x.Amount)
		}
		for _, x := range p.Removed {
			seen = append(seen, "removed "+x.TransactionID)
		}
		cursor = p.NextCursor
		if !p.HasMore {
			return seen, cursor
		}
	}
}

// TestTransactionSync is SPEC §12 end to end on two nodes sharing one
// database: a provider posts, updates, posts-from-pending and removes
// transactions while the app syncs from both nodes; every change arrives
// once, nothing from outside the consent; a signed, coalesced
// sync_available webhook announces the changes; revocation ends both.
func TestTransactionSync(t *testing.T) {
	t.Setenv(server.EnvWebhookInterval, "100ms")
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			dbURL := testdb.URL(t, d)
			clock := &testutil.Clock{}
			a := testutil.Start(t, d, testutil.Options{DatabaseURL: dbURL, Clock: clock})
			b := testutil.Start(t, d, testutil.Options{DatabaseURL: dbURL, Clock: clock})
			nodes := []*testutil.Server{a, b}
			feed := newSyncFeed(t, a)
			hooks := newHookReceiver(t, 0)
			hooks.register(t, a)

			now := time.Now().UTC()
			acct := ingest.AccountID(demo.InstitutionID, "a-1")
			id := func(p string) string { return ingest.TransactionID(demo.InstitutionID, p) }
			feed.post(t, "/v1/provider/transactions",
				tx("t-1", "a-1", "pending", "-5.00", now.Add(-3*time.Hour)),
				tx("t-2", "a-1", "booked", "-7.50", now.Add(-48*time.Hour)),
				tx("t-3", "a-1", "pending", "-1.00", now.Add(-2*time.Hour)),
				tx("t-4", "a-1", "pending", "-9.99", now.Add(-time.Hour)),
				tx("t-old", "a-1", "booked", "-3.00", now.AddDate(-3, 0, 0)), // before the consent's history window
				tx("t-other", "a-2", "booked", "-2.00", now.Add(-time.Hour)),
			)
			fr := daveFlow()
			fr.Accounts = []string{acct} // a-2 and a-3 are not in this consent
			tok := a.Authorize(t, fr)

			// The first sync: everything the window allows, as added, over
			// pages served by both nodes.
			seen, cursor := syncRun(t, nodes, tok.AccessToken, acct, "", 2)
			slices.Sort(seen)
			want := []string{"added " + id("t-1") + " pending -5.00", "added " + id("t-2") + " booked -7.50",
				"added " + id("t-3") + " pending -1.00", "added " + id("t-4") + " pending -9.99"}
			slices.Sort(want)
			if !slices.Equal(seen, want) {
				t.Fatalf("first sync:\n got %v\nwant %v", seen, want)
			}
			if more, _ := syncRun(t, nodes, tok.AccessToken, acct, cursor, 2); len(more) != 0 {
				t.Fatalf("nothing changed, yet sync returned %v", more)
			}

			// One batch: t-1 posts from pending, t-4's amount changes while
			// pending, t-3 drops off, t-5 is new, and another account changes.
			feed.post(t, "/v1/provider/transactions",
				tx("t-1", "a-1", "booked", "-5.00", now.Add(-3*time.Hour)),
				tx("t-4", "a-1", "pending", "-12.00", now.Add(-time.Hour)),
				removal("t-3", "a-1"),
				tx("t-5", "a-1", "pending", "-4.20", now.Add(-time.Minute)),
				tx("t-other2", "a-2", "pending", "-2.00", now.Add(-time.Minute)),
			)
			start := time.Now()
			seen, cursor = syncRun(t, []*testutil.Server{b, a}, tok.AccessToken, acct, cursor, 1)
			// In sequence order: a batch's writes in record order, then its removals.
			want = []string{"modified " + id("t-1") + " booked -5.00", "modified " + id("t-4") + " pending -12.00",
				"added " + id("t-5") + " pending -4.20", "removed " + id("t-3")}
			if !slices.Equal(seen, want) {
				t.Fatalf("incremental sync, in order:\n got %v\nwant %v", seen, want)
			}
			// /v1 pages still hide the removed transaction.
			var page struct{ Data []syncTx }
			a.Get(t, "/v1/accounts/"+acct+"/transactions", tok.AccessToken).JSON(t, &page)
			for _, x := range page.Data {
				if x.TransactionID == id("t-3") {
					t.Fatal("the removed transaction is still on the transactions page")
				}
			}

			// The webhook: signed, no transaction data, within seconds.
			got := waitSyncHooks(t, hooks, tok.GrantID, 1)
			checkSyncHook(t, a, got[0], tok.GrantID, acct)
			t.Logf("%s: sync_available arrived %s after the batch", d, time.Since(start).Round(time.Millisecond))

			// Two more batches within the minute: coalesced into one notice a
			// minute after the first, not sent yet.
			feed.post(t, "/v1/provider/transactions", tx("t-6", "a-1", "pending", "-1.11", now))
			feed.post(t, "/v1/provider/transactions", tx("t-7", "a-1", "pending", "-2.22", now))
			var times []int64
			if err := a.DB.Raw(`SELECT next_attempt_at FROM webhook_deliveries WHERE grant_id = ? AND event = ? AND delivered_at IS NULL`,
				tok.GrantID, webhook.EventSyncAvailable).Scan(&times).Error; err != nil {
				t.Fatal(err)
			}
			if len(times) != 1 {
				t.Fatalf("two batches within the minute scheduled %d notices, want 1 (coalesced)", len(times))
			}
			time.Sleep(500 * time.Millisecond)
			if n := len(waitSyncHooks(t, hooks, tok.GrantID, 1)); n != 1 {
				t.Fatalf("%d sync_available deliveries within the minute, want 1", n)
			}
			seen, _ = syncRun(t, nodes, tok.AccessToken, acct, cursor, 10)
			if len(seen) != 2 {
				t.Fatalf("the coalesced changes: %v", seen)
			}

			// Revoked: 401 on sync, and the pending notice is dropped unsent.
			req := b.NewRequest(t, http.MethodDelete, "/oauth2/grants/"+tok.GrantID, nil)
			req.SetBasicAuth(testutil.DemoClientID, testutil.DemoClientSecret)
			if r := b.Do(t, req); r.StatusCode != http.StatusNoContent {
				t.Fatalf("DELETE grant: %d %s", r.StatusCode, r.Body)
			}
			if r := a.Get(t, "/v1/accounts/"+acct+"/transactions/sync?cursor="+url.QueryEscape(cursor), tok.AccessToken); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("sync after revocation: %d %s", r.StatusCode, r.Body)
			}
			feed.post(t, "/v1/provider/transactions", tx("t-8", "a-1", "pending", "-3.33", now))
			clock.Advance(2 * time.Minute)
			deadline := time.Now().Add(10 * time.Second)
			for {
				var pending int64
				if err := a.DB.Raw(`SELECT COUNT(*) FROM webhook_deliveries WHERE grant_id = ? AND event = ? AND next_attempt_at IS NOT NULL`,
					tok.GrantID, webhook.EventSyncAvailable).Scan(&pending).Error; err != nil {
					t.Fatal(err)
				}
				if pending == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d notices of the revoked grant still pending", pending)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if n := len(waitSyncHooks(t, hooks, tok.GrantID, 1)); n != 1 {
				t.Fatalf("the revoked grant got %d sync_available deliveries, want only the one before", n)
			}
		})
	}
}

// waitSyncHooks waits for at least n sync_available requests for grantID
// and returns them all.
func waitSyncHooks(t *testing.T, h *hookReceiver, grantID string, n int) []hookRequest {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var out []hookRequest
		h.mu.Lock()
		for _, r := range h.got {
			var b webhook.SyncBody
			if json.Unmarshal(r.body, &b) == nil && b.GrantID == grantID && b.Type == webhook.EventSyncAvailable {
				out = append(out, r)
			}
		}
		h.mu.Unlock()
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("sync_available for %s: %d requests, want %d", grantID, len(out), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkSyncHook verifies a sync_available delivery as docs/webhooks.md
// tells apps to, and that its body is exactly the four fields of SPEC §12.
func checkSyncHook(t *testing.T, s *testutil.Server, r hookRequest, grantID, account string) {
	t.Helper()
	var set jose.JSONWebKeySet
	s.Get(t, "/jwks", "").JSON(t, &set)
	jws, err := jose.ParseSignedCompact(r.header.Get("X-Consentgate-Signature"), []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatalf("webhook signature: %v", err)
	}
	keys := set.Key(jws.Signatures[0].Protected.KeyID)
	if len(keys) != 1 {
		t.Fatal("webhook signed with a key not in the JWKS")
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("webhook signature: %v", err)
	}
	var c webhook.Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if c.Event != webhook.EventSyncAvailable || c.BodySHA256 != webhook.BodyHash(r.body) || c.ID != r.header.Get("X-Consentgate-Delivery") {
		t.Fatalf("claims %+v do not match the delivery", c)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body) != 4 || body["type"] != webhook.EventSyncAvailable || body["grant_id"] != grantID || body["account_id"] != account || body["occurred_at"] == nil {
		t.Fatalf("sync_available body: %s", r.body)
	}
}

// TestUnattendedRefreshPerResource: a three-account customer refreshed
// unattended 4 times a day on every endpoint (list, balances, transactions
// and a multi-page sync run of each account) is served; the fifth refresh
// of one resource is 429 access_exceeded with Retry-After. Calls that are
// not served (an unknown account) count for nothing (issue 14).
func TestUnattendedRefreshPerResource(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		feed := newSyncFeed(t, s)
		now := time.Now().UTC()
		feed.post(t, "/v1/provider/transactions",
			tx("r-1", "a-1", "booked", "-1.00", now.Add(-2*time.Hour)),
			tx("r-2", "a-1", "booked", "-2.00", now.Add(-time.Hour)),
			tx("r-3", "a-1", "pending", "-3.00", now.Add(-time.Minute)))
		tok := s.Authorize(t, daveFlow())
		unattended := []string{testutil.CustomerIP, ""}
		for range 5 {
			if r := s.Get(t, "/v1/accounts/nope/balances", tok.AccessToken, unattended...); r.StatusCode != http.StatusNotFound {
				t.Fatalf("unknown account: %d", r.StatusCode)
			}
		}
		var list struct {
			Data []struct {
				AccountID string `json:"account_id"`
			}
		}
		for refresh := 1; refresh <= 4; refresh++ {
			r := s.Get(t, "/v1/accounts", tok.AccessToken, unattended...)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("refresh %d: list: %d %s", refresh, r.StatusCode, r.Body)
			}
			r.JSON(t, &list)
			if len(list.Data) != 3 {
				t.Fatalf("dave's consent lists %d accounts, want 3", len(list.Data))
			}
			for _, a := range list.Data {
				for _, p := range []string{"/balances", "/transactions"} {
					if r := s.Get(t, "/v1/accounts/"+a.AccountID+p, tok.AccessToken, unattended...); r.StatusCode != http.StatusOK {
						t.Fatalf("refresh %d: %s%s: %d %s", refresh, a.AccountID, p, r.StatusCode, r.Body)
					}
				}
				// A run of several pages counts once.
				syncRun(t, []*testutil.Server{s}, tok.AccessToken, a.AccountID, "", 1, unattended...)
			}
		}
		for _, p := range []string{"/v1/accounts", "/v1/accounts/" + list.Data[0].AccountID + "/balances",
			"/v1/accounts/" + list.Data[1].AccountID + "/transactions", "/v1/accounts/" + list.Data[2].AccountID + "/transactions/sync"} {
			r := s.Get(t, p, tok.AccessToken, unattended...)
			problem(t, r, http.StatusTooManyRequests, "access_exceeded")
			if secs, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || secs <= 0 {
				t.Errorf("%s: Retry-After %q", p, r.Header.Get("Retry-After"))
			}
		}
	})
}

// TestSyncConcurrentWriters: provider batches on two nodes write one
// account at once while the app syncs from both nodes the whole time:
// every transaction arrives exactly once, none is skipped (the change
// ordinals of one account commit in order, on both databases).
func TestSyncConcurrentWriters(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			dbURL := testdb.URL(t, d)
			a := testutil.Start(t, d, testutil.Options{DatabaseURL: dbURL})
			b := testutil.Start(t, d, testutil.Options{DatabaseURL: dbURL})
			feedA := newSyncFeed(t, a)
			feedB := &syncFeed{s: b, token: feedA.token}
			acct := ingest.AccountID(demo.InstitutionID, "a-1")
			fr := daveFlow()
			fr.Accounts = []string{acct}
			tok := a.Authorize(t, fr)
			_, cursor := syncRun(t, []*testutil.Server{a, b}, tok.AccessToken, acct, "", 50)

			const writers, batches, perBatch = 4, 6, 5
			now := time.Now().UTC()
			done := make(chan struct{})
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					f := []*syncFeed{feedA, feedB}[w%2]
					for i := range batches {
						var recs []string
						for k := range perBatch {
							recs = append(recs, tx(fmt.Sprintf("w%d-%d-%d", w, i, k), "a-1", "pending", "-1.00", now.Add(-time.Minute)))
						}
						f.postRetrying(t, "/v1/provider/transactions", recs...)
					}
				}()
			}
			go func() { wg.Wait(); close(done) }()
			seen := map[string]int{}
			nodes := []*testutil.Server{a, b}
			for round := 0; ; round++ {
				finished := false
				select {
				case <-done:
					finished = true
				default:
				}
				var got []string
				got, cursor = syncRun(t, nodes[round%2:], tok.AccessToken, acct, cursor, 7)
				for _, line := range got {
					seen[line]++
				}
				if finished {
					break
				}
			}
			if len(seen) != writers*batches*perBatch {
				t.Errorf("synced %d distinct transactions, want %d", len(seen), writers*batches*perBatch)
			}
			for line, n := range seen {
				if n != 1 || !strings.HasPrefix(line, "added ") {
					t.Errorf("%q seen %d times", line, n)
				}
			}
		})
	}
}

// postRetrying posts a batch, again while the database answers that it is
// busy (concurrent writers of one account wait for each other or retry).
func (f *syncFeed) postRetrying(t *testing.T, path string, records ...string) {
	for attempt := 0; attempt < 20; attempt++ {
		req := f.s.NewRequest(t, http.MethodPost, path, bytes.NewBufferString(`{"records":[`+strings.Join(records, ",")+`]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+f.token)
		r := f.s.Do(t, req)
		switch r.StatusCode {
		case http.StatusOK:
			return
		case http.StatusServiceUnavailable, http.StatusConflict:
			time.Sleep(50 * time.Millisecond)
			continue
		}
		t.Errorf("%s: %d %s", path, r.StatusCode, r.Body)
		return
	}
	t.Errorf("%s: still busy after 20 attempts", path)
}
