package testutil

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FlowRequest is what an app asks for and what the customer does.
type FlowRequest struct {
	ClientID, ClientSecret, RedirectURI string
	Scopes                              []string
	Purpose                             string
	Extra                               url.Values // more PAR parameters
	Username, Password                  string
	Accounts                            []string // accounts to tick; nil ticks every one offered
	Deny                                bool
}

// DemoFlow is the demo app asking alice for everything, for budgeting.
func DemoFlow() FlowRequest {
	return FlowRequest{
		ClientID: DemoClientID, ClientSecret: DemoClientSecret, RedirectURI: DemoRedirectURI,
		Scopes:  []string{"accounts:read", "balances:read", "transactions:read", "offline_access"},
		Purpose: "personal_finance_management", Username: "alice", Password: "alice-password-1",
	}
}

// Tokens is a token endpoint answer.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
	GrantID      string `json:"grant_id"`
	IDToken      string `json:"id_token"` // with scope openid
}

// PARForm is the pushed authorization request of fr with a PKCE challenge.
func PARForm(fr FlowRequest, state, challenge string) url.Values {
	form := url.Values{
		"response_type":         {"code"},
		"client_id":             {fr.ClientID},
		"redirect_uri":          {fr.RedirectURI},
		"scope":                 {strings.Join(fr.Scopes, " ")},
		"state":                 {state},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"purpose":               {fr.Purpose},
	}
	for k, v := range fr.Extra {
		form[k] = v
	}
	return form
}

// Push sends the PAR and returns the request_uri and the PKCE verifier.
func (s *Server) Push(t testing.TB, fr FlowRequest) (requestURI, verifier string) {
	t.Helper()
	verifier, challenge := PKCE()
	r := s.PostForm(t, "/oauth2/par", fr.ClientID, fr.ClientSecret, PARForm(fr, "st-"+verifier[:8], challenge))
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("PAR: %d %s", r.StatusCode, r.Body)
	}
	var out struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int    `json:"expires_in"`
	}
	r.JSON(t, &out)
	return out.RequestURI, verifier
}

// Consent walks the browser from /oauth2/authorize through login and the
// consent screen and returns the final redirect to the app.
func (s *Server) Consent(t testing.TB, b *Browser, fr FlowRequest, requestURI string) *url.URL {
	t.Helper()
	return s.ConsentAt(t, b, fr, "/oauth2/authorize?"+url.Values{"client_id": {fr.ClientID}, "request_uri": {requestURI}}.Encode())
}

// ConsentAt is Consent from any authorization URL (a front-channel request
// of a PAR-exempt client, SPEC §10): it follows the browser through login
// and the consent screen and returns the final redirect to the app.
func (s *Server) ConsentAt(t testing.TB, b *Browser, fr FlowRequest, authorizeURL string) *url.URL {
	t.Helper()
	r := b.Get(t, authorizeURL)
	for hops := 0; ; hops++ {
		if hops > 10 {
			t.Fatal("too many redirects")
		}
		if r.StatusCode != http.StatusSeeOther && r.StatusCode != http.StatusFound {
			break
		}
		loc, err := r.Location()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(loc.String(), s.URL) {
			return loc // straight back to the app (an error)
		}
		r = b.Get(t, loc.String())
	}
	if strings.HasPrefix(r.Request.URL.Path, "/login") {
		f := ParseForm(t, r.Body, "/login")
		form := f.Hidden
		form.Set("username", fr.Username)
		form.Set("password", fr.Password)
		r = b.Post(t, "/login", form)
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("login: %d %s", r.StatusCode, r.Body)
		}
		loc, _ := r.Location()
		r = b.Get(t, loc.String())
	}
	if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Request.URL.Path, "/consent") {
		t.Fatalf("expected the consent screen, got %d at %s:\n%s", r.StatusCode, r.Request.URL, r.Body)
	}
	f := ParseForm(t, r.Body, "/consent")
	form := f.Hidden
	accts := fr.Accounts
	if accts == nil {
		accts = f.Checkboxes
	}
	for _, a := range accts {
		form.Add("account", a)
	}
	form.Set("decision", "approve")
	if fr.Deny {
		form.Set("decision", "deny")
	}
	r = b.Post(t, "/consent", form)
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("consent decision: %d %s", r.StatusCode, r.Body)
	}
	loc, err := r.Location()
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// Exchange redeems a code at the token endpoint.
func (s *Server) Exchange(t testing.TB, fr FlowRequest, code, verifier string) *Response {
	t.Helper()
	return s.PostForm(t, "/oauth2/token", fr.ClientID, fr.ClientSecret, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {fr.RedirectURI}, "code_verifier": {verifier},
	})
}

// Authorize runs the whole flow for fr and returns the tokens.
func (s *Server) Authorize(t testing.TB, fr FlowRequest) Tokens {
	t.Helper()
	requestURI, verifier := s.Push(t, fr)
	loc := s.Consent(t, s.NewBrowser(), fr, requestURI)
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in redirect %s", loc)
	}
	r := s.Exchange(t, fr, code, verifier)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %s", r.StatusCode, r.Body)
	}
	var tok Tokens
	r.JSON(t, &tok)
	return tok
}

// Refresh uses a refresh token.
func (s *Server) Refresh(t testing.TB, fr FlowRequest, refreshToken string) *Response {
	t.Helper()
	return s.PostForm(t, "/oauth2/token", fr.ClientID, fr.ClientSecret, url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refreshToken},
	})
}

// ClientCredentials gets a client_credentials token.
func (s *Server) ClientCredentials(t testing.TB, clientID, secret, scope string) *Response {
	t.Helper()
	return s.PostForm(t, "/oauth2/token", clientID, secret, url.Values{
		"grant_type": {"client_credentials"}, "scope": {scope},
	})
}
