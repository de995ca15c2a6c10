-- An account never changes owner: consents name accounts, and a consent's
-- customer must own every account it names for as long as the account
-- exists. The loaders already refuse an owner change; this makes it a rule
-- of the database, so the data API can trust a consent's account list
-- without reading the account again on every transactions call.

-- +goose Up
-- +goose StatementBegin
CREATE TRIGGER accounts_keep_owner BEFORE UPDATE OF customer_id ON accounts
WHEN NEW.customer_id <> OLD.customer_id
BEGIN
    SELECT RAISE(ABORT, 'an account never changes owner');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER accounts_keep_owner;
