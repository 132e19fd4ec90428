//! `DELETE /api/iam/Users/{id}`: the user leaves the lists, its sessions end,
//! its tokens are revoked and its password is forgotten.

use actix_web::{HttpResponse, delete, web};
use iam_domain::UserId;
use iam_domain::policy::{UserAction, may_manage_users};

use super::cause;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::request_context::RequestContext;
use crate::startup::AppState;
use iam_app::users::visible_user;

/// Deletes a user of the effective organization.
#[utoipa::path(
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted: gone from lists, sessions ended"),
        (status = 404, description = "No such user", body = iam_scim::error::ErrorBody),
    ),
)]
#[delete("/api/iam/Users/{id}")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    context: RequestContext,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (row, as_owner) = visible_user(&state, &caller, &path).await?;
    if as_owner {
        return Err(ApiError::forbidden(
            "Organization Owners are provider users: delete them in the provider organization.",
        ));
    }
    let id = UserId::parse(&row.id).ok_or_else(|| ApiError::not_found("No such user."))?;
    may_manage_users(
        &caller.actor,
        &caller.effective,
        UserAction::Delete,
        Some(id),
    )
    .map_err(|denied| ApiError::forbidden(denied.0))?;
    if id == caller.actor.user {
        return Err(ApiError::forbidden(
            "You cannot delete yourself; ask another administrator.",
        ));
    }
    iam_app::commands::delete_user(
        &state,
        id,
        iam_domain::Source::Local,
        &cause(&caller, &context),
        None,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
