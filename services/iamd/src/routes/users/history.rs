//! `GET /api/iam/Users/{id}/history`: a user's events, oldest first, each
//! with who caused it, from where, and each field before and after. Read
//! from the log itself (the user's stream), so it is complete the moment a
//! write is answered, deleted users included.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use iam_domain::policy::may_audit;
use iam_projections::read_models::fold;
use serde_json::{Map, json};

use super::get::user_events;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::negotiation::vca_json;
use crate::startup::AppState;

/// The user's events, oldest first.
#[utoipa::path(
    tag = "audit",
    params(("id" = String, Path, description = "The user's id (also of a deleted user)")),
    responses(
        (status = 200, description = "`{\"events\": [...]}`: position, revision, time, type, actor, authentication, request, and the fields before and after", body = inline(serde_json::Value)),
        (status = 403, description = "The caller may not read this organization's audit", body = iam_scim::error::ErrorBody),
        (status = 404, description = "No such user was ever in the effective organization", body = iam_scim::error::ErrorBody),
    ),
)]
#[get("/api/iam/Users/{id}/history")]
pub(crate) async fn history(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    may_audit(&caller.actor, &caller.effective).map_err(|denied| ApiError::forbidden(denied.0))?;
    let events = user_events(&state, &caller, &path).await?;
    let mut user = Map::new();
    let mut entries = Vec::with_capacity(events.len());
    for event in &events {
        let (after, changes) = fold(&user, &event.event_type, &event.data);
        user = after;
        let metadata = &event.metadata;
        entries.push(json!({
            "position": event.position,
            "revision": event.revision,
            "time": event.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "type": event.event_type,
            "organization": metadata["organization"],
            "actor": {
                "id": metadata["actor"],
                "userName": metadata["actorUserName"],
                "organization": metadata["actorOrganization"],
            },
            "authentication": metadata["authentication"],
            "requestId": metadata["requestId"],
            "clientRequestId": metadata["clientRequestId"],
            "traceId": metadata["traceId"],
            "sourceAddress": metadata["sourceAddress"],
            "userAgent": metadata["userAgent"],
            "changes": changes,
        }));
    }
    Ok(vca_json(StatusCode::OK, &json!({ "events": entries })))
}
