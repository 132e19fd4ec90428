//! The `groups` projector: plain groups (`read_groups`) and their members
//! (`read_group_members`), and the queries answered from them. A deleted
//! user leaves every group. The built-in role groups are not here: their
//! members are the users projector's `read_role_members`.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use iam_domain::group::GroupEvent;
use iam_domain::user::UserEvent;
use iam_eventstore::RecordedEvent;
use serde_json::{Map, Value, json};
use sqlx::{AnyConnection, Row};

use super::{decode, millis};
use crate::rows::execute_for_rows;
use crate::{Projector, Result};

/// Plain groups and their members.
#[derive(Debug, Default, Clone, Copy)]
pub struct GroupsProjector;

/// What a batch does to one group's row.
#[derive(Default)]
struct GroupChange {
    columns: Map<String, Value>,
    created: bool,
    deleted: bool,
}

#[async_trait]
impl Projector for GroupsProjector {
    fn name(&self) -> &'static str {
        "groups"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["read_group_members", "read_groups"]
    }

    async fn apply(&self, connection: &mut AnyConnection, events: &[RecordedEvent]) -> Result<()> {
        let mut order = Vec::new();
        let mut changes: HashMap<String, GroupChange> = HashMap::new();
        // (group, user) → member or not, as the batch leaves it.
        let mut memberships: BTreeMap<(String, String), bool> = BTreeMap::new();
        let mut users_deleted = Vec::new();
        for recorded in events {
            // Of users, only deletions matter here: other user events are
            // not decoded at all (every create passes through this projector).
            if recorded.stream.starts_with("user-") && recorded.event_type != "UserDeleted" {
                continue;
            }
            if let Some(UserEvent::UserDeleted { .. }) =
                decode::<UserEvent>(self.name(), "user-", recorded)?
            {
                let user = recorded.stream.trim_start_matches("user-").to_owned();
                for ((_, member), present) in memberships.iter_mut() {
                    if *member == user {
                        *present = false;
                    }
                }
                users_deleted.push(json!({ "id": user }));
                continue;
            }
            let Some(event) = decode::<GroupEvent>(self.name(), "group-", recorded)? else {
                continue;
            };
            let id = recorded.stream.trim_start_matches("group-").to_owned();
            let change = changes.entry(id.clone()).or_insert_with(|| {
                order.push(id.clone());
                GroupChange::default()
            });
            let mut set = |column: &str, value: Value| {
                change.columns.insert(column.to_owned(), value);
            };
            set("revision", recorded.revision.into());
            match event {
                GroupEvent::GroupCreated {
                    organization,
                    display_name,
                    external_id,
                    members,
                    at,
                    ..
                } => {
                    set("organization", organization.to_string().into());
                    set("display_name_key", display_name.to_lowercase().into());
                    set("display_name", display_name.into());
                    set("external_id", external_id.into());
                    set("created_at", millis(at).into());
                    set("modified_at", millis(at).into());
                    change.created = true;
                    for member in members {
                        memberships.insert((id.clone(), member.to_string()), true);
                    }
                }
                GroupEvent::GroupRenamed { display_name, at } => {
                    set("display_name_key", display_name.to_lowercase().into());
                    set("display_name", display_name.into());
                    set("modified_at", millis(at).into());
                }
                GroupEvent::GroupExternalIdChanged { external_id, at } => {
                    set("external_id_set", 1.into());
                    set("external_id", external_id.into());
                    set("modified_at", millis(at).into());
                }
                GroupEvent::GroupMembersAdded { members, at } => {
                    set("modified_at", millis(at).into());
                    for member in members {
                        memberships.insert((id.clone(), member.to_string()), true);
                    }
                }
                GroupEvent::GroupMembersRemoved { members, at } => {
                    set("modified_at", millis(at).into());
                    for member in members {
                        memberships.insert((id.clone(), member.to_string()), false);
                    }
                }
                GroupEvent::GroupDeleted { .. } => change.deleted = true,
            }
        }

        let mut created = Vec::new();
        let mut updated = Vec::new();
        let mut deleted = Vec::new();
        for id in order {
            let Some(mut change) = changes.remove(&id) else {
                continue;
            };
            if change.deleted {
                if !change.created {
                    deleted.push(json!({ "id": id }));
                }
                memberships.retain(|(group, _), _| *group != id);
                continue;
            }
            change.columns.insert("id".to_owned(), id.into());
            if change.created {
                created.push(Value::Object(change.columns));
            } else {
                updated.push(Value::Object(change.columns));
            }
        }
        let (added, removed): (Vec<_>, Vec<_>) = memberships
            .into_iter()
            .map(|((group, user), present)| (json!({ "group": group, "user": user }), present))
            .partition(|(_, present)| *present);

        execute_for_rows(
            connection,
            "INSERT INTO read_groups (id, organization_id, display_name, display_name_key, external_id, \
             created_at, modified_at, revision) \
             SELECT j.value ->> 'id', j.value ->> 'organization', j.value ->> 'display_name', \
                    j.value ->> 'display_name_key', j.value ->> 'external_id', \
                    CAST(j.value ->> 'created_at' AS BIGINT), CAST(j.value ->> 'modified_at' AS BIGINT), \
                    CAST(j.value ->> 'revision' AS BIGINT) FROM {rows}",
            created,
        )
        .await?;
        execute_for_rows(
            connection,
            "UPDATE read_groups SET \
               display_name = COALESCE(j.value ->> 'display_name', read_groups.display_name), \
               display_name_key = COALESCE(j.value ->> 'display_name_key', read_groups.display_name_key), \
               external_id = CASE WHEN j.value ->> 'external_id_set' IS NULL THEN read_groups.external_id \
                 ELSE j.value ->> 'external_id' END, \
               modified_at = COALESCE(CAST(j.value ->> 'modified_at' AS BIGINT), read_groups.modified_at), \
               revision = CAST(j.value ->> 'revision' AS BIGINT) \
             FROM {rows} WHERE read_groups.id = j.value ->> 'id'",
            updated,
        )
        .await?;
        execute_for_rows(
            connection,
            "DELETE FROM read_group_members WHERE group_id IN (SELECT j.value ->> 'id' FROM {rows})",
            deleted.clone(),
        )
        .await?;
        execute_for_rows(
            connection,
            "DELETE FROM read_groups WHERE id IN (SELECT j.value ->> 'id' FROM {rows})",
            deleted,
        )
        .await?;
        execute_for_rows(
            connection,
            "DELETE FROM read_group_members WHERE user_id IN (SELECT j.value ->> 'id' FROM {rows})",
            users_deleted,
        )
        .await?;
        execute_for_rows(
            connection,
            "DELETE FROM read_group_members WHERE EXISTS (SELECT 1 FROM {rows} \
               WHERE j.value ->> 'group' = read_group_members.group_id \
                 AND j.value ->> 'user' = read_group_members.user_id)",
            removed.into_iter().map(|(row, _)| row).collect(),
        )
        .await?;
        execute_for_rows(
            connection,
            "INSERT INTO read_group_members (group_id, user_id) \
             SELECT j.value ->> 'group', j.value ->> 'user' FROM {rows} WHERE true \
             ON CONFLICT DO NOTHING",
            added.into_iter().map(|(row, _)| row).collect(),
        )
        .await
    }
}

/// A row of `read_groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// Its id.
    pub id: String,
    /// Its organization.
    pub organization_id: String,
    /// Its name as given.
    pub display_name: String,
    /// The identity provider's id of it.
    pub external_id: Option<String>,
    /// Created, epoch milliseconds.
    pub created_at: i64,
    /// Last modified, epoch milliseconds.
    pub modified_at: i64,
    /// The stream revision (ETag).
    pub revision: i64,
}

const GROUP_COLUMNS: &str =
    "id, organization_id, display_name, external_id, created_at, modified_at, revision";

fn group_row(row: &sqlx::any::AnyRow) -> Result<GroupRow> {
    Ok(GroupRow {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        display_name: row.try_get("display_name")?,
        external_id: row.try_get("external_id")?,
        created_at: row.try_get("created_at")?,
        modified_at: row.try_get("modified_at")?,
        revision: row.try_get("revision")?,
    })
}

impl crate::ReadModels {
    /// A subquery of the texts of the JSON array bound as `$1`.
    fn text_array_values(&self) -> &'static str {
        match self.backend() {
            iam_eventstore::Backend::Postgres => "SELECT jsonb_array_elements_text($1::jsonb)",
            iam_eventstore::Backend::Sqlite => "SELECT value FROM json_each($1)",
        }
    }

    /// One plain group by id.
    pub async fn group(&self, id: &str) -> Result<Option<GroupRow>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM read_groups WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(group_row).transpose()
    }

    /// The plain groups of `organization` that match `condition` (SQL over
    /// the table aliased `g`, whose parameters start at `$2`), ordered by
    /// `order` (SQL), a page at a time, with the number that match.
    pub async fn groups_where(
        &self,
        organization: &str,
        condition: &str,
        binds: Vec<QueryValue>,
        order: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<GroupRow>, i64)> {
        let columns = GROUP_COLUMNS
            .split(", ")
            .map(|c| format!("g.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let (rows, total) = self
            .page_where(super::PageWhere {
                table: "read_groups",
                alias: "g",
                columns: &columns,
                organization,
                condition,
                binds,
                order,
                offset,
                limit,
            })
            .await?;
        Ok((rows.iter().map(group_row).collect::<Result<_>>()?, total))
    }

    /// The members of the plain groups `ids`: (group id, user id, userName).
    pub async fn group_members(&self, ids: &[String]) -> Result<Vec<(String, String, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let source = self.text_array_values();
        let sql = format!(
            "SELECT m.group_id, m.user_id, u.user_name FROM read_group_members m \
             JOIN read_users u ON u.id = m.user_id \
             WHERE m.group_id IN ({source}) ORDER BY u.user_name_key"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(json!(ids).to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("group_id")?,
                    row.try_get("user_id")?,
                    row.try_get("user_name")?,
                ))
            })
            .collect()
    }

    /// The plain groups the users `ids` are members of: (user id, group
    /// id, displayName), by name.
    pub async fn groups_of_users(&self, ids: &[String]) -> Result<Vec<(String, String, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let source = self.text_array_values();
        let sql = format!(
            "SELECT m.user_id, g.id, g.display_name FROM read_group_members m \
             JOIN read_groups g ON g.id = m.group_id WHERE m.user_id IN ({source}) \
             ORDER BY g.display_name_key"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(json!(ids).to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("user_id")?,
                    row.try_get("id")?,
                    row.try_get("display_name")?,
                ))
            })
            .collect()
    }
}

/// A parameter of a filtered query.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    /// Text.
    Text(String),
    /// An integer.
    Integer(i64),
}

impl QueryValue {
    /// Binds this value as the next parameter of `query`.
    pub fn bind_to<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        match self {
            QueryValue::Text(text) => query.bind(text),
            QueryValue::Integer(integer) => query.bind(integer),
        }
    }
}
