//! Passwords: a user changes its own, an administrator sets one, or the
//! holder of a mailed code resets it. Every new password ends the user's
//! other sessions and voids its pending reset codes (in the credentials
//! hook, in the append's transaction). The log records that it happened,
//! never a password or a code.

use iam_domain::UserId;
use iam_domain::user::{Source, UserCommand};

use crate::commands::{
    Authentication, Cause, NewPassword, UserWritten, run_user_command,
    run_user_command_with_password,
};
use crate::{App, AppError, credentials};

/// The refusal of a reset code that does not work (the same whatever the
/// reason, so that it tells nothing about other users' codes).
pub const RESET_CODE_INVALID: &str = "This password-reset code is not valid: it was used already, a newer one was sent, or it \
     expired. Ask an administrator for a new one.";

/// The refusal of a reset while no relay is configured.
pub const RESET_NEEDS_RELAY: &str = "Password reset by e-mail is off: set IAM_SMTP_URL to an SMTP relay, or set the \
     password with PUT /api/iam/Users/{id}/password.";

/// Sets user `id`'s password to `new_password` (checked, then hashed).
/// Every session of the user ends but `keep_session` (the SHA-256 of the
/// caller's session token, when the user changes its own password).
pub async fn set_password(
    state: &App,
    id: UserId,
    new_password: String,
    cause: &Cause,
    keep_session: Option<String>,
) -> Result<UserWritten, AppError> {
    credentials::check_password(&new_password).map_err(AppError::bad_request)?;
    let password = NewPassword {
        keep_session,
        ..NewPassword::hashed(credentials::hash_password(new_password).await?)
    };
    let command = UserCommand::SetPassword {
        source: Source::Local,
        at: chrono::Utc::now(),
    };
    run_user_command_with_password(state, id, command, cause, None, Some(password)).await
}

/// Starts a reset by e-mail for user `id`: ends its sessions and puts the
/// mail in the outbox, which the mailer sends.
pub async fn request_reset(
    state: &App,
    id: UserId,
    cause: &Cause,
) -> Result<UserWritten, AppError> {
    let command = UserCommand::RequestPasswordReset {
        source: Source::Local,
        at: chrono::Utc::now(),
    };
    run_user_command(state, id, command, cause, None).await
}

/// Completes a reset: the holder of `code` sets `new_password`. The code
/// works once (its hash is claimed by the append), only while it is the
/// user's newest and for [`iam_domain::user::PASSWORD_RESET_VALIDITY`].
/// `request` says what the request was; the actor is the user itself.
pub async fn complete_reset(
    state: &App,
    code: &str,
    new_password: String,
    request: Cause,
) -> Result<UserWritten, AppError> {
    let code_hash = credentials::sha256_hex(code.trim());
    let now = chrono::Utc::now().timestamp_millis();
    let holder: Option<String> = sqlx::query_scalar(
        "SELECT user_id FROM password_resets WHERE code_hash = $1 AND expires_at > $2",
    )
    .bind(&code_hash)
    .bind(now)
    .fetch_optional(state.read_models.pool())
    .await
    .map_err(AppError::internal)?;
    let invalid = || AppError::forbidden(RESET_CODE_INVALID);
    let row = match holder {
        Some(id) => state.read_models.user(&id).await?.ok_or_else(invalid)?,
        None => return Err(invalid()),
    };
    let id = UserId::parse(&row.id).ok_or_else(invalid)?;
    credentials::check_password(&new_password).map_err(AppError::bad_request)?;
    let password = NewPassword {
        reset_code: Some(code_hash),
        ..NewPassword::hashed(credentials::hash_password(new_password).await?)
    };
    let cause = Cause {
        actor: Some(row.id.clone()),
        actor_user_name: Some(row.user_name.clone()),
        actor_organization: Some(row.organization_id.clone()),
        organization: Some(row.organization_id.clone()),
        authentication: Some(Authentication::ResetCode),
        ..request
    };
    let command = UserCommand::CompletePasswordReset {
        at: chrono::Utc::now(),
    };
    run_user_command_with_password(state, id, command, &cause, None, Some(password)).await
}
