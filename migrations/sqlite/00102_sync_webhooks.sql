-- transactions.sync_available webhooks (docs/sync.md, "Change events").
--
-- A delivery of it is about one account of a grant: webhook_deliveries gets
-- the account ('' for the grant-wide events) in its unique key, with the
-- notice time in term_expires_at. SQLite cannot change a CHECK or a UNIQUE
-- constraint in place, so the table is rebuilt with its rows. sync_notices
-- coalesces the notices: per grant and account it holds the time of the
-- latest notice scheduled, and a new one is scheduled only once that time
-- has passed, at least a minute after it (one conditional upsert).

-- +goose Up
CREATE TABLE webhook_deliveries_new (
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
INSERT INTO webhook_deliveries_new (id, client_id, grant_id, event, term_expires_at, body, attempts, next_attempt_at,
    delivered_at, last_status, last_error, created_at)
SELECT id, client_id, grant_id, event, term_expires_at, body, attempts, next_attempt_at,
    delivered_at, last_status, last_error, created_at FROM webhook_deliveries;
DROP TABLE webhook_deliveries;
ALTER TABLE webhook_deliveries_new RENAME TO webhook_deliveries;
CREATE UNIQUE INDEX webhook_deliveries_once_idx ON webhook_deliveries (grant_id, event, term_expires_at, account_id);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at);
CREATE INDEX webhook_deliveries_client_idx ON webhook_deliveries (client_id, created_at DESC);

CREATE TABLE sync_notices (
    consent_id TEXT NOT NULL REFERENCES consents (id),
    account_id TEXT NOT NULL,
    notify_at  INTEGER NOT NULL,
    PRIMARY KEY (consent_id, account_id)
);
-- The active grants reading an account, for the notice of a change.
CREATE INDEX consent_accounts_account_idx ON consent_accounts (account_id);

-- +goose Down
DROP INDEX consent_accounts_account_idx;
DROP TABLE sync_notices;
DELETE FROM webhook_deliveries WHERE event = 'transactions.sync_available';
CREATE TABLE webhook_deliveries_old (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES oauth_clients (id),
    grant_id        TEXT NOT NULL REFERENCES consents (id),
    event           TEXT NOT NULL CHECK (event IN ('consent.revoked', 'consent.expiring')),
    term_expires_at INTEGER NOT NULL,
    body            TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    delivered_at    INTEGER,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    UNIQUE (grant_id, event, term_expires_at)
);
INSERT INTO webhook_deliveries_old SELECT id, client_id, grant_id, event, term_expires_at, body, attempts,
    next_attempt_at, delivered_at, last_status, last_error, created_at FROM webhook_deliveries;
DROP TABLE webhook_deliveries;
ALTER TABLE webhook_deliveries_old RENAME TO webhook_deliveries;
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at);
CREATE INDEX webhook_deliveries_client_idx ON webhook_deliveries (client_id, created_at DESC);
