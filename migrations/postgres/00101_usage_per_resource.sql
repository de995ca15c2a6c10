-- Unattended calls per consent, account and resource per UTC day (SPEC §12,
-- the EU RTS Art. 36(5) reading: "4 times a day" per account access). The
-- resource is accounts (the list: account_id ''), account, balances,
-- transactions or sync. Only served calls are counted (docs/sync.md).
-- consent_usage (00050) is no longer written.

-- +goose Up
CREATE TABLE consent_usage_resource (
    consent_id TEXT NOT NULL REFERENCES consents (id),
    day        BIGINT NOT NULL, -- days since 1970-01-01 UTC
    resource   TEXT NOT NULL,
    account_id TEXT NOT NULL,
    unattended INTEGER NOT NULL,
    PRIMARY KEY (consent_id, day, resource, account_id)
);

-- +goose Down
DROP TABLE consent_usage_resource;
