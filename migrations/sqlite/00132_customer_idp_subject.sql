-- Customer login through the bank's OpenID Connect IdP (SPEC §11).
--
-- customers.idp_subject: the IdP's subject (its `sub`, or the configured
-- claim) of the customer, set by the provider API or `consentgate import`;
-- NULL for customers who log in with a password only. The unique index
-- answers the login's lookup by subject and keeps one subject on one
-- customer (NULLs are distinct on both databases).

-- +goose Up
ALTER TABLE customers ADD COLUMN idp_subject TEXT;
CREATE UNIQUE INDEX customers_idp_subject_idx ON customers (idp_subject);

-- +goose Down
DROP INDEX customers_idp_subject_idx;
ALTER TABLE customers DROP COLUMN idp_subject;
