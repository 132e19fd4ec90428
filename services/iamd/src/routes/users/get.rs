//! `GET /api/iam/Users/{id}`, also as it was at a past moment (`?asOf=`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use iam_domain::UserId;
use iam_domain::policy::{UserAction, may_audit, may_manage_users};
use iam_eventstore::{Direction, RecordedEvent, StreamStart};
use iam_projections::read_models::UserRow;
use serde::Deserialize;

use super::{user_response, view};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::negotiation::vca_json;
use crate::startup::AppState;
use iam_app::users::visible_user;

#[derive(Debug, Deserialize)]
pub(crate) struct GetQuery {
    #[serde(rename = "asOf")]
    as_of: Option<String>,
}

/// One user of the effective organization.
#[utoipa::path(
    tag = "users",
    params(
        ("id" = String, Path, description = "The user's id"),
        ("asOf" = Option<String>, Query, description = "An RFC 3339 time: the user as it was then"),
    ),
    responses(
        (status = 200, description = "The user", body = iam_scim::vca::User,
         headers(("ETag" = String, description = "The user's version"))),
        (status = 404, description = "No such user in the effective organization", body = iam_scim::error::ErrorBody),
    ),
)]
#[get("/api/iam/Users/{id}")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<GetQuery>,
) -> Result<HttpResponse, ApiError> {
    if let Some(as_of) = &query.as_of {
        let moment = chrono::DateTime::parse_from_rfc3339(as_of)
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "`asOf` must be an RFC 3339 time, e.g. 2026-11-23T08:00:00Z; got `{as_of}`."
                ))
            })?
            .with_timezone(&chrono::Utc);
        return user_as_of(&state, &caller, &path, moment).await;
    }
    let (row, as_owner) = visible_user(&state, &caller, &path).await?;
    let target = UserId::parse(&row.id);
    may_manage_users(&caller.actor, &caller.effective, UserAction::Read, target)
        .map_err(|denied| ApiError::forbidden(denied.0))?;
    if as_owner {
        return Ok(vca_json(StatusCode::OK, &view(&row, true)));
    }
    Ok(user_response(StatusCode::OK, &row))
}

/// The user as its events up to `moment` (their commit times) left it. A
/// user that exists now is read by whoever may read it; a deleted one only
/// by those who may audit the organization.
async fn user_as_of(
    state: &AppState,
    caller: &Caller,
    id: &str,
    moment: chrono::DateTime<chrono::Utc>,
) -> Result<HttpResponse, ApiError> {
    let past = match visible_user(state, caller, id).await {
        Ok((row, as_owner)) => {
            let target = UserId::parse(&row.id);
            may_manage_users(&caller.actor, &caller.effective, UserAction::Read, target)
                .map_err(|denied| ApiError::forbidden(denied.0))?;
            (past_user(state, caller, id, Some(moment)).await?, as_owner)
        }
        Err(gone) => {
            if may_audit(&caller.actor, &caller.effective).is_err() {
                return Err(gone.into());
            }
            (past_user(state, caller, id, Some(moment)).await?, false)
        }
    };
    let (user, as_owner) = past;
    let user = user.ok_or_else(|| {
        ApiError::not_found(format!(
            "User `{id}` did not exist at {}.",
            moment.to_rfc3339()
        ))
    })?;
    Ok(vca_json(StatusCode::OK, &view(&user, as_owner)))
}

/// The user `id` of the effective organization as its events up to
/// `moment` (all of them when `None`) leave it: `None` when it did not
/// exist then (or was deleted by then). 404 when the log holds no such user
/// in the effective organization.
async fn past_user(
    state: &AppState,
    caller: &Caller,
    id: &str,
    moment: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Option<UserRow>, ApiError> {
    let events = user_events(state, caller, id).await?;
    let mut user = None;
    let mut revision = 0;
    for recorded in events
        .iter()
        .take_while(|event| moment.is_none_or(|moment| event.recorded_at <= moment))
    {
        let event = serde_json::from_value(
            serde_json::json!({ "type": recorded.event_type, "data": recorded.data }),
        )
        .map_err(ApiError::internal)?;
        user = iam_domain::user::apply(user, &event);
        revision = recorded.revision;
    }
    Ok(user
        .filter(|user| !user.deleted)
        .and_then(|user| iam_app::users::row_of(&user, revision)))
}

/// Every event of user `id`, oldest first; 404 unless the log holds such a
/// user whose home is the effective organization.
pub(crate) async fn user_events(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Vec<RecordedEvent>, ApiError> {
    let not_here = || ApiError::not_found(format!("No user `{id}` was ever in this organization."));
    let user = UserId::parse(id).ok_or_else(not_here)?;
    let events = state
        .store
        .read_stream(
            &user.stream(),
            Direction::Forwards,
            StreamStart::Edge,
            usize::MAX,
        )
        .await?;
    let home = events
        .first()
        .and_then(|created| created.data["organization"].as_str());
    if home != Some(caller.effective.id.to_string().as_str()) {
        return Err(not_here());
    }
    Ok(events)
}
