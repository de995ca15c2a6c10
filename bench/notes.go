package bench

// staticNotes close docs/benchmarks.md: what the measured paths do, so a
// reader can tell what the figures include and why they are what they are.
const staticNotes = `## What the measured paths do

- **A gated data call** runs, in order: the access token check (one read by primary key, kind and SHA-256 of
  the token's HMAC signature, joined with the client's registration and the consent's status), the consent
  with its accounts (one query, on every call: no cache, so a revocation shows on the next call), the
  purpose and scope decision (in memory), the account (one query), the handler's own read, and the
  ` + "`data.access`" + ` audit event, which is committed before the answer leaves (group commit: concurrent calls share one
  transaction). The ungated baseline is the handler's read alone.
- **The transactions page** is one query: keyset pagination on the index (account_id, transacted_at DESC,
  id DESC), limit + 1 rows to know whether a next page exists, no COUNT. A cursor's time is the upper bound
  of the index range, so the walk starts at the cursor and a page deep in the history costs what the first
  one does; the size of the rest of the table does not enter.
- **Hot reads skip the ORM.** The page query, the account and balance reads, the token check and the consent
  load go straight through database/sql and scan into typed variables; gorm's statement builder and
  reflective scanning cost more than the database on a page of 100 rows.
- **Connection pools are bounded** (store.Open: 20 connections on PostgreSQL, 8 on SQLite).
- **The token endpoint** issues opaque HMAC-SHA256 tokens (fosite's HMAC strategy); only the SHA-256 of a
  token's signature is stored. A client_credentials request costs one client read, one token row and one
  audit event; token rows written outside a fosite transaction are group-committed like audit events, so a
  token is never handed out before it is durable, yet concurrent requests share one commit (on SQLite every
  commit holds the single write lock through an fsync).
- **Client secrets** are generated with 256 bits of entropy (` + "`consentgate client create`" + `), so they are stored
  as HMAC-SHA256 under a key derived from the server secret, not with bcrypt or argon2: guessing a 256-bit
  secret is hopeless whatever the hash, and a deliberately slow hash would only cap the token endpoint.
  Customers' passwords are different (chosen by people) and stay argon2id.
- **SQLite** is the embedded pure-Go build (modernc.org/sqlite): its driver compiles every statement anew on
  each execution (it keeps no prepared statements) and crosses into the transpiled library for every
  column of every row, so it pays per query and per column what PostgreSQL's driver (pgx, prepared
  statements cached per connection) does not.
- **PostgreSQL** is a throwaway cluster (scripts/with-postgres) with default settings, fsync on under make
  bench (CONSENTGATE_TEST_PG_FSYNC=on), in the same machine as the server and the load generator.
`
