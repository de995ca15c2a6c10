-- Unattended data calls per consent per UTC day (SPEC §4 daily limits),
-- counted in the shared database so every node enforces one limit.

-- +goose Up
CREATE TABLE consent_usage (
    consent_id TEXT NOT NULL REFERENCES consents (id),
    day        BIGINT NOT NULL, -- days since 1970-01-01 UTC
    unattended INTEGER NOT NULL,
    PRIMARY KEY (consent_id, day)
);

-- +goose Down
DROP TABLE consent_usage;
