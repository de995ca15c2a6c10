package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/httpapi"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
)

// A node answers client_credentials token requests from a client row it
// remembers, yet every change to the client, written straight to the
// database as another node would, holds from the very next token: the
// token commits only while the client's revision is the remembered one,
// and a remembered row never refuses.
func TestRememberedClientFollowsEveryChange(t *testing.T) {
	eachDialect(t, rememberedClientFollowsChanges)
}

func rememberedClientFollowsChanges(t *testing.T, srv *testutil.Server) {
	exec := func(q string, args ...any) {
		t.Helper()
		if err := srv.DB.Exec(q, args...).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	tokens := func() int64 {
		t.Helper()
		var n int64
		if err := srv.DB.Raw(`SELECT count(*) FROM oauth_tokens WHERE client_id = ?`, auditorID).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	revision := func() int64 {
		t.Helper()
		var n int64
		if err := srv.DB.Raw(`SELECT revision FROM oauth_clients WHERE id = ?`, auditorID).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	token := func(secret, scope, interaction string) *testutil.Response {
		t.Helper()
		req := srv.NewRequest(t, http.MethodPost, "/oauth2/token",
			strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if interaction != "" {
			req.Header.Set(httpapi.HeaderInteractionID, interaction)
		}
		req.SetBasicAuth(auditorID, secret)
		return srv.Do(t, req)
	}
	expect := func(what string, r *testutil.Response, status int, issued, n int64) int64 {
		t.Helper()
		if r.StatusCode != status {
			t.Fatalf("%s: %d %s, want %d", what, r.StatusCode, r.Body, status)
		}
		if got := tokens(); got != n+issued {
			t.Fatalf("%s: %d token rows, want %d", what, got, n+issued)
		}
		return n + issued
	}

	// The first request reads the row and the node remembers it; the
	// second is served from memory.
	n := tokens()
	n = expect("first token", token(auditorSecret, "audit:read", ""), http.StatusOK, 1, n)
	n = expect("remembered", token(auditorSecret, "audit:read", ""), http.StatusOK, 1, n)
	rev := revision()

	// Suspended by another node: refused at once, and nothing stored.
	exec(`UPDATE oauth_clients SET suspended_at = ?, suspended_reason = 'test', suspended_by = 'test' WHERE id = ?`,
		store.Micros(time.Now()), auditorID)
	r := token(auditorSecret, "audit:read", "")
	n = expect("suspended", r, http.StatusBadRequest, 0, n)
	if !strings.Contains(string(r.Body), "unauthorized_client") || !strings.Contains(string(r.Body), "suspended") {
		t.Fatalf("suspended: %s, want the suspension explained", r.Body)
	}
	exec(`UPDATE oauth_clients SET suspended_at = NULL, suspended_reason = '', suspended_by = '' WHERE id = ?`, auditorID)
	n = expect("reinstated", token(auditorSecret, "audit:read", ""), http.StatusOK, 1, n)

	// Its secret rotated by another node (to the operator's, whose plain
	// text the test knows): the new secret works on the first try and the
	// old one no longer does.
	var oldHash string
	if err := srv.DB.Raw(`SELECT secret_hash FROM oauth_clients WHERE id = ?`, auditorID).Scan(&oldHash).Error; err != nil {
		t.Fatal(err)
	}
	exec(`UPDATE oauth_clients SET secret_hash = (SELECT secret_hash FROM oauth_clients WHERE id = ?) WHERE id = ?`, operatorID, auditorID)
	n = expect("rotated, new secret", token(operatorSecret, "audit:read", ""), http.StatusOK, 1, n)
	n = expect("rotated, old secret", token(auditorSecret, "audit:read", ""), http.StatusUnauthorized, 0, n)
	exec(`UPDATE oauth_clients SET secret_hash = ? WHERE id = ?`, oldHash, auditorID)
	n = expect("rotated back", token(auditorSecret, "audit:read", ""), http.StatusOK, 1, n)

	// A scope added by another node is granted at once, though the
	// remembered row lacks it; taken away, it is refused at once.
	exec(`UPDATE oauth_clients SET scopes = '["audit:read","admin:clients"]' WHERE id = ?`, auditorID)
	n = expect("scope added", token(auditorSecret, "admin:clients", ""), http.StatusOK, 1, n)
	exec(`UPDATE oauth_clients SET scopes = '["audit:read"]' WHERE id = ?`, auditorID)
	n = expect("scope removed", token(auditorSecret, "admin:clients", ""), http.StatusBadRequest, 0, n)

	// A change the token does not depend on still moves the revision: the
	// request is served again from a fresh read, and stores one token with
	// one event.
	exec(`UPDATE oauth_clients SET name = 'Renamed Auditor' WHERE id = ?`, auditorID)
	id := uuid.NewString()
	r = token(auditorSecret, "audit:read", id)
	expect("renamed", r, http.StatusOK, 1, n)
	if got := revision(); got != rev+7 {
		t.Fatalf("revision %d after 7 updates of the row, want %d", got, rev+7)
	}
	var tok testutil.Tokens
	r.JSON(t, &tok)
	if _, err := audit.Integrate(context.Background(), srv.DB); err != nil {
		t.Fatal(err)
	}
	evs := byInteraction(listAudit(t, srv, tok.AccessToken, url.Values{"type": {"token.issued"}, "client_id": {auditorID}}), id)
	if len(evs) != 1 || evs[0].Outcome != "allowed" {
		t.Fatalf("token.issued events of the renamed request: %+v, want exactly one allowed", evs)
	}
}
