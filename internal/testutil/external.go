package testutil

import (
	"net/http"
	"testing"
	"time"
)

// Attach drives a consentgate node that runs outside the test process (a
// `consentgate serve` subprocess) at baseURL: every helper of Server works
// on it; Node, DB and Clock are nil, since the test does not own them.
func Attach(t testing.TB, baseURL string) *Server {
	t.Helper()
	if baseURL == "" || baseURL[len(baseURL)-1] == '/' {
		t.Fatalf("testutil.Attach: base URL %q must be set and have no trailing slash", baseURL)
	}
	return &Server{URL: baseURL, client: &http.Client{Timeout: 30 * time.Second, CheckRedirect: noRedirects}}
}
