package oauth

import (
	"context"
	"database/sql"
	"errors"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"
)

// The client cache. A client_credentials token request used to read its
// client's row on every request: on PostgreSQL a round trip of its own
// beside its share of the audit writer's commit, measured at a quarter of
// the database's CPU per token. A node now remembers the rows of clients
// that authenticate with an HTTP Basic secret and answers such a request
// from memory. Nothing is given up for it:
//
//   - The token row and its token.issued event commit only if the client's
//     revision (a number a trigger changes with every UPDATE of the row) is
//     still the one remembered: the audit writer checks it in the
//     transaction that inserts them (audit.Precondition). Otherwise nothing
//     is written and the request is served again from a fresh read. So a
//     suspension, a secret rotation, an RFC 7592 update or a deletion made
//     through any node holds from the very next token on every node, as
//     when every request read the row.
//   - A remembered row never refuses: a request that fails on it for any
//     reason (a secret it does not know yet, a scope or grant type added
//     since) is served again from a fresh read, and only that answer
//     counts. Suspended clients are not remembered, so a refusal for
//     suspension is always a fresh one.
//   - Only clients whose request can be served twice are remembered: a
//     private_key_jwt assertion or a DPoP proof is spent by the first try.
//   - Nothing else answers from a remembered row this way: PAR and the
//     other grants read the row as before, and the access token check
//     (data API, introspection) uses the node's rows only at the revision
//     it reads live with the token (tokencache.go).

// clientCacheMode is how a request's client reads use the cache.
type clientCacheMode int

const (
	cacheOff     clientCacheMode = iota // read the database only
	cacheUse                            // answer from the cache, filling it on a miss
	cacheRefresh                        // read the database and refresh the cache
)

type clientCacheKey struct{}

// withClientCache is ctx whose client reads use the cache as mode says.
func withClientCache(ctx context.Context, mode clientCacheMode) context.Context {
	return context.WithValue(ctx, clientCacheKey{}, mode)
}

func clientCacheModeOf(ctx context.Context) clientCacheMode {
	m, _ := ctx.Value(clientCacheKey{}).(clientCacheMode)
	return m
}

// rememberable reports whether token requests of c may be answered from a
// remembered row (see above).
func rememberable(c *Client) bool {
	return c.AuthMethod == AuthClientSecretBasic && !c.DPoP && !c.Suspended()
}

// rememberedClient is a copy of the node's row of client id, marked
// remembered, when the token endpoint may answer from it; nil otherwise.
func (s *fositeStore) rememberedClient(id string) *Client {
	c, _ := s.clientRows.get(id)
	if c == nil || !rememberable(c) {
		return nil
	}
	cp := *c
	cp.remembered = true
	return &cp
}

// keepClient keeps a copy of the row c, just read, as the node's row of
// that client (for the token endpoint above and the access token check,
// tokencache.go).
func (s *fositeStore) keepClient(c *Client) {
	cp := *c
	cp.remembered = false
	s.clientRows.put(c.ID, &cp)
}

// rememberClients lets a client_credentials token request (the one grant
// whose request can always be served twice) use the client cache; it runs
// before the rate limiter, which reads the client first.
func (p *Provider) rememberClients(c *gin.Context) {
	if c.Request.PostForm.Get("grant_type") == GrantClientCredentials {
		c.Request = c.Request.WithContext(withClientCache(c.Request.Context(), cacheUse))
	}
	c.Next()
}

// ErrClientChanged is what storing a token issued on a remembered client
// row returns when the row has changed since: nothing was written, and the
// token endpoint serves the request again from a fresh read.
var ErrClientChanged = errors.New("oauth: the client changed since this node read it")

// Condition is a query that returns a row while the rows an event records
// may be committed with it (EventRows.Require).
type Condition struct {
	Query string // ? placeholders
	Args  []any
}

// clientRevisionQuery returns a row while client ? is still at revision ?.
const clientRevisionQuery = `SELECT 1 FROM oauth_clients WHERE id = ? AND revision = ?`

// clientCondition is the condition a token of req commits under: its
// client still at the revision remembered; nil when the client was read
// for this request.
func clientCondition(req fosite.Requester) *Condition {
	c, _ := req.GetClient().(*Client)
	if c == nil || !c.remembered {
		return nil
	}
	return &Condition{Query: clientRevisionQuery, Args: []any{c.ID, c.Revision}}
}

// checkCondition checks cond on its own, for a token stored without its
// event (a recorder that cannot commit the two together).
func (s *fositeStore) checkCondition(ctx context.Context, cond *Condition) error {
	var one int
	err := s.db.WithContext(ctx).Raw(cond.Query, cond.Args...).Row().Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrClientChanged
	case err != nil:
		return dbErr("check the client's revision", err)
	}
	return nil
}

// clientForSecret reads client id for a request presenting secret
// (client_secret_basic): a remembered row whose secrets do not match it is
// read afresh, since the secret may have been rotated through another node.
func (p *Provider) clientForSecret(ctx context.Context, id, secret string) (*Client, error) {
	c, err := p.store.client(ctx, id)
	if err != nil || !c.remembered || p.secretMatches(ctx, c, secret) {
		return c, err
	}
	return p.store.client(withClientCache(withClientRow(ctx, nil), cacheRefresh), id)
}

// secretMatches reports whether secret is c's secret, or its previous one
// within the grace period of a rotation.
func (p *Provider) secretMatches(ctx context.Context, c *Client, secret string) bool {
	return p.hasher.Compare(ctx, c.SecretHash, []byte(secret)) == nil || p.previousSecretValid(ctx, c, secret)
}
