//! `GET /api/iam/Users/{id}`, also as it was at a past moment (`?asOf=`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use iam_domain::UserId;
use iam_domain::policy::{UserAction, may_manage_users};
use iam_eventstore::{Direction, StreamStart};
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
    let (row, as_owner) = visible_user(&state, &caller, &path).await?;
    let target = UserId::parse(&row.id);
    may_manage_users(&caller.actor, &caller.effective, UserAction::Read, target)
        .map_err(|denied| ApiError::forbidden(denied.0))?;
    if let Some(as_of) = &query.as_of {
        let moment = chrono::DateTime::parse_from_rfc3339(as_of)
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "`asOf` must be an RFC 3339 time, e.g. 2026-11-23T08:00:00Z; got `{as_of}`."
                ))
            })?
            .with_timezone(&chrono::Utc);
        let past = user_as_of(&state, &row, moment).await?;
        return Ok(vca_json(StatusCode::OK, &view(&past, as_owner)));
    }
    if as_owner {
        return Ok(vca_json(StatusCode::OK, &view(&row, true)));
    }
    Ok(user_response(StatusCode::OK, &row))
}

/// The user as its events up to `moment` (their commit times) leave it.
async fn user_as_of(
    state: &AppState,
    row: &UserRow,
    moment: chrono::DateTime<chrono::Utc>,
) -> Result<UserRow, ApiError> {
    let not_then = || {
        ApiError::not_found(format!(
            "User `{}` did not exist at {}.",
            row.id,
            moment.to_rfc3339()
        ))
    };
    let id = UserId::parse(&row.id).ok_or_else(not_then)?;
    let events = state
        .store
        .read_stream(
            &id.stream(),
            Direction::Forwards,
            StreamStart::Edge,
            usize::MAX,
        )
        .await?;
    let mut user = None;
    let mut revision = 0;
    for recorded in events
        .iter()
        .take_while(|event| event.recorded_at <= moment)
    {
        let event = serde_json::from_value(
            serde_json::json!({ "type": recorded.event_type, "data": recorded.data }),
        )
        .map_err(ApiError::internal)?;
        user = iam_domain::user::apply(user, &event);
        revision = recorded.revision;
    }
    let user = user.filter(|user| !user.deleted).ok_or_else(not_then)?;
    iam_app::users::row_of(&user, revision).ok_or_else(not_then)
}
