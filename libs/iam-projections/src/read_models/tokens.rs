//! The `tokens` projector: API tokens (`read_tokens`), and the queries
//! answered from them.

use std::collections::HashMap;

use async_trait::async_trait;
use iam_domain::token::TokenEvent;
use iam_eventstore::RecordedEvent;
use serde_json::{Value, json};
use sqlx::{AnyConnection, Row};

use super::{decode, millis};
use crate::rows::execute_for_rows;
use crate::{Projector, Result};

/// API tokens.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokensProjector;

/// What a batch does to one token: its new row, or a change of status (and
/// the secret's hash, once downloaded) to an existing one.
#[derive(Default)]
struct TokenChange {
    created: Option<Value>,
    status: Option<&'static str>,
    secret_hash: Option<String>,
}

#[async_trait]
impl Projector for TokensProjector {
    fn name(&self) -> &'static str {
        "tokens"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["read_tokens"]
    }

    async fn apply(&self, connection: &mut AnyConnection, events: &[RecordedEvent]) -> Result<()> {
        let mut order = Vec::new();
        let mut changes: HashMap<String, TokenChange> = HashMap::new();
        for recorded in events {
            let Some(event) = decode::<TokenEvent>(self.name(), "token-", recorded)? else {
                continue;
            };
            let id = recorded.stream.trim_start_matches("token-").to_owned();
            let change = changes.entry(id.clone()).or_insert_with(|| {
                order.push(id.clone());
                TokenChange::default()
            });
            match event {
                TokenEvent::TokenCreated {
                    user,
                    organization,
                    name,
                    description,
                    expires_at,
                    at,
                    ..
                } => {
                    change.created = Some(json!({
                        "id": id,
                        "user": user.to_string(),
                        "organization": organization.to_string(),
                        "name": name,
                        "description": description,
                        "at": millis(at),
                        "expires": millis(expires_at),
                    }));
                    change.status = Some("Pending");
                }
                TokenEvent::TokenDownloaded { secret_hash, .. } => {
                    change.status = Some("Enabled");
                    change.secret_hash = Some(secret_hash);
                }
                TokenEvent::TokenRevoked { .. } => change.status = Some("Revoked"),
                TokenEvent::TokenExpired { .. } => change.status = Some("Expired"),
            }
        }
        let mut created = Vec::new();
        let mut changed = Vec::new();
        for id in order {
            let Some(change) = changes.remove(&id) else {
                continue;
            };
            match change.created {
                Some(mut row) => {
                    row["status"] = json!(change.status);
                    row["hash"] = json!(change.secret_hash);
                    created.push(row);
                }
                None => changed.push(json!({
                    "id": id,
                    "status": change.status,
                    "hash": change.secret_hash,
                })),
            }
        }
        execute_for_rows(
            connection,
            "INSERT INTO read_tokens (id, user_id, organization_id, name, description, status, created_at, \
             expires_at, secret_hash) \
             SELECT j.value ->> 'id', j.value ->> 'user', j.value ->> 'organization', j.value ->> 'name', \
                    j.value ->> 'description', j.value ->> 'status', CAST(j.value ->> 'at' AS BIGINT), \
                    CAST(j.value ->> 'expires' AS BIGINT), j.value ->> 'hash' FROM {rows}",
            created,
        )
        .await?;
        execute_for_rows(
            connection,
            "UPDATE read_tokens SET status = COALESCE(j.value ->> 'status', read_tokens.status), \
             secret_hash = COALESCE(j.value ->> 'hash', read_tokens.secret_hash) \
             FROM {rows} WHERE read_tokens.id = j.value ->> 'id'",
            changed,
        )
        .await
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
}
