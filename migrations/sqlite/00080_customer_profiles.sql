-- Customers' identity as the FDX contact endpoint and OpenID Connect's
-- userinfo hand it to clients that were granted identity:read (or the
-- profile / email scopes): full name, name parts, email, phone and one
-- postal address. A customer without a row has no profile on record.
-- Read by customer id only (the primary key).

-- +goose Up
CREATE TABLE customer_profiles (
    customer_id         TEXT PRIMARY KEY REFERENCES customers (id),
    full_name           TEXT NOT NULL,
    given_name          TEXT NOT NULL,
    family_name         TEXT NOT NULL,
    email               TEXT NOT NULL DEFAULT '',
    phone_country_code  TEXT NOT NULL DEFAULT '',
    phone_number        TEXT NOT NULL DEFAULT '',
    address_line1       TEXT NOT NULL DEFAULT '',
    address_line2       TEXT NOT NULL DEFAULT '',
    address_city        TEXT NOT NULL DEFAULT '',
    address_region      TEXT NOT NULL DEFAULT '',
    address_postal_code TEXT NOT NULL DEFAULT '',
    address_country     TEXT NOT NULL DEFAULT '',
    updated_at          INTEGER NOT NULL
);

-- +goose Down
DROP TABLE customer_profiles;
