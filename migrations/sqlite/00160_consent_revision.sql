-- A consent's revision: a number that changes with every change to the
-- consent's row or to its accounts.
--
-- A node may answer a data call's token check from the token's state it
-- read last instead of reading it again on every call. The call's
-- data.access event is then committed only if the token is still active,
-- its client still at the revision remembered and its consent still at the
-- revision remembered (checked in the audit writer's transaction, as for
-- the client revision of migration 00150); otherwise nothing is written
-- and the call is served again from a fresh read. So a revocation, a
-- suspension or a change of the grant's accounts applies to the very next
-- call, as with a read per call.
--
-- Triggers bump it, so no statement, present or future, can forget to.
-- The WHEN keeps the consents trigger's own UPDATE from firing it again.

-- +goose Up
ALTER TABLE consents ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

-- +goose StatementBegin
CREATE TRIGGER consents_revision AFTER UPDATE ON consents
WHEN NEW.revision = OLD.revision
BEGIN
    UPDATE consents SET revision = OLD.revision + 1 WHERE id = NEW.id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER consent_accounts_revision_insert AFTER INSERT ON consent_accounts
BEGIN
    UPDATE consents SET revision = revision + 1 WHERE id = NEW.consent_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER consent_accounts_revision_update AFTER UPDATE ON consent_accounts
BEGIN
    UPDATE consents SET revision = revision + 1 WHERE id IN (OLD.consent_id, NEW.consent_id);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER consent_accounts_revision_delete AFTER DELETE ON consent_accounts
BEGIN
    UPDATE consents SET revision = revision + 1 WHERE id = OLD.consent_id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER consent_accounts_revision_delete;
DROP TRIGGER consent_accounts_revision_update;
DROP TRIGGER consent_accounts_revision_insert;
DROP TRIGGER consents_revision;
ALTER TABLE consents DROP COLUMN revision;
