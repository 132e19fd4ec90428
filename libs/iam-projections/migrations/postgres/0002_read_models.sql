-- Read models of organizations, memberships and users. Built by projectors
-- from the log; they can be emptied and rebuilt at any time.
CREATE TABLE read_organizations (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,            -- 'Provider' | 'Tenant'
    provider_id TEXT,
    delegates   INTEGER NOT NULL,            -- 1: the provider manages this tenant's users
    created_at  BIGINT  NOT NULL             -- epoch milliseconds
);

CREATE TABLE read_memberships (
    organization_id TEXT   NOT NULL,
    user_id         TEXT   NOT NULL,
    role            TEXT   NOT NULL,         -- 'OrganizationOwner'
    added_at        BIGINT NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX read_memberships_by_user ON read_memberships (user_id);

CREATE TABLE read_users (
    id              TEXT    PRIMARY KEY,
    organization_id TEXT    NOT NULL,
    user_name       TEXT    NOT NULL,        -- as given
    user_name_key   TEXT    NOT NULL,        -- lower case: lookups and uniqueness
    email           TEXT    NOT NULL,
    given_name      TEXT    NOT NULL,
    family_name     TEXT    NOT NULL,
    state           TEXT    NOT NULL,        -- 'Active' | 'Inactive'
    roles           TEXT    NOT NULL,        -- JSON array of role names of the catalog
    created_at      BIGINT  NOT NULL,        -- epoch milliseconds
    modified_at     BIGINT  NOT NULL,
    revision        BIGINT  NOT NULL         -- the user stream's revision: the ETag
);
CREATE INDEX read_users_by_organization ON read_users (organization_id, user_name_key);
CREATE INDEX read_users_by_name ON read_users (user_name_key);
