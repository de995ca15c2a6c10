package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/keys"
	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/webhook"
)

// idTokenSeedLabel is the label the id_token key was derived under before
// the key ring; the ring's first id_token key is that key.
const idTokenSeedLabel = "consentgate/oidc/id-token"

// ringSeeds are the keys the ring holds, each seeded (on a database that
// has none) with the key this server derived from its secret before the
// ring existed, so nothing signed, MACed or hashed earlier breaks.
func ringSeeds() []keys.Seed {
	seeds := []keys.Seed{
		{Use: keys.UseAudit, Kind: keys.KindEd25519, Label: audit.SeedLabel},
		{Use: keys.UseWebhook, Kind: keys.KindEd25519, Label: webhook.SeedLabel},
		{Use: keys.UseIDToken, Kind: keys.KindES256, Label: idTokenSeedLabel},
		// Sync cursors (docs/sync.md) are durable: their key must outlive a
		// change of CONSENTGATE_SECRET like the others.
		{Use: syncCursorKeyUse, Kind: keys.KindHMAC, Label: syncCursorSeedLabel},
	}
	for _, l := range oauth.SymmetricKeyLabels {
		seeds = append(seeds, keys.Seed{Use: oauthKeyUse(l), Kind: keys.KindHMAC, Label: oauth.SymmetricKeySeedLabel(l)})
	}
	return seeds
}

func oauthKeyUse(label string) string { return "oauth/" + label }

// OpenKeyRing opens the deployment's key ring sealed under secret (and
// previous, CONSENTGATE_SECRET_PREVIOUS, re-sealing what it opens).
func OpenKeyRing(ctx context.Context, db *store.DB, secret, previous []byte, log *slog.Logger, now func() time.Time) (*keys.Ring, error) {
	return keys.OpenRing(ctx, db, keys.RingOptions{Secret: secret, Previous: previous, Seeds: ringSeeds(), Logger: log, Now: now})
}

// ringKeys are the server's keys, taken from the ring at each use.
type ringKeys struct{ r *keys.Ring }

func (k ringKeys) auditSigner() *audit.Signer {
	return audit.NewRingSigner(func() keys.Ed25519 { return k.r.Ed25519(keys.UseAudit) },
		func() *jose.JSONWebKeySet { return k.r.KeySet(keys.UseAudit) })
}

func (k ringKeys) webhookSigner() *webhook.Signer {
	return webhook.NewRingSigner(func() keys.Ed25519 { return k.r.Ed25519(keys.UseWebhook) })
}

func (k ringKeys) idToken() keys.ES256 { return k.r.ES256(keys.UseIDToken) }

func (k ringKeys) symmetric(label string) []byte { return k.r.HMAC(oauthKeyUse(label)) }

// syncCursor is the key that authenticates sync cursors (an HMAC key: MAC
// keys never rotate, so a cursor stays valid on every node and restart).
func (k ringKeys) syncCursor() []byte { return k.r.HMAC(syncCursorKeyUse) }

// KeyRing is the node's key ring.
func (s *Server) KeyRing() *keys.Ring { return s.ring }
