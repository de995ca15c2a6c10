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
// full statement). A data call may skip even that read: see
// deferredAccessToken below.

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
// revision, by the same key and joins as tokenQuery, and the consent's
// revision (migration 00160; NULL without a consent).
func liveTokenQuery(d store.Dialect) string {
	return `SELECT t.request_id, t.client_id, t.active, t.expires_at, ` + consent.JoinedColumns(d, "c") + `, k.revision, c.revision
		FROM oauth_tokens t JOIN oauth_clients k ON k.id = t.client_id LEFT JOIN consents c ON c.id = t.request_id
		WHERE t.kind = $1 AND t.signature_hash = $2`
}

// A data call's token check may skip even the live read (store.Deferred):
// when the request opened the slot and this node has read the token's
// state before, found it active under a consent, it answers from that
// state and defers liveTokenCheck to the commit of the call's data.access
// event. That query returns a row only while the token is still active,
// its client and its consent still at the revisions read (each bumped by
// a trigger on every change: migrations 00150 and 00160); the event and
// the answer are otherwise withheld, and the call is served again with
// the slot closed, from a live read. So a revocation, a suspension, a
// change of the grant or its accounts, made on any node, binds the very
// next call as before; what goes is the round trip before the call's data
// is read, which on PostgreSQL stood between the gated page and 0.6 of
// its ungated baseline (docs/benchmarks-notes.md).

// liveToken is a token's state as this node read it last.
type liveToken struct {
	requestID, clientID   string
	expiresAt             int64
	consent               *consent.Consent
	clientRev, consentRev int64
}

// liveTokenCheck returns a row while the access token of signature hash
// ? is active, its client at revision ? and its consent at revision ?.
//
// #nosec G101 -- a query; "token" in its name is not a credential
const liveTokenCheck = `SELECT 1 FROM oauth_tokens t JOIN oauth_clients k ON k.id = t.client_id JOIN consents c ON c.id = t.request_id
	WHERE t.kind = ? AND t.signature_hash = ? AND t.active = ? AND k.revision = ? AND c.revision = ?`

// knownAccessToken reads the access token of signature hash when this node
// knows its record and its client row at the current revision: nil (and
// no error) when it cannot answer, and the caller reads the row whole.
func (s *fositeStore) knownAccessToken(ctx context.Context, hash string) (*tokenRow, error) {
	rec, _ := s.records.get(hash)
	if rec == nil {
		return nil, nil
	}
	if r := s.deferredAccessToken(ctx, hash, rec); r != nil {
		return r, nil
	}
	var (
		r          tokenRow
		cons       consent.Joined
		rev        int64
		consentRev sql.NullInt64
	)
	dst := append([]any{&r.RequestID, &r.ClientID, &r.Active, &r.ExpiresAt}, cons.Dest()...)
	err := s.sqlConn(ctx).QueryRowContext(ctx, s.liveTokenQuery, kindAccess, hash).Scan(append(dst, &rev, &consentRev)...)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		s.liveTokens.forget(hash)
		return nil, fosite.ErrNotFound
	case err != nil:
		return nil, dbErr("get "+kindAccess, err)
	}
	if r.Client = s.clientAt(r.ClientID, rev); r.Client == nil {
		s.liveTokens.forget(hash)
		return nil, nil
	}
	if r.Consent, err = cons.Consent(); err != nil {
		return nil, err
	}
	r.rec = rec
	if r.Active && r.Consent != nil && consentRev.Valid {
		s.liveTokens.put(hash, &liveToken{requestID: r.RequestID, clientID: r.ClientID, expiresAt: r.ExpiresAt,
			consent: r.Consent, clientRev: rev, consentRev: consentRev.Int64})
	} else {
		s.liveTokens.forget(hash)
	}
	return &r, nil
}

// deferredAccessToken answers the access token of signature hash from the
// state this node read last, when ctx's request may defer its check and
// the node has that state with the client row of its revision; nil
// otherwise.
func (s *fositeStore) deferredAccessToken(ctx context.Context, hash string, rec *record) *tokenRow {
	if !store.CanDefer(ctx) {
		return nil
	}
	lt, _ := s.liveTokens.get(hash)
	if lt == nil {
		return nil
	}
	client := s.clientAt(lt.clientID, lt.clientRev)
	if client == nil {
		return nil
	}
	if !store.Defer(ctx, store.Check{Query: liveTokenCheck, Args: []any{kindAccess, hash, true, lt.clientRev, lt.consentRev}}) {
		return nil
	}
	// The request gets its own copy: the remembered state is shared.
	cons := *lt.consent
	return &tokenRow{RequestID: lt.requestID, ClientID: lt.clientID, Active: true, ExpiresAt: lt.expiresAt,
		Consent: &cons, Client: client, rec: rec}
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
