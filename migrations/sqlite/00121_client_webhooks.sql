-- Client lifecycle webhooks (SPEC §11): an app is told by a signed webhook
-- when the bank suspends or reinstates it. Such a delivery is about the app,
-- not one grant: grant_id becomes optional and the event list grows (it
-- keeps transactions.sync_available and account_id of 00102). SQLite cannot
-- alter a column or a CHECK, so the table is rebuilt with its rows and
-- indexes. term_expires_at of a client event is the time of the change, so
-- each suspension and reinstatement is its own delivery.

-- +goose Up
CREATE TABLE webhook_deliveries_new (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES oauth_clients (id),
    grant_id        TEXT REFERENCES consents (id),
    event           TEXT NOT NULL CHECK (event IN ('consent.revoked', 'consent.expiring', 'transactions.sync_available',
                                                   'client.suspended', 'client.reinstated')),
    term_expires_at INTEGER NOT NULL,
    body            TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    delivered_at    INTEGER,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    account_id      TEXT NOT NULL DEFAULT ''
);
INSERT INTO webhook_deliveries_new (id, client_id, grant_id, event, term_expires_at, body, attempts, next_attempt_at,
    delivered_at, last_status, last_error, created_at, account_id)
SELECT id, client_id, grant_id, event, term_expires_at, body, attempts, next_attempt_at,
    delivered_at, last_status, last_error, created_at, account_id FROM webhook_deliveries;
DROP TABLE webhook_deliveries;
ALTER TABLE webhook_deliveries_new RENAME TO webhook_deliveries;
CREATE UNIQUE INDEX webhook_deliveries_once_idx ON webhook_deliveries (grant_id, event, term_expires_at, account_id);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at);
CREATE INDEX webhook_deliveries_client_idx ON webhook_deliveries (client_id, created_at DESC);
-- The housekeeping prune of settled deliveries past their retention.
CREATE INDEX webhook_deliveries_settled_idx ON webhook_deliveries (created_at) WHERE next_attempt_at IS NULL;

-- +goose Down
DELETE FROM webhook_deliveries WHERE grant_id IS NULL;
CREATE TABLE webhook_deliveries_old (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES oauth_clients (id),
    grant_id        TEXT NOT NULL REFERENCES consents (id),
    event           TEXT NOT NULL CHECK (event IN ('consent.revoked', 'consent.expiring', 'transactions.sync_available')),
    term_expires_at INTEGER NOT NULL,
    body            TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    delivered_at    INTEGER,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    account_id      TEXT NOT NULL DEFAULT ''
);
INSERT INTO webhook_deliveries_old SELECT id, client_id, grant_id, event, term_expires_at, body, attempts, next_attempt_at,
    delivered_at, last_status, last_error, created_at, account_id FROM webhook_deliveries;
DROP TABLE webhook_deliveries;
ALTER TABLE webhook_deliveries_old RENAME TO webhook_deliveries;
CREATE UNIQUE INDEX webhook_deliveries_once_idx ON webhook_deliveries (grant_id, event, term_expires_at, account_id);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at);
CREATE INDEX webhook_deliveries_client_idx ON webhook_deliveries (client_id, created_at DESC);
