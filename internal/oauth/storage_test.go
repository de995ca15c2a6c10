package oauth

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/consentgate/consentgate/internal/store"
)

func TestStorageSQLite(t *testing.T) {
	storageSuite(t, func(t *testing.T) *store.DB { return openSQLite(t) })
}

// TestStoragePostgres runs the same suite on PostgreSQL when
// CONSENTGATE_TEST_POSTGRES_URL is set (each case in a fresh database).
func TestStoragePostgres(t *testing.T) {
	storageSuite(t, func(t *testing.T) *store.DB { return openPostgres(t) })
}

// storageSuite pins the storage rules fosite's security depends on. open
// returns a fresh, migrated database for each case.
func storageSuite(t *testing.T, open func(t *testing.T) *store.DB) {
	cases := []struct {
		name string
		run  func(t *testing.T, p *Provider, clock *testClock)
	}{
		{"PAR round trip keeps the request and drops secrets", testPARRoundTrip},
		{"PAR request_uri is single use (RFC 9126 §7.3)", testPARSingleUse},
		{"PAR request_uri expires", testPARExpiry},
		{"used code returns its request with ErrInvalidatedAuthorizeCode", testCodeInvalidation},
		{"rotated refresh token returns its request with ErrInactiveToken", testRefreshRotation},
		{"revocation by request id ends every token of the grant", testRevokeByRequestID},
		{"tokens die with their consent", testConsentBoundTokens},
		{"client_credentials tokens need no consent", testClientCredentialsToken},
		{"challenge is single use and expires", testChallenge},
		{"PKCE request round trip", testPKCE},
		{"transaction rollback leaves nothing", testTransactions},
		{"client assertion jti is single use", testJTI},
		{"only hashes are stored", testOnlyHashes},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := open(t)
			seedPeople(t, db)
			clock := newClock()
			p := newTestProvider(t, db, clock, &eventLog{})
			c.run(t, p, clock)
		})
	}
}

// authorizeRequest builds a pushed authorization request of the app client.
func testAuthorizeRequest(t *testing.T, p *Provider, id string) *fosite.AuthorizeRequest {
	t.Helper()
	client, err := p.store.GetClient(context.Background(), appID)
	if err != nil {
		t.Fatal(err)
	}
	ar := fosite.NewAuthorizeRequest()
	ar.ID = id
	ar.Client = client
	ar.RequestedAt = p.now().Truncate(time.Second)
	ar.ResponseTypes = fosite.Arguments{"code"}
	ar.RedirectURI, _ = url.Parse(appRedirect)
	ar.State = "state-123456"
	ar.RequestedScope = fosite.Arguments{"accounts:read", "offline_access"}
	ar.Form = url.Values{"purpose": {"personal_finance_management"}, "client_secret": {"leak"}, "code_challenge": {"abc"}}
	sess := &Session{GrantID: id, Purpose: "personal_finance_management"}
	sess.SetExpiresAt(fosite.PushedAuthorizeRequestContext, p.now().Add(parLifespan))
	ar.Session = sess
	return ar
}

// tokenRequest builds the stored form of a token of grant id.
func tokenRequest(t testing.TB, p *Provider, id, clientID string, sess *Session) *fosite.Request {
	t.Helper()
	client, err := p.store.GetClient(context.Background(), clientID)
	if err != nil {
		t.Fatal(err)
	}
	r := fosite.NewRequest()
	r.ID = id
	r.Client = client
	r.RequestedAt = p.now()
	r.RequestedScope = fosite.Arguments{"accounts:read"}
	r.GrantedScope = fosite.Arguments{"accounts:read"}
	r.Session = sess
	return r
}

func testPARRoundTrip(t *testing.T, p *Provider, _ *testClock) {
	ctx := context.Background()
	ar := testAuthorizeRequest(t, p, "grant-par")
	uri := requestURIPrefix + "abc"
	if err := p.store.CreatePARSession(ctx, uri, ar); err != nil {
		t.Fatal(err)
	}
	got, err := p.store.GetPARSession(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetID() != "grant-par" || got.GetClient().GetID() != appID || got.GetState() != "state-123456" ||
		got.GetRedirectURI().String() != appRedirect || !got.GetResponseTypes().ExactOne("code") {
		t.Errorf("request not kept: %+v", got)
	}
	if got.GetRequestedScopes().Has("accounts:read", "offline_access") == false {
		t.Errorf("scopes = %v", got.GetRequestedScopes())
	}
	if f := got.GetRequestForm(); f.Get("purpose") != "personal_finance_management" || f.Get("code_challenge") != "abc" || f.Has("client_secret") {
		t.Errorf("form = %v (client_secret must never be stored)", f)
	}
	if s, ok := got.GetSession().(*Session); !ok || s.GrantID != "grant-par" || s.Purpose != "personal_finance_management" {
		t.Errorf("session = %#v", got.GetSession())
	}
}

func testPARSingleUse(t *testing.T, p *Provider, _ *testClock) {
	ctx := context.Background()
	uri := requestURIPrefix + "once"
	if err := p.store.CreatePARSession(ctx, uri, testAuthorizeRequest(t, p, "grant-once")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.store.GetPARSession(ctx, uri); err != nil {
		t.Fatal(err)
	}
	if err := p.store.DeletePARSession(ctx, uri); err != nil {
		t.Fatalf("delete after use must be harmless: %v", err)
	}
	if _, err := p.store.GetPARSession(ctx, uri); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("second use: err = %v, want not found", err)
	}
}

func testPARExpiry(t *testing.T, p *Provider, clock *testClock) {
	ctx := context.Background()
	uri := requestURIPrefix + "late"
	if err := p.store.CreatePARSession(ctx, uri, testAuthorizeRequest(t, p, "grant-late")); err != nil {
		t.Fatal(err)
	}
	clock.Advance(parLifespan + time.Second)
	if _, err := p.store.GetPARSession(ctx, uri); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("expired request_uri: err = %v, want not found", err)
	}
}

func testCodeInvalidation(t *testing.T, p *Provider, _ *testClock) {
	ctx := context.Background()
	authorizedConsent(t, p, "grant-code")
	req := tokenRequest(t, p, "grant-code", appID, &Session{DefaultSession: openid.DefaultSession{Subject: custAlice}, GrantID: "grant-code"})
	if err := p.store.CreateAuthorizeCodeSession(ctx, "code-sig", req); err != nil {
		t.Fatal(err)
	}
	if got, err := p.store.GetAuthorizeCodeSession(ctx, "code-sig", &Session{}); err != nil || got.GetID() != "grant-code" {
		t.Fatalf("fresh code: %v, %v", got, err)
	}
	if err := p.store.InvalidateAuthorizeCodeSession(ctx, "code-sig"); err != nil {
		t.Fatal(err)
	}
	got, err := p.store.GetAuthorizeCodeSession(ctx, "code-sig", &Session{})
	if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Fatalf("used code: err = %v, want ErrInvalidatedAuthorizeCode", err)
	}
	if got == nil || got.GetID() != "grant-code" {
		t.Fatalf("used code must come back with its request (fosite revokes by its id), got %v", got)
	}
	if err := p.store.InvalidateAuthorizeCodeSession(ctx, "code-sig"); !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Fatalf("second invalidation (a concurrent redemption) must fail, got %v", err)
	}
	if _, err := p.store.GetAuthorizeCodeSession(ctx, "no-such-code", &Session{}); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("unknown code: %v", err)
	}
}

func testRefreshRotation(t *testing.T, p *Provider, _ *testClock) {
	ctx := context.Background()
	authorizedConsent(t, p, "grant-rt")
	req := tokenRequest(t, p, "grant-rt", appID, &Session{DefaultSession: openid.DefaultSession{Subject: custAlice}, GrantID: "grant-rt"})
	if err := p.store.CreateRefreshTokenSession(ctx, "rt-1", "at-1", req); err != nil {
		t.Fatal(err)
	}
	if _, err := p.store.GetRefreshTokenSession(ctx, "rt-1", &Session{}); err != nil {
		t.Fatal(err)
	}
	if err := p.store.RotateRefreshToken(ctx, "grant-rt", "rt-1"); err != nil {
		t.Fatal(err)
	}
	got, err := p.store.GetRefreshTokenSession(ctx, "rt-1", &Session{})
	if !errors.Is(err, fosite.ErrInactiveToken) {
		t.Fatalf("rotated token: err = %v, want ErrInactiveToken", err)
	}
	if got == nil || got.GetID() != "grant-rt" {
		t.Fatalf("rotated token must come back with its request (reuse detection), got %v", got)
	}
	if err := p.store.RotateRefreshToken(ctx, "grant-rt", "rt-1"); !errors.Is(err, fosite.ErrSerializationFailure) {
		t.Fatalf("rotating twice (lost race): err = %v, want ErrSerializationFailure", err)
	}
	if err := p.store.RotateRefreshToken(ctx, "grant-rt", "rt-unknown"); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("rotating unknown: err = %v, want not found", err)
	}
}

func testRevokeByRequestID(t *testing.T, p *Provider, _ *testClock) {
	ctx := context.Background()
	authorizedConsent(t, p, "grant-a")
	authorizedConsent(t, p, "grant-b")
	for _, tk := range []struct{ grant, sig string }{{"grant-a", "a1"}, {"grant-a", "a2"}, {"grant-b", "b1"}} {
		req := tokenRequest(t, p, tk.grant, appID, &Session{DefaultSession: openid.DefaultSession{Subject: custAlice}, GrantID: tk.grant})
		if err := p.store.CreateAccessTokenSession(ctx, "at-"+tk.sig, req); err != nil {
			t.Fatal(err)
		}
		if err := p.store.CreateRefreshTokenSession(ctx, "rt-"+tk.sig, "at-"+tk.sig, req); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.store.RevokeAccessToken(ctx, "grant-a"); err != nil {
		t.Fatal(err)
	}
	if err := p.store.RevokeRefreshToken(ctx, "grant-a"); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []string{"a1", "a2"} {
		if _, err := p.store.GetAccessTokenSession(ctx, "at-"+sig, &Session{}); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("access %s after revocation: %v", sig, err)
		}
		if _, err := p.store.GetRefreshTokenSession(ctx, "rt-"+sig, &Session{}); !errors.Is(err, fosite.ErrInactiveToken) {
			t.Errorf("refresh %s after revocation: %v", sig, err)
		}
	}
	if _, err := p.store.GetAccessTokenSession(ctx, "at-b1", &Session{}); err != nil {
		t.Errorf("another grant's access token was touched: %v", err)
	}
	if _, err := p.store.GetRefreshTokenSession(ctx, "rt-b1", &Session{}); err != nil {
		t.Errorf("another grant's refresh token was touched: %v", err)
	}
}

func testConsentBoundTokens(t *testing.T, p *Provider, clock *testClock) {
	ctx := context.Background()
	authorizedConsent(t, p, "grant-live")
	authorizedConsent(t, p, "grant-revoked")
	for _, g := range []string{"grant-live", "grant-revoked"} {
		req := tokenRequest(t, p, g, appID, &Session{DefaultSession: openid.DefaultSession{Subject: custAlice}, GrantID: g})
		if err := p.store.CreateAccessTokenSession(ctx, "at-"+g, req); err != nil {
			t.Fatal(err)
		}
		if err := p.store.CreateRefreshTokenSession(ctx, "rt-"+g, "at-"+g, req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.consents.Revoke(ctx, "grant-revoked", "customer", p.now()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.store.GetAccessTokenSession(ctx, "at-grant-live", &Session{}); err != nil {
		t.Fatalf("live consent: %v", err)
	}
	if _, err := p.store.GetAccessTokenSession(ctx, "at-grant-revoked", &Session{}); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("access token of a revoked consent: %v, want ErrInactiveToken", err)
	}
	if _, err := p.store.GetRefreshTokenSession(ctx, "rt-grant-revoked", &Session{}); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("refresh token of a revoked consent: %v, want not found (invalid_grant)", err)
	}
	clock.Advance(time.Hour + time.Second) // past the consent's expiry
	if _, err := p.store.GetAccessTokenSession(ctx, "at-grant-live", &Session{}); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("access token of an expired consent: %v, want ErrInactiveToken", err)
	}
	if _, err := p.store.GetRefreshTokenSession(ctx, "rt-grant-live", &Session{}); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("refresh token of an expired consent: %v, want not found", err)
	}
	// A grant-bound token whose consent row does not exist is dead too.
	req := tokenRequest(t, p, "grant-missing", appID, &Session{DefaultSession: openid.DefaultSession{Subject: custAlice}, GrantID: "grant-missing"})
	if err := p.store.CreateAccessTokenSession(ctx, "at-missing", req); err != nil {
		t.Fatal(err)
	}
	if _, err := p.store.GetAccessTokenSession(ctx, "at-missing", &Session{}); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("access token without consent row: %v", err)
	}
}

func testClientCredentialsToken(t *testing.T, p *Provider, _ *testClock) {
	ctx := context.Background()
	req := tokenRequest(t, p, "cc-request", auditorID, &Session{})
	if err := p.store.CreateAccessTokenSession(ctx, "at-cc", req); err != nil {
		t.Fatal(err)
	}
	got, err := p.store.GetAccessTokenSession(ctx, "at-cc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetClient().GetID() != auditorID || !got.GetGrantedScopes().Has("accounts:read") {
		t.Errorf("got %+v", got)
	}
}

func testChallenge(t *testing.T, p *Provider, clock *testClock) {
	ctx := context.Background()
	ar := testAuthorizeRequest(t, p, "grant-ch")
	if err := p.store.saveChallenge(ctx, "ch-1", ar, p.now().Add(challengeLifespan)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := p.store.pendingChallenge(ctx, "ch-1"); err != nil || got.GetID() != "grant-ch" {
			t.Fatalf("pending (not consuming): %v, %v", got, err)
		}
	}
	if got, err := p.store.consumeChallenge(ctx, "ch-1"); err != nil || got.GetID() != "grant-ch" {
		t.Fatalf("consume: %v, %v", got, err)
	}
	if _, err := p.store.consumeChallenge(ctx, "ch-1"); !errors.Is(err, ErrUnknownChallenge) {
		t.Fatalf("second consume: %v", err)
	}
	if err := p.store.saveChallenge(ctx, "ch-2", ar, p.now().Add(challengeLifespan)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(challengeLifespan)
	if _, err := p.store.pendingChallenge(ctx, "ch-2"); !errors.Is(err, ErrUnknownChallenge) {
		t.Fatalf("expired pending: %v", err)
	}
	if _, err := p.store.consumeChallenge(ctx, "ch-2"); !errors.Is(err, ErrUnknownChallenge) {
		t.Fatalf("expired consume: %v", err)
	}
}

func testPKCE(t *testing.T, p *Provider, _ *testClock) {
	ctx := context.Background()
	req := tokenRequest(t, p, "grant-pkce", appID, &Session{})
	req.Form = url.Values{"code_challenge": {"xyz"}, "code_challenge_method": {"S256"}}
	if err := p.store.CreatePKCERequestSession(ctx, "code-sig", req); err != nil {
		t.Fatal(err)
	}
	got, err := p.store.GetPKCERequestSession(ctx, "code-sig", &Session{})
	if err != nil || got.GetRequestForm().Get("code_challenge") != "xyz" {
		t.Fatalf("got %v, %v", got, err)
	}
	if err := p.store.DeletePKCERequestSession(ctx, "code-sig"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.store.GetPKCERequestSession(ctx, "code-sig", &Session{}); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func testTransactions(t *testing.T, p *Provider, _ *testClock) {
	ctx := context.Background()
	req := tokenRequest(t, p, "cc-tx", auditorID, &Session{})
	txCtx, err := p.store.BeginTX(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.store.CreateAccessTokenSession(txCtx, "at-rolled-back", req); err != nil {
		t.Fatal(err)
	}
	if err := p.store.Rollback(txCtx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.store.GetAccessTokenSession(ctx, "at-rolled-back", nil); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("rolled back token exists: %v", err)
	}
	txCtx, err = p.store.BeginTX(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.store.CreateAccessTokenSession(txCtx, "at-committed", req); err != nil {
		t.Fatal(err)
	}
	if err := p.store.Commit(txCtx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.store.GetAccessTokenSession(ctx, "at-committed", nil); err != nil {
		t.Fatalf("committed token: %v", err)
	}
}

func testJTI(t *testing.T, p *Provider, clock *testClock) {
	ctx := context.Background()
	if err := p.store.ClientAssertionJWTValid(ctx, "jti-1"); err != nil {
		t.Fatalf("unseen jti: %v", err)
	}
	if err := p.store.SetClientAssertionJWT(ctx, "jti-1", p.now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := p.store.ClientAssertionJWTValid(ctx, "jti-1"); !errors.Is(err, fosite.ErrJTIKnown) {
		t.Fatalf("seen jti: %v", err)
	}
	if err := p.store.SetClientAssertionJWT(ctx, "jti-1", p.now().Add(time.Minute)); !errors.Is(err, fosite.ErrJTIKnown) {
		t.Fatalf("second set (concurrent use): %v", err)
	}
	clock.Advance(2 * time.Minute)
	if err := p.store.SetClientAssertionJWT(ctx, "jti-1", p.now().Add(time.Minute)); err != nil {
		t.Fatalf("expired jti may be seen again: %v", err)
	}
}

func testOnlyHashes(t *testing.T, p *Provider, _ *testClock) {
	ctx := context.Background()
	req := tokenRequest(t, p, "cc-hash", auditorID, &Session{})
	if err := p.store.CreateAccessTokenSession(ctx, "plain-signature", req); err != nil {
		t.Fatal(err)
	}
	if err := p.store.CreatePARSession(ctx, requestURIPrefix+"plain-uri", testAuthorizeRequest(t, p, "grant-h")); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := p.store.db.Raw(`SELECT count(*) FROM oauth_tokens WHERE signature_hash = ? OR request_data LIKE ?`,
		"plain-signature", "%plain-signature%").Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if err := p.store.db.Raw(`SELECT count(*) + ? FROM oauth_par_requests WHERE request_uri_hash LIKE ? OR request_data LIKE ?`,
		n, "%plain-uri%", "%plain-uri%").Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	var secrets int64
	if err := p.store.db.Raw(`SELECT count(*) FROM oauth_clients WHERE secret_hash = ?`, appSecret).Scan(&secrets).Error; err != nil {
		t.Fatal(err)
	}
	if n+secrets != 0 {
		t.Fatalf("%d rows hold a token, request_uri or secret in the clear", n+secrets)
	}
}
