-- Client assertion ids (RFC 7523 jti) already seen, for private_key_jwt
-- client authentication: each may be used once until it expires.
-- jti_hash = hex SHA-256 of the jti.

-- +goose Up
CREATE TABLE oauth_client_assertions (
    jti_hash   TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX oauth_client_assertions_expiry_idx ON oauth_client_assertions (expires_at);

-- +goose Down
DROP TABLE oauth_client_assertions;
