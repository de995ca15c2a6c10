-- An account never changes owner: consents name accounts, and a consent's
-- customer must own every account it names for as long as the account
-- exists. The loaders already refuse an owner change; this makes it a rule
-- of the database, so the data API can trust a consent's account list
-- without reading the account again on every transactions call.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION accounts_keep_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id THEN
        RAISE EXCEPTION 'an account id never changes' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.customer_id <> OLD.customer_id THEN
        RAISE EXCEPTION 'an account never changes owner' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
DROP TRIGGER accounts_keep_id ON accounts;
CREATE TRIGGER accounts_keep_id BEFORE UPDATE OF id, customer_id ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_keep_id();

-- +goose Down
DROP TRIGGER accounts_keep_id ON accounts;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION accounts_keep_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id THEN
        RAISE EXCEPTION 'an account id never changes' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER accounts_keep_id BEFORE UPDATE OF id ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_keep_id();
