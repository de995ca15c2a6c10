package audit

import (
	"context"
	"fmt"
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
	if limit < 1 || limit > MaxTreeHeads {
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
