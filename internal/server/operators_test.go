package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/webhook"
)

// The demo operator of SPEC §9.
const (
	operatorID     = "demo-operator"
	operatorSecret = "demo-operator-secret"
)

func operatorToken(t testing.TB, s *testutil.Server) string {
	t.Helper()
	r := s.ClientCredentials(t, operatorID, operatorSecret, "admin:clients")
	var tok testutil.Tokens
	r.JSON(t, &tok)
	if r.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("operator token: %d %s", r.StatusCode, r.Body)
	}
	return tok.AccessToken
}

// adminPost sends an operator call with a JSON body.
func adminPost(t testing.TB, s *testutil.Server, token, path, body string) *testutil.Response {
	t.Helper()
	req := s.NewRequest(t, http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	return s.Do(t, req)
}

type adminClient struct {
	ClientID        string  `json:"client_id"`
	Status          string  `json:"status"`
	ActiveGrants    int64   `json:"active_grants"`
	SuspendedAt     *string `json:"suspended_at"`
	SuspendedReason string  `json:"suspended_reason"`
	SuspendedBy     string  `json:"suspended_by"`
}

// clientEvent waits for the client.* webhook event of clientID from s and
// verifies its signature against s's JWKS.
func (h *hookReceiver) clientEvent(t *testing.T, s *testutil.Server, clientID, event string) webhook.Body {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		h.mu.Lock()
		for _, r := range h.got {
			var b webhook.Body
			if json.Unmarshal(r.body, &b) == nil && b.Type == event && b.Client != nil && b.Client.ClientID == clientID {
				h.mu.Unlock()
				return verifyHook(t, s, r)
			}
		}
		h.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no %s webhook for %s", event, clientID)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOperatorLifecycle drives SPEC §11's operator API through the real
// server: the operator lists the apps with live grant counts, suspends the
// demo app (its token is refused from the next call, refresh and PAR answer
// unauthorized_client, alice's dashboard says the bank paused it, a signed
// webhook tells the app), reinstates it (the same tokens work again),
// rotates its secret (the old one works during the grace period only), and
// finally ends all its grants for good. Every change is in the audit log
// with the operator's id and reason.
func TestOperatorLifecycle(t *testing.T) {
	fastWebhooks(t)
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		hooks := newHookReceiver(t, 0)
		hooks.register(t, s)
		fr := testutil.DemoFlow()
		tok := s.Authorize(t, fr)
		op := operatorToken(t, s)

		// Who may call: not the auditor, not an app's customer token.
		if r := s.Get(t, "/admin/v1/clients", auditorToken(t, s)); r.StatusCode != http.StatusForbidden {
			t.Fatalf("auditor lists clients: %d %s", r.StatusCode, r.Body)
		}
		if r := s.Get(t, "/admin/v1/clients", tok.AccessToken); r.StatusCode != http.StatusForbidden {
			t.Fatalf("app token lists clients: %d %s", r.StatusCode, r.Body)
		}

		// Keyset pages of two, following the cursor, find demo-pfm with its grant.
		var all []adminClient
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("client pages do not end")
			}
			q := url.Values{"limit": {"2"}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			r := s.Get(t, "/admin/v1/clients?"+q.Encode(), op)
			var page struct {
				Data       []adminClient `json:"data"`
				NextCursor *string       `json:"next_cursor"`
			}
			if r.StatusCode != http.StatusOK {
				t.Fatalf("list clients: %d %s", r.StatusCode, r.Body)
			}
			r.JSON(t, &page)
			all = append(all, page.Data...)
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
		if len(all) != 5 {
			t.Fatalf("listed %d clients, want the 5 demo clients: %+v", len(all), all)
		}
		var pfm adminClient
		for i, c := range all {
			if i > 0 && all[i-1].ClientID >= c.ClientID {
				t.Fatalf("clients out of order: %+v", all)
			}
			if c.ClientID == testutil.DemoClientID {
				pfm = c
			}
		}
		if pfm.Status != "active" || pfm.ActiveGrants != 1 {
			t.Fatalf("demo-pfm before suspension: %+v", pfm)
		}
		if r := s.Get(t, "/admin/v1/clients?cursor=%25%25", op); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("bad cursor: %d", r.StatusCode)
		}
		// Reads are operator calls too (SPEC §11): each is a client.viewed
		// event naming the operator; an unknown client, and the auditor's and
		// the app's tokens refused above, are denied ones.
		if r := s.Get(t, "/admin/v1/clients/"+testutil.DemoClientID, op); r.StatusCode != http.StatusOK {
			t.Fatalf("show demo-pfm: %d %s", r.StatusCode, r.Body)
		}
		if r := s.Get(t, "/admin/v1/clients/no-such-app", op); r.StatusCode != http.StatusNotFound {
			t.Fatalf("show an unknown client: %d %s", r.StatusCode, r.Body)
		}
		viewed := listAudit(t, s, auditorToken(t, s), url.Values{"type": {"client.viewed"}})
		var lists, shows, denied, refusedTokens int
		for _, ev := range viewed {
			switch {
			case ev.Outcome == "denied" && ev.ClientID == "no-such-app":
				denied++
			case ev.Outcome == "denied" && strings.HasSuffix(ev.Reason, ": insufficient_scope"):
				refusedTokens++
			case ev.Reason != "operator "+operatorID:
				t.Errorf("client.viewed names %q, want the operator", ev.Reason)
			case ev.ClientID == "":
				lists++
			case ev.ClientID == testutil.DemoClientID:
				shows++
			}
		}
		if lists != 3 || shows != 1 || denied != 1 || refusedTokens != 2 {
			t.Fatalf("client.viewed events: %d list pages, %d shows, %d denied, %d refused tokens; want 3, 1, 1, 2: %+v",
				lists, shows, denied, refusedTokens, viewed)
		}

		// Refusals: no reason, an unknown client, an unknown field.
		for _, c := range []struct {
			path, body string
			status     int
		}{
			{"/admin/v1/clients/demo-pfm/suspend", `{}`, http.StatusBadRequest},
			{"/admin/v1/clients/demo-pfm/suspend", `{"reason":"x","extra":1}`, http.StatusBadRequest},
			{"/admin/v1/clients/no-such-app/suspend", `{"reason":"x"}`, http.StatusNotFound},
			{"/admin/v1/clients/demo-pfm/rotate-secret", `{"grace_seconds":-1}`, http.StatusBadRequest},
		} {
			if r := adminPost(t, s, op, c.path, c.body); r.StatusCode != c.status {
				t.Fatalf("POST %s %s: %d %s, want %d", c.path, c.body, r.StatusCode, r.Body, c.status)
			}
		}

		// Suspend: the very next call is refused.
		r := adminPost(t, s, op, "/admin/v1/clients/demo-pfm/suspend", `{"reason":"fraud investigation 42"}`)
		var got adminClient
		r.JSON(t, &got)
		if r.StatusCode != http.StatusOK || got.Status != "suspended" || got.SuspendedBy != operatorID ||
			got.SuspendedReason != "fraud investigation 42" || got.SuspendedAt == nil || got.ActiveGrants != 1 {
			t.Fatalf("suspend: %d %s", r.StatusCode, r.Body)
		}
		if r := s.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusUnauthorized ||
			!strings.Contains(string(r.Body), "suspended") {
			t.Fatalf("data call of a suspended app: %d %s", r.StatusCode, r.Body)
		}
		// FDX: the same gate, the same RFC 6750 401.
		if r := s.Get(t, "/fdx/v6/accounts", tok.AccessToken); r.StatusCode != http.StatusUnauthorized ||
			!strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("FDX call of a suspended app: %d %s %s", r.StatusCode, r.Header.Get("WWW-Authenticate"), r.Body)
		}
		// No sync_available notice is scheduled for a suspended app's grants.
		var acct string
		if err := s.DB.Raw(`SELECT account_id FROM consent_accounts WHERE consent_id = ? LIMIT 1`, tok.GrantID).Scan(&acct).Error; err != nil || acct == "" {
			t.Fatalf("account of the grant: %v", err)
		}
		if n, err := webhook.NoteSyncChanges(s.DB.DB, []string{acct}, time.Now()); err != nil || n != 0 {
			t.Fatalf("sync notices for a suspended app: %d, %v (want none)", n, err)
		}
		if r := s.Refresh(t, fr, tok.RefreshToken); r.StatusCode != http.StatusBadRequest ||
			!strings.Contains(string(r.Body), "unauthorized_client") {
			t.Fatalf("refresh of a suspended app: %d %s", r.StatusCode, r.Body)
		}
		if in := introspect(t, s, tok.AccessToken); in["active"] != false {
			t.Fatalf("introspection of a suspended app's token: %v", in)
		}
		_, challenge := testutil.PKCE()
		if r := s.PostForm(t, "/oauth2/par", fr.ClientID, fr.ClientSecret, testutil.PARForm(fr, "st", challenge)); r.StatusCode != http.StatusBadRequest ||
			!strings.Contains(string(r.Body), "unauthorized_client") {
			t.Fatalf("PAR of a suspended app: %d %s", r.StatusCode, r.Body)
		}
		alice := s.NewBrowser()
		loginBrowser(t, s, alice, "alice", "alice-password-1")
		if page := alice.Get(t, "/dashboard"); !strings.Contains(string(page.Body), "Paused by your bank") {
			t.Fatalf("dashboard of a suspended app's grant:\n%s", page.Body)
		}
		if b := hooks.clientEvent(t, s, testutil.DemoClientID, webhook.EventClientSuspended); b.Client.Status != "suspended" ||
			b.Client.Reason != "fraud investigation 42" {
			t.Fatalf("client.suspended webhook: %+v", b.Client)
		}
		auditor := auditorToken(t, s)
		evs := listAudit(t, s, auditor, url.Values{"type": {"client.suspended"}, "client_id": {testutil.DemoClientID}})
		// The two refused attempts above, then the suspension.
		if len(evs) != 3 || evs[0].Outcome != "denied" || evs[0].Status != http.StatusBadRequest ||
			evs[2].Outcome != "allowed" || evs[2].Reason != "operator demo-operator: fraud investigation 42" {
			t.Fatalf("client.suspended events: %+v", evs)
		}

		// Reinstate: the same, unexpired tokens work again.
		r = adminPost(t, s, op, "/admin/v1/clients/demo-pfm/reinstate", `{"reason":"cleared"}`)
		r.JSON(t, &got)
		if r.StatusCode != http.StatusOK || got.Status != "active" || got.SuspendedAt != nil {
			t.Fatalf("reinstate: %d %s", r.StatusCode, r.Body)
		}
		if r := s.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusOK {
			t.Fatalf("data call after reinstatement: %d %s", r.StatusCode, r.Body)
		}
		if n, err := webhook.NoteSyncChanges(s.DB.DB, []string{acct}, time.Now()); err != nil || n != 1 {
			t.Fatalf("sync notices after reinstatement: %d, %v (want one)", n, err)
		}
		hooks.clientEvent(t, s, testutil.DemoClientID, webhook.EventClientReinstated)
		if page := alice.Get(t, "/dashboard"); strings.Contains(string(page.Body), "Paused by your bank") {
			t.Fatal("dashboard still says paused after reinstatement")
		}

		// Rotate the secret: the old one works during the grace period.
		r = adminPost(t, s, op, "/admin/v1/clients/demo-pfm/rotate-secret", `{"reason":"yearly"}`)
		var rot struct {
			ClientSecret string `json:"client_secret"`
			Until        string `json:"previous_secret_expires_at"`
		}
		r.JSON(t, &rot)
		if r.StatusCode != http.StatusOK || rot.ClientSecret == "" || rot.ClientSecret == testutil.DemoClientSecret {
			t.Fatalf("rotate: %d %s", r.StatusCode, r.Body)
		}
		if until, err := time.Parse(time.RFC3339, rot.Until); err != nil || time.Until(until) < 23*time.Hour {
			t.Fatalf("grace period ends %q, want the 24h default", rot.Until)
		}
		refresh := func(secret string) *testutil.Response {
			f := fr
			f.ClientSecret = secret
			r := s.Refresh(t, f, tok.RefreshToken)
			if r.StatusCode == http.StatusOK {
				r.JSON(t, &tok)
			}
			return r
		}
		if r := refresh(testutil.DemoClientSecret); r.StatusCode != http.StatusOK {
			t.Fatalf("old secret within the grace period: %d %s", r.StatusCode, r.Body)
		}
		if r := refresh(rot.ClientSecret); r.StatusCode != http.StatusOK {
			t.Fatalf("new secret: %d %s", r.StatusCode, r.Body)
		}
		r = adminPost(t, s, op, "/admin/v1/clients/demo-pfm/rotate-secret", `{"grace_seconds":0}`)
		var rot2 struct {
			ClientSecret string `json:"client_secret"`
		}
		r.JSON(t, &rot2)
		if r.StatusCode != http.StatusOK || rot2.ClientSecret == "" {
			t.Fatalf("second rotation: %d %s", r.StatusCode, r.Body)
		}
		for _, old := range []string{testutil.DemoClientSecret, rot.ClientSecret} {
			if r := refresh(old); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("rotated-out secret after a zero grace period: %d %s", r.StatusCode, r.Body)
			}
		}
		if r := refresh(rot2.ClientSecret); r.StatusCode != http.StatusOK {
			t.Fatalf("newest secret: %d %s", r.StatusCode, r.Body)
		}
		if evs := listAudit(t, s, auditor, url.Values{"type": {"client.secret_rotated"}, "outcome": {"allowed"}}); len(evs) != 2 ||
			evs[0].ClientID != testutil.DemoClientID || !strings.HasPrefix(evs[0].Reason, "operator demo-operator: yearly (previous secret valid until ") {
			t.Fatalf("client.secret_rotated events: %+v", evs)
		}

		// Revoke all grants: for good, with consent.revoked naming the operator.
		r = adminPost(t, s, op, "/admin/v1/clients/demo-pfm/revoke-grants", `{"reason":"app withdrawn"}`)
		var rg struct {
			Revoked int `json:"revoked_grants"`
		}
		r.JSON(t, &rg)
		if r.StatusCode != http.StatusOK || rg.Revoked != 1 {
			t.Fatalf("revoke-grants: %d %s", r.StatusCode, r.Body)
		}
		if r := s.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("data call after revoke-grants: %d", r.StatusCode)
		}
		f := fr
		f.ClientSecret = rot2.ClientSecret
		if r := s.Refresh(t, f, tok.RefreshToken); r.StatusCode != http.StatusBadRequest ||
			!strings.Contains(string(r.Body), "invalid_grant") {
			t.Fatalf("refresh after revoke-grants: %d %s", r.StatusCode, r.Body)
		}
		revoked := grantAudit(t, s, tok.GrantID, "consent.revoked")
		if len(revoked) != 1 || revoked[0]["reason"] != "operator demo-operator: app withdrawn" {
			t.Fatalf("consent.revoked events: %v", revoked)
		}
		hooks.wait(t, tok.GrantID, webhook.EventRevoked, 1)
		if page := alice.Get(t, "/dashboard"); !strings.Contains(string(page.Body), "Stopped by your bank") {
			t.Fatalf("dashboard after revoke-grants:\n%s", page.Body)
		}
		r = s.Get(t, "/admin/v1/clients/demo-pfm", op)
		r.JSON(t, &got)
		if r.StatusCode != http.StatusOK || got.ActiveGrants != 0 {
			t.Fatalf("after revoke-grants: %d %s", r.StatusCode, r.Body)
		}
	})
}

// TestSuspendedUserinfo: a suspended aggregator's access token is refused
// at userinfo too (401), and works there again once reinstated.
func TestSuspendedUserinfo(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		fr := testutil.FlowRequest{ClientID: aggregatorID, ClientSecret: aggregatorSecret, RedirectURI: aggregatorRedirect,
			Scopes: []string{"openid", "profile", "accounts:read"}, Purpose: "personal_finance_management",
			Username: "alice", Password: "alice-password-1", Extra: url.Values{"nonce": {"n-0123456789"}}}
		tok := s.Authorize(t, fr)
		if r := s.Get(t, "/userinfo", tok.AccessToken); r.StatusCode != http.StatusOK {
			t.Fatalf("userinfo: %d %s", r.StatusCode, r.Body)
		}
		op := operatorToken(t, s)
		if r := adminPost(t, s, op, "/admin/v1/clients/demo-aggregator/suspend", `{"reason":"audit finding"}`); r.StatusCode != http.StatusOK {
			t.Fatalf("suspend: %d %s", r.StatusCode, r.Body)
		}
		if r := s.Get(t, "/userinfo", tok.AccessToken); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("userinfo of a suspended app: %d %s", r.StatusCode, r.Body)
		}
		// The front channel (the aggregator is PAR-exempt) refuses it too,
		// back to its registered redirect URI.
		_, challenge := testutil.PKCE()
		r := s.Get(t, "/oauth2/authorize?"+url.Values{"client_id": {aggregatorID}, "redirect_uri": {aggregatorRedirect},
			"response_type": {"code"}, "scope": {"openid accounts:read"}, "state": {"st-1"}, "nonce": {"n-0123456789"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}}.Encode(), "")
		loc, _ := url.Parse(r.Header.Get("Location"))
		if r.StatusCode/100 != 3 || loc == nil || loc.Query().Get("error") != "unauthorized_client" {
			t.Fatalf("front-channel authorization of a suspended app: %d %s", r.StatusCode, r.Header.Get("Location"))
		}
		if r := adminPost(t, s, op, "/admin/v1/clients/demo-aggregator/reinstate", `{}`); r.StatusCode != http.StatusOK {
			t.Fatalf("reinstate: %d %s", r.StatusCode, r.Body)
		}
		if r := s.Get(t, "/userinfo", tok.AccessToken); r.StatusCode != http.StatusOK {
			t.Fatalf("userinfo after reinstatement: %d %s", r.StatusCode, r.Body)
		}
	})
}
