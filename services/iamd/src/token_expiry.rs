//! The expiry sweep: tokens whose lifetime is over already read as Expired
//! (the read model derives it); this task appends the `TokenExpired` event
//! so that the log and the read models agree.

use std::time::Duration;

use actix_web::web;
use iam_domain::TokenId;
use iam_domain::token::TokenCommand;

use crate::commands::{Cause, run_token_command};
use crate::startup::AppState;

const BATCH: i64 = 500;

/// Runs the sweep every `interval`, for as long as the service runs.
pub(crate) async fn sweep_forever(state: web::Data<AppState>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match sweep(&state).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "recorded the expiry of tokens"),
            Err(error) => {
                tracing::warn!(error = %error, "the token expiry sweep failed; it will try again")
            }
        }
    }
}

/// Records the expiry of up to one batch of tokens whose lifetime is over
/// (the next tick takes the rest); returns how many.
async fn sweep(state: &AppState) -> Result<usize, crate::error::ApiError> {
    let cause = Cause {
        request_id: Some("token-expiry-sweep".into()),
        ..Cause::default()
    };
    let now = chrono::Utc::now();
    let due = state
        .read_models
        .tokens_to_expire(now.timestamp_millis(), BATCH)
        .await?;
    let mut expired = 0;
    for id in due.iter().filter_map(|id| TokenId::parse(id)) {
        expired += run_token_command(state, id, TokenCommand::Expire { at: now }, &cause)
            .await?
            .len();
    }
    Ok(expired)
}
