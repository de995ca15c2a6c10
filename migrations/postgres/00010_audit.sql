-- Audit log (SPEC §6, docs/audit.md): one SHA-256 hash chain of events in seq
-- order, the chain head every writer locks (SELECT ... FOR UPDATE) to append,
-- and signed checkpoints. Append-only: triggers refuse UPDATE, DELETE and
-- TRUNCATE on events and checkpoints, and let the head only move forward.
-- Absent values are '' (or 0 for status) so the canonical encoding the hashes
-- cover has no NULL case.

-- +goose Up
CREATE TABLE audit_events (
    seq            BIGINT PRIMARY KEY,
    event_id       TEXT NOT NULL UNIQUE,
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
    hash           TEXT NOT NULL
);
-- Keyset pages (seq) under each equality filter of the auditor API, the
-- dashboard's per-grant history (read backwards), time-range filters, and
-- look-ups by interaction id.
CREATE INDEX audit_events_customer_idx ON audit_events (customer_id, seq);
CREATE INDEX audit_events_client_idx ON audit_events (client_id, seq);
CREATE INDEX audit_events_grant_idx ON audit_events (grant_id, seq);
CREATE INDEX audit_events_type_idx ON audit_events (type, seq);
CREATE INDEX audit_events_time_idx ON audit_events (occurred_at, seq);
CREATE INDEX audit_events_interaction_idx ON audit_events (interaction_id);

-- The chain head: one row, locked by every batch append on every node.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_checkpoints (
    seq        BIGINT PRIMARY KEY,
    hash       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    jws        TEXT NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.seq <= OLD.seq THEN
        RAISE EXCEPTION 'audit_head only moves forward: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- +goose Down
DROP TABLE audit_checkpoints;
DROP TABLE audit_head;
DROP TABLE audit_events;
DROP FUNCTION audit_head_forward_only();
DROP FUNCTION audit_refuse_change();
