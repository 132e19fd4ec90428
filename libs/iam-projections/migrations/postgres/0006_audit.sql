-- The audit index: one row per event of the log, in the organization whose
-- audit shows it, with who did it, from where, and what changed (before
-- and after). Written by the async `audit` projector.
CREATE TABLE read_audit (
    position BIGINT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    stream TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    user_id TEXT,
    actor_id TEXT,
    actor_user_name TEXT,
    actor_organization_id TEXT,
    authentication TEXT,
    token_id TEXT,
    request_id TEXT,
    client_request_id TEXT,
    trace_id TEXT,
    source_address TEXT,
    user_agent TEXT,
    changes TEXT NOT NULL,
    details TEXT
);
CREATE INDEX read_audit_by_organization ON read_audit (organization_id, position);
CREATE INDEX read_audit_by_user ON read_audit (organization_id, user_id, position);
CREATE INDEX read_audit_by_request ON read_audit (organization_id, request_id);

-- What each subject (stream) looked like after its last event: the
-- "before" of its next change.
CREATE TABLE read_audit_subjects (
    stream TEXT PRIMARY KEY,
    organization_id TEXT,
    state TEXT NOT NULL
);
