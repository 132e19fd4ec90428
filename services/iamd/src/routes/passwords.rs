//! Passwords, with the requests that VMware's vCloud Air client (pyvcloud's
//! `VCA`) sends: a user changes its own, an administrator sets one or has a
//! reset link mailed, and the holder of that link sets a new one. Each ends
//! the user's other sessions and is audited, without the password.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, put, web};
use iam_app::commands::Authentication;
use iam_app::passwords;
use iam_app::users::visible_user;
use iam_domain::UserId;
use iam_domain::policy::{UserAction, may_manage_users};
use serde::Deserialize;
use utoipa::ToSchema;
use validator::Validate;

use super::users::{cause, request_cause};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::request_context::RequestContext;
use crate::startup::AppState;

/// `PUT /api/iam/Users/password`: the caller's current and new password.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PasswordChange {
    #[schema(max_length = 256)]
    #[validate(length(max = 256))]
    current_password: String,
    #[schema(min_length = 8, max_length = 256)]
    #[validate(length(min = 8, max = 256))]
    new_password: String,
}

/// `PUT /api/iam/Users/{id}/password`: the new password.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PasswordSetting {
    #[schema(min_length = 8, max_length = 256)]
    #[validate(length(min = 8, max = 256))]
    new_password: String,
}

/// `POST /api/iam/password/reset`: the mailed code and the new password.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PasswordReset {
    #[schema(max_length = 256)]
    #[validate(length(max = 256))]
    code: String,
    #[schema(min_length = 8, max_length = 256)]
    #[validate(length(min = 8, max = 256))]
    new_password: String,
}

/// 204, never cached.
fn done() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// The caller changes its own password.
#[utoipa::path(
    tag = "session",
    description = "Change your own password (as pyvcloud's `VCA.change_password` sends it). Your other sessions end; this one stays. A wrong current password counts as a failed login.",
    request_body(content = PasswordChange, content_type = "application/json"),
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "The new password is too short or too long, or the user is managed by the identity provider", body = iam_scim::error::ErrorBody),
        (status = 403, description = "The current password is wrong", body = iam_scim::error::ErrorBody),
        (status = 429, description = "Too many failed attempts for this user or from this address", body = iam_scim::error::ErrorBody),
    ),
)]
#[put("/api/iam/Users/password")]
#[tracing::instrument(skip_all)]
pub(crate) async fn change(
    state: web::Data<AppState>,
    caller: Caller,
    context: RequestContext,
    http: HttpRequest,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    crate::limits::check(&*body)?;
    let PasswordChange {
        current_password,
        new_password,
    } = body.into_inner();
    let user_name = caller.user.user_name.clone();
    let address = context.source_address.as_deref();
    if let Err(refused) = state.login_throttle.check(&user_name, address) {
        return Err(refused.answer("password checks"));
    }
    let hash = iam_app::credentials::password_hash(&state.read_models, &caller.user.id)
        .await
        .map_err(ApiError::internal)?;
    if !iam_app::credentials::verify_password(current_password, hash).await? {
        let delay = state.login_throttle.failed(&user_name, address);
        tokio::time::sleep(delay).await;
        return Err(ApiError::forbidden("The current password is incorrect."));
    }
    state.login_throttle.succeeded(&user_name);
    let id = UserId::parse(&caller.user.id)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the caller is unreadable")))?;
    // The session that asked stays open; an API token has none.
    let keep_session = (!caller.via_token)
        .then(|| bearer_token(&http))
        .flatten()
        .map(iam_app::credentials::sha256_hex);
    passwords::set_password(
        &state,
        id,
        new_password,
        &cause(&caller, &context),
        keep_session,
    )
    .await?;
    Ok(done())
}

/// An administrator sets a user's password.
#[utoipa::path(
    tag = "users",
    description = "Set a user's password, as an administrator who may manage the user. The user's sessions end.",
    params(("id" = String, Path, description = "The user's id")),
    request_body(content = PasswordSetting, content_type = "application/json"),
    responses(
        (status = 204, description = "Set"),
        (status = 400, description = "The new password is too short or too long, or the user is managed by the identity provider", body = iam_scim::error::ErrorBody),
        (status = 403, description = "You may not manage this user", body = iam_scim::error::ErrorBody),
        (status = 404, description = "No such user in this organization", body = iam_scim::error::ErrorBody),
    ),
)]
#[put("/api/iam/Users/{id}/password")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn set(
    state: web::Data<AppState>,
    caller: Caller,
    context: RequestContext,
    http: HttpRequest,
    path: web::Path<String>,
    body: web::Json<PasswordSetting>,
) -> Result<HttpResponse, ApiError> {
    crate::limits::check(&*body)?;
    let id = managed_user(&state, &caller, &path).await?;
    let keep_session = (id == caller.actor.user && !caller.via_token)
        .then(|| bearer_token(&http))
        .flatten()
        .map(iam_app::credentials::sha256_hex);
    passwords::set_password(
        &state,
        id,
        body.into_inner().new_password,
        &cause(&caller, &context),
        keep_session,
    )
    .await?;
    Ok(done())
}

/// An administrator has a reset link mailed to a user.
#[utoipa::path(
    tag = "users",
    description = "Reset a user's password by e-mail: the user's sessions end and a one-time link, valid for 24 hours, is mailed to its address through `IAM_SMTP_URL` (reference document 002). The mail is sent after the answer, and retried until the relay takes it.",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "The reset is recorded; the mail follows"),
        (status = 403, description = "You may not manage this user", body = iam_scim::error::ErrorBody),
        (status = 404, description = "No such user in this organization", body = iam_scim::error::ErrorBody),
        (status = 409, description = "No SMTP relay is configured (`IAM_SMTP_URL`)", body = iam_scim::error::ErrorBody),
    ),
)]
#[put("/api/iam/Users/{id}/password/reset")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn request_reset(
    state: web::Data<AppState>,
    caller: Caller,
    context: RequestContext,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let Some(mailer) = state.mailer.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            passwords::RESET_NEEDS_RELAY,
        ));
    };
    let id = managed_user(&state, &caller, &path).await?;
    passwords::request_reset(&state, id, &cause(&caller, &context)).await?;
    mailer.wake();
    Ok(done())
}

/// The holder of a mailed code sets a new password.
#[utoipa::path(
    tag = "session",
    description = "Complete a password reset with the code from the mailed link; no other credentials. The code works once, for 24 hours, and only the newest one mailed to a user.",
    request_body(content = PasswordReset, content_type = "application/json"),
    responses(
        (status = 204, description = "The password is set; log in with it"),
        (status = 400, description = "The new password is too short or too long", body = iam_scim::error::ErrorBody),
        (status = 403, description = "The code is used, superseded, expired or unknown", body = iam_scim::error::ErrorBody),
    ),
)]
#[post("/api/iam/password/reset")]
#[tracing::instrument(skip_all)]
pub(crate) async fn complete_reset(
    state: web::Data<AppState>,
    context: RequestContext,
    body: web::Json<PasswordReset>,
) -> Result<HttpResponse, ApiError> {
    crate::limits::check(&*body)?;
    let PasswordReset { code, new_password } = body.into_inner();
    passwords::complete_reset(
        &state,
        &code,
        new_password,
        request_cause(&context, Authentication::ResetCode),
    )
    .await?;
    Ok(done())
}

/// User `id` of the effective organization, if the caller may manage it.
async fn managed_user(state: &AppState, caller: &Caller, id: &str) -> Result<UserId, ApiError> {
    let (row, as_owner) = visible_user(state, caller, id).await?;
    if as_owner {
        return Err(ApiError::forbidden(
            "Organization Owners are provider users: manage them in the provider organization.",
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
    Ok(id)
}

/// The session token of an `Authorization: Bearer` header.
fn bearer_token(http: &HttpRequest) -> Option<&str> {
    let value = http.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}
