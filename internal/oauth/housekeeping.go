package oauth

import (
	"context"
	"fmt"

	"github.com/consentgate/consentgate/internal/store"
)

// Housekeeping: the short-lived rows of the authorization server are
// useless once expired (every read checks expires_at), but abandoned ones
// would stay forever: an authorization code or PKCE request never
// redeemed, an access token that simply ran out, a request_uri never used.
// Prune deletes them; the server's sweep calls it on every node (the
// DELETEs are idempotent, so nodes need no coordination). Refresh tokens
// stay: a used one is the evidence that detects its replay.

// expiringTables are the tables Prune sweeps, each by its expiry index.
var expiringTables = []struct{ table, where string }{
	{"oauth_tokens", "kind IN ('" + kindCode + "', '" + kindAccess + "', '" + kindPKCE + "') AND expires_at <= ?"},
	{"oauth_par_requests", "expires_at <= ?"},
	{"oauth_authorize_sessions", "expires_at <= ?"},
	{"oauth_oidc_sessions", "expires_at <= ?"},
	{"oauth_client_assertions", "expires_at <= ?"},
	{"dpop_proofs", "expires_at <= ?"},
}

// Prune deletes the expired codes, access tokens, PKCE requests,
// request_uris, authorize sessions, OpenID Connect sessions, client
// assertion ids and DPoP proof ids, and returns how many rows it deleted
// per table.
func (p *Provider) Prune(ctx context.Context) (map[string]int64, error) {
	now := store.Micros(p.now())
	out := make(map[string]int64, len(expiringTables))
	for _, t := range expiringTables {
		res := p.store.db.WithContext(ctx).Exec(`DELETE FROM `+t.table+` WHERE `+t.where, now)
		if res.Error != nil {
			return out, fmt.Errorf("oauth.Prune %s: %w", t.table, res.Error)
		}
		out[t.table] = res.RowsAffected
	}
	return out, nil
}
