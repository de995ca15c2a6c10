package audit

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"gorm.io/gorm"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/store"
)

// Query limits of the auditor API.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Filter selects events; zero fields match everything. Since is inclusive,
// Until exclusive, both compared with occurred_at.
type Filter struct {
	CustomerID, ClientID, GrantID string
	Type                          Type
	Outcome                       Outcome
	Since, Until                  *time.Time
}

// Validate returns an apperr.InvalidRequest naming the first bad field.
func (f Filter) Validate() error {
	if f.Type != "" && !f.Type.Valid() {
		names := make([]string, 0, 10)
		for _, t := range Types() {
			names = append(names, string(t))
		}
		return apperr.New(apperr.InvalidRequest, "type must be one of "+strings.Join(names, ", ")+".")
	}
	if f.Outcome != "" && !f.Outcome.Valid() {
		return apperr.New(apperr.InvalidRequest, "outcome must be allowed or denied.")
	}
	if f.Since != nil && f.Until != nil && f.Since.After(*f.Until) {
		return apperr.New(apperr.InvalidRequest, "since must not be after until.")
	}
	return nil
}

// ParseFilter reads a Filter from the auditor API's query parameters
// customer_id, client_id, grant_id, type, outcome, since and until (RFC 3339)
// and validates it. Other parameters (limit, cursor) are the caller's.
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	get := func(name string) (string, error) {
		vs := q[name]
		if len(vs) > 1 {
			return "", apperr.New(apperr.InvalidRequest, name+" must be given at most once.")
		}
		if len(vs) == 0 {
			return "", nil
		}
		return vs[0], nil
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"customer_id", &f.CustomerID}, {"client_id", &f.ClientID}, {"grant_id", &f.GrantID},
		{"type", (*string)(&f.Type)}, {"outcome", (*string)(&f.Outcome)}} {
		v, err := get(p.name)
		if err != nil {
			return Filter{}, err
		}
		*p.dst = v
	}
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		v, err := get(p.name)
		if err != nil || v == "" {
			if err != nil {
				return Filter{}, err
			}
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return Filter{}, apperr.New(apperr.InvalidRequest, p.name+" must be an RFC 3339 time, e.g. 2026-01-31T00:00:00Z.")
		}
		*p.dst = &t
	}
	return f, f.Validate()
}

// where renders f as SQL conditions (joined with AND, never empty).
func (f Filter) where() (string, []any) {
	conds := []string{"1 = 1"}
	var args []any
	for _, c := range []struct{ col, v string }{{"customer_id", f.CustomerID}, {"client_id", f.ClientID},
		{"grant_id", f.GrantID}, {"type", string(f.Type)}, {"outcome", string(f.Outcome)}} {
		if c.v != "" {
			conds = append(conds, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	if f.Since != nil {
		conds = append(conds, "occurred_at >= ?")
		args = append(args, store.Micros(*f.Since))
	}
	if f.Until != nil {
		conds = append(conds, "occurred_at < ?")
		args = append(args, store.Micros(*f.Until))
	}
	return strings.Join(conds, " AND "), args
}

// binding identifies f inside a cursor, so a cursor cannot be replayed
// under other filters (it would silently skip or repeat events).
func (f Filter) binding() []byte {
	micros := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return strconv.FormatInt(store.Micros(*t), 10)
	}
	key := strings.Join([]string{f.CustomerID, f.ClientID, f.GrantID, string(f.Type), string(f.Outcome),
		micros(f.Since), micros(f.Until)}, "\x00")
	sum := sha256.Sum256([]byte("audit cursor v1\x00" + key))
	return sum[:8]
}

// encodeCursor is base64url(8 bytes of filter binding ‖ the last seq in
// decimal).
func encodeCursor(seq int64, f Filter) string {
	return base64.RawURLEncoding.EncodeToString(strconv.AppendInt(f.binding(), seq, 10))
}

func decodeCursor(s string, f Filter) (int64, error) {
	bad := apperr.New(apperr.InvalidCursor, "cursor is malformed or was issued for other filters.")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 9 || string(b[:8]) != string(f.binding()) {
		return 0, bad
	}
	seq, err := strconv.ParseInt(string(b[8:]), 10, 64)
	if err != nil || seq < 0 {
		return 0, bad
	}
	return seq, nil
}

// Reader answers the auditor API, the CLI and the dashboard.
type Reader struct{ db *store.DB }

// NewReader returns a Reader on db.
func NewReader(db *store.DB) *Reader { return &Reader{db: db} }

// Query returns one page of events matching f in ascending seq order (the
// order they were written, which auditors read forward), at most limit of
// them (0 means DefaultLimit), after the position cursor names ("" for the
// first page). nextCursor is "" on the last page. Bad filters or limits are
// apperr.InvalidRequest, a bad cursor apperr.InvalidCursor.
func (r *Reader) Query(ctx context.Context, f Filter, limit int, cursor string) (events []Event, nextCursor string, err error) {
	if err := f.Validate(); err != nil {
		return nil, "", err
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return nil, "", apperr.New(apperr.InvalidRequest, fmt.Sprintf("limit must be between 1 and %d.", MaxLimit))
	}
	var after int64
	if cursor != "" {
		if after, err = decodeCursor(cursor, f); err != nil {
			return nil, "", err
		}
	}
	if err := r.sync(ctx); err != nil {
		return nil, "", fmt.Errorf("audit.Query: %w", err)
	}
	where, args := f.where()
	args = append(args, after, limit+1)
	events, err = r.list(ctx, `SELECT `+eventColumns+` FROM audit_events WHERE `+where+` AND seq > ? ORDER BY seq LIMIT ?`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("audit.Query: %w", err)
	}
	if len(events) > limit {
		events = events[:limit]
		nextCursor = encodeCursor(events[limit-1].Seq, f)
	}
	return events, nextCursor, nil
}

// GrantHistory returns a grant's events newest first, at most limit (0
// means DefaultLimit), with seq below beforeSeq (0: from the newest). The
// next page is beforeSeq = the last returned Seq. The caller checks that the
// grant belongs to the customer asking.
func (r *Reader) GrantHistory(ctx context.Context, grantID string, limit int, beforeSeq int64) ([]Event, error) {
	if grantID == "" { // "" would select every event that has no grant
		return nil, apperr.New(apperr.InvalidRequest, "grant_id is required.")
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return nil, apperr.New(apperr.InvalidRequest, fmt.Sprintf("limit must be between 1 and %d.", MaxLimit))
	}
	if beforeSeq <= 0 {
		beforeSeq = 1<<63 - 1
	}
	if err := r.sync(ctx); err != nil {
		return nil, fmt.Errorf("audit.GrantHistory: %w", err)
	}
	evs, err := r.list(ctx, `SELECT `+eventColumns+` FROM audit_events WHERE grant_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
		grantID, beforeSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("audit.GrantHistory: %w", err)
	}
	return evs, nil
}

// LastAccess returns, per grant id, the time of its newest allowed
// data.access event; grants never accessed are absent.
func (r *Reader) LastAccess(ctx context.Context, grantIDs []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(grantIDs))
	if len(grantIDs) == 0 {
		return out, nil
	}
	if err := r.sync(ctx); err != nil {
		return nil, fmt.Errorf("audit.LastAccess: %w", err)
	}
	var rows []struct {
		GrantID string
		Last    int64
	}
	if err := r.db.WithContext(ctx).Raw(`SELECT grant_id, MAX(occurred_at) AS last FROM audit_events
		WHERE grant_id IN ? AND type = ? AND outcome = ? GROUP BY grant_id`,
		grantIDs, string(DataAccess), string(Allowed)).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("audit.LastAccess: %w", err)
	}
	for _, row := range rows {
		out[row.GrantID] = store.FromMicros(row.Last)
	}
	return out, nil
}

// ByInteractionID returns the events of one request (x-fapi-interaction-id)
// in seq order.
func (r *Reader) ByInteractionID(ctx context.Context, interactionID string) ([]Event, error) {
	if err := r.sync(ctx); err != nil {
		return nil, fmt.Errorf("audit.ByInteractionID: %w", err)
	}
	evs, err := r.list(ctx, `SELECT `+eventColumns+` FROM audit_events WHERE interaction_id = ? ORDER BY seq LIMIT ?`,
		interactionID, MaxLimit)
	if err != nil {
		return nil, fmt.Errorf("audit.ByInteractionID: %w", err)
	}
	return evs, nil
}

// Verify integrates the pending events and runs Verify on the Reader's
// database.
func (r *Reader) Verify(ctx context.Context, keys *jose.JSONWebKeySet) (Report, error) {
	if err := r.sync(ctx); err != nil {
		return Report{}, fmt.Errorf("audit.Verify: %w", err)
	}
	return Verify(ctx, r.db, keys)
}

// list runs a bounded query of eventColumns.
func (r *Reader) list(ctx context.Context, q string, args ...any) ([]Event, error) {
	return listEvents(r.db.WithContext(ctx), q, args...)
}

// listEvents runs a bounded query of eventColumns on db (or a transaction).
func listEvents(db *gorm.DB, q string, args ...any) ([]Event, error) {
	rows, err := db.Raw(q, args...).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var ev Event
		scopes, err := scanEvent(rows, &ev)
		if err != nil {
			return nil, err
		}
		ev.Scopes = strings.Fields(scopes)
		out = append(out, ev)
	}
	return out, rows.Err()
}
