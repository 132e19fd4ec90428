-- What identity providers keep of a user (SCIM 2.0): its external id, the
-- enterprise extension's attributes, and whether an identity provider
-- manages it. Rows written before these existed hold none of them.
ALTER TABLE read_users ADD COLUMN external_id TEXT;
ALTER TABLE read_users ADD COLUMN employee_number TEXT;
ALTER TABLE read_users ADD COLUMN department TEXT;
ALTER TABLE read_users ADD COLUMN manager_id TEXT;
ALTER TABLE read_users ADD COLUMN managed BIGINT NOT NULL DEFAULT 0;
CREATE INDEX read_users_by_external_id ON read_users (organization_id, external_id);

-- Plain groups (the groups projector's). The built-in role groups are not
-- rows: their members are read_role_members.
CREATE TABLE read_groups (
    id               TEXT   PRIMARY KEY,
    organization_id  TEXT   NOT NULL,
    display_name     TEXT   NOT NULL,        -- as given
    display_name_key TEXT   NOT NULL,        -- lower case: lookups and sorting
    external_id      TEXT,
    created_at       BIGINT NOT NULL,        -- epoch milliseconds
    modified_at      BIGINT NOT NULL,
    revision         BIGINT NOT NULL         -- the group stream's revision: the ETag
);
CREATE INDEX read_groups_by_organization ON read_groups (organization_id, display_name_key);

CREATE TABLE read_group_members (
    group_id TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX read_group_members_by_user ON read_group_members (user_id);
