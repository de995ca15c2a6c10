-- The check that an event leaves audit_pending only once it is in
-- audit_events, once a DELETE statement instead of once a row.
--
-- The integrator deletes up to a thousand integrated rows in one statement.
-- The row-level trigger ran a PL/pgSQL call and an index probe of every
-- audit_events partition for each of them: 0.026 ms a row, measured with
-- pg_stat_statements under the token endpoint's load, as much as the
-- INSERT into audit_events it follows and more than the writer's inserts.
-- The statement-level trigger sees the deleted rows as a transition table
-- and checks them in one anti-join, planned afresh each time (EXECUTE), so
-- the plan follows the size of audit_events instead of keeping the one
-- made when it was empty. UPDATE stays refused row by row: it never
-- happens.

-- +goose Up
DROP TRIGGER audit_pending_integrated_only ON audit_pending;
CREATE TRIGGER audit_pending_no_update BEFORE UPDATE ON audit_pending
    FOR EACH ROW EXECUTE FUNCTION audit_pending_integrated_only();

-- +goose StatementBegin
CREATE FUNCTION audit_pending_left_integrated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing BOOLEAN;
BEGIN
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM audit_pending_gone g
        WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.event_id = g.event_id))' INTO missing;
    IF missing THEN
        RAISE EXCEPTION 'audit_pending: an event leaves only once it is in audit_events (DELETE refused)'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_pending_integrated_only AFTER DELETE ON audit_pending
    REFERENCING OLD TABLE AS audit_pending_gone
    FOR EACH STATEMENT EXECUTE FUNCTION audit_pending_left_integrated();

-- +goose Down
DROP TRIGGER audit_pending_integrated_only ON audit_pending;
DROP FUNCTION audit_pending_left_integrated();
DROP TRIGGER audit_pending_no_update ON audit_pending;
CREATE TRIGGER audit_pending_integrated_only BEFORE UPDATE OR DELETE ON audit_pending
    FOR EACH ROW EXECUTE FUNCTION audit_pending_integrated_only();
