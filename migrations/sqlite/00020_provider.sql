-- Data providers (docs/ingestion.md): which institution each provider client
-- writes for, and the transactions providers reversed while pending.
-- Provider records are keyed by the provider's own ids; consentgate derives
-- its ids from them (prefix + hash of institution and provider id), so no
-- mapping table is needed and two institutions' ids never meet.

-- +goose Up
-- A provider client (client_credentials, scope provider:write) writes only
-- its institution's data.
CREATE TABLE provider_clients (
    client_id      TEXT PRIMARY KEY REFERENCES oauth_clients (id),
    institution_id TEXT NOT NULL REFERENCES institutions (id),
    created_at     INTEGER NOT NULL
);

-- A pending transaction a provider reversed: the row is deleted from
-- transactions, and its id is remembered so that a repeated reversal changes
-- nothing and the id is never used again.
CREATE TABLE provider_reversals (
    transaction_id TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    reversed_at    INTEGER NOT NULL
);

-- +goose Down
DROP TABLE provider_reversals;
DROP TABLE provider_clients;
