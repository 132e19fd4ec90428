-- API tokens: by user, by organization and status, and by the hash of their
-- secret (authentication). The secret itself is never stored.
CREATE TABLE read_tokens (
    id              TEXT   PRIMARY KEY,
    user_id         TEXT   NOT NULL,
    organization_id TEXT   NOT NULL,
    name            TEXT   NOT NULL,
    description     TEXT   NOT NULL,
    status          TEXT   NOT NULL,         -- as recorded; Expired is also derived from expires_at
    created_at      BIGINT NOT NULL,         -- epoch milliseconds
    expires_at      BIGINT NOT NULL,
    secret_hash     TEXT                     -- SHA-256 hex, once downloaded
);
CREATE INDEX read_tokens_by_user ON read_tokens (user_id);
CREATE INDEX read_tokens_by_organization ON read_tokens (organization_id, status);
CREATE UNIQUE INDEX read_tokens_by_secret ON read_tokens (secret_hash);

-- Who holds which role in their home organization (the users projector's;
-- Organization Owners of a tenant are in read_memberships).
CREATE TABLE read_role_members (
    organization_id TEXT NOT NULL,
    role            TEXT NOT NULL,           -- a role of the catalog, e.g. 'AccountAdministrator'
    user_id         TEXT NOT NULL,
    PRIMARY KEY (organization_id, role, user_id)
);
CREATE INDEX read_role_members_by_user ON read_role_members (user_id);
