package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

func TestCreateClient(t *testing.T) {
	db := openSQLite(t)
	p := newTestProvider(t, db, newClock(), nil)
	ctx := context.Background()
	good := func() ClientSpec {
		return ClientSpec{Name: "App", RedirectURIs: []string{"https://app.example/cb"},
			Scopes: []string{"accounts:read"}, Purposes: []string{"personal_finance_management"}}
	}
	id, secret, err := p.CreateClient(ctx, good())
	if err != nil || id == "" || len(secret) < 43 {
		t.Fatalf("generated id %q secret %q: %v", id, secret, err)
	}
	c, err := p.store.client(ctx, id)
	if err != nil || !c.GetGrantTypes().Has(GrantAuthorizationCode, GrantRefreshToken) || c.AuthMethod != AuthClientSecretBasic {
		t.Fatalf("stored %+v %v", c, err)
	}
	if err := p.hasher.Compare(ctx, c.SecretHash, []byte(secret)); err != nil {
		t.Errorf("secret does not verify: %v", err)
	}
	if err := p.hasher.Compare(ctx, c.SecretHash, []byte(secret+"x")); err == nil {
		t.Error("wrong secret verifies")
	}
	if _, _, err := p.CreateClient(ctx, ClientSpec{Name: "Machine", GrantTypes: []string{GrantClientCredentials},
		Scopes: []string{ScopeProviderWrite}}); err != nil {
		t.Errorf("client_credentials client without redirect or purpose: %v", err)
	}

	bad := []struct {
		name string
		edit func(*ClientSpec)
	}{
		{"prohibited purpose", func(s *ClientSpec) { s.Purposes = []string{"marketing"} }},
		{"prohibited purpose in disguise", func(s *ClientSpec) { s.Purposes = []string{"Data Sale"} }},
		{"unknown purpose", func(s *ClientSpec) { s.Purposes = []string{"astrology"} }},
		{"unknown scope", func(s *ClientSpec) { s.Scopes = []string{"payments:write"} }},
		{"no scope", func(s *ClientSpec) { s.Scopes = nil }},
		{"relative redirect", func(s *ClientSpec) { s.RedirectURIs = []string{"/cb"} }},
		{"http redirect off loopback", func(s *ClientSpec) { s.RedirectURIs = []string{"http://app.example/cb"} }},
		{"redirect with fragment", func(s *ClientSpec) { s.RedirectURIs = []string{"https://app.example/cb#x"} }},
		{"code flow without redirect", func(s *ClientSpec) { s.RedirectURIs = nil }},
		{"code flow without purpose", func(s *ClientSpec) { s.Purposes = nil }},
		{"unknown grant type", func(s *ClientSpec) { s.GrantTypes = []string{"password"} }},
		{"unknown auth method", func(s *ClientSpec) { s.AuthMethod = "none" }},
		{"private_key_jwt without keys", func(s *ClientSpec) { s.AuthMethod = AuthPrivateKeyJWT }},
		{"no name", func(s *ClientSpec) { s.Name = "" }},
	}
	for _, b := range bad {
		s := good()
		b.edit(&s)
		if _, _, err := p.CreateClient(ctx, s); err == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}
	s := good()
	s.ID = appID
	if _, _, err := p.CreateClient(ctx, s); !errors.Is(err, ErrClientExists) {
		t.Errorf("duplicate id: %v", err)
	}
}

func TestDecodeStrings(t *testing.T) {
	for _, in := range [][]string{{}, {"a"}, {"accounts:read", "balances:read"}, {"https://x/cb?a=1,b", "q\"uote", `back\slash`, "ünï", ""}} {
		b, _ := json.Marshal(in)
		var got []string
		if err := decodeStrings(string(b), &got); err != nil || !slices.Equal(got, in) || got == nil {
			t.Errorf("%s: %q %v", b, got, err)
		}
	}
	var got []string
	if err := decodeStrings(`["a",`, &got); err == nil {
		t.Error("broken JSON accepted")
	}
}
