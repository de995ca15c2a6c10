-- A client's revision: a number that changes with every change to its row.
--
-- A node may answer client_credentials token requests from a client row it
-- remembers instead of reading it on every request. The token row and its
-- event are then committed only if the client's revision is still the one
-- remembered (checked in the audit writer's transaction); otherwise nothing
-- is written and the request is served again from a fresh read. So a
-- suspension, a secret rotation, an update or a deletion made through any
-- node applies to the very next token, as with a read per request.
--
-- The trigger bumps it, so no UPDATE of oauth_clients, present or future,
-- can forget to.

-- +goose Up
ALTER TABLE oauth_clients ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

-- +goose StatementBegin
CREATE FUNCTION oauth_clients_next_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.revision := OLD.revision + 1;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER oauth_clients_revision BEFORE UPDATE ON oauth_clients
    FOR EACH ROW EXECUTE FUNCTION oauth_clients_next_revision();

-- +goose Down
DROP TRIGGER oauth_clients_revision ON oauth_clients;
DROP FUNCTION oauth_clients_next_revision();
ALTER TABLE oauth_clients DROP COLUMN revision;
