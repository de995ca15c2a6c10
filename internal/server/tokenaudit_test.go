package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/httpapi"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// A client_credentials token and its token.issued event commit together in
// one group commit of the audit writer (oauth.TxEventSink): concurrent
// requests each get a working token and exactly one token.issued event,
// not one from the store and another from the handler.
func TestClientCredentialsTokenCommitsWithItsEvent(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) { tokenCommitsWithEvent(t, testutil.Start(t, d, testutil.Options{})) })
	}
}

func tokenCommitsWithEvent(t *testing.T, srv *testutil.Server) {
	const n = 12
	ids := make([]string, n)
	toks := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i] = uuid.NewString()
			req := srv.NewRequest(t, http.MethodPost, "/oauth2/token",
				strings.NewReader("grant_type=client_credentials&scope=audit%3Aread"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set(httpapi.HeaderInteractionID, ids[i])
			req.SetBasicAuth(auditorID, auditorSecret)
			r := srv.Do(t, req)
			var tok testutil.Tokens
			r.JSON(t, &tok)
			if r.StatusCode != http.StatusOK || tok.AccessToken == "" {
				t.Errorf("token %d: %d %s", i, r.StatusCode, r.Body)
			}
			toks[i] = tok.AccessToken
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if _, err := audit.Integrate(context.Background(), srv.DB); err != nil {
		t.Fatal(err)
	}
	evs := listAudit(t, srv, toks[0], url.Values{"type": {"token.issued"}, "client_id": {auditorID}})
	for i, id := range ids {
		got := byInteraction(evs, id)
		if len(got) != 1 || got[0].Outcome != "allowed" || strings.Join(got[0].Scopes, " ") != "audit:read" {
			t.Errorf("request %d (%s): token.issued events %+v, want exactly one allowed with scope audit:read", i, id, got)
		}
		// Each token is in the store: it works.
		if r := srv.Get(t, "/v1/audit/events?limit=1", toks[i]); r.StatusCode != http.StatusOK {
			t.Errorf("token %d: %d %s", i, r.StatusCode, r.Body)
		}
	}
}
