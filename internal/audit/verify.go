package audit

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"

	"github.com/go-jose/go-jose/v4"
	"github.com/transparency-dev/merkle/compact"

	"github.com/consentgate/consentgate/internal/store"
)

// Head is the last link of the chain.
type Head struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// Report is the outcome of Verify, shaped like GET /v1/audit/verify.
type Report struct {
	Valid bool `json:"valid"`
	// Events is the number of events verified: the whole log when Valid,
	// the intact prefix before FirstInvalidSeq otherwise.
	Events int64 `json:"events"`
	// Head is the last verified link (the chain head when Valid).
	Head Head `json:"head"`
	// FirstInvalidSeq is the first seq at which the log is not what was
	// written: a changed, missing, inserted or moved event, or a checkpoint
	// that does not vouch for the chain. Nil when Valid.
	FirstInvalidSeq *int64 `json:"first_invalid_seq,omitempty"`
	// Reason says what is wrong at FirstInvalidSeq.
	Reason string `json:"reason,omitempty"`
	// Checkpoints is the number of signed checkpoints checked.
	Checkpoints int `json:"checkpoints"`
	// ArchivedThrough is the last seq of the archived partitions (consentgate
	// audit archive): the log is verified from the anchor after it, and the
	// archived events in their archive files. 0 when nothing was archived.
	ArchivedThrough int64 `json:"archived_through,omitempty"`
}

// Summary is a one-line account of the report for the CLI.
func (r Report) Summary() string {
	if r.Valid {
		archived := ""
		if r.ArchivedThrough > 0 {
			archived = fmt.Sprintf(" (seq 1 to %d archived; verified from that anchor)", r.ArchivedThrough)
		}
		return fmt.Sprintf("audit log valid: %d events, head seq %d hash %s, %d signed checkpoints verified%s",
			r.Events, r.Head.Seq, r.Head.Hash, r.Checkpoints, archived)
	}
	seq := int64(0)
	if r.FirstInvalidSeq != nil {
		seq = *r.FirstInvalidSeq
	}
	return fmt.Sprintf("audit log INVALID at seq %d: %s (%d events verified before it)", seq, r.Reason, r.Events)
}

// Verify re-reads the whole log in seq order, in constant memory, and checks
// that seqs run 1, 2, 3… without gaps, that each prev_hash is the previous
// event's hash, that each hash is SHA-256(prev_hash ‖ canonical event), that
// the Merkle tree recomputed from the events matches every stored node (the
// ones proofs are built from), that each signed tree head (and each legacy
// checkpoint) is signed by a key of keys over the root (chain hash) the
// events give at its size, that the head row agrees with the last event,
// and that nothing lies beyond the head. It does not integrate: events still
// in audit_pending are not yet part of the log. Tampering makes the report invalid; an error means the check
// could not run (database unreachable).
//
// Events appended while Verify runs are not covered: it checks the log up to
// the head it read when it started.
func Verify(ctx context.Context, db *store.DB, keys *jose.JSONWebKeySet) (Report, error) {
	if keys == nil {
		return Report{}, errNoKeys
	}
	// The highest checkpoint is read before the head: a checkpoint only ever
	// signs a committed head, so one beyond the head read next means events
	// at the end of the log were removed.
	var maxCheckpoint int64
	if err := db.WithContext(ctx).Raw(`SELECT MAX(n) FROM (SELECT COALESCE(MAX(seq), 0) AS n FROM audit_checkpoints
		UNION ALL SELECT COALESCE(MAX(tree_size), 0) FROM audit_tree_heads) m`).Row().Scan(&maxCheckpoint); err != nil {
		return Report{}, fmt.Errorf("audit.Verify: %w", err)
	}
	head, err := readHead(ctx, db)
	if err != nil {
		return Report{}, fmt.Errorf("audit.Verify: %w", err)
	}
	// Archived partitions (consentgate audit archive) are checked in their
	// archive files; the log here starts after the newest anchor.
	from := chainHead{Hash: GenesisHash}
	if err := db.WithContext(ctx).Raw(`SELECT COALESCE(MAX(last_seq), 0) FROM audit_archives`).Row().Scan(&from.Seq); err != nil {
		return Report{}, fmt.Errorf("audit.Verify: %w", err)
	}
	if from.Seq > 0 {
		if err := db.WithContext(ctx).Raw(`SELECT last_hash FROM audit_archives WHERE last_seq = ?`, from.Seq).Row().Scan(&from.Hash); err != nil {
			return Report{}, fmt.Errorf("audit.Verify: %w", err)
		}
	}
	v := verifier{db: db, keys: keys, cps: checkpointIter{db: db, to: head.Seq, after: from.Seq},
		ths: treeHeadIter{db: db, to: head.Seq}}
	if err := v.startTree(ctx, u64(from.Seq)); err != nil {
		return Report{}, fmt.Errorf("audit.Verify: %w", err)
	}
	v.rep.ArchivedThrough = from.Seq
	// Heads of the archived part: their signatures, and their roots against
	// the stored tree, which the rest of the log is checked to extend.
	if from.Seq > 0 {
		if ok, err := v.archivedTreeHeads(ctx, from.Seq); err != nil || !ok {
			if err != nil {
				return Report{}, fmt.Errorf("audit.Verify: %w", err)
			}
			return v.rep, nil
		}
	}
	if err := v.events(ctx, from, head.Seq); err != nil {
		return Report{}, fmt.Errorf("audit.Verify: %w", err)
	}
	v.rep.Head = Head(v.prev)
	if !v.rep.Valid {
		return v.rep, nil
	}
	// One statement, one snapshot (an integrator may move head and tree
	// meanwhile, together): leaves at or beyond the head's seq.
	var extraLeaf sql.NullInt64
	if err := db.WithContext(ctx).Raw(`SELECT MIN(t.idx) FROM audit_tree t JOIN audit_head h ON h.id = 1 WHERE t.level = 0 AND t.idx >= h.seq`).
		Row().Scan(&extraLeaf); err != nil {
		return Report{}, fmt.Errorf("audit.Verify: %w", err)
	}
	switch {
	case v.prev.Seq != head.Seq:
		v.fail(v.prev.Seq+1, fmt.Sprintf("the log ends at seq %d but its head row says %d: events were removed", v.prev.Seq, head.Seq))
	case v.prev.Hash != head.Hash:
		v.fail(head.Seq, "the head row's hash differs from the last event's")
	case maxCheckpoint > head.Seq:
		v.fail(head.Seq+1, fmt.Sprintf("a checkpoint signs seq %d, beyond the end of the log (seq %d): events were removed", maxCheckpoint, head.Seq))
	case extraLeaf.Valid:
		v.fail(extraLeaf.Int64+1, fmt.Sprintf("the Merkle tree has a leaf for seq %d beyond the end of the log: events were removed", extraLeaf.Int64+1))
	default:
		// One statement, one snapshot: rows a writer commits meanwhile come
		// with their head move, so only rows written around the writer show.
		var orphan sql.NullInt64
		if err := db.WithContext(ctx).Raw(`SELECT MIN(e.seq) FROM audit_events e JOIN audit_head h ON h.id = 1 WHERE e.seq > h.seq`).
			Row().Scan(&orphan); err != nil {
			return Report{}, fmt.Errorf("audit.Verify: %w", err)
		}
		if orphan.Valid {
			v.fail(orphan.Int64, "event lies beyond the chain head: it was inserted around the writer")
		}
	}
	return v.rep, nil
}

// verifier walks the chain; it is shared by Verify and by the Checkpointer,
// which verifies the events since the last checkpoint before signing.
type verifier struct {
	db   *store.DB
	keys *jose.JSONWebKeySet // nil: checkpoints and tree heads are not checked
	cps  checkpointIter
	ths  treeHeadIter
	h    hasher
	rep  Report
	prev chainHead

	rng   *compact.Range // the tree recomputed from the events read so far
	nodes []treeNode     // recomputed nodes not yet compared with audit_tree
}

// startTree starts the recomputed tree at size leaves, from the stored
// nodes (0: from the empty tree, trusting nothing stored).
func (v *verifier) startTree(ctx context.Context, size uint64) error {
	if size == 0 {
		v.rng = ranges.NewEmptyRange(0)
		return nil
	}
	r, err := loadRange(v.db.WithContext(ctx), size)
	v.rng = r
	return err
}

// nodeBatch is how many recomputed nodes are compared with one round of
// range reads.
const nodeBatch = 8192

// compareNodes checks the recomputed nodes against audit_tree, one range
// read per level, and records a failure at the first leaf under a node that
// is missing or differs: proofs served from it would not verify.
func (v *verifier) compareNodes(ctx context.Context) error {
	if len(v.nodes) == 0 || !v.rep.Valid {
		return nil
	}
	type span struct{ lo, hi uint64 }
	spans := map[uint]span{}
	for _, n := range v.nodes {
		s, ok := spans[n.id.Level]
		if !ok {
			s = span{lo: n.id.Index, hi: n.id.Index}
		}
		s.lo, s.hi = min(s.lo, n.id.Index), max(s.hi, n.id.Index)
		spans[n.id.Level] = s
	}
	stored := make(map[compact.NodeID][]byte, len(v.nodes))
	for level, s := range spans {
		if err := v.readNodes(ctx, level, s.lo, s.hi, stored); err != nil {
			return err
		}
	}
	// The lowest wrong node is the most precise finding: an edited leaf
	// makes every node above it wrong too.
	found := false
	var badID compact.NodeID
	for _, n := range v.nodes {
		if h, ok := stored[n.id]; !ok || !bytes.Equal(h, n.hash) {
			if !found || n.id.Level < badID.Level || (n.id.Level == badID.Level && n.id.Index < badID.Index) {
				found, badID = true, n.id
			}
		}
	}
	v.nodes = v.nodes[:0]
	if found {
		first, _ := badID.Coverage()
		// The report's intact prefix ends before the first leaf under it.
		v.rep.Events, v.prev = i64(first), chainHead{Hash: GenesisHash}
		if first > 0 {
			v.prev.Seq = i64(first)
			if err := v.db.WithContext(ctx).Raw(`SELECT hash FROM audit_events WHERE seq = ?`, v.prev.Seq).Row().Scan(&v.prev.Hash); err != nil {
				return err
			}
		}
		v.fail(i64(first)+1, fmt.Sprintf("Merkle tree node (level %d, index %d) is missing or does not match the events: proofs built from it would not verify", badID.Level, badID.Index))
	}
	return nil
}

// readNodes adds the stored tree nodes of level with lo <= idx <= hi to stored.
func (v *verifier) readNodes(ctx context.Context, level uint, lo, hi uint64, stored map[compact.NodeID][]byte) error {
	rows, err := v.db.WithContext(ctx).Raw(`SELECT idx, hash FROM audit_tree WHERE level = ? AND idx >= ? AND idx <= ?`,
		i64(uint64(level)), i64(lo), i64(hi)).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var idx int64
		var h []byte
		if err := rows.Scan(&idx, &h); err != nil {
			return err
		}
		stored[compact.NewNodeID(level, u64(idx))] = h
	}
	return rows.Err()
}

func (v *verifier) fail(seq int64, reason string) {
	v.rep.Valid = false
	v.rep.FirstInvalidSeq = &seq
	v.rep.Reason = reason
}

// events verifies the events after from up to seq to, stopping at the first
// bad one. v.prev ends as the last good link.
func (v *verifier) events(ctx context.Context, from chainHead, to int64) error {
	v.prev, v.rep.Valid = from, true
	rows, err := v.db.WithContext(ctx).Raw(`SELECT `+eventColumns+` FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq`,
		from.Seq, to).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	var ev Event
	for rows.Next() {
		scopes, err := scanEvent(rows, &ev)
		if err != nil {
			return err
		}
		if want := v.prev.Seq + 1; ev.Seq != want {
			v.fail(want, fmt.Sprintf("seq %d is missing (the next event is seq %d)", want, ev.Seq))
			return nil
		}
		if ev.PrevHash != v.prev.Hash {
			v.fail(ev.Seq, fmt.Sprintf("prev_hash does not link to the hash of seq %d", v.prev.Seq))
			return nil
		}
		sum, err := v.h.hash(v.prev.Hash, &ev, scopes)
		if err != nil {
			return err
		}
		if sum != ev.Hash {
			v.fail(ev.Seq, "hash does not match the event's content")
			return nil
		}
		v.prev = chainHead{Seq: ev.Seq, Hash: ev.Hash}
		v.rep.Events++
		if err := v.rng.Append(v.h.leaf(&ev, scopes), func(id compact.NodeID, h []byte) {
			v.nodes = append(v.nodes, treeNode{id: id, hash: h})
		}); err != nil {
			return err
		}
		if len(v.nodes) >= nodeBatch {
			if err := v.compareNodes(ctx); err != nil || !v.rep.Valid {
				return err
			}
		}
		if v.keys != nil {
			if ok, err := v.checkpointsUpTo(ctx, ev.Seq, ev.Hash); err != nil || !ok {
				return err
			}
			if ok, err := v.treeHeadsUpTo(ctx, ev.Seq); err != nil || !ok {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return v.compareNodes(ctx)
}

// archivedTreeHeads checks the signed heads of sizes up to the archive
// anchor, whose events are no longer in the database: signature, and root
// against the stored tree of that size.
func (v *verifier) archivedTreeHeads(ctx context.Context, anchor int64) (bool, error) {
	for {
		th, err := v.ths.peek(ctx)
		if err != nil || th == nil || th.TreeSize > anchor {
			return err == nil, err
		}
		v.ths.pop()
		if err := VerifyTreeHead(*th, "", v.keys); err != nil {
			v.fail(th.TreeSize, err.Error())
			return false, nil
		}
		r, err := loadRange(v.db.WithContext(ctx), u64(th.TreeSize))
		if err != nil {
			return false, err
		}
		root, err := rootOf(r)
		if err != nil {
			return false, err
		}
		if b64(root) != th.RootHash {
			v.fail(th.TreeSize, fmt.Sprintf("signed tree head of size %d (archived part) does not match the stored tree", th.TreeSize))
			return false, nil
		}
		v.rep.Checkpoints++
	}
}

// treeHeadsUpTo checks every not yet seen tree head with tree_size ≤ seq:
// its signature, and its root against the tree recomputed from the events.
func (v *verifier) treeHeadsUpTo(ctx context.Context, seq int64) (bool, error) {
	for {
		th, err := v.ths.peek(ctx)
		if err != nil || th == nil || th.TreeSize > seq {
			return err == nil, err
		}
		v.ths.pop()
		// Stored nodes first: a node that differs from the events is the
		// earlier, more precise finding than the root it makes wrong.
		if err := v.compareNodes(ctx); err != nil || !v.rep.Valid {
			return false, err
		}
		if err := VerifyTreeHead(*th, "", v.keys); err != nil {
			v.fail(seq, err.Error())
			return false, nil
		}
		root, err := rootOf(v.rng)
		if err != nil {
			return false, err
		}
		if b64(root) != th.RootHash {
			v.fail(seq, fmt.Sprintf("signed tree head of size %d has root %s, the events give %s: the log was rewritten", seq, th.RootHash, b64(root)))
			return false, nil
		}
		v.rep.Checkpoints++
	}
}

// treeHeadIter reads tree heads up to size to in keyset batches.
type treeHeadIter struct {
	db    *store.DB
	to    int64
	after int64
	buf   []TreeHead
	done  bool
}

func (it *treeHeadIter) peek(ctx context.Context) (*TreeHead, error) {
	if len(it.buf) == 0 && !it.done {
		heads, err := listTreeHeads(ctx, it.db, it.after, checkpointBatch, false)
		if err != nil {
			return nil, err
		}
		for _, th := range heads {
			if th.TreeSize <= it.to {
				it.buf = append(it.buf, th)
			}
		}
		it.done = len(heads) < checkpointBatch || len(it.buf) < len(heads)
		if n := len(heads); n > 0 {
			it.after = heads[n-1].TreeSize
		}
	}
	if len(it.buf) == 0 {
		return nil, nil
	}
	return &it.buf[0], nil
}

func (it *treeHeadIter) pop() { it.buf = it.buf[1:] }

// checkpointsUpTo checks every not yet seen checkpoint with seq ≤ seq
// against the chain hash at seq. It reports false after recording a failure.
func (v *verifier) checkpointsUpTo(ctx context.Context, seq int64, hash string) (bool, error) {
	for {
		cp, err := v.cps.peek(ctx)
		if err != nil || cp == nil || cp.Seq > seq {
			return err == nil, err
		}
		v.cps.pop()
		if err := v.compareNodes(ctx); err != nil || !v.rep.Valid {
			return false, err
		}
		if cp.Seq < seq { // an event at cp.Seq would have been seen: it does not exist
			v.fail(cp.Seq, fmt.Sprintf("checkpoint at seq %d names no event", cp.Seq))
			return false, nil
		}
		if reason := checkCheckpoint(cp, hash, v.keys); reason != "" {
			v.fail(seq, fmt.Sprintf("checkpoint at seq %d: %s", seq, reason))
			return false, nil
		}
		v.rep.Checkpoints++
	}
}

// checkpointIter reads checkpoints up to seq to in keyset batches, so that
// Verify needs no second open cursor and stays in constant memory.
type checkpointIter struct {
	db    *store.DB
	to    int64
	after int64
	buf   []*Checkpoint
	done  bool
}

const checkpointBatch = 256

func (it *checkpointIter) peek(ctx context.Context) (*Checkpoint, error) {
	if len(it.buf) == 0 && !it.done {
		rows, err := it.db.WithContext(ctx).Raw(`SELECT `+checkpointColumns+` FROM audit_checkpoints WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
			it.after, it.to, checkpointBatch).Rows()
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			cp, err := scanCheckpoint(rows)
			if err != nil {
				return nil, err
			}
			it.buf = append(it.buf, cp)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		it.done = len(it.buf) < checkpointBatch
		if n := len(it.buf); n > 0 {
			it.after = it.buf[n-1].Seq
		}
	}
	if len(it.buf) == 0 {
		return nil, nil
	}
	return it.buf[0], nil
}

func (it *checkpointIter) pop() { it.buf = it.buf[1:] }
