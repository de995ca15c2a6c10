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
-- suspension or a change of the grant's accounts made through any node
-- applies to the very next call, as with a read per call.
--
-- Triggers bump it, so no statement, present or future, can forget to.

-- +goose Up
ALTER TABLE consents ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

-- +goose StatementBegin
CREATE FUNCTION consents_next_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.revision := OLD.revision + 1;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER consents_revision BEFORE UPDATE ON consents
    FOR EACH ROW EXECUTE FUNCTION consents_next_revision();

-- +goose StatementBegin
CREATE FUNCTION consent_accounts_bump_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE consents SET revision = revision + 1 WHERE id = NEW.consent_id;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE consents SET revision = revision + 1 WHERE id = OLD.consent_id;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER consent_accounts_revision AFTER INSERT OR UPDATE OR DELETE ON consent_accounts
    FOR EACH ROW EXECUTE FUNCTION consent_accounts_bump_revision();

-- +goose Down
DROP TRIGGER consent_accounts_revision ON consent_accounts;
DROP FUNCTION consent_accounts_bump_revision();
DROP TRIGGER consents_revision ON consents;
DROP FUNCTION consents_next_revision();
ALTER TABLE consents DROP COLUMN revision;
