//! The `users` projector: live users (`read_users`) and the roles they hold
//! in their home organization (`read_role_members`), and the queries
//! answered from them.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use iam_domain::Role;
use iam_domain::user::{Profile, UserEvent};
use iam_eventstore::RecordedEvent;
use serde_json::{Map, Value, json};
use sqlx::{AnyConnection, Row};

use super::{decode, millis};
use crate::rows::execute_for_rows;
use crate::{Error, Projector, Result};

/// Users and their roles; a deleted user's rows go.
#[derive(Debug, Default, Clone, Copy)]
pub struct UsersProjector;

fn role_names(roles: &[Role]) -> String {
    serde_json::to_string(roles).unwrap_or_else(|_| "[]".to_owned())
}

/// The profile's columns and values.
fn profile_columns(profile: Profile) -> [(&'static str, Option<String>); 4] {
    [
        ("external_id", profile.external_id),
        ("employee_number", profile.employee_number),
        ("department", profile.department),
        ("manager_id", profile.manager),
    ]
}

/// What a batch does to one user: the columns it sets (all of them when the
/// batch creates it), whether it is new or gone, and its roles if they changed.
#[derive(Default)]
struct UserChange {
    columns: Map<String, Value>,
    created: bool,
    deleted: bool,
    roles: Option<Vec<Role>>,
}

impl UserChange {
    fn set(&mut self, column: &str, value: impl Into<Value>) {
        self.columns.insert(column.to_owned(), value.into());
    }

    /// Sets every profile column, absent values as nulls (`profile` marks
    /// that they were set, since an update keeps the columns it is not given).
    fn set_profile(&mut self, profile: Profile) {
        self.set("profile", 1);
        for (column, value) in profile_columns(profile) {
            self.set(column, value);
        }
    }
}

#[async_trait]
impl Projector for UsersProjector {
    fn name(&self) -> &'static str {
        "users"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["read_role_members", "read_users"]
    }

    async fn apply(&self, connection: &mut AnyConnection, events: &[RecordedEvent]) -> Result<()> {
        let mut order = Vec::new();
        let mut changes: HashMap<String, UserChange> = HashMap::new();
        for recorded in events {
            let Some(event) = decode::<UserEvent>(self.name(), "user-", recorded)? else {
                continue;
            };
            let id = recorded.stream.trim_start_matches("user-").to_owned();
            let change = changes.entry(id.clone()).or_insert_with(|| {
                order.push(id.clone());
                UserChange::default()
            });
            change.set("revision", recorded.revision);
            match event {
                UserEvent::UserCreated {
                    organization,
                    user_name,
                    email,
                    given_name,
                    family_name,
                    state,
                    roles,
                    at,
                    profile,
                    managed,
                    ..
                } => {
                    change.created = true;
                    // A new row's absent fields are NULL anyway: only what
                    // is set travels (most users have no profile).
                    for (column, value) in profile_columns(profile) {
                        if let Some(value) = value {
                            change.set(column, value);
                        }
                    }
                    if managed {
                        change.set("managed", 1);
                    }
                    change.set("organization", organization.to_string());
                    change.set("user_name", user_name.trim());
                    change.set("user_name_key", user_name.trim().to_lowercase());
                    change.set("email", email);
                    change.set("given_name", given_name);
                    change.set("family_name", family_name);
                    change.set("state", state.as_str());
                    change.set("roles", role_names(&roles));
                    change.set("created_at", millis(at));
                    change.set("modified_at", millis(at));
                    change.roles = Some(roles);
                }
                UserEvent::UserNameChanged {
                    user_name,
                    email,
                    at,
                } => {
                    change.set("user_name_key", user_name.trim().to_lowercase());
                    change.set("user_name", user_name.trim());
                    change.set("email", email);
                    change.set("modified_at", millis(at));
                }
                UserEvent::UserProfileChanged { profile, at } => {
                    change.set_profile(profile);
                    change.set("modified_at", millis(at));
                }
                UserEvent::UserEmailChanged { email, at } => {
                    change.set("email", email);
                    change.set("modified_at", millis(at));
                }
                UserEvent::UserRenamed {
                    given_name,
                    family_name,
                    at,
                } => {
                    change.set("given_name", given_name);
                    change.set("family_name", family_name);
                    change.set("modified_at", millis(at));
                }
                UserEvent::UserStateChanged { state, at } => {
                    change.set("state", state.as_str());
                    change.set("modified_at", millis(at));
                }
                UserEvent::UserRolesChanged { roles, at, .. } => {
                    change.set("roles", role_names(&roles));
                    change.set("modified_at", millis(at));
                    change.roles = Some(roles);
                }
                UserEvent::UserPasswordSet { at } | UserEvent::UserPasswordReset { at } => {
                    change.set("modified_at", millis(at));
                }
                UserEvent::UserPasswordResetRequested { .. } => {}
                UserEvent::UserDeleted { .. } => change.deleted = true,
            }
        }

        let mut created = Vec::new();
        let mut updated = Vec::new();
        let mut deleted = Vec::new();
        let mut roles_replaced = Vec::new();
        let mut role_members = Vec::new();
        for id in order {
            let Some(mut change) = changes.remove(&id) else {
                continue;
            };
            if change.deleted {
                if !change.created {
                    deleted.push(json!({ "id": id }));
                    roles_replaced.push(json!({ "id": id }));
                }
                continue;
            }
            if let Some(roles) = &change.roles {
                if !change.created {
                    roles_replaced.push(json!({ "id": id }));
                }
                for role in roles {
                    role_members.push(json!({ "user": id, "role": format!("{role:?}") }));
                }
            }
            change.set("id", id);
            if change.created {
                created.push(Value::Object(change.columns));
            } else {
                updated.push(Value::Object(change.columns));
            }
        }

        execute_for_rows(
            connection,
            "INSERT INTO read_users (id, organization_id, user_name, user_name_key, email, given_name, \
             family_name, state, roles, created_at, modified_at, revision, external_id, employee_number, \
             department, manager_id, managed) \
             SELECT j.value ->> 'id', j.value ->> 'organization', j.value ->> 'user_name', \
                    j.value ->> 'user_name_key', j.value ->> 'email', j.value ->> 'given_name', \
                    j.value ->> 'family_name', j.value ->> 'state', j.value ->> 'roles', \
                    CAST(j.value ->> 'created_at' AS BIGINT), CAST(j.value ->> 'modified_at' AS BIGINT), \
                    CAST(j.value ->> 'revision' AS BIGINT), j.value ->> 'external_id', \
                    j.value ->> 'employee_number', j.value ->> 'department', j.value ->> 'manager_id', \
                    COALESCE(CAST(j.value ->> 'managed' AS INTEGER), 0) FROM {rows}",
            created,
        )
        .await?;
        execute_for_rows(
            connection,
            "UPDATE read_users SET \
               user_name = COALESCE(j.value ->> 'user_name', read_users.user_name), \
               user_name_key = COALESCE(j.value ->> 'user_name_key', read_users.user_name_key), \
               email = COALESCE(j.value ->> 'email', read_users.email), \
               external_id = CASE WHEN j.value ->> 'profile' IS NULL THEN read_users.external_id \
                 ELSE j.value ->> 'external_id' END, \
               employee_number = CASE WHEN j.value ->> 'profile' IS NULL THEN read_users.employee_number \
                 ELSE j.value ->> 'employee_number' END, \
               department = CASE WHEN j.value ->> 'profile' IS NULL THEN read_users.department \
                 ELSE j.value ->> 'department' END, \
               manager_id = CASE WHEN j.value ->> 'profile' IS NULL THEN read_users.manager_id \
                 ELSE j.value ->> 'manager_id' END, \
               given_name = COALESCE(j.value ->> 'given_name', read_users.given_name), \
               family_name = COALESCE(j.value ->> 'family_name', read_users.family_name), \
               state = COALESCE(j.value ->> 'state', read_users.state), \
               roles = COALESCE(j.value ->> 'roles', read_users.roles), \
               modified_at = COALESCE(CAST(j.value ->> 'modified_at' AS BIGINT), read_users.modified_at), \
               revision = CAST(j.value ->> 'revision' AS BIGINT) \
             FROM {rows} WHERE read_users.id = j.value ->> 'id'",
            updated,
        )
        .await?;
        execute_for_rows(
            connection,
            "DELETE FROM read_users WHERE id IN (SELECT j.value ->> 'id' FROM {rows})",
            deleted,
        )
        .await?;
        execute_for_rows(
            connection,
            "DELETE FROM read_role_members WHERE user_id IN (SELECT j.value ->> 'id' FROM {rows})",
            roles_replaced,
        )
        .await?;
        // A user's roles are held in its home organization, which its row
        // names. A scalar subquery probes the key per row; a join let
        // PostgreSQL's planner hash the whole users table for every batch.
        execute_for_rows(
            connection,
            "INSERT INTO read_role_members (organization_id, role, user_id) \
             SELECT (SELECT u.organization_id FROM read_users u WHERE u.id = j.value ->> 'user'), \
                    j.value ->> 'role', j.value ->> 'user' FROM {rows}",
            role_members,
        )
        .await
    }
}

/// A row of `read_users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Its id.
    pub id: String,
    /// Its home organization.
    pub organization_id: String,
    /// Its name as given.
    pub user_name: String,
    /// Its address.
    pub email: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// `Active` or `Inactive`.
    pub state: String,
    /// Its roles.
    pub roles: Vec<Role>,
    /// Created, epoch milliseconds.
    pub created_at: i64,
    /// Last modified, epoch milliseconds.
    pub modified_at: i64,
    /// The stream revision (ETag).
    pub revision: i64,
    /// What the identity provider keeps of it.
    pub profile: Profile,
    /// Whether an identity provider manages it.
    pub managed: bool,
}

const USER_COLUMNS: &str = "id, organization_id, user_name, email, given_name, family_name, state, roles, \
                            created_at, modified_at, revision, external_id, employee_number, department, \
                            manager_id, managed";

/// [`USER_COLUMNS`] of the table aliased `u`, for joins.
static USER_COLUMNS_OF_U: LazyLock<String> = LazyLock::new(|| {
    USER_COLUMNS
        .split(", ")
        .map(|column| format!("u.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
});

/// An API token as authentication sees it: its user, its organization, its
/// status at the time of the query, and its stored hash (for the caller's
/// constant-time comparison).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHolder {
    /// The token's user.
    pub user: UserRow,
    /// The token's id.
    pub token_id: String,
    /// The organization the token is scoped to.
    pub organization_id: String,
    /// `Pending`, `Enabled`, `Revoked` or `Expired`.
    pub status: String,
    /// The stored SHA-256 of its secret.
    pub secret_hash: String,
}

fn user_row(row: &sqlx::any::AnyRow) -> Result<UserRow> {
    let roles: String = row.try_get("roles")?;
    Ok(UserRow {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        user_name: row.try_get("user_name")?,
        email: row.try_get("email")?,
        given_name: row.try_get("given_name")?,
        family_name: row.try_get("family_name")?,
        state: row.try_get("state")?,
        roles: serde_json::from_str(&roles).map_err(|error| Error::Apply {
            projector: "users".into(),
            position: 0,
            reason: format!("stored roles are not readable: {error}"),
        })?,
        created_at: row.try_get("created_at")?,
        modified_at: row.try_get("modified_at")?,
        revision: row.try_get("revision")?,
        profile: Profile {
            external_id: row.try_get("external_id")?,
            employee_number: row.try_get("employee_number")?,
            department: row.try_get("department")?,
            manager: row.try_get("manager_id")?,
        },
        managed: row.try_get::<i64, _>("managed")? != 0,
    })
}

impl crate::ReadModels {
    /// One user by id.
    pub async fn user(&self, id: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM read_users WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    /// The user of a live login session, in one indexed read. The sessions
    /// table (`token_hash`, `user_id`, `expires_at`) is the service's
    /// credential store beside the read models; it is joined here so that
    /// authenticating a request costs one query. With the user comes
    /// whether the session may only change the user's password (it was
    /// opened with a generated one).
    pub async fn user_of_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<(UserRow, bool)>> {
        let sql = format!(
            "SELECT {}, s.must_change_password FROM sessions s JOIN read_users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
            &*USER_COLUMNS_OF_U
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash.to_owned())
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref()
            .map(|row| {
                let must_change: i64 = row.try_get("must_change_password")?;
                Ok((user_row(row)?, must_change != 0))
            })
            .transpose()
    }

    /// The API token whose secret hashes to `secret_hash`, at `now`, with
    /// its user, in one indexed read (the token joined with its user).
    pub async fn user_of_token(&self, secret_hash: &str, now: i64) -> Result<Option<TokenHolder>> {
        let sql = format!(
            "SELECT {}, t.id AS token_id, t.organization_id AS token_organization_id, t.secret_hash, \
               CASE WHEN t.expires_at <= $1 THEN 'Expired' ELSE t.status END AS token_status \
             FROM read_tokens t JOIN read_users u ON u.id = t.user_id WHERE t.secret_hash = $2",
            &*USER_COLUMNS_OF_U
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(secret_hash.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref()
            .map(|row| {
                Ok(TokenHolder {
                    user: user_row(row)?,
                    token_id: row.try_get("token_id")?,
                    organization_id: row.try_get("token_organization_id")?,
                    status: row.try_get("token_status")?,
                    secret_hash: row.try_get("secret_hash")?,
                })
            })
            .transpose()
    }

    /// The users whose home is `organization` that match `condition` (SQL
    /// over the table aliased `u`, whose parameters start at `$2`), ordered
    /// by `order` (SQL), a page at a time, with the number that match.
    pub async fn users_where(
        &self,
        organization: &str,
        condition: &str,
        binds: Vec<super::QueryValue>,
        order: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<UserRow>, i64)> {
        let (rows, total) = self
            .page_where(super::PageWhere {
                table: "read_users",
                alias: "u",
                columns: &USER_COLUMNS_OF_U,
                organization,
                condition,
                binds,
                order,
                offset,
                limit,
            })
            .await?;
        Ok((rows.iter().map(user_row).collect::<Result<_>>()?, total))
    }

    /// One user by name, compared case-insensitively.
    pub async fn user_by_name(&self, user_name: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM read_users WHERE user_name_key = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_name.trim().to_lowercase())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    /// The users listed in `organization`: those whose home it is, then (for
    /// a tenant) the provider users who are its Organization Owners, by
    /// name, a page at a time; with `user_name`, only the one of that name.
    /// The flag says which rows are Organization Owners.
    pub async fn members_of(
        &self,
        organization: &str,
        user_name: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<(UserRow, bool)>> {
        // With a name, each half is one probe of an index on
        // (organization, name) or on the name; `($2 = '' OR …)` in one text
        // would make the planner scan the whole organization instead.
        let name_filter = if user_name.is_some() {
            "user_name_key = $2"
        } else {
            "$2 = ''"
        };
        let sql = format!(
            "SELECT {USER_COLUMNS}, user_name_key, 0 AS owner FROM read_users \
               WHERE organization_id = $1 AND {name_filter} \
             UNION ALL \
             SELECT {USER_COLUMNS}, user_name_key, 1 AS owner FROM read_users \
               WHERE {name_filter} AND id IN (SELECT user_id FROM read_memberships WHERE organization_id = $1) \
             ORDER BY user_name_key LIMIT $3 OFFSET $4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(organization.to_owned())
            .bind(
                user_name
                    .map(|n| n.trim().to_lowercase())
                    .unwrap_or_default(),
            )
            .bind(limit)
            .bind(offset)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| Ok((user_row(row)?, row.try_get::<i64, _>("owner")? != 0)))
            .collect()
    }

    /// How many users hold each role in `organization` (its users' roles,
    /// and Organization Owner for provider users added to it).
    pub async fn role_counts(&self, organization: &str) -> Result<Vec<(String, i64)>> {
        // Memberships outlive their user (the organization's projector does
        // not follow deletions): count only users that still exist.
        let rows = sqlx::query(
            "SELECT role, COUNT(*) AS members FROM ( \
               SELECT role, user_id FROM read_role_members WHERE organization_id = $1 \
               UNION ALL SELECT role, user_id FROM read_memberships m WHERE organization_id = $1 \
                 AND EXISTS (SELECT 1 FROM read_users u WHERE u.id = m.user_id)) r \
             GROUP BY role ORDER BY role",
        )
        .bind(organization.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("role")?, row.try_get("members")?)))
            .collect()
    }

    /// What changes whenever the users holding `role` in their home
    /// `organization` change: how many there are, the sum of their
    /// revisions and their latest change (one indexed aggregate, for the
    /// version of a role group without reading its members).
    pub async fn role_holder_digest(
        &self,
        organization: &str,
        role: &str,
    ) -> Result<(i64, i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS members, CAST(COALESCE(SUM(u.revision), 0) AS BIGINT) AS revisions, \
                    COALESCE(MAX(u.modified_at), 0) AS latest \
             FROM read_role_members m JOIN read_users u ON u.id = m.user_id \
             WHERE m.organization_id = $1 AND m.role = $2",
        )
        .bind(organization.to_owned())
        .bind(role.to_owned())
        .fetch_one(self.pool())
        .await?;
        Ok((
            row.try_get("members")?,
            row.try_get("revisions")?,
            row.try_get("latest")?,
        ))
    }

    /// The users holding `role` (its catalog name, e.g. `AccountAdministrator`)
    /// in `organization`, by name, a page at a time.
    pub async fn role_holders(
        &self,
        organization: &str,
        role: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<UserRow>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM read_users WHERE id IN ( \
               SELECT user_id FROM read_role_members WHERE organization_id = $1 AND role = $2 \
               UNION SELECT user_id FROM read_memberships WHERE organization_id = $1 AND role = $2) \
             ORDER BY user_name_key LIMIT $3 OFFSET $4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(organization.to_owned())
            .bind(role.to_owned())
            .bind(limit)
            .bind(offset)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(user_row).collect()
    }
}
