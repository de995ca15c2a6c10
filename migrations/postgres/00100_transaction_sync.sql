-- Incremental sync (docs/sync.md): a durable per-account change sequence.
--
-- Every change a provider batch makes to a transaction (added, modified,
-- removed) is one row of transaction_changes with the next ordinal of its
-- account, taken from account_change_heads in the writing database
-- transaction. The head row stays locked until commit, so two writers of
-- one account (on any node) commit their ordinals in order: a reader that
-- sees ordinal n sees every ordinal below it. Removed pending transactions
-- still leave the transactions table (pages never show them); their
-- change row is the tombstone sync reports.
--
-- created_seq is the ordinal a transaction was added at: a first sync walks
-- the table in (created_seq, id) order, which a later change never moves.
-- Rows written before this migration, or by the bulk loader, keep 0.

-- +goose Up
ALTER TABLE transactions ADD COLUMN created_seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX transactions_account_created_idx ON transactions (account_id, created_seq, id);

CREATE TABLE account_change_heads (
    account_id TEXT PRIMARY KEY,
    last_seq   BIGINT NOT NULL
);

CREATE TABLE transaction_changes (
    account_id     TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    transaction_id TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('added', 'modified', 'removed')),
    -- The transaction's time when it changed: sync never reports a change
    -- outside the consent's history window.
    transacted_at  BIGINT NOT NULL,
    changed_at     BIGINT NOT NULL,
    PRIMARY KEY (account_id, seq)
);

-- +goose Down
DROP TABLE transaction_changes;
DROP TABLE account_change_heads;
DROP INDEX transactions_account_created_idx;
ALTER TABLE transactions DROP COLUMN created_seq;
