//! `PUT /api/iam/Users/{id}`: full replacement, honouring `If-Match`.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, put, web};
use iam_domain::UserId;
use iam_domain::policy::{UserAction, may_manage_users};
use iam_domain::user::{Replacement, UserCommand};
use iam_projections::read_models::UserRow;
use iam_scim::vca::UserRequest;
use serde_json::{Value, json};

use super::{cause, check_schemas, etag, required, role_names, user_response};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::request_context::RequestContext;
use crate::startup::AppState;
use iam_app::users::visible_user;

/// Replaces a user's changeable elements.
#[utoipa::path(
    tag = "users",
    description = "Replace a user: every element required; `userName`, `companyId`, `id`, `tosAccepted`, `tosAcceptDate` and `meta` cannot change.",
    params(
        ("id" = String, Path, description = "The user's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on"),
    ),
    request_body(content = UserRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced", body = iam_scim::vca::User,
         headers(("ETag" = String, description = "The new version"))),
        (status = 400, description = "Invalid, missing or immutable elements", body = iam_scim::error::ErrorBody),
        (status = 404, description = "No such user", body = iam_scim::error::ErrorBody),
        (status = 412, description = "The user changed since the ETag", body = iam_scim::error::ErrorBody),
    ),
)]
#[put("/api/iam/Users/{id}")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn replace(
    state: web::Data<AppState>,
    caller: Caller,
    context: RequestContext,
    http: HttpRequest,
    path: web::Path<String>,
    body: web::Json<UserRequest>,
) -> Result<HttpResponse, ApiError> {
    let (row, as_owner) = visible_user(&state, &caller, &path).await?;
    if as_owner {
        return Err(ApiError::forbidden(
            "Organization Owners are provider users: change them in the provider organization.",
        ));
    }
    let id = UserId::parse(&row.id).ok_or_else(|| ApiError::not_found("No such user."))?;
    may_manage_users(
        &caller.actor,
        &caller.effective,
        UserAction::Replace,
        Some(id),
    )
    .map_err(|denied| ApiError::forbidden(denied.0))?;
    let if_match = check_if_match(&http, &row)?;
    let request = body.into_inner();
    crate::limits::check(&request)?;
    check_schemas(&request)?;
    check_immutable(&request, &row)?;
    if request.password.is_some() {
        return Err(ApiError::bad_request(
            "A password cannot be changed by PUT.",
        ));
    }
    let replacement = Replacement {
        user_name: required(&request.user_name, "userName")?,
        email: required(&request.email, "email")?,
        given_name: required(&request.given_name, "givenName")?,
        family_name: required(&request.family_name, "familyName")?,
        state: required(&request.state, "state")?,
        roles: role_names(&request)?,
        organization_kind: caller.effective.kind,
        profile: None,
        with_password: false,
        source: iam_domain::Source::Local,
    };
    let command = UserCommand::Replace {
        replacement,
        at: chrono::Utc::now(),
    };
    let written = iam_app::commands::run_user_command(
        &state,
        id,
        command,
        &cause(&caller, &context),
        if_match,
    )
    .await?;
    let row = written
        .row()
        .ok_or_else(|| ApiError::not_found("No such user."))?;
    Ok(user_response(StatusCode::OK, &row))
}

/// 412 unless `If-Match` (when sent) names the user's current ETag; the
/// revision the append must then find (none without `If-Match` or with `*`).
fn check_if_match(http: &HttpRequest, row: &UserRow) -> Result<Option<u64>, ApiError> {
    let Some(if_match) = http.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let current = etag(row);
    let tags = if_match.to_str().unwrap_or_default();
    if tags.split(',').any(|tag| tag.trim() == "*") {
        return Ok(None);
    }
    if tags
        .split(',')
        .any(|tag| tag.trim().trim_start_matches("W/") == current)
    {
        Ok(Some(row.revision as u64))
    } else {
        Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            format!(
                "The user has changed since you read it (its ETag is now {current}); read it again and retry."
            ),
        ))
    }
}

/// 400 when an element that cannot change differs from the stored user.
fn check_immutable(request: &UserRequest, row: &UserRow) -> Result<(), ApiError> {
    let changed = |element: &str| ApiError::bad_request(format!("`{element}` cannot be changed."));
    if request
        .id
        .as_ref()
        .is_some_and(|id| id != &Value::String(row.id.clone()))
    {
        return Err(changed("id"));
    }
    if request
        .company_id
        .as_ref()
        .is_some_and(|c| c != &Value::String(row.organization_id.clone()))
    {
        return Err(changed("companyId"));
    }
    if request
        .tos_accepted
        .as_ref()
        .is_some_and(|t| t != &Value::Bool(false))
    {
        return Err(changed("tosAccepted"));
    }
    if request
        .tos_accept_date
        .as_ref()
        .is_some_and(|t| !t.is_null())
    {
        return Err(changed("tosAcceptDate"));
    }
    let meta = json!({ "created": row.created_at, "modified": row.modified_at });
    if request.meta.as_ref().is_some_and(|m| m != &meta) {
        return Err(changed("meta"));
    }
    Ok(())
}
