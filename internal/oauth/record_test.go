package oauth

import (
	"reflect"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// A record's session is decoded once and copied into every empty session a
// token check hands in: each request must get what decoding the stored
// JSON would give it, and its own copy, so that nothing one request does
// to its session reaches the record or another request.
func TestRecordSessionCopies(t *testing.T) {
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	stored := &Session{
		DefaultSession: openid.DefaultSession{
			Claims:    &jwt.IDTokenClaims{Subject: "cust-1", Audience: []string{"app"}, Extra: map[string]any{"acr": "x"}},
			Headers:   &jwt.Headers{Extra: map[string]any{"kid": "k1"}},
			ExpiresAt: map[fosite.TokenType]time.Time{fosite.AccessToken: at},
			Subject:   "cust-1",
		},
		GrantID: "grant-1", Purpose: "budgeting", JKT: "thumb",
	}
	req := fosite.NewRequest()
	req.ID = "grant-1"
	req.Client = &fosite.DefaultClient{ID: "app"}
	req.Session = stored
	req.GrantedScope = fosite.Arguments{"accounts:read"}
	data, err := encodeRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := parseRecord(data)
	if err != nil {
		t.Fatal(err)
	}
	client := &fosite.DefaultClient{ID: "app"}

	// What decoding the JSON gives: the reference for the copy.
	decoded := &Session{}
	if _, err := (&record{Session: rec.Session}).request(decoded, client); err != nil {
		t.Fatal(err)
	}
	first, err := rec.request(&Session{}, client)
	if err != nil {
		t.Fatal(err)
	}
	got := first.GetSession().(*Session)
	if !reflect.DeepEqual(got, decoded) {
		t.Fatalf("copied session %+v, decoding gives %+v", got, decoded)
	}
	if got.GrantID != "grant-1" || got.Purpose != "budgeting" || got.JKT != "thumb" || !got.ExpiresAt[fosite.AccessToken].Equal(at) {
		t.Fatalf("copied session lost fields: %+v", got)
	}

	// One request changing its session leaves the next one's untouched.
	got.ExpiresAt[fosite.AccessToken] = at.Add(time.Hour)
	got.Claims.Subject = "someone-else"
	got.Claims.Audience[0] = "other"
	got.Claims.Extra["acr"] = "changed"
	got.Headers.Extra["kid"] = "changed"
	got.GrantID = "changed"
	second, err := rec.request(nil, client)
	if err != nil {
		t.Fatal(err)
	}
	again := second.GetSession().(*Session)
	if !reflect.DeepEqual(again, decoded) {
		t.Fatalf("a request's change reached the record: %+v", again)
	}

	// A session fosite already filled (a refresh sets the new tokens'
	// expiry before hydrating) is merged into, as decoding does.
	later := at.Add(24 * time.Hour)
	filled := &Session{DefaultSession: openid.DefaultSession{ExpiresAt: map[fosite.TokenType]time.Time{fosite.RefreshToken: later}}}
	merged, err := rec.request(filled, client)
	if err != nil {
		t.Fatal(err)
	}
	m := merged.GetSession().(*Session)
	if m != filled || m.GrantID != "grant-1" || !m.ExpiresAt[fosite.AccessToken].Equal(at) || !m.ExpiresAt[fosite.RefreshToken].Equal(later) {
		t.Fatalf("merge into a filled session: %+v", m)
	}
}
