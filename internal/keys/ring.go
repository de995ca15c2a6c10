package keys

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/consentgate/consentgate/internal/store"
)

// The signing uses of the ring: `consentgate keys rotate` rotates these.
const (
	UseAudit   = "audit"    // audit tree heads and checkpoints (Ed25519)
	UseWebhook = "webhook"  // webhook signatures (Ed25519)
	UseIDToken = "id_token" // OpenID Connect id_tokens (ES256)
)

// Kinds of ring keys.
const (
	KindEd25519 = "ed25519"
	KindES256   = "es256"
	KindHMAC    = "hmac" // a 32-byte symmetric key, never published, never rotated
)

// SigningUses are the uses `keys rotate` rotates, in a stable order.
var SigningUses = []string{UseAudit, UseWebhook, UseIDToken}

// DefaultRetention is how long /jwks keeps publishing a webhook or id_token
// key after its successor became active. Audit keys are published for ever:
// the tree heads they signed must verify for as long as the log exists.
const DefaultRetention = 30 * 24 * time.Hour

// DefaultRefresh is how often a node re-reads the ring; a rotation
// activates its keys DefaultActivationDelay later, so every node publishes a
// key before any node signs with it.
const (
	DefaultRefresh         = 10 * time.Second
	DefaultActivationDelay = 3 * DefaultRefresh
)

// Seed is how a use's first key is made when the ring has none: derived
// from the master secret under Label, exactly as the server derived it
// before keys moved to the ring, so signatures, token MACs and client
// secret hashes made by an older version keep verifying.
type Seed struct {
	Use, Kind, Label string
}

// RingOptions configure OpenRing.
type RingOptions struct {
	// Secret is CONSENTGATE_SECRET: the ring is sealed under a key derived
	// from it. Required (≥ 32 bytes).
	Secret []byte
	// Previous is CONSENTGATE_SECRET_PREVIOUS: keys sealed under it are
	// opened and re-sealed under Secret.
	Previous []byte
	// Seeds are the uses the ring must hold.
	Seeds     []Seed
	Retention time.Duration // default DefaultRetention
	Logger    *slog.Logger
	Now       func() time.Time
}

// Ring is the server's key ring: every key it signs or MACs with, stored
// sealed in the database and shared by every node. It never stores or logs
// a key in the clear.
type Ring struct {
	db        *store.DB
	seal      cipher.AEAD
	previous  cipher.AEAD // nil without CONSENTGATE_SECRET_PREVIOUS
	retention time.Duration
	log       *slog.Logger
	now       func() time.Time

	mu   sync.RWMutex
	keys []*ringKey // by use, then newest activation first
}

type ringKey struct {
	kid, use, kind string
	created        time.Time
	activate       time.Time
	sealed         string
	ed             Ed25519
	es             ES256
	mac            []byte
	public         *jose.JSONWebKey
	// verifyOnly: sealed under a secret this node does not hold (a node
	// still on the old secret while others re-sealed): its stored public
	// key is published and verifies, but the node never signs with it.
	verifyOnly bool
}

// KeyInfo describes a ring key (never its private half).
type KeyInfo struct {
	KID        string    `json:"kid"`
	Use        string    `json:"use"`
	Kind       string    `json:"kind"`
	CreatedAt  time.Time `json:"created_at"`
	ActivateAt time.Time `json:"activate_at"`
	// Status: active (signing now), pending (published, signing from
	// ActivateAt), published (superseded, still at /jwks), retired
	// (superseded and past retention: verifies stored signatures only).
	Status string `json:"status"`
}

func sealer(secret []byte) (cipher.AEAD, error) {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("consentgate key ring v1"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// DeriveHMAC derives a 32-byte symmetric key for label: HMAC-SHA256(secret, label).
func DeriveHMAC(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// OpenRing loads the ring from db, creating each seed's first key when its
// use has none, and re-seals under Secret every key sealed under Previous.
// It fails, naming the key, when a key opens under neither secret.
func OpenRing(ctx context.Context, db *store.DB, opts RingOptions) (*Ring, error) {
	if len(opts.Secret) < 32 {
		return nil, errors.New("keys.OpenRing: the secret must be at least 32 bytes")
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Ring{db: db, retention: opts.Retention, log: opts.Logger, now: opts.Now}
	var err error
	if r.seal, err = sealer(opts.Secret); err != nil {
		return nil, fmt.Errorf("keys.OpenRing: %w", err)
	}
	if len(opts.Previous) > 0 {
		if r.previous, err = sealer(opts.Previous); err != nil {
			return nil, fmt.Errorf("keys.OpenRing: %w", err)
		}
	}
	for _, s := range opts.Seeds {
		var n int64
		if err := db.WithContext(ctx).Raw(`SELECT COUNT(*) FROM key_ring WHERE key_use = ?`, s.Use).Scan(&n).Error; err != nil {
			return nil, fmt.Errorf("keys.OpenRing: %w", err)
		}
		if n > 0 {
			continue
		}
		// A deployment that predates the ring signed with keys derived from
		// the secret it ran with: the previous one when the secret changes
		// in the same restart.
		from := opts.Secret
		if len(opts.Previous) > 0 {
			from = opts.Previous
		}
		raw, err := derive(s, from)
		if err != nil {
			return nil, err
		}
		if err := r.insert(ctx, s.Use, s.Kind, raw, time.Unix(0, 0)); err != nil {
			return nil, err
		}
	}
	if err := r.load(ctx, true); err != nil {
		return nil, err
	}
	return r, nil
}

func derive(s Seed, secret []byte) ([]byte, error) {
	switch s.Kind {
	case KindEd25519:
		return DeriveEd25519(secret, s.Label).Private.Seed(), nil
	case KindES256:
		return DeriveES256(secret, s.Label).Private.Bytes()
	case KindHMAC:
		return DeriveHMAC(secret, s.Label), nil
	}
	return nil, fmt.Errorf("keys: unknown key kind %q", s.Kind)
}

// build makes the key of kind from its raw private bytes.
func build(kid, use, kind string, raw []byte) (*ringKey, error) {
	k := &ringKey{kid: kid, use: use, kind: kind}
	switch kind {
	case KindEd25519:
		if len(raw) != ed25519.SeedSize {
			return nil, fmt.Errorf("key %s: bad Ed25519 seed", kid)
		}
		priv := ed25519.NewKeyFromSeed(raw)
		k.ed = Ed25519{Private: priv, Public: publicJWK(priv.Public(), jose.EdDSA)}
		k.public = &k.ed.Public
	case KindES256:
		priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", kid, err)
		}
		k.es = ES256{Private: priv, Public: publicJWK(priv.Public(), jose.ES256)}
		k.public = &k.es.Public
	case KindHMAC:
		if len(raw) != 32 {
			return nil, fmt.Errorf("key %s: bad HMAC key", kid)
		}
		k.mac = raw
	default:
		return nil, fmt.Errorf("key %s: unknown kind %q", kid, kind)
	}
	return k, nil
}

func publicJWK(pub crypto.PublicKey, alg jose.SignatureAlgorithm) jose.JSONWebKey {
	j := jose.JSONWebKey{Key: pub, Algorithm: string(alg), Use: "sig"}
	tp, err := j.Thumbprint(crypto.SHA256)
	if err != nil { // Ed25519 and P-256 public keys always have one
		panic(fmt.Sprintf("keys: thumbprint: %v", err))
	}
	j.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return j
}

// kidOf is the key id: the public key's RFC 7638 thumbprint, or for a
// symmetric key a hash that says nothing about it.
func kidOf(use, kind string, raw []byte) (string, error) {
	k, err := build("", use, kind, raw)
	if err != nil {
		return "", err
	}
	if k.public != nil {
		return k.public.KeyID, nil
	}
	sum := sha256.Sum256(append([]byte("consentgate key id|"), raw...))
	return "hmac-" + base64.RawURLEncoding.EncodeToString(sum[:12]), nil
}

func (r *Ring) sealRaw(kid, use string, raw []byte) (string, error) {
	nonce := make([]byte, r.seal.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(r.seal.Seal(nonce, nonce, raw, []byte(kid+"|"+use))), nil
}

func open(a cipher.AEAD, kid, use, sealed string) ([]byte, error) {
	if a == nil {
		return nil, errors.New("no secret")
	}
	b, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(b) < a.NonceSize() {
		return nil, errors.New("malformed sealed key")
	}
	return a.Open(nil, b[:a.NonceSize()], b[a.NonceSize():], []byte(kid+"|"+use))
}

func (r *Ring) insert(ctx context.Context, use, kind string, raw []byte, activate time.Time) error {
	kid, err := kidOf(use, kind, raw)
	if err != nil {
		return err
	}
	sealed, err := r.sealRaw(kid, use, raw)
	if err != nil {
		return fmt.Errorf("keys: seal: %w", err)
	}
	var pub any
	if k, _ := build(kid, use, kind, raw); k.public != nil {
		b, err := json.Marshal(k.public)
		if err != nil {
			return fmt.Errorf("keys: public JWK: %w", err)
		}
		pub = string(b)
	}
	// Nodes starting together derive the same seed key (same kid): the
	// first insert wins.
	if err := r.db.WithContext(ctx).Exec(`INSERT INTO key_ring (kid, key_use, kind, sealed, public_jwk, created_at, activate_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kid) DO NOTHING`,
		kid, use, kind, sealed, pub, store.Micros(r.now()), store.Micros(activate)).Error; err != nil {
		return fmt.Errorf("keys: insert %s key: %w", use, err)
	}
	return nil
}

type ringRow struct {
	KID        string  `gorm:"column:kid"`
	KeyUse     string  `gorm:"column:key_use"`
	Kind       string  `gorm:"column:kind"`
	Sealed     string  `gorm:"column:sealed"`
	PublicJWK  *string `gorm:"column:public_jwk"`
	CreatedAt  int64   `gorm:"column:created_at"`
	ActivateAt int64   `gorm:"column:activate_at"`
}

// load re-reads the ring. At start (strict) a key that opens under neither
// secret is an error; later (a node still on the old secret while others
// re-sealed) it keeps the copy it holds and skips keys it cannot open.
func (r *Ring) load(ctx context.Context, strict bool) error {
	var rows []ringRow
	if err := r.db.WithContext(ctx).Raw(`SELECT kid, key_use, kind, sealed, public_jwk, created_at, activate_at FROM key_ring
		ORDER BY key_use, activate_at DESC, created_at DESC`).Scan(&rows).Error; err != nil {
		return fmt.Errorf("keys: read ring: %w", err)
	}
	r.mu.RLock()
	held := make(map[string]*ringKey, len(r.keys))
	for _, k := range r.keys {
		held[k.kid] = k
	}
	r.mu.RUnlock()
	next := make([]*ringKey, 0, len(rows))
	for _, row := range rows {
		if k, ok := held[row.KID]; ok && k.sealed == row.Sealed {
			next = append(next, k)
			continue
		}
		raw, err := open(r.seal, row.KID, row.KeyUse, row.Sealed)
		if err != nil {
			var perr error
			raw, perr = open(r.previous, row.KID, row.KeyUse, row.Sealed)
			if perr != nil {
				if k, ok := held[row.KID]; ok && !strict && !k.verifyOnly {
					next = append(next, k)
					continue
				}
				if strict {
					return fmt.Errorf("key ring: %s key %s does not open under CONSENTGATE_SECRET%s: start with the secret it was sealed under in CONSENTGATE_SECRET_PREVIOUS",
						row.KeyUse, row.KID, map[bool]string{true: " nor CONSENTGATE_SECRET_PREVIOUS", false: ""}[r.previous != nil])
				}
				if k := verifyOnly(row); k != nil {
					next = append(next, k)
					continue
				}
				r.log.Warn("key ring: a key does not open under this node's secret; skipped", "kid", row.KID, "use", row.KeyUse)
				continue
			}
			// Sealed under the previous secret: re-seal under the current one.
			sealed, err := r.sealRaw(row.KID, row.KeyUse, raw)
			if err != nil {
				return fmt.Errorf("keys: re-seal: %w", err)
			}
			if err := r.db.WithContext(ctx).Exec(`UPDATE key_ring SET sealed = ? WHERE kid = ? AND sealed = ?`,
				sealed, row.KID, row.Sealed).Error; err != nil {
				return fmt.Errorf("keys: re-seal %s: %w", row.KID, err)
			}
			r.log.Info("key ring: key re-sealed under the new secret", "kid", row.KID, "use", row.KeyUse)
			row.Sealed = sealed
		}
		k, err := build(row.KID, row.KeyUse, row.Kind, raw)
		if err != nil {
			return fmt.Errorf("key ring: %w", err)
		}
		k.sealed, k.created, k.activate = row.Sealed, store.FromMicros(row.CreatedAt), store.FromMicros(row.ActivateAt)
		next = append(next, k)
	}
	r.mu.Lock()
	r.keys = next
	r.mu.Unlock()
	return nil
}

// verifyOnly is the public half of a row this node cannot open, or nil.
func verifyOnly(row ringRow) *ringKey {
	if row.PublicJWK == nil {
		return nil
	}
	var pub jose.JSONWebKey
	if err := json.Unmarshal([]byte(*row.PublicJWK), &pub); err != nil || !pub.Valid() || pub.KeyID != row.KID {
		return nil
	}
	return &ringKey{kid: row.KID, use: row.KeyUse, kind: row.Kind, sealed: row.Sealed, public: &pub, verifyOnly: true,
		created: store.FromMicros(row.CreatedAt), activate: store.FromMicros(row.ActivateAt)}
}

// Reload re-reads the ring now (Run does it every interval).
func (r *Ring) Reload(ctx context.Context) error { return r.load(ctx, false) }

// Run re-reads the ring every interval until ctx ends, so a rotation made
// on any node (or by the CLI) reaches this one.
func (r *Ring) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultRefresh
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Reload(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("key ring: re-read failed; signing with the keys held", "err", err)
			}
		}
	}
}

// active is the newest key of use whose activation has come; when none has
// (cannot happen after OpenRing), the oldest.
func (r *Ring) active(use string) *ringKey {
	now := r.now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	var last *ringKey
	for _, k := range r.keys {
		if k.use != use || k.verifyOnly {
			continue
		}
		if !k.activate.After(now) {
			return k
		}
		last = k
	}
	if last == nil {
		panic(fmt.Sprintf("keys: the ring holds no %s key", use))
	}
	return last
}

// Ed25519 is the active key of an Ed25519 use.
func (r *Ring) Ed25519(use string) Ed25519 { return r.active(use).ed }

// ES256 is the active key of an ES256 use.
func (r *Ring) ES256(use string) ES256 { return r.active(use).es }

// HMAC is the symmetric key of use.
func (r *Ring) HMAC(use string) []byte { return r.active(use).mac }

// KeySet holds every key of use, active or not: what verifies a signature
// made at any time (audit verify).
func (r *Ring) KeySet(use string) *jose.JSONWebKeySet {
	r.mu.RLock()
	defer r.mu.RUnlock()
	set := &jose.JSONWebKeySet{}
	for _, k := range r.keys {
		if k.use == use && k.public != nil {
			set.Keys = append(set.Keys, *k.public)
		}
	}
	return set
}

// List describes every key of the ring, by use, newest first.
func (r *Ring) List() []KeyInfo {
	now := r.now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]KeyInfo, 0, len(r.keys))
	var successor *ringKey // the next newer activated key of the same use
	for i, k := range r.keys {
		if i == 0 || r.keys[i-1].use != k.use {
			successor = nil
		}
		info := KeyInfo{KID: k.kid, Use: k.use, Kind: k.kind, CreatedAt: k.created, ActivateAt: k.activate}
		switch {
		case k.activate.After(now):
			info.Status = "pending"
		case successor == nil:
			info.Status = "active"
		case k.use == UseAudit || now.Sub(successor.activate) < r.retention:
			info.Status = "published"
		default:
			info.Status = "retired"
		}
		if !k.activate.After(now) {
			successor = k
		}
		out = append(out, info)
	}
	return out
}

// Published are the public keys /jwks serves: every pending and active
// signing key, webhook and id_token keys for the retention period after
// their successor activated, and every audit key.
func (r *Ring) Published() []jose.JSONWebKey {
	byKID := map[string]*jose.JSONWebKey{}
	r.mu.RLock()
	for _, k := range r.keys {
		if k.public != nil {
			byKID[k.kid] = k.public
		}
	}
	r.mu.RUnlock()
	var out []jose.JSONWebKey
	for _, info := range r.List() {
		if info.Status != "retired" && byKID[info.KID] != nil {
			out = append(out, *byKID[info.KID])
		}
	}
	return out
}

// Rotate adds a new random key to each of uses, signing from activateAt
// (give every node time to re-read the ring first: DefaultActivationDelay),
// and returns their kids. The keys they replace stay in the ring.
func (r *Ring) Rotate(ctx context.Context, uses []string, activateAt time.Time) ([]string, error) {
	var kids []string
	for _, use := range uses {
		kind := ""
		switch use {
		case UseAudit, UseWebhook:
			kind = KindEd25519
		case UseIDToken:
			kind = KindES256
		default:
			return nil, fmt.Errorf("keys rotate: %q is not a signing key use (one of %v)", use, SigningUses)
		}
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, fmt.Errorf("keys rotate: %w", err)
		}
		if kind == KindES256 {
			priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return nil, fmt.Errorf("keys rotate: %w", err)
			}
			if raw, err = priv.Bytes(); err != nil {
				return nil, fmt.Errorf("keys rotate: %w", err)
			}
		}
		if err := r.insert(ctx, use, kind, raw, activateAt); err != nil {
			return nil, err
		}
		kid, _ := kidOf(use, kind, raw)
		kids = append(kids, kid)
	}
	return kids, r.load(ctx, false)
}
