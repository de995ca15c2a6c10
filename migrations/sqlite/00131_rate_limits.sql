-- Per-client rate limits (SPEC §11 Rate limits).
--
-- client_rate_limits: a client's own limit in requests per second,
-- overriding the server's --rate-limit (0: unlimited). Keyed by client id;
-- a node re-reads the table every few seconds.
--
-- rate_limit_windows: the shared counter every node increments, one row per
-- client and one-second window (window_start in Unix seconds). The primary
-- key answers the upsert of every limited request; the window_start index
-- answers the prune of past windows.

-- +goose Up
CREATE TABLE client_rate_limits (
    client_id  TEXT PRIMARY KEY REFERENCES oauth_clients (id) ON DELETE CASCADE,
    per_second INTEGER NOT NULL CHECK (per_second >= 0)
);

CREATE TABLE rate_limit_windows (
    client_id    TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (client_id, window_start)
);
CREATE INDEX rate_limit_windows_start_idx ON rate_limit_windows (window_start);

-- +goose Down
DROP TABLE rate_limit_windows;
DROP TABLE client_rate_limits;
