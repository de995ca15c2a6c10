package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/store"
)

// Retention (docs/audit.md "Retention"): on PostgreSQL audit_events is
// partitioned by month of logged_at, which the integrator keeps monotonic
// with seq, so a partition is one contiguous seq range. Archiving exports
// whole partitions, verified, with the proof that they are the prefix of a
// signed tree, and only then detaches them: the rows leave the log's table
// but stay in the database as a standalone table until the operator drops
// it. Verify continues from the archive anchor.

// ArchiveFormat names the archive file's format (its first line).
const ArchiveFormat = "consentgate-audit-archive/v1"

// Partition is one monthly partition of audit_events.
type Partition struct {
	Name     string
	Until    time.Time // exclusive upper bound of logged_at
	Events   int64
	FirstSeq int64 // 0 when empty
	LastSeq  int64
}

// ArchiveHeader is the first line of an archive file; the archived events
// follow, one JSON object per line (the NDJSON export's form), in seq order.
type ArchiveHeader struct {
	Format     string   `json:"format"`
	Partitions []string `json:"partitions"`
	FirstSeq   int64    `json:"first_seq"`
	LastSeq    int64    `json:"last_seq"`
	Events     int64    `json:"events"`
	// PrevHash is the chain hash of seq FirstSeq-1 (GenesisHash from seq 1):
	// the previous archive's LastHash.
	PrevHash string `json:"prev_hash"`
	LastHash string `json:"last_hash"`
	// RootHash is the Merkle root of the tree of LastSeq leaves, which the
	// events of this and every earlier archive recompute; Consistency
	// proves that tree a prefix of TreeHead's, which the server signed.
	RootHash    string   `json:"root_hash"`
	TreeHead    TreeHead `json:"tree_head"`
	Consistency []string `json:"consistency_path"`
}

var partitionBound = regexp.MustCompile(`TO \('?(-?\d+)'?\)`)

// Partitions lists the partitions of audit_events by upper bound
// (PostgreSQL only).
func Partitions(ctx context.Context, db *store.DB) ([]Partition, error) {
	if db.Dialect != store.Postgres {
		return nil, errors.New("audit: the log is partitioned on PostgreSQL only; SQLite keeps one table")
	}
	var rows []struct {
		Name  string
		Bound string
	}
	if err := db.WithContext(ctx).Raw(`SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_events'::regclass`).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("audit partitions: %w", err)
	}
	out := make([]Partition, 0, len(rows))
	for _, r := range rows {
		m := partitionBound.FindStringSubmatch(r.Bound)
		if m == nil {
			return nil, fmt.Errorf("audit partition %s: unexpected bound %q", r.Name, r.Bound)
		}
		until, _ := strconv.ParseInt(m[1], 10, 64)
		p := Partition{Name: r.Name, Until: store.FromMicros(until)}
		if err := db.WithContext(ctx).Raw(`SELECT COUNT(*), COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) FROM "`+strings.ReplaceAll(r.Name, `"`, `""`)+`"`).
			Row().Scan(&p.Events, &p.FirstSeq, &p.LastSeq); err != nil {
			return nil, fmt.Errorf("audit partition %s: %w", r.Name, err)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Until.Before(out[j].Until) })
	return out, nil
}

// ArchivePlan returns the partitions an archive before `before` takes: every
// partition whose months all end by then and by the start of the current
// month (a month still being written is never archived), oldest first, and
// checks that they continue the log from the last archive anchor.
func ArchivePlan(ctx context.Context, db *store.DB, before, now time.Time) ([]Partition, error) {
	parts, err := Partitions(ctx, db)
	if err != nil {
		return nil, err
	}
	monthStart := time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	limit := before
	if monthStart.Before(limit) {
		limit = monthStart
	}
	var anchor int64
	if err := db.WithContext(ctx).Raw(`SELECT COALESCE(MAX(last_seq), 0) FROM audit_archives`).Row().Scan(&anchor); err != nil {
		return nil, fmt.Errorf("audit archive anchor: %w", err)
	}
	var plan []Partition
	next := anchor + 1
	for _, p := range parts {
		if p.Until.After(limit) {
			break
		}
		if p.Events > 0 {
			if p.FirstSeq != next || p.LastSeq-p.FirstSeq+1 != p.Events {
				return nil, fmt.Errorf("audit partition %s holds seq %d to %d (%d events), not a run from seq %d: verify the log",
					p.Name, p.FirstSeq, p.LastSeq, p.Events, next)
			}
			next = p.LastSeq + 1
		}
		plan = append(plan, p)
	}
	return plan, nil
}

// WriteArchive writes the archive of plan's partitions to w, proving them a
// prefix of the signed head th (whose size must cover them). The caller
// has verified the log.
func WriteArchive(ctx context.Context, db *store.DB, plan []Partition, th TreeHead, w io.Writer) (*ArchiveHeader, error) {
	h := &ArchiveHeader{Format: ArchiveFormat, PrevHash: GenesisHash, TreeHead: th}
	for _, p := range plan {
		h.Partitions = append(h.Partitions, p.Name)
		if p.Events == 0 {
			continue
		}
		if h.FirstSeq == 0 {
			h.FirstSeq = p.FirstSeq
		}
		h.LastSeq, h.Events = p.LastSeq, h.Events+p.Events
	}
	if h.Events == 0 {
		return nil, errors.New("audit archive: the partitions to archive hold no events")
	}
	if th.TreeSize < h.LastSeq {
		return nil, fmt.Errorf("audit archive: the signed head covers %d events, the archive %d", th.TreeSize, h.LastSeq)
	}
	q := db.WithContext(ctx)
	if h.FirstSeq > 1 {
		if err := q.Raw(`SELECT last_hash FROM audit_archives WHERE last_seq = ?`, h.FirstSeq-1).Row().Scan(&h.PrevHash); err != nil {
			return nil, fmt.Errorf("audit archive: the previous anchor: %w", err)
		}
	}
	if err := q.Raw(`SELECT hash FROM audit_events WHERE seq = ?`, h.LastSeq).Row().Scan(&h.LastHash); err != nil {
		return nil, fmt.Errorf("audit archive: %w", err)
	}
	r, err := loadRange(q, u64(h.LastSeq))
	if err != nil {
		return nil, err
	}
	root, err := rootOf(r)
	if err != nil {
		return nil, err
	}
	h.RootHash = b64(root)
	cp, err := consistencyProof(ctx, db, h.LastSeq, th.TreeSize)
	if err != nil {
		return nil, err
	}
	h.Consistency = cp.Path
	bw := bufio.NewWriterSize(w, 64<<10)
	line, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	if _, err := bw.Write(append(line, '\n')); err != nil {
		return nil, err
	}
	rows, err := q.Raw(`SELECT `+eventColumns+` FROM audit_events WHERE seq >= ? AND seq <= ? ORDER BY seq`, h.FirstSeq, h.LastSeq).Rows()
	if err != nil {
		return nil, fmt.Errorf("audit archive: %w", err)
	}
	defer rows.Close()
	var n int64
	var ev Event
	buf := make([]byte, 0, 1024)
	for rows.Next() {
		scopes, err := scanEvent(rows, &ev)
		if err != nil {
			return nil, fmt.Errorf("audit archive: %w", err)
		}
		ev.Scopes = strings.Fields(scopes)
		buf = append(appendJSON(buf[:0], &ev), '\n')
		if _, err := bw.Write(buf); err != nil {
			return nil, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit archive: %w", err)
	}
	if n != h.Events {
		return nil, fmt.Errorf("audit archive: read %d events, the partitions hold %d", n, h.Events)
	}
	return h, bw.Flush()
}

// Detach records the archive anchor and detaches plan's partitions, in one
// transaction. Call it only once the archive file is durably written.
func Detach(ctx context.Context, db *store.DB, plan []Partition, h *ArchiveHeader, fileSHA256 string, now time.Time) error {
	return db.Tx(ctx, func(tx *gorm.DB) error {
		for _, p := range plan {
			first, last, hash := p.FirstSeq, p.LastSeq, ""
			if p.Events == 0 {
				continue
			}
			if last == h.LastSeq {
				hash = h.LastHash
			} else if err := tx.Raw(`SELECT hash FROM audit_events WHERE seq = ?`, last).Row().Scan(&hash); err != nil {
				return fmt.Errorf("audit detach: %w", err)
			}
			if err := tx.Exec(`INSERT INTO audit_archives (partition_name, first_seq, last_seq, last_hash, file_sha256, archived_at) VALUES (?, ?, ?, ?, ?, ?)`,
				p.Name, first, last, hash, fileSHA256, store.Micros(now)).Error; err != nil {
				return fmt.Errorf("audit detach: %w", err)
			}
		}
		for _, p := range plan {
			if err := tx.Exec(`ALTER TABLE audit_events DETACH PARTITION "` + strings.ReplaceAll(p.Name, `"`, `""`) + `"`).Error; err != nil {
				return fmt.Errorf("audit detach %s: %w", p.Name, err)
			}
		}
		return nil
	})
}
