-- Audit log (SPEC §6, docs/audit.md): one SHA-256 hash chain of events in seq
-- order, the chain head every writer locks to append, and signed checkpoints.
-- Append-only: triggers refuse UPDATE and DELETE on events and checkpoints,
-- and let the head only move forward. Absent values are '' (or 0 for status)
-- so the canonical encoding the hashes cover has no NULL case.

-- +goose Up
CREATE TABLE audit_events (
    seq            INTEGER PRIMARY KEY,
    event_id       TEXT NOT NULL UNIQUE,
    occurred_at    INTEGER NOT NULL,
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

-- The chain head: one row, locked by every batch append.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_checkpoints (
    seq        INTEGER PRIMARY KEY,
    hash       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    jws        TEXT NOT NULL
);

-- +goose StatementBegin
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
WHEN NEW.seq <= OLD.seq
BEGIN
    SELECT RAISE(ABORT, 'audit_head only moves forward');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN
    SELECT RAISE(ABORT, 'audit_head cannot be deleted');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE refused');
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE audit_checkpoints;
DROP TABLE audit_head;
DROP TABLE audit_events;
