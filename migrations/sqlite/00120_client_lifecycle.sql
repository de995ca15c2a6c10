-- Client lifecycle (SPEC §11): suspension by the bank and secret rotation.
--
-- suspended_at (NULL: active) is read by the very query that checks every
-- access token (it already joins oauth_clients), so a suspension takes
-- effect on the next request on every node with no extra read and no cache.
-- Consents keep their status while their app is suspended: reinstating the
-- app restores the unexpired ones.
--
-- previous_secret_hash stays valid until previous_secret_expires_at after a
-- rotation (the grace period), so the app can switch without downtime.
--
-- consents_client_status_idx answers the live grant counts of the operator
-- API and the revocation of all of an app's grants. The two expiry indexes
-- serve the housekeeping sweep of expired request_uris and authorize
-- sessions.

-- +goose Up
ALTER TABLE oauth_clients ADD COLUMN suspended_at INTEGER;
ALTER TABLE oauth_clients ADD COLUMN suspended_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_clients ADD COLUMN suspended_by TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE oauth_clients ADD COLUMN previous_secret_expires_at INTEGER;
ALTER TABLE oauth_clients ADD COLUMN secret_rotated_at INTEGER;
CREATE INDEX consents_client_status_idx ON consents (client_id, status, expires_at);
CREATE INDEX oauth_par_requests_expiry_idx ON oauth_par_requests (expires_at);
CREATE INDEX oauth_authorize_sessions_expiry_idx ON oauth_authorize_sessions (expires_at);

-- +goose Down
DROP INDEX oauth_authorize_sessions_expiry_idx;
DROP INDEX oauth_par_requests_expiry_idx;
DROP INDEX consents_client_status_idx;
ALTER TABLE oauth_clients DROP COLUMN secret_rotated_at;
ALTER TABLE oauth_clients DROP COLUMN previous_secret_expires_at;
ALTER TABLE oauth_clients DROP COLUMN previous_secret_hash;
ALTER TABLE oauth_clients DROP COLUMN suspended_by;
ALTER TABLE oauth_clients DROP COLUMN suspended_reason;
ALTER TABLE oauth_clients DROP COLUMN suspended_at;
