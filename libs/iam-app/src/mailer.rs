//! The password-reset mailer: sends what the reset requests put in the
//! outbox (`password_reset_outbox`, written in the request's append
//! transaction), through the SMTP relay of `IAM_SMTP_URL`.
//!
//! A request never waits for the relay and never loses its mail: the row
//! stays until the relay takes the message, retried with a growing pause.
//! The code is made when the mail is sent: 256 random bits, kept only as a
//! SHA-256 (replacing the user's older one) just before the mail leaves, so
//! the code in the newest mail is the user's only valid one. A mailer
//! claims a row for a while before it sends it (PostgreSQL: `FOR UPDATE
//! SKIP LOCKED`), so replicas do not mail the same request twice, and a
//! mailer that dies midway leaves it to the next.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use iam_eventstore::Backend;
use iam_projections::ReadModels;
use iam_projections::read_models::UserRow;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::{AnyPool, Row};
use tokio::sync::Notify;

use crate::bootstrap::Secret;
use crate::credentials::sha256_hex;

/// The longest pause between two attempts to send one mail.
const MAX_PAUSE: Duration = Duration::from_secs(60);
/// How often the outbox is looked at without a wake-up (another replica's
/// requests, and retries).
const POLL: Duration = Duration::from_secs(1);
/// How long one exchange with the relay may take.
const RELAY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed row is left to its mailer before it is due again.
const LEASE: Duration = Duration::from_secs(60);

/// Where and how reset mail goes.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `IAM_SMTP_URL` (it may hold the relay's password).
    pub smtp_url: Secret,
    /// `IAM_MAIL_FROM`.
    pub from: String,
    /// `IAM_PUBLIC_URL`: the base of the link in the mail.
    pub public_url: String,
}

/// Sends password-reset mail from the outbox.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: String,
    wake: Notify,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// A reset request waiting in the outbox.
struct Pending {
    position: i64,
    user_id: String,
    expires_at: i64,
    attempts: i64,
}

impl Mailer {
    /// A mailer for `settings`; errors name the variable, never the URL.
    pub fn new(settings: &MailSettings) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.smtp_url.expose())
            .map_err(|_| {
                anyhow::anyhow!(
                    "IAM_SMTP_URL is not an SMTP URL: use smtp://host:port, \
                         smtp://host:port?tls=required or smtps://user:password@host"
                )
            })?
            .timeout(Some(RELAY_TIMEOUT))
            .build();
        let from = settings
            .from
            .parse()
            .with_context(|| format!("IAM_MAIL_FROM `{}` is not a mail address", settings.from))?;
        Ok(Self {
            transport,
            from,
            public_url: settings.public_url.trim_end_matches('/').to_owned(),
            wake: Notify::new(),
        })
    }

    /// Looks at the outbox now (a reset was just requested).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Sends the outbox's mail, forever.
    pub async fn run_forever(self: Arc<Self>, read_models: ReadModels) {
        loop {
            match self.send_next(&read_models).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "cannot read the password-reset outbox; will try again")
                }
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Sends the oldest due mail; whether there was one.
    async fn send_next(&self, read_models: &ReadModels) -> anyhow::Result<bool> {
        let now = chrono::Utc::now().timestamp_millis();
        let Some(pending) = claim(read_models, now).await? else {
            return Ok(false);
        };
        let pool = read_models.pool();
        if pending.expires_at <= now {
            tracing::warn!(user = %pending.user_id, "dropped a password-reset mail that expired unsent");
            remove(pool, pending.position).await?;
            return Ok(true);
        }
        let Some(user) = read_models.user(&pending.user_id).await? else {
            remove(pool, pending.position).await?;
            return Ok(true);
        };
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|error| anyhow::anyhow!("no randomness for a reset code: {error}"))?;
        let code = URL_SAFE_NO_PAD.encode(bytes);
        // The code is valid before the mail leaves (its reader may be
        // quick), unless a newer request took the row meanwhile.
        let kept = sqlx::query(
            "INSERT INTO password_resets (user_id, code_hash, expires_at) \
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM password_reset_outbox WHERE position = $4) \
             ON CONFLICT (user_id) DO UPDATE SET code_hash = excluded.code_hash, \
             expires_at = excluded.expires_at",
        )
        .bind(&pending.user_id)
        .bind(sha256_hex(&code))
        .bind(pending.expires_at)
        .bind(pending.position)
        .execute(pool)
        .await?
        .rows_affected();
        if kept == 0 {
            return Ok(true);
        }
        match self.send(&user, &code).await {
            Ok(()) => {
                tracing::info!(user = %pending.user_id, "sent a password-reset mail");
                remove(pool, pending.position).await?;
            }
            Err(why) => {
                let attempts = pending.attempts + 1;
                let pause = Duration::from_secs(1 << attempts.clamp(0, 6) as u32).min(MAX_PAUSE);
                tracing::warn!(user = %pending.user_id, attempts, retry_in = ?pause, error = %why, "cannot send a password-reset mail; will retry");
                sqlx::query(
                    "UPDATE password_reset_outbox SET attempts = $1, next_attempt_at = $2 \
                     WHERE position = $3",
                )
                .bind(attempts)
                .bind(now + pause.as_millis() as i64)
                .bind(pending.position)
                .execute(pool)
                .await?;
            }
        }
        Ok(true)
    }

    /// Mails `code` to `user`.
    async fn send(&self, user: &UserRow, code: &str) -> Result<(), String> {
        let to: Mailbox = user
            .email
            .parse()
            .map_err(|_| "the user's address is not one mail can go to".to_owned())?;
        let link = format!("{}/console/reset.html#code={code}", self.public_url);
        let body = format!(
            "Hello {} {},\n\n\
             a password reset was requested for your account {}.\n\
             Choose a new password here (the link works once, for 24 hours):\n\n\
             {link}\n\n\
             If you did not expect this, tell your administrator.\n",
            user.given_name, user.family_name, user.user_name
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject("Reset your password")
            .body(body)
            .map_err(|error| format!("cannot build the mail: {error}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|error| format!("the SMTP relay refused the mail: {error}"))
    }
}

/// Takes the oldest due row of the outbox for [`LEASE`]: moves its next
/// attempt past the lease, so that no other replica (nor this one) sends it
/// meanwhile, and a mailer that dies while sending leaves it to be tried
/// again.
async fn claim(read_models: &ReadModels, now: i64) -> anyhow::Result<Option<Pending>> {
    let sql = match read_models.backend() {
        Backend::Postgres => {
            "UPDATE password_reset_outbox SET next_attempt_at = $2 WHERE position = \
             (SELECT position FROM password_reset_outbox WHERE next_attempt_at <= $1 \
              ORDER BY position LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING position, user_id, expires_at, CAST(attempts AS BIGINT) AS attempts"
        }
        Backend::Sqlite => {
            "UPDATE password_reset_outbox SET next_attempt_at = $2 WHERE position = \
             (SELECT position FROM password_reset_outbox WHERE next_attempt_at <= $1 \
              ORDER BY position LIMIT 1) \
             RETURNING position, user_id, expires_at, attempts"
        }
    };
    let row = sqlx::query(sql)
        .bind(now)
        .bind(now + LEASE.as_millis() as i64)
        .fetch_optional(read_models.pool())
        .await?;
    row.map(|row| {
        Ok(Pending {
            position: row.try_get("position")?,
            user_id: row.try_get("user_id")?,
            expires_at: row.try_get("expires_at")?,
            attempts: row.try_get("attempts")?,
        })
    })
    .transpose()
}

/// Takes a row out of the outbox; whether it was still there.
async fn remove(pool: &AnyPool, position: i64) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM password_reset_outbox WHERE position = $1")
        .bind(position)
        .execute(pool)
        .await?;
    Ok(())
}
