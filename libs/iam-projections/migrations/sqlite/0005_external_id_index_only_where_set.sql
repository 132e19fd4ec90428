-- Most users have no externalId (every user of the vCloud Air dialect):
-- index only those that do, so that creating the others writes one index
-- less. `external_id = $1` implies it is set, so lookups still use it.
DROP INDEX read_users_by_external_id;
CREATE INDEX read_users_by_external_id ON read_users (organization_id, external_id)
    WHERE external_id IS NOT NULL;
