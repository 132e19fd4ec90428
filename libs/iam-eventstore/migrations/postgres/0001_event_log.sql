-- The append-only event log (PostgreSQL).
CREATE TABLE events (
    position    BIGINT      PRIMARY KEY,      -- global position, from 1, gapless, in commit order
    event_id    UUID        NOT NULL,         -- chosen by the writer of the event
    stream      TEXT        NOT NULL,
    revision    BIGINT      NOT NULL,         -- position in the stream, from 0
    event_type  TEXT        NOT NULL,
    data        JSONB       NOT NULL,
    metadata    JSONB       NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    -- Reading a stream and recognizing a retried append (its ids at the
    -- revisions after the expected one) both go through this key. Event ids
    -- are deliberately not indexed: an index on random UUIDs dirties a page
    -- per event and halved append throughput.
    UNIQUE (stream, revision)
);

-- The log is never changed in place: the database itself refuses it.
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % is refused', TG_OP;
END
$$;

CREATE TRIGGER events_refuse_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();

CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- Uniqueness claims (e.g. userName), taken and released with appends.
CREATE TABLE event_claims (
    kind   TEXT NOT NULL,
    value  TEXT NOT NULL,
    stream TEXT NOT NULL,
    PRIMARY KEY (kind, value)
);
