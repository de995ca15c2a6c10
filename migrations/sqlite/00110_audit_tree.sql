-- The audit log as a Merkle tree (SPEC §13, docs/audit.md). Appenders no
-- longer lock the chain head: each node commits its events to audit_pending
-- (no seq yet), and one integrator at a time moves them into audit_events,
-- assigning seq, prev_hash and hash, storing every complete node of the RFC
-- 9162 tree in audit_tree, and signing tree heads into audit_tree_heads.
-- Append-only like the rest of the log: a pending event may only be deleted
-- once it is in audit_events; tree nodes and tree heads never change.

-- +goose Up
CREATE TABLE audit_pending (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
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
    interaction_id TEXT NOT NULL DEFAULT ''
);

-- Every complete node of the tree: level 0 are the leaf hashes (leaf index =
-- seq - 1), level l index i covers leaves [i·2^l, (i+1)·2^l).
CREATE TABLE audit_tree (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

CREATE TABLE audit_tree_heads (
    tree_size  INTEGER PRIMARY KEY,
    root_hash  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    kid        TEXT NOT NULL,
    note       TEXT NOT NULL
);

-- +goose StatementBegin
CREATE TRIGGER audit_pending_no_update BEFORE UPDATE ON audit_pending
BEGIN
    SELECT RAISE(ABORT, 'audit_pending is append-only: UPDATE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_pending_integrated_only BEFORE DELETE ON audit_pending
WHEN NOT EXISTS (SELECT 1 FROM audit_events WHERE event_id = OLD.event_id)
BEGIN
    SELECT RAISE(ABORT, 'audit_pending: an event leaves only once it is in audit_events');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_tree_no_update BEFORE UPDATE ON audit_tree
BEGIN
    SELECT RAISE(ABORT, 'audit_tree is append-only: UPDATE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_tree_no_delete BEFORE DELETE ON audit_tree
BEGIN
    SELECT RAISE(ABORT, 'audit_tree is append-only: DELETE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_tree_heads_no_update BEFORE UPDATE ON audit_tree_heads
BEGIN
    SELECT RAISE(ABORT, 'audit_tree_heads is append-only: UPDATE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_tree_heads_no_delete BEFORE DELETE ON audit_tree_heads
BEGIN
    SELECT RAISE(ABORT, 'audit_tree_heads is append-only: DELETE refused');
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE audit_tree_heads;
DROP TABLE audit_tree;
DROP TABLE audit_pending;
