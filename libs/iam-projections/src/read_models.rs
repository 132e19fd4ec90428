//! The projectors of organizations, memberships and users, and the queries
//! the service answers from their tables.

use async_trait::async_trait;
use iam_domain::organization::OrgEvent;
use iam_domain::user::UserEvent;
use iam_domain::{OrgKind, Role};
use iam_eventstore::RecordedEvent;
use serde::de::DeserializeOwned;
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::{Error, Projector, Result};

/// Decodes a domain event from its type and data, or `None` for events of
/// other aggregates (each projector sees the whole log).
fn decode<E: DeserializeOwned>(projector: &str, event: &RecordedEvent) -> Result<Option<E>> {
    let prefix = match projector {
        "organizations" => "org-",
        _ => "user-",
    };
    if !event.stream.starts_with(prefix) {
        return Ok(None);
    }
    serde_json::from_value(json!({ "type": event.event_type, "data": event.data }))
        .map(Some)
        .map_err(|error| Error::Apply {
            projector: projector.to_owned(),
            position: event.position,
            reason: format!("cannot decode {}: {error}", event.event_type),
        })
}

fn millis(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_millis()
}

/// Organizations (`read_organizations`) and their Organization Owners
/// (`read_memberships`).
#[derive(Debug, Default, Clone, Copy)]
pub struct OrganizationsProjector;

#[async_trait]
impl Projector for OrganizationsProjector {
    fn name(&self) -> &'static str {
        "organizations"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["read_memberships", "read_organizations"]
    }

    async fn apply(&self, connection: &mut AnyConnection, events: &[RecordedEvent]) -> Result<()> {
        for recorded in events {
            let Some(event) = decode::<OrgEvent>(self.name(), recorded)? else {
                continue;
            };
            match event {
                OrgEvent::OrganizationCreated {
                    id,
                    name,
                    kind,
                    provider,
                    delegates_user_management,
                    at,
                } => {
                    sqlx::query(
                        "INSERT INTO read_organizations (id, name, kind, provider_id, delegates, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(id.to_string())
                    .bind(name)
                    .bind(kind_name(kind))
                    .bind(provider.map(|p| p.to_string()))
                    .bind(i64::from(delegates_user_management))
                    .bind(millis(at))
                    .execute(&mut *connection)
                    .await?;
                }
                OrgEvent::OrganizationMemberAdded { user, role, at } => {
                    let organization = recorded.stream.trim_start_matches("org-");
                    sqlx::query(
                        "INSERT INTO read_memberships (organization_id, user_id, role, added_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (organization_id, user_id) DO NOTHING",
                    )
                    .bind(organization.to_owned())
                    .bind(user.to_string())
                    .bind(format!("{role:?}"))
                    .bind(millis(at))
                    .execute(&mut *connection)
                    .await?;
                }
            }
        }
        Ok(())
    }
}

/// The spelling of an organization kind in the read models.
pub fn kind_name(kind: OrgKind) -> &'static str {
    match kind {
        OrgKind::Provider => "Provider",
        OrgKind::Tenant => "Tenant",
    }
}

/// Users (`read_users`): one row per live user; a deleted user's row goes.
#[derive(Debug, Default, Clone, Copy)]
pub struct UsersProjector;

fn role_names(roles: &[Role]) -> String {
    serde_json::to_string(roles).unwrap_or_else(|_| "[]".to_owned())
}

#[async_trait]
impl Projector for UsersProjector {
    fn name(&self) -> &'static str {
        "users"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["read_users"]
    }

    async fn apply(&self, connection: &mut AnyConnection, events: &[RecordedEvent]) -> Result<()> {
        for recorded in events {
            let Some(event) = decode::<UserEvent>(self.name(), recorded)? else {
                continue;
            };
            let id = recorded.stream.trim_start_matches("user-").to_owned();
            let revision = recorded.revision as i64;
            let (sql, binds): (&'static str, Vec<Bind>) = match event {
                UserEvent::UserCreated {
                    id: _,
                    organization,
                    user_name,
                    email,
                    given_name,
                    family_name,
                    state,
                    roles,
                    at,
                } => (
                    "INSERT INTO read_users (id, organization_id, user_name, user_name_key, email, given_name, \
                     family_name, state, roles, created_at, modified_at, revision) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)",
                    vec![
                        Bind::Text(id),
                        Bind::Text(organization.to_string()),
                        Bind::Text(user_name.trim().to_owned()),
                        Bind::Text(user_name.trim().to_lowercase()),
                        Bind::Text(email),
                        Bind::Text(given_name),
                        Bind::Text(family_name),
                        Bind::Text(state.as_str().to_owned()),
                        Bind::Text(role_names(&roles)),
                        Bind::Int(millis(at)),
                        Bind::Int(revision),
                    ],
                ),
                UserEvent::UserEmailChanged { email, at } => (
                    "UPDATE read_users SET email = $2, modified_at = $3, revision = $4 WHERE id = $1",
                    vec![
                        Bind::Text(id),
                        Bind::Text(email),
                        Bind::Int(millis(at)),
                        Bind::Int(revision),
                    ],
                ),
                UserEvent::UserRenamed {
                    given_name,
                    family_name,
                    at,
                } => (
                    "UPDATE read_users SET given_name = $2, family_name = $3, modified_at = $4, revision = $5 \
                     WHERE id = $1",
                    vec![
                        Bind::Text(id),
                        Bind::Text(given_name),
                        Bind::Text(family_name),
                        Bind::Int(millis(at)),
                        Bind::Int(revision),
                    ],
                ),
                UserEvent::UserStateChanged { state, at } => (
                    "UPDATE read_users SET state = $2, modified_at = $3, revision = $4 WHERE id = $1",
                    vec![
                        Bind::Text(id),
                        Bind::Text(state.as_str().to_owned()),
                        Bind::Int(millis(at)),
                        Bind::Int(revision),
                    ],
                ),
                UserEvent::UserRolesChanged { roles, at } => (
                    "UPDATE read_users SET roles = $2, modified_at = $3, revision = $4 WHERE id = $1",
                    vec![
                        Bind::Text(id),
                        Bind::Text(role_names(&roles)),
                        Bind::Int(millis(at)),
                        Bind::Int(revision),
                    ],
                ),
                UserEvent::UserPasswordSet { at } => (
                    "UPDATE read_users SET modified_at = $2, revision = $3 WHERE id = $1",
                    vec![Bind::Text(id), Bind::Int(millis(at)), Bind::Int(revision)],
                ),
                UserEvent::UserDeleted { .. } => {
                    ("DELETE FROM read_users WHERE id = $1", vec![Bind::Text(id)])
                }
            };
            let mut query = sqlx::query(sql);
            for bind in binds {
                query = match bind {
                    Bind::Text(text) => query.bind(text),
                    Bind::Int(number) => query.bind(number),
                };
            }
            query.execute(&mut *connection).await?;
        }
        Ok(())
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

/// A row of `read_organizations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationRow {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `Provider` or `Tenant`.
    pub kind: String,
    /// A tenant's provider.
    pub provider_id: Option<String>,
    /// Whether the provider manages its users.
    pub delegates: bool,
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
}

const USER_COLUMNS: &str = "id, organization_id, user_name, email, given_name, family_name, state, roles, \
                            created_at, modified_at, revision";

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
    })
}

fn organization_row(row: &sqlx::any::AnyRow) -> Result<OrganizationRow> {
    Ok(OrganizationRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        provider_id: row.try_get("provider_id")?,
        delegates: row.try_get::<i64, _>("delegates")? != 0,
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
        let sql = format!(
            "SELECT {USER_COLUMNS}, user_name_key, 0 AS owner FROM read_users \
               WHERE organization_id = $1 AND ($2 = '' OR user_name_key = $2) \
             UNION ALL \
             SELECT {USER_COLUMNS}, user_name_key, 1 AS owner FROM read_users \
               WHERE id IN (SELECT user_id FROM read_memberships WHERE organization_id = $1) \
                 AND ($2 = '' OR user_name_key = $2) \
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

    /// Whether `user` is an Organization Owner of `organization`.
    pub async fn is_member(&self, organization: &str, user: &str) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM read_memberships WHERE organization_id = $1 AND user_id = $2",
        )
        .bind(organization.to_owned())
        .bind(user.to_owned())
        .fetch_optional(self.pool())
        .await?;
        Ok(found.is_some())
    }

    /// One organization by id.
    pub async fn organization(&self, id: &str) -> Result<Option<OrganizationRow>> {
        let row = sqlx::query(
            "SELECT id, name, kind, provider_id, delegates FROM read_organizations WHERE id = $1",
        )
        .bind(id.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(organization_row).transpose()
    }

    /// The provider organization, if one was created.
    pub async fn provider(&self) -> Result<Option<OrganizationRow>> {
        let row = sqlx::query(
            "SELECT id, name, kind, provider_id, delegates FROM read_organizations \
             WHERE kind = 'Provider' ORDER BY created_at LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(organization_row).transpose()
    }

    /// `organization` and, for a provider, its tenants, by name.
    pub async fn organizations_visible_from(
        &self,
        organization: &str,
    ) -> Result<Vec<OrganizationRow>> {
        let rows = sqlx::query(
            "SELECT id, name, kind, provider_id, delegates FROM read_organizations \
             WHERE id = $1 OR provider_id = $1 ORDER BY kind, name",
        )
        .bind(organization.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(organization_row).collect()
    }
}
