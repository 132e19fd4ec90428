//! The token sweep.
//!
//! - Expiry: tokens whose lifetime is over already read as Expired (the read
//!   model derives it); the sweep appends the `TokenExpired` event so that
//!   the log and the read models agree.
//! - Deleted users: deleting a user revokes its tokens in separate appends
//!   after the deletion. Should the service stop in between (or a token be
//!   created while its user is deleted), the sweep revokes what is left,
//!   once the user's own stream confirms the deletion.

use std::time::Duration;

use iam_domain::token::TokenCommand;
use iam_domain::{TokenId, UserId};
use iam_projections::read_models::TokenRef;

use crate::App;
use crate::commands::{Authentication, Cause, load_user, run_token_command};

const BATCH: i64 = 500;

/// Runs the sweep every `interval`, for as long as the service runs.
pub async fn sweep_forever(state: std::sync::Arc<App>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match sweep(&state).await {
            Ok(Swept {
                expired: 0,
                revoked: 0,
            }) => {}
            Ok(Swept { expired, revoked }) => {
                tracing::info!(
                    expired,
                    revoked,
                    "recorded the expiry or revocation of tokens"
                )
            }
            Err(error) => {
                tracing::warn!(error = %error, "the token sweep failed; it will try again")
            }
        }
    }
}

/// What one pass of the sweep recorded.
#[derive(Debug, Default, PartialEq, Eq)]
struct Swept {
    /// Tokens whose expiry it recorded.
    expired: usize,
    /// Tokens of deleted users it revoked.
    revoked: usize,
}

/// Records the expiry of up to one batch of tokens whose lifetime is over,
/// and revokes up to one batch of tokens of deleted users (the next tick
/// takes the rest). A token whose command fails is logged and left for the
/// next tick; the others go on.
async fn sweep(state: &App) -> Result<Swept, crate::AppError> {
    let now = chrono::Utc::now();
    let mut swept = Swept::default();
    let due = state
        .read_models
        .tokens_to_expire(now.timestamp_millis(), BATCH)
        .await?;
    for token in &due {
        swept.expired += record(state, token, TokenCommand::Expire { at: now }).await;
    }
    let orphans = state
        .read_models
        .live_tokens_without_user(now.timestamp_millis(), BATCH)
        .await?;
    for token in &orphans {
        let Some(user) = UserId::parse(&token.user_id) else {
            continue;
        };
        // The users projector may only lag behind the tokens projector:
        // the log says whether the user is really gone.
        let (loaded, _) = load_user(state, user).await?;
        if loaded.is_some_and(|user| user.deleted) {
            swept.revoked += record(state, token, TokenCommand::Revoke { at: now }).await;
        }
    }
    Ok(swept)
}

/// Runs `command` on `token` on behalf of the sweep (the event names the
/// token's organization, so audits find it there); returns how many events
/// it appended.
async fn record(state: &App, token: &TokenRef, command: TokenCommand) -> usize {
    let Some(id) = TokenId::parse(&token.id) else {
        return 0;
    };
    let cause = Cause {
        organization: Some(token.organization_id.clone()),
        authentication: Some(Authentication::Service),
        request_id: Some("token-sweep".into()),
        ..Cause::default()
    };
    match run_token_command(state, id, command, &cause, None).await {
        Ok(events) => events.len(),
        Err(error) => {
            tracing::warn!(token = %token.id, error = %error, "the token sweep could not update a token; it will try again");
            0
        }
    }
}
