-- A client's revision: a number that changes with every change to its row.
--
-- A node may answer client_credentials token requests from a client row it
-- remembers instead of reading it on every request. The token row and its
-- event are then committed only if the client's revision is still the one
-- remembered (checked in the audit writer's transaction); otherwise nothing
-- is written and the request is served again from a fresh read. So a
-- suspension, a secret rotation, an update or a deletion applies to the
-- very next token, as with a read per request.
--
-- The trigger bumps it, so no UPDATE of oauth_clients, present or future,
-- can forget to. Its WHEN keeps its own UPDATE from firing it again.

-- +goose Up
ALTER TABLE oauth_clients ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

-- +goose StatementBegin
CREATE TRIGGER oauth_clients_revision AFTER UPDATE ON oauth_clients
WHEN NEW.revision = OLD.revision
BEGIN
    UPDATE oauth_clients SET revision = OLD.revision + 1 WHERE id = NEW.id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER oauth_clients_revision;
ALTER TABLE oauth_clients DROP COLUMN revision;
