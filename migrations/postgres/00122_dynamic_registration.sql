-- Dynamic client registration (RFC 7591/7592, SPEC §11): the software
-- statement a client registered with (it bounds later updates), its
-- software_id, and the hash of its registration access token (never the
-- token). Each is read by the client's primary key.

-- +goose Up
ALTER TABLE oauth_clients ADD COLUMN software_id TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_clients ADD COLUMN software_statement TEXT;
ALTER TABLE oauth_clients ADD COLUMN registration_token_hash TEXT;

-- +goose Down
ALTER TABLE oauth_clients DROP COLUMN registration_token_hash;
ALTER TABLE oauth_clients DROP COLUMN software_statement;
ALTER TABLE oauth_clients DROP COLUMN software_id;
