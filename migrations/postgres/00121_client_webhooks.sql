-- Client lifecycle webhooks (SPEC §11): an app is told by a signed webhook
-- when the bank suspends or reinstates it. Such a delivery is about the app,
-- not one grant: grant_id becomes optional and the event list grows (it
-- keeps transactions.sync_available of 00102).
-- term_expires_at of a client event is the time of the change, so each
-- suspension and reinstatement is its own delivery.

-- +goose Up
ALTER TABLE webhook_deliveries ALTER COLUMN grant_id DROP NOT NULL;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_event_check;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_event_check
    CHECK (event IN ('consent.revoked', 'consent.expiring', 'transactions.sync_available', 'client.suspended', 'client.reinstated'));
-- The housekeeping prune of settled deliveries past their retention.
CREATE INDEX webhook_deliveries_settled_idx ON webhook_deliveries (created_at) WHERE next_attempt_at IS NULL;

-- +goose Down
DROP INDEX webhook_deliveries_settled_idx;
DELETE FROM webhook_deliveries WHERE grant_id IS NULL;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_event_check;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_event_check
    CHECK (event IN ('consent.revoked', 'consent.expiring', 'transactions.sync_available'));
ALTER TABLE webhook_deliveries ALTER COLUMN grant_id SET NOT NULL;
