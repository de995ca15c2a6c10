package consent

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/consentgate/consentgate/internal/store"
)

// Joined reads a consent, with its accounts, as part of another table's
// query: the token check of every data call selects its token, client and
// consent in one statement instead of one per table. The consent side is an
// outer join, so every column may be NULL (a client_credentials token has
// no consent).
type Joined struct {
	r        joinedRow
	accounts *string
}

type joinedRow struct {
	ID, ClientID, Status, Scopes, Purpose *string
	CustomerID, RevokedBy                 *string
	HistoryDays                           *int64
	DurationSeconds, CreatedAt, UpdatedAt *int64
	AuthorizedAt, ExpiresAt, RevokedAt    *int64
}

// JoinedColumns is the select list for Joined.Dest: the consent aliased as
// alias (joined on its id) and its account ids aggregated in one column, in
// d's SQL.
func JoinedColumns(d store.Dialect, alias string) string {
	// A JSON array keeps any id intact, whatever characters it holds.
	agg := "json_group_array(ca.account_id)"
	if d == store.Postgres {
		agg = "json_agg(ca.account_id)::text"
	}
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = alias + "." + c
	}
	return strings.Join(cols, ", ") +
		", (SELECT " + agg + " FROM consent_accounts ca WHERE ca.consent_id = " + alias + ".id)"
}

// Dest is the scan destinations of JoinedColumns, in order.
func (j *Joined) Dest() []any {
	r := &j.r
	return []any{&r.ID, &r.ClientID, &r.CustomerID, &r.Status, &r.Scopes, &r.Purpose, &r.HistoryDays,
		&r.DurationSeconds, &r.CreatedAt, &r.AuthorizedAt, &r.ExpiresAt, &r.RevokedAt, &r.RevokedBy, &r.UpdatedAt,
		&j.accounts}
}

// Consent is the scanned consent, nil (and no error) when the join found
// none.
func (j *Joined) Consent() (*Consent, error) {
	r := &j.r
	if r.ID == nil {
		return nil, nil
	}
	full := row{
		ID: *r.ID, ClientID: deref(r.ClientID), CustomerID: r.CustomerID, Status: deref(r.Status),
		Scopes: deref(r.Scopes), Purpose: deref(r.Purpose), HistoryDays: int(deref(r.HistoryDays)),
		DurationSeconds: deref(r.DurationSeconds), CreatedAt: deref(r.CreatedAt), AuthorizedAt: r.AuthorizedAt,
		ExpiresAt: r.ExpiresAt, RevokedAt: r.RevokedAt, RevokedBy: r.RevokedBy, UpdatedAt: deref(r.UpdatedAt),
	}
	c := full.consent()
	// Sorted as Get sorts them. Without accounts, PostgreSQL's json_agg is
	// NULL and SQLite's json_group_array is [].
	c.AccountIDs = []string{}
	if j.accounts != nil {
		if err := json.Unmarshal([]byte(*j.accounts), &c.AccountIDs); err != nil {
			return nil, fmt.Errorf("consent %s: account ids: %w", c.ID, err)
		}
		if c.AccountIDs == nil {
			c.AccountIDs = []string{}
		}
		slices.Sort(c.AccountIDs)
	}
	return c, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
