-- Core schema: institutions, customers, accounts, balances, card transactions,
-- OAuth clients, consents (grants) and fosite's token/PAR state, login sessions.
-- All times are BIGINT unix microseconds UTC (identical in both dialects, so
-- keyset cursors compare exactly). Money is BIGINT minor units.
-- Secrets, tokens, codes and session ids are stored only as hashes.

-- +goose Up
CREATE TABLE institutions (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE customers (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    customer_id    TEXT NOT NULL REFERENCES customers (id),
    institution_id TEXT NOT NULL REFERENCES institutions (id),
    type           TEXT NOT NULL CHECK (type IN ('checking', 'savings', 'credit_card')),
    display_name   TEXT NOT NULL,
    last4          TEXT NOT NULL CHECK (length(last4) = 4),
    currency       TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX accounts_customer_idx ON accounts (customer_id, id);

CREATE TABLE balances (
    account_id         TEXT PRIMARY KEY REFERENCES accounts (id),
    current_minor      BIGINT NOT NULL,
    available_minor    BIGINT NOT NULL,
    credit_limit_minor BIGINT,
    as_of              BIGINT NOT NULL
);

CREATE TABLE transactions (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    status        TEXT NOT NULL CHECK (status IN ('booked', 'pending')),
    transacted_at BIGINT NOT NULL,
    booked_at     BIGINT,
    amount_minor  BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    description   TEXT NOT NULL,
    merchant_name TEXT NOT NULL,
    mcc           TEXT NOT NULL,
    card_last4    TEXT NOT NULL CHECK (length(card_last4) <= 4)
);
-- Newest-first keyset pages per account, with and without a status filter.
CREATE INDEX transactions_account_time_idx ON transactions (account_id, transacted_at DESC, id DESC);
CREATE INDEX transactions_account_status_time_idx ON transactions (account_id, status, transacted_at DESC, id DESC);

CREATE TABLE oauth_clients (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    secret_hash   TEXT,
    redirect_uris TEXT NOT NULL,
    grant_types   TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    purposes      TEXT NOT NULL,
    auth_method   TEXT NOT NULL,
    jwks          TEXT,
    dpop          BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);

-- A consent is an OAuth grant: its id is fosite's request id.
CREATE TABLE consents (
    id               TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL REFERENCES oauth_clients (id),
    customer_id      TEXT REFERENCES customers (id),
    status           TEXT NOT NULL CHECK (status IN ('awaiting_authorization', 'authorized', 'rejected', 'revoked', 'expired')),
    scopes           TEXT NOT NULL,
    purpose          TEXT NOT NULL,
    history_days     INTEGER NOT NULL,
    duration_seconds BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    authorized_at    BIGINT,
    expires_at       BIGINT,
    revoked_at       BIGINT,
    revoked_by       TEXT,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX consents_customer_idx ON consents (customer_id, created_at DESC);
CREATE INDEX consents_client_idx ON consents (client_id, created_at DESC);
CREATE INDEX consents_expiry_idx ON consents (status, expires_at);

CREATE TABLE consent_accounts (
    consent_id TEXT NOT NULL REFERENCES consents (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    PRIMARY KEY (consent_id, account_id)
);

-- fosite state: authorize codes, access and refresh tokens, PKCE requests.
-- signature_hash = hex SHA-256 of fosite's token signature.
CREATE TABLE oauth_tokens (
    kind                  TEXT NOT NULL CHECK (kind IN ('authorize_code', 'access_token', 'refresh_token', 'pkce')),
    signature_hash        TEXT NOT NULL,
    request_id            TEXT NOT NULL,
    client_id             TEXT NOT NULL,
    subject               TEXT NOT NULL,
    active                BOOLEAN NOT NULL,
    requested_at          BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    request_data          TEXT NOT NULL,
    access_signature_hash TEXT,
    PRIMARY KEY (kind, signature_hash)
);
CREATE INDEX oauth_tokens_request_idx ON oauth_tokens (request_id, kind);
CREATE INDEX oauth_tokens_expiry_idx ON oauth_tokens (expires_at);

-- Pushed authorization requests: single use (DELETE ... RETURNING), short-lived.
CREATE TABLE oauth_par_requests (
    request_uri_hash TEXT PRIMARY KEY,
    request_data     TEXT NOT NULL,
    expires_at       BIGINT NOT NULL
);

-- An authorization between /oauth2/authorize and the customer's decision.
CREATE TABLE oauth_authorize_sessions (
    challenge_hash TEXT PRIMARY KEY,
    request_id     TEXT NOT NULL,
    request_data   TEXT NOT NULL,
    expires_at     BIGINT NOT NULL
);

-- Browser sessions; customer_id is NULL before login (carries the CSRF token).
CREATE TABLE login_sessions (
    id_hash     TEXT PRIMARY KEY,
    customer_id TEXT REFERENCES customers (id),
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX login_sessions_expiry_idx ON login_sessions (expires_at);

-- Failed-login counters, shared by every node (key: "user:NAME" or "ip:ADDR").
CREATE TABLE login_throttle (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);

-- Server-wide values such as the secret generated by --demo.
CREATE TABLE server_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- +goose Down
DROP TABLE server_settings;
DROP TABLE login_throttle;
DROP TABLE login_sessions;
DROP TABLE oauth_authorize_sessions;
DROP TABLE oauth_par_requests;
DROP TABLE oauth_tokens;
DROP TABLE consent_accounts;
DROP TABLE consents;
DROP TABLE oauth_clients;
DROP TABLE transactions;
DROP TABLE balances;
DROP TABLE accounts;
DROP TABLE customers;
DROP TABLE institutions;
