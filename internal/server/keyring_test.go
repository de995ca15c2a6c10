package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/keys"
	"github.com/consentgate/consentgate/internal/server"
	"github.com/consentgate/consentgate/internal/testutil"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
	"github.com/consentgate/consentgate/internal/webhook"
)

// rotatedSecret is the CONSENTGATE_SECRET after the master secret rotation.
const rotatedSecret = "rotated-secret-abcdefghijklmnopqrstuvwxyz0123456789"

// dataLoad keeps reading the data API with one access token, round robin
// over the nodes it is given, until stopped: the bounded load a rotation
// must not disturb.
type dataLoad struct {
	token    string
	mu       sync.Mutex
	nodes    []string
	ok, fail atomic.Int64
	failures []string
	stop     chan struct{}
	done     chan struct{}
}

func startLoad(token string, nodes ...string) *dataLoad {
	l := &dataLoad{token: token, nodes: nodes, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		hc := &http.Client{Timeout: 10 * time.Second}
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			l.mu.Lock()
			node := l.nodes[i%len(l.nodes)]
			l.mu.Unlock()
			req, _ := http.NewRequest(http.MethodGet, node+"/v1/accounts", nil)
			req.Header.Set("Authorization", "Bearer "+l.token)
			req.Header.Set("x-fapi-customer-ip-address", "192.0.2.7") // alice is present: no unattended limit
			resp, err := hc.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != http.StatusOK {
				l.fail.Add(1)
				l.mu.Lock()
				l.failures = append(l.failures, node+": "+describe(resp, err))
				l.mu.Unlock()
				continue
			}
			l.ok.Add(1)
		}
	}()
	return l
}

func describe(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

func (l *dataLoad) add(node string) {
	l.mu.Lock()
	l.nodes = append(l.nodes, node)
	l.mu.Unlock()
}

func (l *dataLoad) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	<-l.done
	if l.fail.Load() > 0 || l.ok.Load() == 0 {
		t.Errorf("load during rotation: %d ok, %d failed %v", l.ok.Load(), l.fail.Load(), l.failures[:min(len(l.failures), 5)])
	}
	t.Logf("load during rotation: %d data calls, all 200", l.ok.Load())
}

// signedItem is a signature a relying party or webhook receiver holds.
type signedItem struct {
	what, compact string
	alg           jose.SignatureAlgorithm
}

// verifyAgainstJWKS checks compact with the key its kid names in s's /jwks.
func verifyAgainstJWKS(t *testing.T, s *testutil.Server, it signedItem) string {
	t.Helper()
	var set jose.JSONWebKeySet
	s.Get(t, "/jwks", "").JSON(t, &set)
	jws, err := jose.ParseSignedCompact(it.compact, []jose.SignatureAlgorithm{it.alg})
	if err != nil {
		t.Fatalf("%s: %v", it.what, err)
	}
	kid := jws.Signatures[0].Protected.KeyID
	found := set.Key(kid)
	if len(found) != 1 {
		t.Fatalf("%s: kid %q is not in %s/jwks", it.what, kid, s.URL)
	}
	if _, err := jws.Verify(found[0].Key); err != nil {
		t.Fatalf("%s: does not verify against %s/jwks: %v", it.what, s.URL, err)
	}
	return kid
}

// TestKeyAndSecretRotation is issue 16's rotation test, on both databases:
// under a steady load of data calls, the signing keys rotate twice and the
// master secret once (a rolling restart: a node on the old secret keeps
// serving beside nodes on the new one). Audit verification stays valid on
// the API and through the CLI's code path, id_tokens and webhooks signed
// before each rotation verify against /jwks afterwards, and the app and the
// customer change nothing: the same client secret, access and refresh
// tokens and login session keep working.
func TestKeyAndSecretRotation(t *testing.T) {
	fastWebhooks(t)
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			dbURL := testdb.URL(t, d)
			refresh := 50 * time.Millisecond
			a := testutil.Start(t, d, testutil.Options{DatabaseURL: dbURL, KeyRefresh: refresh})
			hooks := newHookReceiver(t, 0)
			hooks.register(t, a)
			fr := testutil.DemoFlow()

			// Before anything rotates: alice's login session and a grant.
			alice := a.NewBrowser()
			loginBrowser(t, a, alice, "alice", "alice-password-1")
			requestURI, verifier := a.Push(t, fr)
			var tok testutil.Tokens
			a.Exchange(t, fr, a.Consent(t, alice, fr, requestURI).Query().Get("code"), verifier).JSON(t, &tok)
			if tok.RefreshToken == "" {
				t.Fatal("no refresh token")
			}
			load := startLoad(tok.AccessToken, a.URL)

			var held []signedItem
			headKIDs, idKIDs := map[string]bool{}, map[string]bool{}
			collect := func(s *testutil.Server, round string) {
				t.Helper()
				login := newRelyingParty(t, s).loginOverHTTP(t, "nonce-"+round)
				held = append(held, signedItem{"id_token " + round, login.RawIDToken, jose.ES256})
				idKIDs[verifyAgainstJWKS(t, s, held[len(held)-1])] = true
				g := s.Authorize(t, fr)
				req := s.NewRequest(t, http.MethodDelete, "/oauth2/grants/"+g.GrantID, nil)
				req.SetBasicAuth(testutil.DemoClientID, testutil.DemoClientSecret)
				if r := s.Do(t, req); r.StatusCode != http.StatusNoContent {
					t.Fatalf("%s: DELETE grant: %d %s", round, r.StatusCode, r.Body)
				}
				h := hooks.wait(t, g.GrantID, "consent.revoked", 1)[0]
				held = append(held, signedItem{"webhook " + round, h.header.Get(webhook.SignatureHeader), jose.EdDSA})
				th, err := s.Node.AuditCheckpoint(ctx)
				if err != nil || th == nil {
					t.Fatalf("%s: checkpoint: %+v %v", round, th, err)
				}
				headKIDs[th.KeyID] = true
			}
			rotate := func(s *testutil.Server) {
				t.Helper()
				// Activation after a few re-read intervals: every node
				// publishes the new keys before any signs with them.
				if _, err := s.Node.KeyRing().Rotate(ctx, keys.SigningUses, time.Now().Add(4*refresh)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(6 * refresh)
			}

			collect(a, "before")
			rotate(a)
			collect(a, "after-rotation-1")

			// Master secret rotation, rolling: b starts on the new secret
			// with the old one as previous (re-sealing the ring) while a
			// still runs on the old one.
			b := testutil.Start(t, d, testutil.Options{DatabaseURL: dbURL, KeyRefresh: refresh,
				Secret: rotatedSecret, SecretPrevious: testutil.TestSecret})
			load.add(b.URL)
			rotate(b)
			collect(b, "after-secret-and-rotation-2")
			c := testutil.Start(t, d, testutil.Options{DatabaseURL: dbURL, KeyRefresh: refresh, Secret: rotatedSecret})
			load.add(c.URL)
			time.Sleep(20 * refresh)
			load.finish(t)

			if len(headKIDs) != 3 || len(idKIDs) != 3 {
				t.Errorf("signing keys seen: heads %v, id_tokens %v; want three of each", headKIDs, idKIDs)
			}
			// Everything signed at any point verifies against every node's
			// /jwks, the old-secret node's included.
			for _, s := range []*testutil.Server{a, b, c} {
				for _, it := range held {
					verifyAgainstJWKS(t, s, it)
				}
			}

			// The app changed nothing: its client secret, its refresh token
			// and its access token work on the new-secret nodes, and so do
			// the auditor's secret and alice's session.
			for _, s := range []*testutil.Server{b, c} {
				if r := s.Get(t, "/v1/accounts", tok.AccessToken); r.StatusCode != http.StatusOK {
					t.Errorf("%s: access token from before: %d %s", s.URL, r.StatusCode, r.Body)
				}
				if r := alice.Get(t, s.URL+"/dashboard"); r.StatusCode != http.StatusOK {
					t.Errorf("%s: alice's session from before: %d %s", s.URL, r.StatusCode, r.Header.Get("Location"))
				}
			}
			r := c.Refresh(t, fr, tok.RefreshToken)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("refresh token from before the rotations: %d %s", r.StatusCode, r.Body)
			}
			auditor := auditorToken(t, c)

			// Audit verification: the API on every node, and the CLI's code
			// path (OpenTools with the new secret alone).
			for _, s := range []*testutil.Server{a, b, c} {
				var rep struct {
					Valid  bool  `json:"valid"`
					Events int64 `json:"events"`
				}
				if r := s.Get(t, "/v1/audit/verify", auditor); r.StatusCode != http.StatusOK {
					t.Fatalf("%s: verify: %d %s", s.URL, r.StatusCode, r.Body)
				} else if r.JSON(t, &rep); !rep.Valid || rep.Events == 0 {
					t.Errorf("%s: GET /v1/audit/verify after the rotations: %s", s.URL, r.Body)
				}
			}
			t.Setenv("CONSENTGATE_SECRET", rotatedSecret)
			tools, err := server.OpenTools(ctx, dbURL, server.ToolsOptions{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tools.Close()
			if _, err := audit.Integrate(ctx, tools.DB); err != nil {
				t.Fatal(err)
			}
			rep, err := audit.Verify(ctx, tools.DB, tools.AuditSigner.KeySet())
			if err != nil || !rep.Valid || rep.Checkpoints < 3 {
				t.Errorf("audit verify (CLI path) after the rotations: %s %v", rep.Summary(), err)
			}

			// A node started with neither secret the ring is sealed under
			// refuses to start, and says what to set.
			cfg := &config.Config{Addr: "127.0.0.1:0", DatabaseURL: dbURL, Issuer: a.URL,
				Secret: []byte("a-wrong-secret-0123456789abcdefghijklmnop"), Demo: true}
			if n, err := server.New(ctx, cfg, slog.New(slog.DiscardHandler), server.Options{}); err == nil {
				n.Close()
				t.Error("a node with a wrong secret started")
			} else if !strings.Contains(err.Error(), "CONSENTGATE_SECRET_PREVIOUS") {
				t.Errorf("wrong secret: %v", err)
			}
		})
	}
}
