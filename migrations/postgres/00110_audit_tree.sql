-- The audit log as a Merkle tree (SPEC §13, docs/audit.md). Appenders no
-- longer lock the chain head: each node commits its events to audit_pending
-- (no seq yet), and one integrator at a time (advisory lock) moves them into
-- audit_events, assigning seq, prev_hash and hash, storing every complete
-- node of the RFC 9162 tree in audit_tree, and signing tree heads into
-- audit_tree_heads. Append-only like the rest of the log: a pending event may
-- only be deleted once it is in audit_events; tree nodes and tree heads never
-- change.

-- +goose Up
CREATE TABLE audit_pending (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    interaction_id TEXT NOT NULL DEFAULT ''
);

-- Every complete node of the tree: level 0 are the leaf hashes (leaf index =
-- seq - 1), level l index i covers leaves [i·2^l, (i+1)·2^l).
CREATE TABLE audit_tree (
    level SMALLINT NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE audit_tree_heads (
    tree_size  BIGINT PRIMARY KEY,
    root_hash  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    kid        TEXT NOT NULL,
    note       TEXT NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION audit_pending_integrated_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'DELETE' OR NOT EXISTS (SELECT 1 FROM audit_events WHERE event_id = OLD.event_id) THEN
        RAISE EXCEPTION 'audit_pending: an event leaves only once it is in audit_events (% refused)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_pending_integrated_only BEFORE UPDATE OR DELETE ON audit_pending
    FOR EACH ROW EXECUTE FUNCTION audit_pending_integrated_only();
CREATE TRIGGER audit_pending_no_truncate BEFORE TRUNCATE ON audit_pending
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_tree_append_only BEFORE UPDATE OR DELETE ON audit_tree
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_tree_no_truncate BEFORE TRUNCATE ON audit_tree
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_tree_heads_append_only BEFORE UPDATE OR DELETE ON audit_tree_heads
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_tree_heads_no_truncate BEFORE TRUNCATE ON audit_tree_heads
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- +goose Down
DROP TABLE audit_tree_heads;
DROP TABLE audit_tree;
DROP TABLE audit_pending;
DROP FUNCTION audit_pending_integrated_only();
