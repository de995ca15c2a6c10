package server_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/server"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// cardAccount is the id of alice's credit card in the consent of tok.
func cardAccount(t testing.TB, s *testutil.Server, token string) string {
	t.Helper()
	var accts struct {
		Data []account `json:"data"`
	}
	r := s.Get(t, "/v1/accounts", token)
	r.JSON(t, &accts)
	for _, a := range accts.Data {
		if a.Type == "credit_card" {
			return a.AccountID
		}
	}
	t.Fatalf("no card in %s", r.Body)
	return ""
}

// TestAuditTrail: the consent's whole life and every data call, allowed or
// refused, are in the log with the SPEC §6 fields, and the log verifies.
func TestAuditTrail(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			dbURL := testdb.URL(t, d)
			s := testutil.Start(t, d, testutil.Options{DatabaseURL: dbURL})
			fr := testutil.DemoFlow()
			tok := s.Authorize(t, fr)
			card := cardAccount(t, s, tok.AccessToken)

			calls := []struct {
				id, path, token string
				headers         []string
				status          int
				reason, purpose string
			}{
				{"trail-allowed", "/v1/accounts/" + card + "/transactions?limit=3", tok.AccessToken, nil, 200, "ok", fr.Purpose},
				{"trail-prohibited", "/v1/accounts/" + card + "/transactions", tok.AccessToken, []string{"Data-Purpose", "advertising"}, 403, "purpose_prohibited", "advertising"},
				{"trail-other-account", "/v1/accounts/acc-of-nobody", tok.AccessToken, nil, 404, "account_not_found", fr.Purpose},
				{"trail-bad-cursor", "/v1/accounts/" + card + "/transactions?cursor=zz", tok.AccessToken, nil, 400, "invalid_cursor", fr.Purpose},
				{"trail-no-token", "/v1/accounts", "", nil, 401, "invalid_token", ""},
			}
			for _, c := range calls {
				r := s.Get(t, c.path, c.token, append([]string{"x-fapi-interaction-id", c.id}, c.headers...)...)
				if r.StatusCode != c.status {
					t.Fatalf("%s: %d %s", c.id, r.StatusCode, r.Body)
				}
			}

			// The rest of the grant's life: refresh, revoke.
			r := s.Refresh(t, fr, tok.RefreshToken)
			var tok2 testutil.Tokens
			r.JSON(t, &tok2)
			if r := s.PostForm(t, "/oauth2/revoke", fr.ClientID, fr.ClientSecret, url.Values{"token": {tok2.RefreshToken}}); r.StatusCode != 200 {
				t.Fatalf("revoke: %d %s", r.StatusCode, r.Body)
			}
			// A prohibited purpose at PAR, and a customer who says no.
			blocked := fr
			blocked.Purpose = "advertising"
			_, challenge := testutil.PKCE()
			if r := s.PostForm(t, "/oauth2/par", fr.ClientID, fr.ClientSecret, testutil.PARForm(blocked, "st-blocked", challenge)); r.StatusCode != 400 {
				t.Fatalf("PAR with advertising: %d %s", r.StatusCode, r.Body)
			}
			deny := fr
			deny.Deny = true
			requestURI, _ := s.Push(t, deny)
			if loc := s.Consent(t, s.NewBrowser(), deny, requestURI); loc.Query().Get("error") != "access_denied" {
				t.Fatalf("deny: %s", loc)
			}

			auditor := auditorToken(t, s)
			all := listAudit(t, s, auditor, nil)
			grant := listAudit(t, s, auditor, url.Values{"grant_id": {tok.GrantID}})
			var types []string
			for _, ev := range grant {
				types = append(types, ev.Type+"/"+ev.Outcome)
			}
			want := []string{"consent.requested/allowed", "consent.authorized/allowed", "token.issued/allowed",
				"data.access/allowed", "data.access/allowed", "purpose.blocked/denied", "data.access/denied", "data.access/denied",
				"token.refreshed/allowed", "consent.revoked/allowed", "token.revoked/allowed"}
			if !slices.Equal(types, want) {
				t.Errorf("the grant's events:\n got %v\nwant %v", types, want)
			}
			customer := grant[1].CustomerID
			if customer == "" || grant[1].ClientID != fr.ClientID || grant[1].Purpose != fr.Purpose {
				t.Errorf("consent.authorized: %+v", grant[1])
			}

			for _, c := range calls {
				evs := byInteraction(all, c.id)
				if len(evs) != 1 {
					t.Fatalf("%s: %d events", c.id, len(evs))
				}
				ev := evs[0]
				path, _, _ := strings.Cut(c.path, "?")
				outcome := "denied"
				if c.status == 200 {
					outcome = "allowed"
				}
				wantType := "data.access"
				if c.reason == "purpose_prohibited" {
					wantType = "purpose.blocked" // SPEC §4: one query finds every refused purpose
				}
				if ev.Type != wantType || ev.Outcome != outcome || ev.Reason != c.reason || ev.Status != c.status ||
					ev.Method != "GET" || ev.Path != path || ev.Purpose != c.purpose {
					t.Errorf("%s: %+v", c.id, ev)
				}
				if c.token != "" && (ev.ClientID != fr.ClientID || ev.CustomerID != customer || ev.GrantID != tok.GrantID ||
					!slices.Contains(ev.Scopes, "transactions:read")) {
					t.Errorf("%s does not say who asked: %+v", c.id, ev)
				}
				if strings.Contains(path, card) && ev.AccountID != card {
					t.Errorf("%s: account %q", c.id, ev.AccountID)
				}
			}

			// The refused data call and the refused PAR, both found by one query.
			pb := listAudit(t, s, auditor, url.Values{"type": {"purpose.blocked"}})
			onData := 0
			for _, ev := range pb {
				if ev.Outcome != "denied" || ev.Reason != "purpose_prohibited" || ev.ClientID != fr.ClientID || ev.Purpose != "advertising" {
					t.Errorf("purpose.blocked: %+v", ev)
				}
				if strings.HasPrefix(ev.Path, "/v1/") {
					onData++
				}
			}
			if len(pb) != 2 || onData != 1 {
				t.Errorf("purpose.blocked: want the PAR and the data call, got %+v", pb)
			}
			rej := listAudit(t, s, auditor, url.Values{"type": {"consent.rejected"}})
			if len(rej) != 1 || rej[0].Outcome != "denied" || rej[0].CustomerID != customer {
				t.Errorf("consent.rejected: %+v", rej)
			}
			if cc := listAudit(t, s, auditor, url.Values{"client_id": {auditorID}, "type": {"token.issued"}}); len(cc) != 1 {
				t.Errorf("the auditor's own token: %+v", cc)
			}

			// consent.expired comes from the expiry sweep: a short consent,
			// the clock moved past it, and a node starting on the database.
			short := fr
			short.Extra = url.Values{"consent_duration": {"60"}}
			tokShort := s.Authorize(t, short)
			s.Clock.Advance(2 * time.Minute)
			testutil.Start(t, d, testutil.Options{DatabaseURL: dbURL, Clock: s.Clock})
			var expired []auditEvent
			for deadline := time.Now().Add(10 * time.Second); len(expired) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				expired = listAudit(t, s, auditor, url.Values{"type": {"consent.expired"}})
			}
			if len(expired) != 1 || expired[0].GrantID != tokShort.GrantID || expired[0].CustomerID != customer {
				t.Errorf("consent.expired: %+v", expired)
			}

			var rep map[string]any
			r = s.Get(t, "/v1/audit/verify", auditor)
			r.JSON(t, &rep)
			if rep["valid"] != true || rep["events"].(float64) < float64(len(all)) {
				t.Errorf("verify: %s", r.Body)
			}
		})
	}
}

// TestAuditUnavailable: when the log cannot be written, data calls get 503
// audit_unavailable and no data, and so do refusals.
func TestAuditUnavailable(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		tok := s.Authorize(t, testutil.DemoFlow())
		card := cardAccount(t, s, tok.AccessToken)
		if err := s.DB.Exec(`ALTER TABLE audit_pending RENAME TO audit_pending_gone`).Error; err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ path, token string }{
			{"/v1/accounts/" + card + "/transactions", tok.AccessToken},
			{"/v1/accounts", tok.AccessToken},
			{"/v1/accounts/" + card + "/balances", tok.AccessToken},
			{"/v1/accounts", ""},
		} {
			r := s.Get(t, c.path, c.token)
			problem(t, r, http.StatusServiceUnavailable, "audit_unavailable")
			if strings.Contains(string(r.Body), card) || r.Header.Get("WWW-Authenticate") != "" {
				t.Errorf("%s: the 503 carries the withheld answer: %v %s", c.path, r.Header, r.Body)
			}
		}
	})
}

// TestAuditAPI: only client_credentials tokens with audit:read get in;
// pages, exports and verify agree with each other, and an export re-hashes
// to the chain head.
func TestAuditAPI(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		fr := testutil.DemoFlow()
		tok := s.Authorize(t, fr)
		for i := range 5 {
			s.Get(t, "/v1/accounts", tok.AccessToken, "x-fapi-interaction-id", "api-"+strconv.Itoa(i))
		}
		var prov testutil.Tokens
		s.ClientCredentials(t, "demo-provider", "demo-provider-secret", "provider:write").JSON(t, &prov)
		for _, c := range []struct {
			name, token string
			status      int
		}{{"no token", "", 401}, {"a customer's token", tok.AccessToken, 403}, {"provider token", prov.AccessToken, 403}} {
			for _, path := range []string{"/v1/audit/events", "/v1/audit/verify"} {
				if r := s.Get(t, path, c.token); r.StatusCode != c.status {
					t.Errorf("%s on %s: %d %s", c.name, path, r.StatusCode, r.Body)
				}
			}
		}

		auditor := auditorToken(t, s)
		all := listAudit(t, s, auditor, nil)
		var paged []auditEvent
		q := url.Values{"limit": {"2"}}
		for {
			var page struct {
				Data       []auditEvent `json:"data"`
				NextCursor *string      `json:"next_cursor"`
			}
			s.Get(t, "/v1/audit/events?"+q.Encode(), auditor).JSON(t, &page)
			paged = append(paged, page.Data...)
			if page.NextCursor == nil {
				break
			}
			q.Set("cursor", *page.NextCursor)
		}
		if len(paged) != len(all) || len(all) < 10 {
			t.Fatalf("pages of 2 gave %d events, one page %d", len(paged), len(all))
		}

		// The NDJSON export is the log: re-hash it from the genesis.
		r := s.Get(t, "/v1/audit/events", auditor, "Accept", "application/x-ndjson")
		lines := strings.Split(strings.TrimSuffix(string(r.Body), "\n"), "\n")
		if r.Header.Get("Content-Type") != "application/x-ndjson" || len(lines) < len(all) {
			t.Fatalf("export: %v, %d lines for %d events", r.Header, len(lines), len(all))
		}
		prev := audit.GenesisHash
		for i, line := range lines {
			var ev auditEvent
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatal(err)
			}
			at, err := time.Parse(time.RFC3339Nano, ev.OccurredAt)
			if err != nil {
				t.Fatal(err)
			}
			sum, err := audit.ComputeHash(prev, audit.Event{Seq: ev.Seq, EventID: ev.EventID, OccurredAt: at,
				Type: audit.Type(ev.Type), Outcome: audit.Outcome(ev.Outcome), Reason: ev.Reason, ClientID: ev.ClientID,
				CustomerID: ev.CustomerID, GrantID: ev.GrantID, AccountID: ev.AccountID, Method: ev.Method, Path: ev.Path,
				Status: ev.Status, Purpose: ev.Purpose, Scopes: ev.Scopes, InteractionID: ev.InteractionID})
			if err != nil || ev.Seq != int64(i+1) || ev.PrevHash != prev || sum != ev.Hash {
				t.Fatalf("export line %d does not chain: %s (%v)", i, line, err)
			}
			prev = ev.Hash
		}
		var rep struct {
			Valid bool `json:"valid"`
			Head  struct {
				Seq  int64  `json:"seq"`
				Hash string `json:"hash"`
			} `json:"head"`
		}
		s.Get(t, "/v1/audit/verify", auditor).JSON(t, &rep)
		if !rep.Valid || rep.Head.Seq < int64(len(lines)) {
			t.Errorf("verify %+v after an export of %d", rep, len(lines))
		}

		r = s.Get(t, "/v1/audit/events?type=data.access&client_id="+fr.ClientID, auditor, "Accept", "text/csv")
		rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
		if err != nil || !slices.Equal(rows[0], audit.CSVHeader) || len(rows) != 1+5 {
			t.Errorf("csv export: %v %d rows %v", err, len(rows), rows)
		}
	})
}

// TestAuditCheckpoints: nodes integrate and sign tree heads at the
// configured interval with the key published at jwks_uri.
func TestAuditCheckpoints(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			dbURL := testdb.URL(t, d)
			s := testutil.Start(t, d, testutil.Options{DatabaseURL: dbURL})
			tok := s.Authorize(t, testutil.DemoFlow())
			s.Get(t, "/v1/accounts", tok.AccessToken)
			base, _ := startNode(t, dbURL, server.Options{AuditCheckpointInterval: 50 * time.Millisecond})

			var size, headSeq, pending int64
			var note string
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				if err := s.DB.Raw(`SELECT seq FROM audit_head`).Row().Scan(&headSeq); err != nil {
					t.Fatal(err)
				}
				if err := s.DB.Raw(`SELECT COUNT(*) FROM audit_pending`).Row().Scan(&pending); err != nil {
					t.Fatal(err)
				}
				_ = s.DB.Raw(`SELECT tree_size, note FROM audit_tree_heads ORDER BY tree_size DESC LIMIT 1`).Row().Scan(&size, &note)
				if size == headSeq && size > 0 && pending == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no tree head of the whole log %d (last %d, %d pending)", headSeq, size, pending)
				}
			}

			var jwks jose.JSONWebKeySet
			s.Get(t, "/jwks", "").JSON(t, &jwks)
			var th audit.TreeHead
			for _, h := range checkpoints(t, s, auditorToken(t, s)) {
				if h.TreeSize == size {
					th = h
				}
			}
			if th.Note != note {
				t.Fatalf("GET /v1/audit/checkpoints has no head of size %d", size)
			}
			keys := jwks.Key(th.KeyID)
			if len(keys) != 1 || !keys[0].IsPublic() || keys[0].Algorithm != "EdDSA" {
				t.Fatalf("JWKS %+v has no public EdDSA key for kid %q", jwks, th.KeyID)
			}
			if err := audit.VerifyTreeHead(th, audit.Origin(base), &jwks); err != nil {
				t.Fatalf("tree head does not verify with the published key: %v", err)
			}
			rep, err := audit.Verify(context.Background(), s.DB, s.Node.AuditKeys())
			if err != nil || !rep.Valid || rep.Checkpoints == 0 {
				t.Errorf("verify: %+v %v", rep, err)
			}
		})
	}
}
