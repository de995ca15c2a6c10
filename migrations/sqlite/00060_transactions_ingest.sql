-- Cheaper transaction writes for provider ingestion (docs/ingestion.md,
-- "Write path"): the (account_id, status, transacted_at, id) index served
-- only the status filter. Pending transactions are a handful per account,
-- so a partial index of the pending ones serves status=pending, and
-- status=booked walks the main index and skips the few pending rows. One
-- index fewer to maintain on every inserted row.
--
-- Accounts are never deleted and never change id (as on PostgreSQL, where
-- the same triggers stand in for the foreign key from transactions, which
-- SQLite keeps).

-- +goose Up
DROP INDEX transactions_account_status_time_idx;
CREATE INDEX transactions_account_pending_time_idx ON transactions (account_id, transacted_at DESC, id DESC)
    WHERE status = 'pending';

-- +goose StatementBegin
CREATE TRIGGER accounts_no_delete BEFORE DELETE ON accounts
BEGIN
    SELECT RAISE(ABORT, 'accounts are never removed (an account is closed with status closed): DELETE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER accounts_keep_id BEFORE UPDATE OF id ON accounts
WHEN NEW.id <> OLD.id
BEGIN
    SELECT RAISE(ABORT, 'an account id never changes');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER accounts_keep_id;
DROP TRIGGER accounts_no_delete;
DROP INDEX transactions_account_pending_time_idx;
CREATE INDEX transactions_account_status_time_idx ON transactions (account_id, status, transacted_at DESC, id DESC);
