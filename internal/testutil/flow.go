package testutil

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/consentgate/consentgate/internal/httpapi/openapitest"
)

// The demo app of SPEC §9.
const (
	DemoClientID     = "demo-pfm"
	DemoClientSecret = "demo-pfm-secret" // #nosec G101 -- the public demo fixture of SPEC §9
	DemoRedirectURI  = "http://127.0.0.1:8765/callback"
)

// Response is a finished HTTP exchange with its body read.
type Response struct {
	*http.Response
	Body []byte
}

// JSON decodes the body into v, failing the test on error.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s %s (%d): %v\n%s", r.Request.Method, r.Request.URL, r.StatusCode, err, r.Body)
	}
}

// Do sends req without following redirects and reads the whole body. Every
// answer from the server is checked against openapi.yaml.
func (s *Server) Do(t testing.TB, req *http.Request) *Response {
	t.Helper()
	return s.do(t, s.client, req)
}

func (s *Server) do(t testing.TB, c *http.Client, req *http.Request) *Response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", req.Method, req.URL, err)
	}
	if strings.HasPrefix(req.URL.String(), s.URL+"/") {
		Spec(t).Check(t, req, resp.StatusCode, resp.Header, b)
	}
	return &Response{Response: resp, Body: b}
}

// Spec is the validator of the repository's openapi.yaml.
func Spec(t testing.TB) *openapitest.V {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testutil: cannot locate openapi.yaml")
	}
	return openapitest.Validator(t, filepath.Join(filepath.Dir(file), "..", "..", "openapi.yaml"))
}

// NewRequest builds a request to the server (path relative to its URL).
func (s *Server) NewRequest(t testing.TB, method, path string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// PostForm sends a form, authenticated with client_secret_basic when clientID is set.
func (s *Server) PostForm(t testing.TB, path, clientID, secret string, form url.Values) *Response {
	t.Helper()
	req := s.NewRequest(t, http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	return s.Do(t, req)
}

// CustomerIP is the header that marks a data call customer-present.
const CustomerIP = "x-fapi-customer-ip-address"

// Get sends a GET with a bearer token (when set) and extra headers, as an
// app whose customer is using it (x-fapi-customer-ip-address), so tests are
// not cut off by the daily limit of unattended calls; pass CustomerIP ""
// to call unattended.
func (s *Server) Get(t testing.TB, path, token string, headers ...string) *Response {
	t.Helper()
	req := s.NewRequest(t, http.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set(CustomerIP, "198.51.100.23")
	for i := 0; i+1 < len(headers); i += 2 {
		if http.CanonicalHeaderKey(headers[i]) == http.CanonicalHeaderKey(CustomerIP) {
			req.Header.Del(CustomerIP)
			if headers[i+1] == "" {
				continue
			}
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	return s.Do(t, req)
}

// PKCE returns a fresh code verifier and its S256 challenge.
func PKCE() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// Browser is a customer's browser: cookies, no automatic redirects.
type Browser struct {
	s *Server
	c *http.Client
}

// NewBrowser returns a browser with an empty cookie jar.
func (s *Server) NewBrowser() *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{s: s, c: &http.Client{Jar: jar, CheckRedirect: noRedirects, Timeout: s.client.Timeout, Transport: s.client.Transport}}
}

// Cookies returns the browser's cookies for u.
func (b *Browser) Cookies(u *url.URL) []*http.Cookie { return b.c.Jar.Cookies(u) }

// Get fetches an absolute or server-relative URL.
func (b *Browser) Get(t testing.TB, u string) *Response {
	t.Helper()
	if strings.HasPrefix(u, "/") {
		u = b.s.URL + u
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.s.do(t, b.c, req)
}

// Post submits a form to a server-relative path.
func (b *Browser) Post(t testing.TB, path string, form url.Values) *Response {
	t.Helper()
	req := b.s.NewRequest(t, http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.s.do(t, b.c, req)
}

// Form is what a page's <form> would submit: its hidden inputs and the
// values of its checkboxes, by name.
type Form struct {
	Action     string
	Hidden     url.Values
	Checkboxes []string // values of name="account" checkboxes
}

// ParseForm reads the form of an HTML page that posts to action.
func ParseForm(t testing.TB, page []byte, action string) Form {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatalf("parse HTML: %v", err)
	}
	f := Form{Hidden: url.Values{}}
	found := false
	var walk func(*html.Node, bool)
	walk = func(n *html.Node, inForm bool) {
		if n.Type == html.ElementNode && n.Data == "form" {
			if found || attr(n, "action") != action {
				return
			}
			found, inForm = true, true
			f.Action = action
		}
		if inForm && n.Type == html.ElementNode && n.Data == "input" {
			switch attr(n, "type") {
			case "hidden":
				f.Hidden.Add(attr(n, "name"), attr(n, "value"))
			case "checkbox":
				if attr(n, "name") == "account" {
					f.Checkboxes = append(f.Checkboxes, attr(n, "value"))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inForm)
		}
	}
	walk(doc, false)
	if !found {
		t.Fatalf("no <form action=%q> in page:\n%s", action, page)
	}
	return f
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}
