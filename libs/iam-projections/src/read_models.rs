//! The projectors of organizations, memberships and users, and the queries
//! the service answers from their tables.

use async_trait::async_trait;
use iam_domain::organization::OrgEvent;
use iam_domain::token::TokenEvent;
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
        "tokens" => "token-",
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
        &["read_role_members", "read_users"]
    }

    async fn apply(&self, connection: &mut AnyConnection, events: &[RecordedEvent]) -> Result<()> {
        for recorded in events {
            let Some(event) = decode::<UserEvent>(self.name(), recorded)? else {
                continue;
            };
            let id = recorded.stream.trim_start_matches("user-").to_owned();
            let revision = recorded.revision as i64;
            let role_change = match &event {
                UserEvent::UserCreated {
                    organization,
                    roles,
                    ..
                } => Some((Some(organization.to_string()), roles.clone())),
                UserEvent::UserRolesChanged { roles, .. } => Some((None, roles.clone())),
                UserEvent::UserDeleted { .. } => Some((None, Vec::new())),
                _ => None,
            };
            if let Some((organization, roles)) = role_change {
                record_roles(connection, &id, organization, &roles).await?;
            }
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

/// Replaces the user's rows in `read_role_members` with `roles`, in
/// `organization` (or the organization its rows already name).
async fn record_roles(
    connection: &mut AnyConnection,
    user: &str,
    organization: Option<String>,
    roles: &[Role],
) -> Result<()> {
    let organization = match organization {
        Some(organization) => Some(organization),
        None => {
            sqlx::query_scalar("SELECT organization_id FROM read_users WHERE id = $1")
                .bind(user.to_owned())
                .fetch_optional(&mut *connection)
                .await?
        }
    };
    sqlx::query("DELETE FROM read_role_members WHERE user_id = $1")
        .bind(user.to_owned())
        .execute(&mut *connection)
        .await?;
    let Some(organization) = organization else {
        return Ok(());
    };
    for role in roles {
        sqlx::query(
            "INSERT INTO read_role_members (organization_id, role, user_id) VALUES ($1, $2, $3)",
        )
        .bind(organization.clone())
        .bind(format!("{role:?}"))
        .bind(user.to_owned())
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

/// API tokens (`read_tokens`).
#[derive(Debug, Default, Clone, Copy)]
pub struct TokensProjector;

#[async_trait]
impl Projector for TokensProjector {
    fn name(&self) -> &'static str {
        "tokens"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["read_tokens"]
    }

    async fn apply(&self, connection: &mut AnyConnection, events: &[RecordedEvent]) -> Result<()> {
        for recorded in events {
            let Some(event) = decode::<TokenEvent>(self.name(), recorded)? else {
                continue;
            };
            let id = recorded.stream.trim_start_matches("token-").to_owned();
            let query = match event {
                TokenEvent::TokenCreated {
                    user,
                    organization,
                    name,
                    description,
                    expires_at,
                    at,
                    ..
                } => sqlx::query(
                    "INSERT INTO read_tokens (id, user_id, organization_id, name, description, status, created_at, \
                     expires_at, secret_hash) VALUES ($1, $2, $3, $4, $5, 'Pending', $6, $7, NULL)",
                )
                .bind(id)
                .bind(user.to_string())
                .bind(organization.to_string())
                .bind(name)
                .bind(description)
                .bind(millis(at))
                .bind(millis(expires_at)),
                TokenEvent::TokenDownloaded { secret_hash, .. } => {
                    sqlx::query("UPDATE read_tokens SET status = 'Enabled', secret_hash = $2 WHERE id = $1")
                        .bind(id)
                        .bind(secret_hash)
                }
                TokenEvent::TokenRevoked { .. } => {
                    sqlx::query("UPDATE read_tokens SET status = 'Revoked' WHERE id = $1").bind(id)
                }
                TokenEvent::TokenExpired { .. } => {
                    sqlx::query("UPDATE read_tokens SET status = 'Expired' WHERE id = $1").bind(id)
                }
            };
            query.execute(&mut *connection).await?;
        }
        Ok(())
    }
}

/// A row of `read_tokens`, without its secret's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Its id.
    pub id: String,
    /// Its owner.
    pub user_id: String,
    /// The organization it is scoped to.
    pub organization_id: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its status at the time of the query (Expired once its lifetime is over).
    pub status: String,
    /// Created, epoch milliseconds.
    pub created_at: i64,
    /// End of its lifetime, epoch milliseconds.
    pub expires_at: i64,
}

const TOKEN_COLUMNS: &str = "id, user_id, organization_id, name, description, \
     CASE WHEN expires_at <= $1 THEN 'Expired' ELSE status END AS status, created_at, expires_at";

/// Which token, whose, and where: what the token sweep works from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRef {
    /// The token's id.
    pub id: String,
    /// Its user's id.
    pub user_id: String,
    /// The organization it is scoped to.
    pub organization_id: String,
}

fn token_ref(row: &sqlx::any::AnyRow) -> Result<TokenRef> {
    Ok(TokenRef {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        organization_id: row.try_get("organization_id")?,
    })
}

fn token_row(row: &sqlx::any::AnyRow) -> Result<TokenRow> {
    Ok(TokenRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        organization_id: row.try_get("organization_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
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

impl crate::ReadModels {
    /// The tokens scoped to `organization`, at `now` (epoch ms), optionally
    /// of one status and one user, by creation, a page at a time.
    pub async fn tokens_in(
        &self,
        organization: &str,
        status: Option<&str>,
        user: Option<&str>,
        now: i64,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<TokenRow>> {
        let sql = format!(
            "SELECT * FROM (SELECT {TOKEN_COLUMNS} FROM read_tokens WHERE organization_id = $2 \
               AND ($3 = '' OR user_id = $3)) t WHERE ($4 = '' OR status = $4) \
             ORDER BY created_at, id LIMIT $5 OFFSET $6"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(organization.to_owned())
            .bind(user.unwrap_or_default().to_owned())
            .bind(status.unwrap_or_default().to_owned())
            .bind(limit)
            .bind(offset)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(token_row).collect()
    }

    /// How many tokens [`Self::tokens_in`] finds over all pages.
    pub async fn count_tokens_in(
        &self,
        organization: &str,
        status: Option<&str>,
        user: Option<&str>,
        now: i64,
    ) -> Result<i64> {
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT {TOKEN_COLUMNS} FROM read_tokens WHERE organization_id = $2 \
               AND ($3 = '' OR user_id = $3)) t WHERE ($4 = '' OR status = $4)"
        );
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(organization.to_owned())
            .bind(user.unwrap_or_default().to_owned())
            .bind(status.unwrap_or_default().to_owned())
            .fetch_one(self.pool())
            .await?)
    }

    /// One token, at `now`.
    pub async fn token(&self, id: &str, now: i64) -> Result<Option<TokenRow>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM read_tokens WHERE id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(id.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(token_row).transpose()
    }

    /// The token whose secret hashes to `secret_hash`, at `now`, with the
    /// stored hash (for the caller's constant-time comparison).
    pub async fn token_by_secret_hash(
        &self,
        secret_hash: &str,
        now: i64,
    ) -> Result<Option<(TokenRow, String)>> {
        let sql =
            format!("SELECT {TOKEN_COLUMNS}, secret_hash FROM read_tokens WHERE secret_hash = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(secret_hash.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref()
            .map(|row| Ok((token_row(row)?, row.try_get::<String, _>("secret_hash")?)))
            .transpose()
    }

    /// Tokens whose lifetime is over at `now` but whose expiry no event
    /// records yet (the sweep's work), oldest first.
    pub async fn tokens_to_expire(&self, now: i64, limit: i64) -> Result<Vec<TokenRef>> {
        let rows = sqlx::query(
            "SELECT id, user_id, organization_id FROM read_tokens \
             WHERE expires_at <= $1 AND status <> 'Expired' ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(token_ref).collect()
    }

    /// Tokens still live at `now` (Pending or Enabled) whose user is not in
    /// the users read model: left by a deletion that stopped before revoking
    /// them, or created while the user was being deleted. The users
    /// projector may also simply lag, so the caller checks the log.
    pub async fn live_tokens_without_user(&self, now: i64, limit: i64) -> Result<Vec<TokenRef>> {
        let rows = sqlx::query(
            "SELECT id, user_id, organization_id FROM read_tokens t \
             WHERE status IN ('Pending', 'Enabled') AND expires_at > $1 \
               AND NOT EXISTS (SELECT 1 FROM read_users u WHERE u.id = t.user_id) \
             ORDER BY created_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(token_ref).collect()
    }

    /// Every token of `user`, in any organization, at `now`.
    pub async fn tokens_of_user(&self, user: &str, now: i64) -> Result<Vec<TokenRow>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM read_tokens WHERE user_id = $2 ORDER BY created_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(user.to_owned())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(token_row).collect()
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

/// Every projector of the service's read models, in the order they run.
pub const ALL: [&dyn Projector; 3] = [&OrganizationsProjector, &UsersProjector, &TokensProjector];
