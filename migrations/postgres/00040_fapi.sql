-- FAPI 2.0 hardening (docs/fapi.md).
-- dpop_proofs: DPoP proof ids (RFC 9449 jti) already seen, so a proof is
-- accepted once by one node; jti_hash = hex SHA-256 of the key thumbprint
-- and the jti (one client cannot block another's ids). Rows are kept until
-- the proof could no longer pass the iat window anyway.
-- oauth_clients.jwks_uri: where a private_key_jwt client publishes its keys,
-- as an alternative to a registered JWKS.

-- +goose Up
CREATE TABLE dpop_proofs (
    jti_hash   TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX dpop_proofs_expiry_idx ON dpop_proofs (expires_at);
ALTER TABLE oauth_clients ADD COLUMN jwks_uri TEXT;

-- +goose Down
ALTER TABLE oauth_clients DROP COLUMN jwks_uri;
DROP TABLE dpop_proofs;
