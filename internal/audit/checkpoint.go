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

// Signer signs checkpoints with an Ed25519 key derived from the server secret.
type Signer struct {
	public jose.JSONWebKey
	signer jose.Signer
}

// NewSigner derives the checkpoint key: the Ed25519 seed is
// HMAC-SHA256(secret, "consentgate audit checkpoint v1"); the key id is its
// RFC 7638 thumbprint (SHA-256, base64url).
func NewSigner(secret []byte) *Signer {
	k := keys.DeriveEd25519(secret, seedLabel)
	return &Signer{public: k.Public, signer: k.Signer(checkpointType)}
}

// PublicJWK is the verification key, for the JWKS served at jwks_uri.
func (s *Signer) PublicJWK() jose.JSONWebKey { return s.public }

// KeySet is a JWKS holding only PublicJWK, for Verify.
func (s *Signer) KeySet() *jose.JSONWebKeySet {
	return &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{s.public}}
}

// CheckpointClaims is the payload a checkpoint signs.
type CheckpointClaims struct {
	Issuer   string `json:"iss"`
	Seq      int64  `json:"seq"`  // the last event covered
	Hash     string `json:"hash"` // that event's hash, i.e. the whole chain up to it
	IssuedAt int64  `json:"iat"`  // unix seconds
}

// Checkpoint is a signed statement that the chain up to Seq ends in Hash.
type Checkpoint struct {
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
	JWS       string    `json:"jws"` // compact JWS of CheckpointClaims, alg EdDSA
}

// CheckpointerOptions configure periodic checkpoints.
type CheckpointerOptions struct {
	Issuer   string        // the "iss" claim, the server's issuer URL
	Interval time.Duration // between checkpoints in Run (default 1 minute)
	Logger   *slog.Logger  // default slog.Default()
	Now      func() time.Time
}

// Checkpointer signs the chain head periodically. Any number of nodes may
// run one: a second checkpoint of the same seq is ignored.
type Checkpointer struct {
	db     *store.DB
	signer *Signer
	opts   CheckpointerOptions
}

// NewCheckpointer returns a Checkpointer on db signing with signer.
func NewCheckpointer(db *store.DB, signer *Signer, opts CheckpointerOptions) *Checkpointer {
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Checkpointer{db: db, signer: signer, opts: opts}
}

// Run checkpoints every Interval until ctx ends. Failures are logged and
// retried at the next tick.
func (c *Checkpointer) Run(ctx context.Context) {
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := c.Checkpoint(ctx); err != nil && ctx.Err() == nil {
				c.opts.Logger.Error("audit checkpoint failed", "err", err)
			}
		}
	}
}

// Checkpoint signs the current chain head and returns the stored checkpoint
// of that seq (nil when the log is empty). Before signing it verifies the
// events since the previous checkpoint, whose own signature it checks first:
// it never vouches for a chain that is already broken.
func (c *Checkpointer) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	head, err := readHead(ctx, c.db)
	if err != nil {
		return nil, fmt.Errorf("audit.Checkpoint: %w", err)
	}
	if head.Seq == 0 {
		return nil, nil
	}
	last, err := latestCheckpoint(ctx, c.db)
	if err != nil {
		return nil, fmt.Errorf("audit.Checkpoint: %w", err)
	}
	from := chainHead{Hash: GenesisHash}
	if last != nil {
		if reason := checkCheckpoint(last, last.Hash, c.signer.KeySet()); reason != "" {
			return nil, fmt.Errorf("audit.Checkpoint: refusing to sign: checkpoint at seq %d: %s", last.Seq, reason)
		}
		if last.Seq == head.Seq {
			return last, nil
		}
		from = chainHead{Seq: last.Seq, Hash: last.Hash}
	}
	v := verifier{db: c.db}
	if err := v.events(ctx, from, head.Seq); err != nil {
		return nil, fmt.Errorf("audit.Checkpoint: %w", err)
	}
	if !v.rep.Valid || v.prev != head {
		reason := v.rep.Reason
		if reason == "" {
			reason = fmt.Sprintf("log ends at seq %d, head is %d", v.prev.Seq, head.Seq)
		}
		return nil, fmt.Errorf("audit.Checkpoint: refusing to sign a broken chain: %s", reason)
	}
	now := c.opts.Now()
	payload, err := json.Marshal(CheckpointClaims{Issuer: c.opts.Issuer, Seq: head.Seq, Hash: head.Hash, IssuedAt: now.Unix()})
	if err != nil {
		return nil, fmt.Errorf("audit.Checkpoint: %w", err)
	}
	sig, err := c.signer.signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("audit.Checkpoint: sign: %w", err)
	}
	jws, err := sig.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("audit.Checkpoint: sign: %w", err)
	}
	if err := c.db.WithContext(ctx).Exec(
		`INSERT INTO audit_checkpoints (seq, hash, created_at, jws) VALUES (?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING`,
		head.Seq, head.Hash, store.Micros(now), jws).Error; err != nil {
		return nil, fmt.Errorf("audit.Checkpoint: insert: %w", err)
	}
	// Another node may have won the race for this seq: return what is stored.
	cp, err := latestCheckpoint(ctx, c.db)
	if err != nil {
		return nil, fmt.Errorf("audit.Checkpoint: %w", err)
	}
	return cp, nil
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

// latestCheckpoint returns the checkpoint with the highest seq, nil if none.
func latestCheckpoint(ctx context.Context, db *store.DB) (*Checkpoint, error) {
	rows, err := db.WithContext(ctx).Raw(`SELECT ` + checkpointColumns + ` FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`).Rows()
	if err != nil {
		return nil, fmt.Errorf("latest checkpoint: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	cp, err := scanCheckpoint(rows)
	if err != nil {
		return nil, fmt.Errorf("latest checkpoint: %w", err)
	}
	return cp, rows.Err()
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
