package server_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// BenchmarkTokenPaths drives the token endpoint (client_credentials,
// client_secret_basic, durable + audited) and introspection of a consent
// access token through the real server and its HTTP stack, from parallel
// clients: the in-process profile of issue 18's two reference targets
// (go test -bench TokenPaths -cpuprofile …; make bench measures them
// against oidc-provider).
func BenchmarkTokenPaths(b *testing.B) {
	for _, d := range testdb.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			srv := testutil.Start(b, d, testutil.Options{})
			fr := testutil.DemoFlow()
			tok := srv.Authorize(b, fr)
			client := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}}
			post := func(b *testing.B, path, id, secret, body string) {
				req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
				req.SetBasicAuth(id, secret)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || (path == "/oauth2/introspect" && !strings.Contains(string(out), `"active":true`)) {
					b.Errorf("%s: %d %s", path, resp.StatusCode, out)
				}
			}
			b.Run("token", func(b *testing.B) {
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						post(b, "/oauth2/token", "demo-auditor", "demo-auditor-secret", "grant_type=client_credentials")
					}
				})
			})
			b.Run("introspect", func(b *testing.B) {
				body := url.Values{"token": {tok.AccessToken}}.Encode()
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						post(b, "/oauth2/introspect", fr.ClientID, fr.ClientSecret, body)
					}
				})
			})
		})
	}
}
