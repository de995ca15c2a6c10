-- The numbers a payment network needs to move money to or from a deposit
-- account (FDX payment-networks, scope account_numbers:read): the 9-digit
-- ABA routing number and a tokenized account number. The real account
-- number is never stored: the provider sends a token its core maps back to
-- the account (docs/fdx.md, "Tokenized account numbers"). Read by account
-- id only (the primary key).

-- +goose Up
CREATE TABLE account_numbers (
    account_id           TEXT PRIMARY KEY REFERENCES accounts (id),
    routing_number       TEXT NOT NULL CHECK (length(routing_number) = 9),
    account_number_token TEXT NOT NULL CHECK (length(account_number_token) BETWEEN 4 AND 17),
    updated_at           BIGINT NOT NULL
);

-- +goose Down
DROP TABLE account_numbers;
