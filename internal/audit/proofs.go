package audit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
	"github.com/transparency-dev/merkle/proof"
)

// sync integrates the events committed so far, so that what a reader
// answers includes every event committed before it asked (a data call's
// event is committed before its response is sent).
func (r *Reader) sync(ctx context.Context) error {
	_, err := Integrate(ctx, r.db)
	return err
}

// MaxTreeHeads bounds one page of GET /v1/audit/checkpoints.
const MaxTreeHeads = 1000

// TreeHeads returns signed tree heads newest first: at most limit (0 means
// DefaultLimit) of them, with tree_size below before (0: from the newest).
func (r *Reader) TreeHeads(ctx context.Context, limit int, before int64) ([]TreeHead, error) {
	if limit == 0 {
		limit = DefaultLimit
	}
	// One more than a page is allowed: callers ask for it to tell whether
	// another page follows.
	if limit < 1 || limit > MaxTreeHeads+1 {
		return nil, badSize(fmt.Sprintf("limit must be between 1 and %d.", MaxTreeHeads))
	}
	heads, err := listTreeHeads(ctx, r.db, before, limit, true)
	if err != nil {
		return nil, fmt.Errorf("audit.TreeHeads: %w", err)
	}
	return heads, nil
}

// InclusionProof returns the audit path of the event seq in the tree of
// treeSize leaves. Sizes outside the integrated tree are
// apperr.InvalidRequest naming the valid range.
func (r *Reader) InclusionProof(ctx context.Context, seq, treeSize int64) (*InclusionProof, error) {
	p, err := inclusionProof(ctx, r.db, seq, treeSize)
	if err != nil {
		return nil, fmt.Errorf("audit.InclusionProof: %w", err)
	}
	return p, nil
}

// ConsistencyProof returns the proof that the tree of first leaves is a
// prefix of the tree of second leaves.
func (r *Reader) ConsistencyProof(ctx context.Context, first, second int64) (*ConsistencyProof, error) {
	p, err := consistencyProof(ctx, r.db, first, second)
	if err != nil {
		return nil, fmt.Errorf("audit.ConsistencyProof: %w", err)
	}
	return p, nil
}

// LatestTreeHead returns the newest signed tree head, nil if none yet.
func (r *Reader) LatestTreeHead(ctx context.Context) (*TreeHead, error) {
	th, err := latestTreeHead(ctx, r.db)
	if err != nil {
		return nil, fmt.Errorf("audit.LatestTreeHead: %w", err)
	}
	return th, nil
}

// CheckInclusion checks p against the signed head th: th's signature by a
// key of keys, that p is for th's tree size and root, that its leaf hash
// is that of its event, and that its path leads from the leaf to the root.
func CheckInclusion(p *InclusionProof, th TreeHead, keys *jose.JSONWebKeySet) error {
	if err := VerifyTreeHead(th, "", keys); err != nil {
		return err
	}
	if p.TreeSize != th.TreeSize || p.RootHash != th.RootHash {
		return fmt.Errorf("the proof is for tree %d with root %s, the signed head for tree %d with root %s",
			p.TreeSize, p.RootHash, th.TreeSize, th.RootHash)
	}
	leaf := LeafHash(p.Event)
	if b64(leaf) != p.LeafHash {
		return errors.New("the leaf hash is not the hash of the event")
	}
	path := make([][]byte, len(p.Path))
	for i, s := range p.Path {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return fmt.Errorf("path element %d is not base64", i)
		}
		path[i] = b
	}
	root, err := base64.StdEncoding.DecodeString(th.RootHash)
	if err != nil {
		return errors.New("the signed root is not base64")
	}
	if err := proof.VerifyInclusion(treeHasher, u64(p.Seq-1), u64(p.TreeSize), leaf, path, root); err != nil {
		return fmt.Errorf("the path does not lead from the entry to the signed root: %w", err)
	}
	return nil
}
