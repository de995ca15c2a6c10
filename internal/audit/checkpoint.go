package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/consentgate/consentgate/internal/keys"
	"github.com/consentgate/consentgate/internal/store"
)

// seedLabel derives the checkpoint key from the server secret. Every node
// holds the same secret, so every node signs with the same key, and the key
// changes only when the secret (or this label's version) does.
const seedLabel = "consentgate audit checkpoint v1"

// checkpointType is the JWS "typ" of a checkpoint, so a checkpoint can never
// be mistaken for another token signed by a key in the same JWKS.
const checkpointType = "audit-checkpoint+jws"

// Signer signs tree heads with the audit key: one derived from the server
// secret (NewSigner), or the active audit key of the key ring
// (NewRingSigner), which a rotation changes while the node runs.
type Signer struct {
	key func() keys.Ed25519
	all func() *jose.JSONWebKeySet
}

// NewSigner derives the checkpoint key: the Ed25519 seed is
// HMAC-SHA256(secret, "consentgate audit checkpoint v1"); the key id is its
// RFC 7638 thumbprint (SHA-256, base64url).
func NewSigner(secret []byte) *Signer {
	k := keys.DeriveEd25519(secret, seedLabel)
	return &Signer{key: func() keys.Ed25519 { return k },
		all: func() *jose.JSONWebKeySet { return &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.Public}} }}
}

// NewRingSigner signs with active() at each signature and verifies with
// all(): every audit key of the ring, so heads signed before a rotation
// still verify.
func NewRingSigner(active func() keys.Ed25519, all func() *jose.JSONWebKeySet) *Signer {
	return &Signer{key: active, all: all}
}

// SeedLabel is the label the first audit key is derived under (the key
// ring seeds itself with it, so logs signed before the ring still verify).
const SeedLabel = seedLabel

// PublicJWK is the current verification key, for the JWKS served at jwks_uri.
func (s *Signer) PublicJWK() jose.JSONWebKey { return s.key().Public }

// KeySet holds every key that may have signed this log's heads, for Verify.
func (s *Signer) KeySet() *jose.JSONWebKeySet { return s.all() }

// CheckpointClaims is the payload of a legacy checkpoint: before the log
// became a Merkle tree, checkpoints were compact JWS over the chain hash.
// Verify still checks the ones a log holds; new heads are TreeHeads.
type CheckpointClaims struct {
	Issuer   string `json:"iss"`
	Seq      int64  `json:"seq"`  // the last event covered
	Hash     string `json:"hash"` // that event's hash, i.e. the whole chain up to it
	IssuedAt int64  `json:"iat"`  // unix seconds
}

// Checkpoint is a legacy signed statement that the chain up to Seq ends in
// Hash.
type Checkpoint struct {
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
	JWS       string    `json:"jws"` // compact JWS of CheckpointClaims, alg EdDSA
}

// CheckpointerOptions configure integration and signed tree heads.
type CheckpointerOptions struct {
	Issuer string // names the log in its notes (Origin)
	// Interval is the time between signed tree heads in Run (default 1 minute).
	Interval time.Duration
	// IntegrateInterval is the time between integrations in Run (default 1
	// second, at most Interval): how long a committed event may wait for its
	// seq when nobody reads the log.
	IntegrateInterval time.Duration
	Logger            *slog.Logger // default slog.Default()
	Now               func() time.Time
}

// Checkpointer is a node's integrator and tree-head signer. Any number of
// nodes may run one: integrators take turns, and a second head of the same
// tree size is ignored.
type Checkpointer struct {
	db     *store.DB
	signer *Signer
	origin string
	opts   CheckpointerOptions
}

// NewCheckpointer returns a Checkpointer on db signing with signer.
func NewCheckpointer(db *store.DB, signer *Signer, opts CheckpointerOptions) *Checkpointer {
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.IntegrateInterval <= 0 {
		opts.IntegrateInterval = time.Second
	}
	opts.IntegrateInterval = min(opts.IntegrateInterval, opts.Interval)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Checkpointer{db: db, signer: signer, origin: Origin(opts.Issuer), opts: opts}
}

// Origin is the name of the log in its tree heads.
func (c *Checkpointer) Origin() string { return c.origin }

// Run integrates every IntegrateInterval and signs a tree head every
// Interval until ctx ends. Failures are logged and retried at the next tick.
func (c *Checkpointer) Run(ctx context.Context) {
	t := time.NewTicker(c.opts.IntegrateInterval)
	defer t.Stop()
	lastSigned := c.opts.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if now := c.opts.Now(); now.Sub(lastSigned) >= c.opts.Interval {
				lastSigned = now
				if _, err := c.Checkpoint(ctx); err != nil && ctx.Err() == nil {
					c.opts.Logger.Error("audit tree head failed", "err", err)
				}
			} else if _, err := integrateAt(ctx, c.db, c.opts.Now); err != nil && ctx.Err() == nil {
				c.opts.Logger.Error("audit integration failed", "err", err)
			}
		}
	}
}

// Checkpoint integrates the pending events, then signs a head for the
// whole tree and returns the stored head of that size (nil when the log is
// empty). Before signing it checks the last signed head (its signature, and
// that the stored tree still has its root) and re-verifies the events since
// it (chain links, hashes, tree nodes): it never vouches for a log that is
// already broken, nor for one that does not extend what it signed before.
func (c *Checkpointer) Checkpoint(ctx context.Context) (*TreeHead, error) {
	if _, err := integrateAt(ctx, c.db, c.opts.Now); err != nil {
		return nil, fmt.Errorf("audit.Checkpoint: %w", err)
	}
	head, err := readHead(ctx, c.db)
	if err != nil {
		return nil, fmt.Errorf("audit.Checkpoint: %w", err)
	}
	if head.Seq == 0 {
		return nil, nil
	}
	last, err := latestTreeHead(ctx, c.db)
	if err != nil {
		return nil, fmt.Errorf("audit.Checkpoint: %w", err)
	}
	from := chainHead{Hash: GenesisHash}
	if last != nil {
		// Its own origin: nodes of one deployment share the issuer, but a
		// test or a renamed deployment may not, and the key is what vouches.
		if err := VerifyTreeHead(*last, "", c.signer.KeySet()); err != nil {
			return nil, fmt.Errorf("audit.Checkpoint: refusing to sign: %w", err)
		}
		if last.TreeSize == head.Seq {
			return last, nil
		}
		if last.TreeSize > head.Seq {
			return nil, fmt.Errorf("audit.Checkpoint: refusing to sign: a head signs %d events, the log has %d", last.TreeSize, head.Seq)
		}
		from.Seq = last.TreeSize
		if err := c.db.WithContext(ctx).Raw(`SELECT hash FROM audit_events WHERE seq = ?`, from.Seq).Row().Scan(&from.Hash); err != nil {
			return nil, fmt.Errorf("audit.Checkpoint: refusing to sign: event %d of the last head: %w", from.Seq, err)
		}
	}
	v := verifier{db: c.db}
	if err := v.startTree(ctx, u64(from.Seq)); err != nil {
		return nil, fmt.Errorf("audit.Checkpoint: %w", err)
	}
	if last != nil {
		root, err := rootOf(v.rng)
		if err != nil {
			return nil, fmt.Errorf("audit.Checkpoint: %w", err)
		}
		if b64(root) != last.RootHash {
			return nil, fmt.Errorf("audit.Checkpoint: refusing to sign: the stored tree of %d leaves no longer has the signed root", last.TreeSize)
		}
	}
	if err := v.events(ctx, from, head.Seq); err != nil {
		return nil, fmt.Errorf("audit.Checkpoint: %w", err)
	}
	if !v.rep.Valid || v.prev != head {
		reason := v.rep.Reason
		if reason == "" {
			reason = fmt.Sprintf("log ends at seq %d, head is %d", v.prev.Seq, head.Seq)
		}
		return nil, fmt.Errorf("audit.Checkpoint: refusing to sign a broken log: %s", reason)
	}
	root, err := rootOf(v.rng)
	if err != nil {
		return nil, fmt.Errorf("audit.Checkpoint: %w", err)
	}
	now := time.UnixMilli(c.opts.Now().UnixMilli())
	th, err := c.signer.signTreeHead(c.origin, head.Seq, root, now)
	if err != nil {
		return nil, fmt.Errorf("audit.Checkpoint: %w", err)
	}
	if err := c.db.WithContext(ctx).Exec(
		`INSERT INTO audit_tree_heads (`+treeHeadColumns+`) VALUES (?, ?, ?, ?, ?) ON CONFLICT (tree_size) DO NOTHING`,
		th.TreeSize, th.RootHash, store.Micros(now), th.KeyID, th.Note).Error; err != nil {
		return nil, fmt.Errorf("audit.Checkpoint: insert: %w", err)
	}
	// Another node may have won the race for this size: return what is stored.
	last, err = latestTreeHead(ctx, c.db)
	if err != nil {
		return nil, fmt.Errorf("audit.Checkpoint: %w", err)
	}
	return last, nil
}

const checkpointColumns = "seq, hash, created_at, jws"

func scanCheckpoint(r rowScanner) (*Checkpoint, error) {
	var cp Checkpoint
	var created int64
	if err := r.Scan(&cp.Seq, &cp.Hash, &created, &cp.JWS); err != nil {
		return nil, err
	}
	cp.CreatedAt = store.FromMicros(created)
	return &cp, nil
}

// checkCheckpoint returns why cp is not a valid signature by a key of keys
// over the chain hash chainHash at cp.Seq, or "" when it is.
func checkCheckpoint(cp *Checkpoint, chainHash string, keys *jose.JSONWebKeySet) string {
	jws, err := jose.ParseSignedCompact(cp.JWS, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		return "malformed JWS"
	}
	hdr := jws.Signatures[0].Protected
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); typ != checkpointType {
		return "JWS is not an audit checkpoint (typ)"
	}
	found := keys.Key(hdr.KeyID)
	if len(found) == 0 {
		return fmt.Sprintf("signed by unknown key %q", hdr.KeyID)
	}
	var payload []byte
	for _, k := range found {
		if payload, err = jws.Verify(k.Key); err == nil {
			break
		}
	}
	if err != nil {
		return "signature does not verify"
	}
	var cl CheckpointClaims
	if err := json.Unmarshal(payload, &cl); err != nil {
		return "signed payload is not checkpoint claims"
	}
	if cl.Seq != cp.Seq || cl.Hash != cp.Hash {
		return fmt.Sprintf("signed claims (seq %d, hash %s) differ from the stored row", cl.Seq, cl.Hash)
	}
	if cp.Hash != chainHash {
		return fmt.Sprintf("signed hash %s differs from the chain's %s: the log was rewritten", cp.Hash, chainHash)
	}
	return ""
}

var errNoKeys = errors.New("audit.Verify: no checkpoint keys")
