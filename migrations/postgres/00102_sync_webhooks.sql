-- transactions.sync_available webhooks (docs/sync.md, "Change events").
--
-- A delivery of it is about one account of a grant: webhook_deliveries gets
-- the account (''  for the grant-wide events) in its unique key, with the
-- notice time in term_expires_at. sync_notices coalesces them: per grant and
-- account it holds the time of the latest notice scheduled, and a new one
-- is scheduled only once that time has passed, at least a minute after it
-- (one conditional upsert, so any number of nodes agree).

-- +goose Up
ALTER TABLE webhook_deliveries ADD COLUMN account_id TEXT NOT NULL DEFAULT '';
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_event_check;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_event_check
    CHECK (event IN ('consent.revoked', 'consent.expiring', 'transactions.sync_available'));
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_grant_id_event_term_expires_at_key;
CREATE UNIQUE INDEX webhook_deliveries_once_idx ON webhook_deliveries (grant_id, event, term_expires_at, account_id);

CREATE TABLE sync_notices (
    consent_id TEXT NOT NULL REFERENCES consents (id),
    account_id TEXT NOT NULL,
    notify_at  BIGINT NOT NULL,
    PRIMARY KEY (consent_id, account_id)
);
-- The active grants reading an account, for the notice of a change.
CREATE INDEX consent_accounts_account_idx ON consent_accounts (account_id);

-- +goose Down
DROP INDEX consent_accounts_account_idx;
DROP TABLE sync_notices;
DELETE FROM webhook_deliveries WHERE event = 'transactions.sync_available';
DROP INDEX webhook_deliveries_once_idx;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_grant_id_event_term_expires_at_key
    UNIQUE (grant_id, event, term_expires_at);
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_event_check;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_event_check
    CHECK (event IN ('consent.revoked', 'consent.expiring'));
ALTER TABLE webhook_deliveries DROP COLUMN account_id;
