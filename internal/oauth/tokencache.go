package oauth

import (
	"context"
	"database/sql"
	"errors"

	"github.com/ory/fosite"

	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/store"
)

// The access token check's cache. Every data call and introspection read
// the token row whole: its stored fosite request (a JSON record, decoded on
// every call) and its client's whole registration, besides what can change.
// A token's record never changes once written, and a client row is the
// same while its revision is (a trigger bumps it on every UPDATE,
// migration 00150). So a node remembers the records of the access tokens it
// has checked, by signature, and the client rows they came with, and reads
// what can change live, in one statement as before: the token's active
// flag and expiry, its consent with its accounts, and its client's
// revision. A revocation, a consent's end, a suspension or any change to
// the client shows on the very next call on every node; only when the
// revision moved is the client row read again (with the record, by the
// full statement).

// tokenRecordsSize and clientRowsSize bound the node's token records and
// client rows (see memo; a bank has hundreds of apps, not thousands).
const (
	tokenRecordsSize = 16384
	clientRowsSize   = 4096
)

// clientAt is a copy of the node's row of client id if it is at revision
// rev, or nil.
func (s *fositeStore) clientAt(id string, rev int64) *Client {
	row, _ := s.clientRows.get(id)
	if row == nil || row.Revision != rev {
		return nil
	}
	cp := *row
	return &cp
}

// liveTokenQuery is what the token check reads when the node knows the
// token's record: the token's state, its consent and its client's
// revision, by the same key and joins as tokenQuery.
func liveTokenQuery(d store.Dialect) string {
	return `SELECT t.request_id, t.client_id, t.active, t.expires_at, ` + consent.JoinedColumns(d, "c") + `, k.revision
		FROM oauth_tokens t JOIN oauth_clients k ON k.id = t.client_id LEFT JOIN consents c ON c.id = t.request_id
		WHERE t.kind = $1 AND t.signature_hash = $2`
}

// knownAccessToken reads the access token of signature hash when this node
// knows its record and its client row at the current revision: nil (and
// no error) when it cannot answer, and the caller reads the row whole.
func (s *fositeStore) knownAccessToken(ctx context.Context, hash string) (*tokenRow, error) {
	rec, _ := s.records.get(hash)
	if rec == nil {
		return nil, nil
	}
	var (
		r    tokenRow
		cons consent.Joined
		rev  int64
	)
	dst := append([]any{&r.RequestID, &r.ClientID, &r.Active, &r.ExpiresAt}, cons.Dest()...)
	err := s.sqlConn(ctx).QueryRowContext(ctx, s.liveTokenQuery, kindAccess, hash).Scan(append(dst, &rev)...)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fosite.ErrNotFound
	case err != nil:
		return nil, dbErr("get "+kindAccess, err)
	}
	if r.Client = s.clientAt(r.ClientID, rev); r.Client == nil {
		return nil, nil
	}
	if r.Consent, err = cons.Consent(); err != nil {
		return nil, err
	}
	r.rec = rec
	return &r, nil
}

// rememberAccessToken keeps the record and client row of an access token
// read whole.
func (s *fositeStore) rememberAccessToken(hash string, r *tokenRow) error {
	rec, err := parseRecord(r.RequestData)
	if err != nil {
		return err
	}
	r.rec = rec
	s.records.put(hash, rec)
	s.keepClient(r.Client)
	return nil
}
