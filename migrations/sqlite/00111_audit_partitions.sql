-- logged_at: the time the integrator placed the event in the log (unix
-- microseconds, monotonic with seq). On PostgreSQL audit_events is
-- partitioned by month of it (docs/audit.md "Retention"); SQLite has no
-- partitions and keeps the column so that both dialects share one code
-- path. audit_archives records archived partitions (PostgreSQL only; empty
-- here).

-- +goose Up
ALTER TABLE audit_events ADD COLUMN logged_at INTEGER NOT NULL DEFAULT 0;
CREATE TABLE audit_archives (
    partition_name TEXT PRIMARY KEY,
    first_seq      INTEGER NOT NULL,
    last_seq       INTEGER NOT NULL UNIQUE,
    last_hash      TEXT NOT NULL,
    file_sha256    TEXT NOT NULL,
    archived_at    INTEGER NOT NULL
);

-- +goose Down
DROP TABLE audit_archives;
ALTER TABLE audit_events DROP COLUMN logged_at;
