-- OpenID Connect and aggregator clients (SPEC §10).
--
-- oauth_clients gains the registration metadata of PAR-exempt clients
-- (RFC 9126 §6 require_pushed_authorization_requests: false, stored as
-- par_optional), the purpose a front-channel request without one asks for,
-- and whether the client is an aggregator (the consent screen says so).
-- The partial index answers "is any client exempt from PAR?", which the
-- server metadata asks on every request.
--
-- oauth_oidc_sessions: the OpenID Connect request behind an authorization
-- code (fosite's OpenIDConnectRequestStorage), keyed by the hash of the
-- code's signature, read once when the code is redeemed.

-- +goose Up
ALTER TABLE oauth_clients ADD COLUMN par_optional BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE oauth_clients ADD COLUMN default_purpose TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_clients ADD COLUMN aggregator BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX oauth_clients_par_optional_idx ON oauth_clients (id) WHERE par_optional;

CREATE TABLE oauth_oidc_sessions (
    signature_hash TEXT PRIMARY KEY,
    request_id     TEXT NOT NULL,
    request_data   TEXT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX oauth_oidc_sessions_expiry_idx ON oauth_oidc_sessions (expires_at);

-- +goose Down
DROP TABLE oauth_oidc_sessions;
DROP INDEX oauth_clients_par_optional_idx;
ALTER TABLE oauth_clients DROP COLUMN aggregator;
ALTER TABLE oauth_clients DROP COLUMN default_purpose;
ALTER TABLE oauth_clients DROP COLUMN par_optional;
