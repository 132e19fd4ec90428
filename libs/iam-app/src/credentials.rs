//! Passwords (Argon2id hashes) and login sessions (SHA-256 of the token),
//! kept in tables beside the log. No secret is ever logged, traced, or
//! written to the log or a read model.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::HashMap;

use iam_eventstore::{Backend, InlineBatch, InlineError, InlineHook};
use iam_projections::{InlineProjections, ReadModels, execute_for_rows};
use serde_json::{Value, json};
use sqlx::AnyConnection;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::commands::PASSWORD_HASH;
use crate::{AppError, Refusal};
use sha2::{Digest, Sha256};

const MIGRATIONS_TABLE: &str = "iamd_migrations";
/// Shortest password accepted.
pub const MIN_PASSWORD_LENGTH: usize = 8;
/// Longest password accepted (bounds the hashing work an attacker can ask for).
pub const MAX_PASSWORD_LENGTH: usize = 256;

/// Creates the credential and session tables when needed.
pub async fn migrate(read_models: &ReadModels) -> anyhow::Result<()> {
    let mut migrator = match read_models.backend() {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
    };
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator
        .run(read_models.pool())
        .await
        .context("creating the credential tables")?;
    Ok(())
}

/// Checks a new password's length; the message says what is allowed.
pub fn check_password(password: &str) -> Result<(), String> {
    let length = password.chars().count();
    if !(MIN_PASSWORD_LENGTH..=MAX_PASSWORD_LENGTH).contains(&length) {
        return Err(format!(
            "password must be between {MIN_PASSWORD_LENGTH} and {MAX_PASSWORD_LENGTH} characters long"
        ));
    }
    Ok(())
}

/// Password hashes computed at once, at most: about one per core. Argon2id
/// takes 19 MiB and a core for tens of milliseconds each; unbounded, 64
/// parallel logins took `iamd` from 236 MB to 1.37 GB.
static HASHING: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    Arc::new(Semaphore::new(cores.max(2)))
});

/// How long a request waits for a turn to hash before it is answered 503.
const HASHING_WAIT: Duration = Duration::from_secs(2);

/// A turn to hash, or [`Refusal::Busy`] after [`HASHING_WAIT`]. The turn
/// moves into the blocking task, so that a request dropped midway (its
/// client gone) does not free the turn while its hash still runs.
async fn hashing_turn() -> Result<OwnedSemaphorePermit, AppError> {
    match tokio::time::timeout(HASHING_WAIT, Arc::clone(&HASHING).acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(AppError::refused(
            Refusal::Busy,
            "The service is checking as many passwords as it can at once; try again in a moment.",
        )),
    }
}

/// Hashes a password with Argon2id and a random salt (off the async
/// threads, one of a bounded number at once).
pub async fn hash_password(password: String) -> Result<String, AppError> {
    let turn = hashing_turn().await?;
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|error| {
                AppError::internal(anyhow::anyhow!("hashing a password failed: {error}"))
            })
    })
    .await
    .map_err(AppError::internal)?
}

/// A hash of a password nobody has, so that a login for an unknown user
/// costs as much as one for a known user.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$OnZ2OYV5aQUQWKqYpxjH2Bm8iaMuIuEXAGhCBkkmLF8";

/// Whether `password` matches `hash` (or, with no hash, a decoy: false, in
/// about the same time); [`Refusal::Busy`] when no turn to hash comes.
pub async fn verify_password(password: String, hash: Option<String>) -> Result<bool, AppError> {
    let turn = hashing_turn().await?;
    Ok(tokio::task::spawn_blocking(move || {
        let _turn = turn;
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DECOY_HASH.to_owned());
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            && known
    })
    .await
    .unwrap_or(false))
}

/// A user's password hash, if it has one.
pub async fn password_hash(
    read_models: &ReadModels,
    user_id: &str,
) -> anyhow::Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT password_hash FROM credentials WHERE user_id = $1")
            .bind(user_id.to_owned())
            .fetch_optional(read_models.pool())
            .await?,
    )
}

/// The service's inline hook: the read-model projectors, then the
/// credentials beside the log, all in the append's transaction. A password
/// hash reaches it as the append's attachment, never through the log; a
/// deleted user's password and sessions go with the deletion.
#[derive(Debug)]
pub struct ServiceInline {
    pub projections: InlineProjections,
}

#[async_trait::async_trait]
impl InlineHook for ServiceInline {
    async fn apply(
        &self,
        connection: &mut AnyConnection,
        head_before: u64,
        batch: &InlineBatch<'_>,
    ) -> Result<(), InlineError> {
        InlineHook::apply(&self.projections, connection, head_before, batch).await?;
        write_credentials(connection, batch)
            .await
            .map_err(|error| match error {
                iam_projections::Error::Database(error) => InlineError::Database(error),
                other => InlineError::Refused(other.to_string()),
            })
    }
}

async fn write_credentials(
    connection: &mut AnyConnection,
    batch: &InlineBatch<'_>,
) -> iam_projections::Result<()> {
    let mut passwords: HashMap<&str, Value> = HashMap::new();
    let mut forgotten = Vec::new();
    let mut signed_out = Vec::new();
    // Users whose pending reset codes (and unsent reset mail) are void.
    let mut resets_void = Vec::new();
    let mut reset_mail = Vec::new();
    for event in &batch.events {
        let Some(user) = event.stream.strip_prefix("user-") else {
            continue;
        };
        let attachment = batch.attachment_at(event.position);
        match event.event_type.as_str() {
            "UserCreated" | "UserPasswordSet" | "UserPasswordReset" => {
                if let Some(hash) = attachment
                    .and_then(|attachment| attachment.get(PASSWORD_HASH))
                    .and_then(Value::as_str)
                {
                    let must_change = attachment
                        .and_then(|attachment| attachment.get("mustChange"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    passwords.insert(
                        user,
                        json!({ "user": user, "hash": hash, "mustChange": i64::from(must_change) }),
                    );
                }
                if event.event_type != "UserCreated" {
                    // A new password ends every session but the one of the
                    // user who changed it, and voids pending reset codes.
                    let keep = attachment.and_then(|attachment| attachment.get("keepSession"));
                    signed_out.push(json!({ "id": user, "keep": keep }));
                    resets_void.push(json!({ "id": user }));
                }
            }
            "UserPasswordResetRequested" => {
                signed_out.push(json!({ "id": user }));
                resets_void.push(json!({ "id": user }));
                let expires_at = event.data["expiresAt"]
                    .as_str()
                    .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
                    .map_or(0, |at| at.timestamp_millis());
                reset_mail.push(json!({
                    "position": event.position,
                    "id": user,
                    "expiresAt": expires_at,
                }));
            }
            "UserDeleted" => {
                passwords.remove(user);
                forgotten.push(json!({ "id": user }));
                resets_void.push(json!({ "id": user }));
                reset_mail.retain(|mail| mail["id"] != user);
            }
            // Deactivation ends the user's sessions: reactivating it does
            // not bring them back (its API tokens do come back). A role
            // change ends them too: whoever holds one logs in again, under
            // the new roles.
            "UserStateChanged" if event.data["state"] == "Inactive" => {
                signed_out.push(json!({ "id": user }));
            }
            "UserRolesChanged" => signed_out.push(json!({ "id": user })),
            _ => {}
        }
    }
    execute_for_rows(
        connection,
        "INSERT INTO credentials (user_id, password_hash, must_change) \
         SELECT j.value ->> 'user', j.value ->> 'hash', CAST(j.value ->> 'mustChange' AS INTEGER) \
         FROM {rows} WHERE true \
         ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, \
         must_change = excluded.must_change",
        passwords.into_values().collect(),
    )
    .await?;
    execute_for_rows(
        connection,
        "DELETE FROM credentials WHERE user_id IN (SELECT j.value ->> 'id' FROM {rows})",
        forgotten.clone(),
    )
    .await?;
    signed_out.extend(forgotten);
    execute_for_rows(
        connection,
        "DELETE FROM sessions WHERE user_id IN (SELECT j.value ->> 'id' FROM {rows}) \
         AND token_hash NOT IN (SELECT COALESCE(j.value ->> 'keep', '') FROM {rows})",
        signed_out,
    )
    .await?;
    execute_for_rows(
        connection,
        "UPDATE sessions SET must_change_password = 0 \
         WHERE user_id IN (SELECT j.value ->> 'id' FROM {rows})",
        resets_void.clone(),
    )
    .await?;
    execute_for_rows(
        connection,
        "DELETE FROM password_resets WHERE user_id IN (SELECT j.value ->> 'id' FROM {rows})",
        resets_void.clone(),
    )
    .await?;
    execute_for_rows(
        connection,
        "DELETE FROM password_reset_outbox WHERE user_id IN (SELECT j.value ->> 'id' FROM {rows})",
        resets_void,
    )
    .await?;
    // Only a user's newest request is mailed.
    let mut newest: HashMap<String, Value> = HashMap::new();
    for mail in reset_mail {
        newest.insert(mail["id"].as_str().unwrap_or_default().to_owned(), mail);
    }
    execute_for_rows(
        connection,
        "INSERT INTO password_reset_outbox (position, user_id, expires_at) \
         SELECT CAST(j.value ->> 'position' AS BIGINT), j.value ->> 'id', \
         CAST(j.value ->> 'expiresAt' AS BIGINT) FROM {rows}",
        newest.into_values().collect(),
    )
    .await
}

/// A session just opened.
pub struct OpenedSession {
    /// Its token (shown once, in the login response).
    pub token: String,
    /// Whether it may only change the password (a generated one).
    pub must_change_password: bool,
}

impl std::fmt::Debug for OpenedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedSession")
            .field("must_change_password", &self.must_change_password)
            .finish_non_exhaustive()
    }
}

/// Opens a session for `user_id`.
pub async fn open_session(
    read_models: &ReadModels,
    user_id: &str,
    ttl: Duration,
) -> anyhow::Result<OpenedSession> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|error| anyhow::anyhow!("no randomness for a session token: {error}"))?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let expires_at = chrono::Utc::now().timestamp_millis() + ttl.as_millis() as i64;
    // One statement: the session takes the password's must-change flag.
    let must_change: i64 = sqlx::query_scalar(
        "INSERT INTO sessions (token_hash, user_id, expires_at, must_change_password) \
         SELECT $1, $2, $3, COALESCE((SELECT must_change FROM credentials WHERE user_id = $2), 0) \
         RETURNING must_change_password",
    )
    .bind(sha256_hex(&token))
    .bind(user_id.to_owned())
    .bind(expires_at)
    .fetch_one(read_models.pool())
    .await?;
    Ok(OpenedSession {
        token,
        must_change_password: must_change != 0,
    })
}

/// Ends the session whose token is `token`; whether there was one.
pub async fn end_session(read_models: &ReadModels, token: &str) -> anyhow::Result<bool> {
    let ended = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(sha256_hex(token))
        .execute(read_models.pool())
        .await?
        .rows_affected();
    Ok(ended > 0)
}

/// Deletes the sessions that expired before `now` (epoch milliseconds);
/// returns how many.
pub async fn purge_expired_sessions(read_models: &ReadModels, now: i64) -> anyhow::Result<u64> {
    let purged = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(read_models.pool())
        .await?
        .rows_affected();
    Ok(purged)
}

/// Purges expired sessions every `interval`, forever; a failure is logged
/// and tried again at the next tick.
pub async fn purge_sessions_forever(read_models: ReadModels, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = chrono::Utc::now().timestamp_millis();
        match purge_expired_sessions(&read_models, now).await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "purged expired sessions"),
            Err(error) => {
                tracing::warn!(error = %error, "cannot purge expired sessions; will try again")
            }
        }
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains("correct horse"));
        assert!(
            verify_password("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify_password("wrong horse".into(), Some(hash))
                .await
                .unwrap()
        );
        assert!(!verify_password("correct horse".into(), None).await.unwrap());
    }

    #[test]
    fn password_length_is_bounded() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough").is_ok());
        assert!(check_password(&"x".repeat(257)).is_err());
    }
}

#[cfg(test)]
mod decoy_tests {
    #[test]
    fn the_decoy_hash_parses_so_unknown_users_cost_a_full_verification() {
        assert!(argon2::password_hash::phc::PasswordHash::new(super::DECOY_HASH).is_ok());
    }
}
