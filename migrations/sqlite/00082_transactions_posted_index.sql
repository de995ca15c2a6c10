-- The FDX transactions endpoint filters and pages booked transactions on
-- their posting time (postedTimestamp = booked_at), newest first: a partial
-- index of the booked rows in that order, so the page query walks it and
-- stops after limit+1 rows like the /v1 query does on transacted_at.

-- +goose Up
CREATE INDEX transactions_account_booked_time_idx ON transactions (account_id, booked_at DESC, id DESC)
    WHERE status = 'booked';

-- +goose Down
DROP INDEX transactions_account_booked_time_idx;
