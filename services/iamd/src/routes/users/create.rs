//! `POST /api/iam/Users`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, post, web};
use iam_domain::UserId;
use iam_domain::policy::{UserAction, may_manage_users};
use iam_domain::user::{NewUser, UserCommand};
use iam_projections::read_models::UserRow;
use iam_scim::vca::UserRequest;
use serde_json::json;

use super::{cause, check_schemas, required, role_names, user_response};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::request_context::RequestContext;
use crate::startup::AppState;
use iam_app::credentials;
use iam_app::idempotency::Creation;

/// Creates a user in the effective organization.
#[utoipa::path(
    tag = "users",
    description = "Create a user in the effective organization. `userName` must equal `email`; roles follow the combination rule.",
    params(("Idempotency-Key" = Option<String>, Header, description = "A client's name for this create: a retry with the same key and body answers the original result (also after a restart or on another replica); the same key with another body is 422")),
    request_body(content = UserRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = iam_scim::vca::User,
         headers(("Location" = String, description = "The user's URL"), ("ETag" = String, description = "The user's version"))),
        (status = 400, description = "Invalid or missing elements", body = iam_scim::error::ErrorBody),
        (status = 403, description = "Not allowed, or no credentials", body = iam_scim::error::ErrorBody),
        (status = 409, description = "The userName is taken", body = iam_scim::error::ErrorBody),
        (status = 422, description = "The Idempotency-Key was used for a different request", body = iam_scim::error::ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = iam_scim::error::ErrorBody),
        (status = 415, description = "Body not JSON", body = iam_scim::error::ErrorBody),
    ),
)]
#[post("/api/iam/Users")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    context: RequestContext,
    http: HttpRequest,
    body: web::Json<UserRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    crate::limits::check(&request)?;
    check_schemas(&request)?;
    let mut new_user = NewUser {
        id: UserId::new(uuid::Uuid::now_v7()),
        organization: caller.effective.id,
        organization_kind: caller.effective.kind,
        state: required(&request.state, "state")?,
        email: required(&request.email, "email")?,
        family_name: required(&request.family_name, "familyName")?,
        given_name: required(&request.given_name, "givenName")?,
        roles: role_names(&request)?,
        user_name: required(&request.user_name, "userName")?,
        with_password: request.password.is_some(),
        profile: Default::default(),
        source: iam_domain::Source::Local,
    };
    may_manage_users(&caller.actor, &caller.effective, UserAction::Create, None)
        .map_err(|denied| ApiError::forbidden(denied.0))?;
    // The password stays out of the fingerprint: the fingerprint is logged.
    let creation = Creation::of(
        crate::routes::idempotency_key(&http),
        &caller,
        "user",
        &json!({ "state": new_user.state, "email": new_user.email, "familyName": new_user.family_name,
                 "givenName": new_user.given_name, "roles": new_user.roles, "userName": new_user.user_name,
                 "withPassword": new_user.with_password }),
    )?;
    new_user.id = UserId::new(creation.id);
    let id = new_user.id;
    let row = match created_before(&state, &creation, id).await? {
        Some(row) => row,
        None => {
            let password_hash = match request.password {
                Some(password) => {
                    credentials::check_password(&password)
                        .map_err(|why| ApiError::bad_request(format!("The {why}.")))?;
                    Some(credentials::hash_password(password).await?)
                }
                None => None,
            };
            let command = UserCommand::Create {
                user: new_user,
                at: chrono::Utc::now(),
            };
            let written = iam_app::commands::create_user(
                &state,
                command,
                &cause(&caller, &context),
                password_hash.map(iam_app::commands::NewPassword::hashed),
                &creation,
            )
            .await;
            match written {
                Ok(written) => written.row().ok_or_else(|| {
                    ApiError::internal(anyhow::anyhow!("creating user {id} decided no user"))
                })?,
                Err(error) if creation.explains(&state, &id.stream(), &error).await? => {
                    created_before(&state, &creation, id).await?.ok_or(error)?
                }
                Err(error) => return Err(error.into()),
            }
        }
    };
    let mut response = user_response(StatusCode::CREATED, &row);
    if let Ok(location) = HeaderValue::from_str(&format!("/api/iam/Users/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The user as its keyed create answered it, when the same request was
/// already made (422 when the key was used for another request).
async fn created_before(
    state: &AppState,
    creation: &Creation,
    id: UserId,
) -> Result<Option<UserRow>, ApiError> {
    if !creation.already_made(state, &id.stream()).await? {
        return Ok(None);
    }
    Ok(iam_app::commands::created_user(state, id).await?.row())
}
