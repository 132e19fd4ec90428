-- The log accepts an insert only at the next position. Rows inserted earlier
-- by the same statement are visible to this row trigger, so a multi-row
-- insert in position order passes.
CREATE FUNCTION events_require_next_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.position IS DISTINCT FROM (SELECT COALESCE(MAX(position), 0) + 1 FROM events) THEN
        RAISE EXCEPTION 'the event log is append-only: position % is not the next one', NEW.position;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER events_insert_next_position_only BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_require_next_position();
