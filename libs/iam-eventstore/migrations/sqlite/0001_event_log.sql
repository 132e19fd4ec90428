-- The append-only event log (SQLite).
CREATE TABLE events (
    position    INTEGER PRIMARY KEY,          -- global position, from 1, gapless
    event_id    TEXT    NOT NULL,             -- hyphenated UUID, chosen by the writer of the event
    stream      TEXT    NOT NULL,
    revision    INTEGER NOT NULL,             -- position in the stream, from 0
    event_type  TEXT    NOT NULL,
    data        TEXT    NOT NULL,             -- JSON, written by the store from serde_json values
    metadata    TEXT    NOT NULL,
    recorded_at TEXT    NOT NULL,
    -- Reading a stream and recognizing a retried append (its ids at the
    -- revisions after the expected one) both go through this key. Event ids
    -- are deliberately not indexed: an index on random UUIDs dirties a page
    -- per event and halved append throughput.
    UNIQUE (stream, revision)
);

-- The log is never changed in place: the database itself refuses it.
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: UPDATE is refused');
END;

CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: DELETE is refused');
END;

-- Uniqueness claims (e.g. userName), taken and released with appends.
CREATE TABLE event_claims (
    kind   TEXT NOT NULL,
    value  TEXT NOT NULL,
    stream TEXT NOT NULL,
    PRIMARY KEY (kind, value)
) WITHOUT ROWID;
