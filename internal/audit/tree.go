package audit

import (
	"context"
	"fmt"
	"strings"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/store"
)

// The log's Merkle tree (SPEC §13) is RFC 9162's: leaf i is the event of seq
// i+1, its hash SHA-256(0x00 ‖ Canonical(event)), an inner node's
// SHA-256(0x01 ‖ left ‖ right). Every complete node is stored in audit_tree
// as the integrator appends, so any inclusion or consistency proof is a
// handful of primary-key reads.
var (
	treeHasher = rfc6962.DefaultHasher
	ranges     = &compact.RangeFactory{Hash: treeHasher.HashChildren}
)

// u64 and i64 convert between the log's seqs and counts (int64, as the
// database stores them) and the tree's sizes and indexes (uint64, as the
// merkle library takes them). Every value converted is a seq, an event
// count or a node index below one: in [0, 2^63), so neither can wrap.
func u64(n int64) uint64 {
	if n < 0 {
		return 0
	}
	return uint64(n) // #nosec G115 -- n ≥ 0 checked above
}

func i64(n uint64) int64 {
	if n > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(n) // #nosec G115 -- n < 2^63 checked above
}

// LeafHash returns the RFC 9162 leaf hash of ev: SHA-256(0x00 ‖ Canonical(ev)).
func LeafHash(ev Event) []byte { return treeHasher.HashLeaf(Canonical(ev)) }

// treeNode is one stored node of the tree.
type treeNode struct {
	id   compact.NodeID
	hash []byte
}

// storedTreeSize is the number of leaves in audit_tree.
func storedTreeSize(q *gorm.DB) (uint64, error) {
	var n int64
	if err := q.Raw(`SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_tree WHERE level = 0`).Row().Scan(&n); err != nil {
		return 0, fmt.Errorf("audit tree size: %w", err)
	}
	return u64(n), nil
}

// readNodes returns the stored hashes of ids, in the order of ids. A missing
// node is an error: the tree covers every integrated event.
func readNodes(q *gorm.DB, ids []compact.NodeID) ([][]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var sb strings.Builder
	args := make([]any, 0, 2*len(ids))
	sb.WriteString(`SELECT level, idx, hash FROM audit_tree WHERE `)
	for i, id := range ids {
		if i > 0 {
			sb.WriteString(" OR ")
		}
		sb.WriteString("(level = ? AND idx = ?)")
		args = append(args, i64(uint64(id.Level)), i64(id.Index))
	}
	rows, err := q.Raw(sb.String(), args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("read audit tree: %w", err)
	}
	defer rows.Close()
	found := make(map[compact.NodeID][]byte, len(ids))
	for rows.Next() {
		var level, idx int64
		var h []byte
		if err := rows.Scan(&level, &idx, &h); err != nil {
			return nil, fmt.Errorf("read audit tree: %w", err)
		}
		found[compact.NewNodeID(uint(u64(level)), u64(idx))] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit tree: %w", err)
	}
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, ok := found[id]
		if !ok {
			return nil, fmt.Errorf("read audit tree: node (level %d, index %d) is missing", id.Level, id.Index)
		}
		out[i] = h
	}
	return out, nil
}

// loadRange returns the compact range [0, size) from the stored nodes: the
// state the integrator appends to and the root of the tree of that size.
func loadRange(q *gorm.DB, size uint64) (*compact.Range, error) {
	hashes, err := readNodes(q, compact.RangeNodes(0, size, nil))
	if err != nil {
		return nil, err
	}
	return ranges.NewRange(0, size, hashes)
}

// rootOf returns the root hash of r (RFC 9162's SHA-256 of "" when empty).
func rootOf(r *compact.Range) ([]byte, error) {
	if r.End() == 0 {
		return treeHasher.EmptyRoot(), nil
	}
	return r.GetRootHash(nil)
}

// insertNodes stores nodes with multi-row INSERTs.
func insertNodes(tx *gorm.DB, d store.Dialect, nodes []treeNode) error {
	step := 6 * rowsPerInsert(d)
	for start := 0; start < len(nodes); start += step {
		part := nodes[start:min(start+step, len(nodes))]
		var sb strings.Builder
		sb.WriteString(`INSERT INTO audit_tree (level, idx, hash) VALUES `)
		args := make([]any, 0, 3*len(part))
		for i, n := range part {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?)")
			args = append(args, i64(uint64(n.id.Level)), i64(n.id.Index), n.hash)
		}
		if err := tx.Exec(sb.String(), args...).Error; err != nil {
			return fmt.Errorf("insert audit tree nodes: %w", err)
		}
	}
	return nil
}

// growTree appends the leaves of evs (seq size+1, size+2, …) to the stored
// tree of size leaves and stores every node that becomes complete.
func growTree(tx *gorm.DB, d store.Dialect, size uint64, evs []Event) error {
	r, err := loadRange(tx, size)
	if err != nil {
		return err
	}
	nodes := make([]treeNode, 0, 2*len(evs)+1)
	visit := func(id compact.NodeID, h []byte) { nodes = append(nodes, treeNode{id: id, hash: h}) }
	for i := range evs {
		if u64(evs[i].Seq) != r.End()+1 {
			return fmt.Errorf("audit tree: leaf for seq %d appended at size %d", evs[i].Seq, r.End())
		}
		if err := r.Append(LeafHash(evs[i]), visit); err != nil {
			return fmt.Errorf("audit tree: %w", err)
		}
	}
	return insertNodes(tx, d, nodes)
}

// eventsBetween reads the events with after < seq <= upTo, in seq order.
func eventsBetween(tx *gorm.DB, after, upTo int64) ([]Event, error) {
	return listEvents(tx, `SELECT `+eventColumns+` FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq`, after, upTo)
}

// backfillTree adds the events a log had before it became a tree (they were
// written by a version without audit_tree) up to seq to, in chunks.
func backfillTree(tx *gorm.DB, d store.Dialect, size uint64, to int64) error {
	const chunk = 5000
	for i64(size) < to {
		evs, err := eventsBetween(tx, i64(size), min(to, i64(size)+chunk))
		if err != nil {
			return fmt.Errorf("audit tree backfill: %w", err)
		}
		if len(evs) == 0 {
			return fmt.Errorf("audit tree backfill: no event after seq %d though the head is at %d", size, to)
		}
		if err := growTree(tx, d, size, evs); err != nil {
			return err
		}
		size += uint64(len(evs))
	}
	return nil
}

// InclusionProof is the answer of GET /v1/audit/proof/inclusion: the audit
// path from the event's leaf to the root of the tree of TreeSize leaves. Any
// RFC 9162 verifier checks it: hash LeafHash with the path (leaf index
// Seq-1) and compare with RootHash, which a signed tree head of that size
// also carries. Hashes are standard base64, as in RFC 9162 and the note.
type InclusionProof struct {
	Seq       int64    `json:"seq"`
	LeafIndex int64    `json:"leaf_index"`
	TreeSize  int64    `json:"tree_size"`
	LeafHash  string   `json:"leaf_hash"`
	RootHash  string   `json:"root_hash"`
	Path      []string `json:"inclusion_path"`
	Event     Event    `json:"event"`
}

// ConsistencyProof is the answer of GET /v1/audit/proof/consistency: the
// RFC 9162 proof that the tree of First leaves is a prefix of the tree of
// Second leaves.
type ConsistencyProof struct {
	First      int64    `json:"first"`
	Second     int64    `json:"second"`
	FirstRoot  string   `json:"first_root_hash"`
	SecondRoot string   `json:"second_root_hash"`
	Path       []string `json:"consistency_path"`
}

// integratedSize is the tree size a proof may be asked about: the leaves
// stored now.
func integratedSize(q *gorm.DB) (int64, error) {
	n, err := storedTreeSize(q)
	return i64(n), err
}

func badSize(msg string) error { return apperr.New(apperr.InvalidRequest, msg) }

// inclusionProof builds the proof for seq in the tree of treeSize leaves.
func inclusionProof(ctx context.Context, db *store.DB, seq, treeSize int64) (*InclusionProof, error) {
	q := db.WithContext(ctx)
	size, err := integratedSize(q)
	if err != nil {
		return nil, err
	}
	switch {
	case treeSize < 1:
		return nil, badSize("tree_size must be at least 1.")
	case treeSize > size:
		return nil, badSize(fmt.Sprintf("tree_size %d is beyond the log's tree, which has %d leaves; take tree_size from GET /v1/audit/checkpoints.", treeSize, size))
	case seq < 1 || seq > treeSize:
		return nil, badSize(fmt.Sprintf("seq must be between 1 and tree_size (%d).", treeSize))
	}
	nodes, err := proof.Inclusion(u64(seq-1), u64(treeSize))
	if err != nil {
		return nil, fmt.Errorf("inclusion proof: %w", err)
	}
	hashes, err := readNodes(q, nodes.IDs)
	if err != nil {
		return nil, err
	}
	path, err := nodes.Rehash(hashes, treeHasher.HashChildren)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof: %w", err)
	}
	r, err := loadRange(q, u64(treeSize))
	if err != nil {
		return nil, err
	}
	root, err := rootOf(r)
	if err != nil {
		return nil, err
	}
	evs, err := NewReader(db).list(ctx, `SELECT `+eventColumns+` FROM audit_events WHERE seq = ?`, seq)
	if err != nil {
		return nil, err
	}
	if len(evs) != 1 {
		return nil, fmt.Errorf("inclusion proof: event %d is in the tree but not in audit_events", seq)
	}
	leaf, err := readNodes(q, []compact.NodeID{compact.NewNodeID(0, u64(seq-1))})
	if err != nil {
		return nil, err
	}
	return &InclusionProof{Seq: seq, LeafIndex: seq - 1, TreeSize: treeSize, LeafHash: b64(leaf[0]),
		RootHash: b64(root), Path: b64s(path), Event: evs[0]}, nil
}

// consistencyProof builds the proof between the trees of first and second
// leaves.
func consistencyProof(ctx context.Context, db *store.DB, first, second int64) (*ConsistencyProof, error) {
	q := db.WithContext(ctx)
	size, err := integratedSize(q)
	if err != nil {
		return nil, err
	}
	switch {
	case first < 1:
		return nil, badSize("first must be at least 1 (every tree is consistent with the empty one).")
	case second < first:
		return nil, badSize("second must not be smaller than first.")
	case second > size:
		return nil, badSize(fmt.Sprintf("second %d is beyond the log's tree, which has %d leaves; take sizes from GET /v1/audit/checkpoints.", second, size))
	}
	nodes, err := proof.Consistency(u64(first), u64(second))
	if err != nil {
		return nil, fmt.Errorf("consistency proof: %w", err)
	}
	hashes, err := readNodes(q, nodes.IDs)
	if err != nil {
		return nil, err
	}
	path, err := nodes.Rehash(hashes, treeHasher.HashChildren)
	if err != nil {
		return nil, fmt.Errorf("consistency proof: %w", err)
	}
	roots := make([]string, 2)
	for i, n := range []int64{first, second} {
		r, err := loadRange(q, u64(n))
		if err != nil {
			return nil, err
		}
		root, err := rootOf(r)
		if err != nil {
			return nil, err
		}
		roots[i] = b64(root)
	}
	return &ConsistencyProof{First: first, Second: second, FirstRoot: roots[0], SecondRoot: roots[1], Path: b64s(path)}, nil
}
