package oauth

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestOpenIDConnectOverPAR: a pushed request with scope openid and a nonce
// gets an id_token from fosite's openid handlers on the code exchange and
// on refresh, signed ES256 with the published key, with the pairwise
// subject, the login time, the nonce and exp − iat = 300 exactly; without
// openid there is none. prompt=none and max_age are refused at PAR.
func TestOpenIDConnectOverPAR(t *testing.T) {
	e := newEnv(t)
	if _, _, err := e.p.CreateClient(context.Background(), ClientSpec{ID: "rp", Name: "RP", Secret: "rp-secret",
		RedirectURIs: []string{appRedirect}, Scopes: []string{"openid", "profile", "accounts:read", "offline_access"},
		Purposes: []string{"personal_finance_management"}}); err != nil {
		t.Fatal(err)
	}
	f := appFlow()
	f.clientID, f.secret, f.scope = "rp", "rp-secret", "openid profile accounts:read offline_access"
	f.extra = url.Values{"nonce": {"n-0S6_WzA2Mj"}}
	login := e.clock.Now().Add(-2 * time.Minute)
	ch := e.challenge(f.clientID, e.push(f))
	loc := e.finish(ch, Decision{Approve: true, CustomerID: custAlice, AccountIDs: []string{accAlice1}, AuthTime: login})
	rec := e.exchange(f, f.clientID, f.secret, loc.Query().Get("code"))
	var tk struct {
		tokens
		IDToken string `json:"id_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tk); err != nil || rec.Code != 200 || tk.IDToken == "" {
		t.Fatalf("token: %d %s", rec.Code, rec.Body)
	}
	pub := e.p.idKey().Public
	check := func(raw string, wantNonce string) map[string]any {
		t.Helper()
		jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		if kid := jws.Signatures[0].Header.KeyID; kid != pub.KeyID {
			t.Errorf("kid %q, published %q", kid, pub.KeyID)
		}
		payload, err := jws.Verify(pub)
		if err != nil {
			t.Fatalf("id_token does not verify with the published key: %v", err)
		}
		var c map[string]any
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatal(err)
		}
		sub := e.p.subjects.Subject("rp", custAlice)
		aud, _ := c["aud"].([]any)
		if c["iss"] != "https://as.example" || c["sub"] != sub || len(aud) != 1 || aud[0] != "rp" {
			t.Errorf("claims %v, want sub %s", c, sub)
		}
		if c["exp"].(float64)-c["iat"].(float64) != 300 {
			t.Errorf("exp - iat = %v", c["exp"].(float64)-c["iat"].(float64))
		}
		if int64(c["auth_time"].(float64)) != login.Truncate(time.Second).Unix() {
			t.Errorf("auth_time %v, logged in at %d", c["auth_time"], login.Unix())
		}
		if n, _ := c["nonce"].(string); n != wantNonce {
			t.Errorf("nonce %q, want %q", n, wantNonce)
		}
		return c
	}
	check(tk.IDToken, "n-0S6_WzA2Mj")

	// Refresh: a new id_token for the same subject.
	rr := e.refresh(f.clientID, f.secret, tk.RefreshToken)
	var rt struct {
		IDToken string `json:"id_token"`
	}
	if err := json.Unmarshal(rr.Body.Bytes(), &rt); err != nil || rr.Code != 200 || rt.IDToken == "" {
		t.Fatalf("refresh: %d %s", rr.Code, rr.Body)
	}
	check(rt.IDToken, "")

	// No openid, no id_token.
	if rec := e.exchange(appFlow(), appID, appSecret, e.code(appFlow())); rec.Code != 200 || jsonBody(t, rec)["id_token"] != nil {
		t.Errorf("token response without openid: %d %s", rec.Code, rec.Body)
	}

	for _, bad := range []url.Values{{"prompt": {"none"}}, {"prompt": {"login"}}, {"max_age": {"60"}}, {"id_token_hint": {"x"}}} {
		g := appFlow()
		g.clientID, g.secret, g.scope, g.extra = "rp", "rp-secret", "openid accounts:read", bad
		if rec := e.post("/oauth2/par", g.clientID, g.secret, g.parForm()); rec.Code != 400 {
			t.Errorf("PAR with %v: %d %s", bad, rec.Code, rec.Body)
		}
	}
}
