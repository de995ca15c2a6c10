package bench

// staticNotes close docs/benchmarks.md: what the measured paths do, so a
// reader can tell what the figures include and why they are what they are.
const staticNotes = `## What the measured paths do

- **A gated data call** runs, in order: the access token check (one read by primary key, kind and SHA-256 of
  the token's HMAC signature, joined with the whole consent, its accounts aggregated, and the client's
  revision in the same statement; the token's stored request and the client row at that revision come from
  the node's memory once it has read them, since neither changes, so a revocation, a consent's end or a
  suspension still shows on the next call), the purpose and
  scope decision (in memory), the handler's own read, and the ` + "`data.access`" + ` audit event, which is committed
  before the answer leaves (group commit: concurrent calls share one transaction). The transactions page
  reads no account row of its own: its query selects the account only if it is the consent customer's
  (an uncorrelated subquery, evaluated once), so a gated page is two reads and one audit commit. The
  ungated baseline is the handler's read alone.
- **The transactions page** is one query: keyset pagination on the index (account_id, transacted_at DESC,
  id DESC), limit + 1 rows to know whether a next page exists, no COUNT. A cursor's time is the upper bound
  of the index range, so the walk starts at the cursor and a page deep in the history costs what the first
  one does; the size of the rest of the table does not enter. The page is rendered by a hand-written JSON
  writer into a pooled buffer (byte for byte what encoding/json gave, held to it by tests and a fuzz
  target); the ungated baseline uses the same writer.
- **Provider ingestion** writes a batch in one transaction: one array-parameter read per table, one
  ` + "`INSERT … SELECT FROM unnest(…) ON CONFLICT`" + ` for the transactions. Each row maintains two B-trees (primary
  key, keyset index); the status filter has a partial index of the few pending rows, and PostgreSQL keeps no
  per-row foreign key check to accounts (accounts can never be removed, which triggers enforce;
  docs/ingestion.md).
- **Stale generic plans** (found while building the open-loop measurement): PostgreSQL caches a generic plan
  per prepared statement and pooled connection. The token endpoint's load grows the token table a
  hundredfold in seconds; until autovacuum next analyzes it (within a minute) a plan made while the table
  was tiny scans it sequentially, and the gated page at 500 req/s went from a 2 ms to a 80–130 ms median.
  ` + "`plan_cache_mode=force_custom_plan`" + ` cured it but cost 30% of gated throughput, so the benchmark measures the
  open loop before the token endpoint instead. Since then every node analyzes the tables that each
  authenticated request reads by key once their live rows have more than doubled since their statistics
  (looked at every 2 s, ` + "`store.RefreshGrownStats`" + `; docs/operations.md, Housekeeping), which replans them on
  every connection: introspection, measured right after the token endpoint, no longer meets the stale plan.
  ` + "`consentgate import`" + ` and ` + "`demo seed`" + ` analyze the database when they finish, which also makes running servers
  replan at once.
- **Hot reads skip the ORM.** The page query, the account and balance reads, the token check and the consent
  load go straight through database/sql and scan into typed variables; gorm's statement builder and
  reflective scanning cost more than the database on a page of 100 rows.
- **Connection pools are bounded** (store.Open: 20 connections on PostgreSQL, 8 on SQLite).
- **The token endpoint** issues opaque HMAC-SHA256 tokens (fosite's HMAC strategy); only the SHA-256 of a
  token's signature is stored. A client_credentials request costs one client read, and its token row and
  its ` + "`token.issued`" + ` audit event are written in one transaction of the audit writer's group commit
  (` + "`audit.Writer.AppendWith`" + `): a token is never handed out before it and its event are durable, and concurrent
  requests share one commit (on SQLite every commit holds the single write lock through an fsync). Before
  issue 18 the token row had a group commit of its own and the event a second one after it. The request's
  id (the row's request_id) and the event's id are time-ordered UUIDv7s, so their indexes grow at one edge
  instead of dirtying a random page (a WAL frame on SQLite, a full-page image after a checkpoint on
  PostgreSQL) per token; SQLite keeps its statement journals in memory (` + "`temp_store=memory`" + `); and the grant
  runs on a fosite composed with its handler alone, so no other grant's handler builds a stack-traced "not
  mine" error for it.
- **Introspection** (` + "`POST /oauth2/introspect`" + `) reads the introspected token first: its row comes with the
  client's registration and the consent (the token check's one read), and a client introspecting its own
  token is authenticated against that client row (its secret checked as always). One read by primary key
  answers the request, live, so a revocation or a suspension shows on the next request on every node
  (TestTwoNodeRevocation checks it under load). Before issue 18 the client was read a second time.
- **oidc-provider** (the reference of issue 18) keeps clients, tokens and grants in the memory of one Node
  process: its token endpoint writes nothing durable and records no audit event, and its introspection is a
  map lookup. Ours commit every token and event to the database before answering, and read every token's
  row, consent and client live.
- **Client secrets** are generated with 256 bits of entropy (` + "`consentgate client create`" + `), so they are stored
  as HMAC-SHA256 under a key derived from the server secret, not with bcrypt or argon2: guessing a 256-bit
  secret is hopeless whatever the hash, and a deliberately slow hash would only cap the token endpoint.
  Customers' passwords are different (chosen by people) and stay argon2id.
- **SQLite** is the embedded pure-Go build (github.com/ncruces/go-sqlite3: the SQLite library translated to
  Go by wasm2go): each pooled connection keeps its statements prepared (internal/store/sqlite.go), so a
  query is compiled once per connection rather than on every execution, as PostgreSQL's driver (pgx) does;
  every row is still copied out of the translated library's memory and every text column becomes a Go
  string (docs/benchmarks-sqlite-driver.md compares it with modernc.org/sqlite, used before).
- **PostgreSQL** is a throwaway cluster (scripts/with-postgres) with default settings, fsync on under make
  bench (CONSENTGATE_TEST_PG_FSYNC=on), in the same machine as the server and the load generator.
`
