-- The log accepts an insert only at the next position, and never over an
-- existing event: `INSERT OR REPLACE` would otherwise delete the event it
-- collides with without firing the delete trigger.
CREATE TRIGGER events_insert_next_position_only BEFORE INSERT ON events
WHEN NEW.position IS NOT (SELECT COALESCE(MAX(position), 0) + 1 FROM events)
    OR EXISTS (SELECT 1 FROM events WHERE stream = NEW.stream AND revision = NEW.revision)
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: an insert must take the next position of a new stream revision');
END;
