package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/mod/sumdb/note"

	"github.com/consentgate/consentgate/internal/keys"
	"github.com/consentgate/consentgate/internal/store"
)

// TreeHead is a signed tree head (SPEC §13): the signer's statement that the
// log's first TreeSize events form the Merkle tree with root RootHash. Note
// is the whole statement in the signed-note format of golang.org/x/mod/sumdb
// (the format of the Go checksum database and of C2SP tlog-checkpoint):
//
//	<origin>
//	<tree_size>
//	<root hash, base64>
//	timestamp <unix milliseconds>
//
//	— <origin> <base64(key hash ‖ Ed25519 signature)>
//
// Signature is that Ed25519 signature alone (base64) over the note's text
// (the four lines), for verifiers without a note library; KeyID names the
// key in the JWKS at jwks_uri.
type TreeHead struct {
	TreeSize  int64  `json:"tree_size"`
	RootHash  string `json:"root_hash"` // base64 (standard, padded)
	Timestamp int64  `json:"timestamp"` // unix milliseconds, as in RFC 9162
	KeyID     string `json:"kid"`
	Signature string `json:"signature"`
	Note      string `json:"note"`
}

// Origin is the log's name in its notes, derived from the issuer URL: the
// issuer without scheme and trailing slash, then "/audit", e.g.
// "bank.example/audit". A note verifier checks it, so a head of another
// consentgate deployment can never pass for this one's.
func Origin(issuer string) string {
	o := strings.TrimSuffix(issuer, "/")
	if i := strings.Index(o, "://"); i >= 0 {
		o = o[i+3:]
	}
	o = strings.Map(func(r rune) rune {
		if r == '+' || r <= ' ' {
			return '_'
		}
		return r
	}, o)
	return o + "/audit"
}

// KeyID is the kid of the signing key in the JWKS.
func (s *Signer) KeyID() string { return s.key().Public.KeyID }

// noteSignerFor signs notes of origin with the audit key k. It is the one
// place tree heads are signed.
func noteSignerFor(origin string, k keys.Ed25519) (note.Signer, error) {
	v, err := noteVerifier(origin, k.Public)
	if err != nil {
		return nil, err
	}
	return edNoteSigner{name: origin, hash: v.KeyHash(), key: k.Private}, nil
}

type edNoteSigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
}

func (s edNoteSigner) Name() string    { return s.name }
func (s edNoteSigner) KeyHash() uint32 { return s.hash }
func (s edNoteSigner) Sign(msg []byte) ([]byte, error) {
	return ed25519.Sign(s.key, msg), nil
}

// noteVerifier returns the note verifier of an Ed25519 JWK for origin.
func noteVerifier(origin string, k jose.JSONWebKey) (note.Verifier, error) {
	pub, ok := k.Key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("key %q is not an Ed25519 public key", k.KeyID)
	}
	vkey, err := note.NewEd25519VerifierKey(origin, pub)
	if err != nil {
		return nil, fmt.Errorf("note verifier: %w", err)
	}
	return note.NewVerifier(vkey)
}

// treeHeadText is the signed text of a head.
func treeHeadText(origin string, size int64, root []byte, ts int64) string {
	return fmt.Sprintf("%s\n%d\n%s\ntimestamp %d\n", origin, size, b64(root), ts)
}

// signTreeHead signs the tree of size leaves with root at time now.
func (s *Signer) signTreeHead(origin string, size int64, root []byte, now time.Time) (TreeHead, error) {
	k := s.key() // one key for the whole head, whatever a rotation does meanwhile
	ns, err := noteSignerFor(origin, k)
	if err != nil {
		return TreeHead{}, err
	}
	ts := now.UnixMilli()
	text := treeHeadText(origin, size, root, ts)
	msg, err := note.Sign(&note.Note{Text: text}, ns)
	if err != nil {
		return TreeHead{}, fmt.Errorf("sign tree head: %w", err)
	}
	sig := ed25519.Sign(k.Private, []byte(text))
	return TreeHead{TreeSize: size, RootHash: b64(root), Timestamp: ts, KeyID: k.Public.KeyID,
		Signature: b64(sig), Note: string(msg)}, nil
}

// VerifyTreeHead checks that th is signed by the key of keys it names, for
// origin, and that its fields are what its note says. It is what a witness
// or any relying party runs on a head before trusting its root. An empty
// origin accepts the one the note names (Verify, which reads one log).
func VerifyTreeHead(th TreeHead, origin string, keys *jose.JSONWebKeySet) error {
	if origin == "" {
		origin, _, _ = strings.Cut(th.Note, "\n")
	}
	found := keys.Key(th.KeyID)
	if len(found) == 0 {
		return fmt.Errorf("tree head %d: signed by unknown key %q", th.TreeSize, th.KeyID)
	}
	var lastErr error
	for _, k := range found {
		v, err := noteVerifier(origin, k)
		if err != nil {
			lastErr = err
			continue
		}
		n, err := note.Open([]byte(th.Note), note.VerifierList(v))
		if err != nil {
			lastErr = fmt.Errorf("tree head %d: note signature does not verify for origin %q: %w", th.TreeSize, origin, err)
			continue
		}
		size, root, ts, err := ParseTreeHeadText(n.Text, origin)
		if err != nil {
			return fmt.Errorf("tree head %d: %w", th.TreeSize, err)
		}
		if size != th.TreeSize || b64(root) != th.RootHash || ts != th.Timestamp {
			return fmt.Errorf("tree head %d: its fields differ from its signed note (size %d, root %s)", th.TreeSize, size, b64(root))
		}
		sig, err := base64.StdEncoding.DecodeString(th.Signature)
		if err != nil || !ed25519.Verify(k.Key.(ed25519.PublicKey), []byte(n.Text), sig) {
			return fmt.Errorf("tree head %d: signature field does not verify over the note text", th.TreeSize)
		}
		return nil
	}
	return lastErr
}

// ParseTreeHeadText reads the text of a tree head note of origin.
func ParseTreeHeadText(text, origin string) (size int64, root []byte, timestamp int64, err error) {
	lines := strings.Split(text, "\n")
	if len(lines) != 5 || lines[4] != "" {
		return 0, nil, 0, errors.New("note is not a tree head: want origin, size, root hash and timestamp lines")
	}
	if lines[0] != origin {
		return 0, nil, 0, fmt.Errorf("note is for log %q, not %q", lines[0], origin)
	}
	if size, err = strconv.ParseInt(lines[1], 10, 64); err != nil || size < 0 {
		return 0, nil, 0, fmt.Errorf("note's tree size %q is not a number", lines[1])
	}
	if root, err = base64.StdEncoding.DecodeString(lines[2]); err != nil || len(root) != 32 {
		return 0, nil, 0, fmt.Errorf("note's root hash %q is not 32 bytes of base64", lines[2])
	}
	ts, ok := strings.CutPrefix(lines[3], "timestamp ")
	if !ok {
		return 0, nil, 0, errors.New("note has no timestamp line")
	}
	if timestamp, err = strconv.ParseInt(ts, 10, 64); err != nil {
		return 0, nil, 0, fmt.Errorf("note's timestamp %q is not a number", ts)
	}
	return size, root, timestamp, nil
}

const treeHeadColumns = "tree_size, root_hash, created_at, kid, note"

func scanTreeHead(r rowScanner) (TreeHead, error) {
	var th TreeHead
	var created int64
	if err := r.Scan(&th.TreeSize, &th.RootHash, &created, &th.KeyID, &th.Note); err != nil {
		return th, err
	}
	th.Timestamp = store.FromMicros(created).UnixMilli()
	// The signature field is derived from the stored note: its last line.
	if i := bytes.LastIndex([]byte(th.Note), []byte(" ")); i >= 0 {
		if raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(th.Note[i+1:])); err == nil && len(raw) == 4+ed25519.SignatureSize {
			th.Signature = b64(raw[4:])
		}
	}
	return th, nil
}

// latestTreeHead returns the head of the largest tree, nil if none.
func latestTreeHead(ctx context.Context, db *store.DB) (*TreeHead, error) {
	heads, err := listTreeHeads(ctx, db, 0, 1, true)
	if err != nil || len(heads) == 0 {
		return nil, err
	}
	return &heads[0], nil
}

// listTreeHeads returns up to limit heads with tree_size above after, in
// ascending order (descending when newestFirst, then below after unless 0).
func listTreeHeads(ctx context.Context, db *store.DB, after int64, limit int, newestFirst bool) ([]TreeHead, error) {
	q := `SELECT ` + treeHeadColumns + ` FROM audit_tree_heads WHERE tree_size > ? ORDER BY tree_size LIMIT ?`
	if newestFirst {
		q = `SELECT ` + treeHeadColumns + ` FROM audit_tree_heads WHERE (? = 0 OR tree_size < ?) ORDER BY tree_size DESC LIMIT ?`
	}
	args := []any{after, limit}
	if newestFirst {
		args = []any{after, after, limit}
	}
	rows, err := db.WithContext(ctx).Raw(q, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("read tree heads: %w", err)
	}
	defer rows.Close()
	var out []TreeHead
	for rows.Next() {
		th, err := scanTreeHead(rows)
		if err != nil {
			return nil, fmt.Errorf("read tree heads: %w", err)
		}
		out = append(out, th)
	}
	return out, rows.Err()
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func b64s(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b64(b)
	}
	return out
}
