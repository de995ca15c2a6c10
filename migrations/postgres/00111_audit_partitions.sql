-- audit_events partitioned by month (SPEC §14, docs/audit.md "Retention").
-- The key is logged_at, the time the integrator placed the event in the
-- log (unix microseconds), which it keeps monotonic with seq: so every
-- monthly partition holds one contiguous range of seqs, and `consentgate
-- audit archive` can export a whole verified partition and detach it.
-- Events already in the log go to audit_events_legacy (logged_at =
-- their occurred_at, below the current month). The integrator creates each
-- month's partition when it first needs it.
--
-- A unique index on a partitioned table must contain the key, so seq and
-- event_id are unique together with logged_at; seq is assigned by the one
-- integrator and event_id is unique in audit_pending, which every event
-- passes through.

-- +goose Up
ALTER TABLE audit_events RENAME TO audit_events_unpartitioned;
DROP TRIGGER audit_events_append_only ON audit_events_unpartitioned;
DROP TRIGGER audit_events_no_truncate ON audit_events_unpartitioned;
DROP INDEX audit_events_customer_idx, audit_events_client_idx, audit_events_grant_idx,
    audit_events_type_idx, audit_events_time_idx, audit_events_interaction_idx;

CREATE TABLE audit_events (
    seq            BIGINT NOT NULL,
    event_id       TEXT NOT NULL,
    occurred_at    BIGINT NOT NULL,
    type           TEXT NOT NULL,
    outcome        TEXT NOT NULL CHECK (outcome IN ('allowed', 'denied')),
    reason         TEXT NOT NULL DEFAULT '',
    client_id      TEXT NOT NULL DEFAULT '',
    customer_id    TEXT NOT NULL DEFAULT '',
    grant_id       TEXT NOT NULL DEFAULT '',
    account_id     TEXT NOT NULL DEFAULT '',
    method         TEXT NOT NULL DEFAULT '',
    path           TEXT NOT NULL DEFAULT '',
    status         INTEGER NOT NULL DEFAULT 0,
    purpose        TEXT NOT NULL DEFAULT '',
    scopes         TEXT NOT NULL DEFAULT '',
    interaction_id TEXT NOT NULL DEFAULT '',
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL,
    logged_at      BIGINT NOT NULL,
    PRIMARY KEY (seq, logged_at),
    UNIQUE (event_id, logged_at)
) PARTITION BY RANGE (logged_at);
CREATE INDEX audit_events_customer_idx ON audit_events (customer_id, seq);
CREATE INDEX audit_events_client_idx ON audit_events (client_id, seq);
CREATE INDEX audit_events_grant_idx ON audit_events (grant_id, seq);
CREATE INDEX audit_events_type_idx ON audit_events (type, seq);
CREATE INDEX audit_events_time_idx ON audit_events (occurred_at, seq);
CREATE INDEX audit_events_interaction_idx ON audit_events (interaction_id);

-- +goose StatementBegin
DO $$
DECLARE
    month_start BIGINT := (extract(epoch FROM date_trunc('month', now() AT TIME ZONE 'UTC')) * 1000000)::BIGINT;
BEGIN
    EXECUTE format('CREATE TABLE audit_events_legacy PARTITION OF audit_events FOR VALUES FROM (MINVALUE) TO (%s)', month_start);
    INSERT INTO audit_events
    SELECT seq, event_id, occurred_at, type, outcome, reason, client_id, customer_id, grant_id, account_id,
           method, path, status, purpose, scopes, interaction_id, prev_hash, hash, LEAST(occurred_at, month_start - 1)
    FROM audit_events_unpartitioned;
END;
$$;
-- +goose StatementEnd
DROP TABLE audit_events_unpartitioned;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- Archived partitions: what `consentgate audit archive` exported and then
-- detached, and the anchor verify starts from.
CREATE TABLE audit_archives (
    partition_name TEXT PRIMARY KEY,
    first_seq      BIGINT NOT NULL,
    last_seq       BIGINT NOT NULL UNIQUE,
    last_hash      TEXT NOT NULL,
    file_sha256    TEXT NOT NULL,
    archived_at    BIGINT NOT NULL
);
CREATE TRIGGER audit_archives_append_only BEFORE UPDATE OR DELETE ON audit_archives
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();

-- +goose Down
DROP TABLE audit_archives;
ALTER TABLE audit_events RENAME TO audit_events_partitioned;
CREATE TABLE audit_events (LIKE audit_events_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
INSERT INTO audit_events SELECT * FROM audit_events_partitioned;
DROP TABLE audit_events_partitioned;
ALTER TABLE audit_events DROP COLUMN logged_at;
ALTER TABLE audit_events ADD PRIMARY KEY (seq);
ALTER TABLE audit_events ADD UNIQUE (event_id);
CREATE INDEX audit_events_customer_idx ON audit_events (customer_id, seq);
CREATE INDEX audit_events_client_idx ON audit_events (client_id, seq);
CREATE INDEX audit_events_grant_idx ON audit_events (grant_id, seq);
CREATE INDEX audit_events_type_idx ON audit_events (type, seq);
CREATE INDEX audit_events_time_idx ON audit_events (occurred_at, seq);
CREATE INDEX audit_events_interaction_idx ON audit_events (interaction_id);
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
