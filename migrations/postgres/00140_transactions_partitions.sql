-- transactions partitioned by month of transacted_at (SPEC §14,
-- docs/scaling.md "Partitioned transactions").
--
-- Every query of the table bounds transacted_at (the consent's history
-- window), so a page, a sync walk or a posted-order page touches only the
-- months it can see, each with one range scan of that month's index; old
-- months can be detached whole.
--
-- A unique index on a partitioned table must contain the partition key,
-- and transacted_at of a pending transaction may change, so the id alone
-- is kept unique by transaction_ids: one small unpartitioned row per
-- transaction, id → the transacted_at its row is stored under. Writers
-- lock an id's row there before they touch the transaction (that lock
-- serialises two writers of one id, as the old primary key did), read
-- by id through it (one partition probed, not every month), and move it
-- along when transacted_at changes (an UPDATE moves the row to its new
-- month).
--
-- Months from 24 before to 3 after the current one exist from the start;
-- transactions_ensure_partitions creates missing months (the server's
-- housekeeping sweep calls it) and moves their rows out of
-- transactions_default, which holds whatever falls outside the months
-- created (far past, far future).

-- +goose Up
ALTER TABLE transactions RENAME TO transactions_unpartitioned;
ALTER INDEX transactions_pkey RENAME TO transactions_unpartitioned_pkey;
DROP INDEX transactions_account_time_idx, transactions_account_pending_time_idx,
    transactions_account_booked_time_idx, transactions_account_created_idx;

CREATE TABLE transactions (
    id            TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('booked', 'pending')),
    transacted_at BIGINT NOT NULL,
    booked_at     BIGINT,
    amount_minor  BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    description   TEXT NOT NULL,
    merchant_name TEXT NOT NULL,
    mcc           TEXT NOT NULL,
    card_last4    TEXT NOT NULL CHECK (length(card_last4) <= 4),
    created_seq   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (id, transacted_at)
) PARTITION BY RANGE (transacted_at);
CREATE INDEX transactions_account_time_idx ON transactions (account_id, transacted_at DESC, id DESC);
CREATE INDEX transactions_account_pending_time_idx ON transactions (account_id, transacted_at DESC, id DESC)
    WHERE status = 'pending';
CREATE INDEX transactions_account_booked_time_idx ON transactions (account_id, booked_at DESC, id DESC)
    WHERE status = 'booked';
CREATE INDEX transactions_account_created_idx ON transactions (account_id, created_seq, id);
CREATE TABLE transactions_default PARTITION OF transactions DEFAULT;

CREATE TABLE transaction_ids (
    id            TEXT PRIMARY KEY,
    transacted_at BIGINT NOT NULL
);

-- transactions_ensure_partitions creates the monthly partitions from
-- months_back months before the month of at (unix microseconds) to
-- months_ahead after it, moving their rows out of the default partition,
-- and returns how many it created. Nodes take turns on an advisory lock
-- (released at commit), so two sweeps never create one month twice.
-- +goose StatementBegin
CREATE FUNCTION transactions_ensure_partitions(at BIGINT, months_back INTEGER, months_ahead INTEGER)
RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    first_month TIMESTAMP := date_trunc('month', to_timestamp(at / 1000000.0) AT TIME ZONE 'UTC');
    m           TIMESTAMP;
    lo          BIGINT;
    hi          BIGINT;
    part        TEXT;
    created     INTEGER := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(7140140140);
    FOR i IN -months_back .. months_ahead LOOP
        m := first_month + make_interval(months => i);
        part := 'transactions_' || to_char(m, 'YYYYMM');
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        lo := (extract(epoch FROM m) * 1000000)::BIGINT;
        hi := (extract(epoch FROM m + interval '1 month') * 1000000)::BIGINT;
        EXECUTE format('CREATE TABLE %I (LIKE transactions INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (transacted_at >= %s AND transacted_at < %s)',
            part, part || '_range', lo, hi);
        EXECUTE format('WITH moved AS (DELETE FROM transactions_default WHERE transacted_at >= %s AND transacted_at < %s RETURNING *)
            INSERT INTO %I SELECT * FROM moved', lo, hi, part);
        EXECUTE format('ALTER TABLE transactions ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', part, lo, hi);
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_range');
        created := created + 1;
    END LOOP;
    RETURN created;
END;
$$;
-- +goose StatementEnd

SELECT transactions_ensure_partitions((extract(epoch FROM now()) * 1000000)::BIGINT, 24, 3);
INSERT INTO transactions (id, account_id, status, transacted_at, booked_at, amount_minor, currency, description,
        merchant_name, mcc, card_last4, created_seq)
    SELECT id, account_id, status, transacted_at, booked_at, amount_minor, currency, description,
        merchant_name, mcc, card_last4, created_seq
    FROM transactions_unpartitioned;
INSERT INTO transaction_ids (id, transacted_at) SELECT id, transacted_at FROM transactions_unpartitioned;
DROP TABLE transactions_unpartitioned;

-- +goose Down
ALTER TABLE transactions RENAME TO transactions_partitioned;
ALTER INDEX transactions_pkey RENAME TO transactions_partitioned_pkey;
ALTER INDEX transactions_account_time_idx RENAME TO transactions_partitioned_account_time_idx;
ALTER INDEX transactions_account_pending_time_idx RENAME TO transactions_partitioned_account_pending_time_idx;
ALTER INDEX transactions_account_booked_time_idx RENAME TO transactions_partitioned_account_booked_time_idx;
ALTER INDEX transactions_account_created_idx RENAME TO transactions_partitioned_account_created_idx;
CREATE TABLE transactions (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('booked', 'pending')),
    transacted_at BIGINT NOT NULL,
    booked_at     BIGINT,
    amount_minor  BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    description   TEXT NOT NULL,
    merchant_name TEXT NOT NULL,
    mcc           TEXT NOT NULL,
    card_last4    TEXT NOT NULL CHECK (length(card_last4) <= 4),
    created_seq   BIGINT NOT NULL DEFAULT 0
);
INSERT INTO transactions SELECT * FROM transactions_partitioned;
DROP TABLE transactions_partitioned;
DROP TABLE transaction_ids;
DROP FUNCTION transactions_ensure_partitions(BIGINT, INTEGER, INTEGER);
CREATE INDEX transactions_account_time_idx ON transactions (account_id, transacted_at DESC, id DESC);
CREATE INDEX transactions_account_pending_time_idx ON transactions (account_id, transacted_at DESC, id DESC)
    WHERE status = 'pending';
CREATE INDEX transactions_account_booked_time_idx ON transactions (account_id, booked_at DESC, id DESC)
    WHERE status = 'booked';
CREATE INDEX transactions_account_created_idx ON transactions (account_id, created_seq, id);
