-- Webhooks to apps (docs/webhooks.md): the URL each client registered, and
-- the outbox of deliveries. A delivery row is created once per grant, event
-- and grant term (UNIQUE, ON CONFLICT DO NOTHING), so any number of nodes can
-- scan for due events without sending duplicates; a node claims a due
-- attempt by moving next_attempt_at forward with a conditional UPDATE.

-- +goose Up
CREATE TABLE client_webhooks (
    client_id  TEXT PRIMARY KEY REFERENCES oauth_clients (id),
    url        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES oauth_clients (id),
    grant_id        TEXT NOT NULL REFERENCES consents (id),
    event           TEXT NOT NULL CHECK (event IN ('consent.revoked', 'consent.expiring')),
    -- The grant's expires_at the event is about (0 when it had none): a
    -- renewed grant starts a new term and earns a new consent.expiring.
    term_expires_at INTEGER NOT NULL,
    body            TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- NULL once delivered or given up.
    next_attempt_at INTEGER,
    delivered_at    INTEGER,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    UNIQUE (grant_id, event, term_expires_at)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at);
CREATE INDEX webhook_deliveries_client_idx ON webhook_deliveries (client_id, created_at DESC);
-- The scan for recent revocations not yet notified.
CREATE INDEX consents_revoked_idx ON consents (status, revoked_at);

-- +goose Down
DROP INDEX consents_revoked_idx;
DROP TABLE webhook_deliveries;
DROP TABLE client_webhooks;
