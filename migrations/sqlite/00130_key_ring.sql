-- The key ring (SPEC §11 Keys): every key the server signs or MACs with,
-- sealed with AES-256-GCM under a key derived from CONSENTGATE_SECRET, so
-- the secret can change (old value in CONSENTGATE_SECRET_PREVIOUS: the ring
-- is re-sealed on start) without changing any key.
--
-- key_use:    audit | webhook | id_token (signing, rotated by
--             `consentgate keys rotate`) or a symmetric key's label
--             (token HMAC, client secret hash, DPoP nonce; never rotated).
-- kind:       ed25519 | es256 | hmac.
-- sealed:     base64 nonce ‖ AES-GCM ciphertext of the private key bytes,
--             additional data "kid|key_use".
-- public_jwk: the public JWK (NULL for hmac keys).
-- activate_at: when nodes start signing with it (a rotation leaves time for
--             every node to publish a key before anyone signs with it).
-- The active key of a use is its newest row with activate_at <= now; the
-- index answers "the keys of a use, newest first", which every re-read asks.

-- +goose Up
CREATE TABLE key_ring (
    kid         TEXT PRIMARY KEY,
    key_use     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    sealed      TEXT NOT NULL,
    public_jwk  TEXT,
    created_at  INTEGER NOT NULL,
    activate_at INTEGER NOT NULL
);
CREATE INDEX key_ring_use_idx ON key_ring (key_use, activate_at DESC, created_at DESC);

-- +goose Down
DROP TABLE key_ring;
