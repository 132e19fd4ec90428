//! API tokens: `POST/GET /api/iam/Users/{id}/tokens`, `…/{tokenId}/download`,
//! `…/{tokenId}/revoke`, and the token query `GET /api/iam/tokens`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use iam_domain::policy::{
    TokenAction, TokenOwner, UserAction, may_manage_tokens, may_manage_users,
};
use iam_domain::token::TokenCommand;
use iam_domain::{OrgId, TokenId, UserId, token_secret};
use iam_projections::read_models::{TokenRow, UserRow};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::caller::Caller;
use crate::error::ApiError;
use crate::negotiation::vca_json;
use crate::request_context::RequestContext;
use crate::routes::paging::PageQuery;
use crate::routes::users::cause;
use crate::startup::AppState;
use iam_app::commands::run_token_command;
use iam_app::credentials::sha256_hex;
use iam_app::idempotency::Creation;
use iam_app::users::visible_user;

/// A token as the API shows it: never its secret.
fn view(token: &TokenRow) -> Value {
    json!({
        "id": token.id,
        "userId": token.user_id,
        "organizationId": token.organization_id,
        "name": token.name,
        "description": token.description,
        "status": token.status,
        "created": token.created_at,
        "expires": token.expires_at,
    })
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn owner_of(row: &UserRow, as_owner: bool) -> Result<TokenOwner, ApiError> {
    Ok(TokenOwner {
        user: UserId::parse(&row.id).ok_or_else(|| ApiError::not_found("No such user."))?,
        home: OrgId::parse(&row.organization_id)
            .ok_or_else(|| ApiError::not_found("No such user."))?,
        roles: row.roles.clone(),
        owner_of_effective: as_owner,
    })
}

/// The token `token_id` of user `user` in the effective organization, or 404.
async fn token_of(
    state: &AppState,
    caller: &Caller,
    user: &UserRow,
    token_id: &str,
) -> Result<TokenRow, ApiError> {
    let not_found = || {
        ApiError::not_found(format!(
            "User `{}` has no token `{token_id}` here.",
            user.id
        ))
    };
    let id = TokenId::parse(token_id).ok_or_else(not_found)?;
    let token = state
        .read_models
        .token(&id.to_string(), now_ms())
        .await?
        .ok_or_else(not_found)?;
    if token.user_id != user.id {
        return Err(not_found());
    }
    let scope = OrgId::parse(&token.organization_id).ok_or_else(not_found)?;
    // Another organization's token is answered as one that does not exist.
    if scope != caller.effective.id {
        return Err(not_found());
    }
    Ok(token)
}

/// The token `token_id` of user `user_id` in the effective organization,
/// once the policy allows the caller `action` on it.
async fn authorized_token(
    state: &AppState,
    caller: &Caller,
    user_id: &str,
    token_id: &str,
    action: TokenAction,
) -> Result<(TokenRow, TokenId), ApiError> {
    let (row, as_owner) = visible_user(state, caller, user_id).await?;
    let token = token_of(state, caller, &row, token_id).await?;
    let owner = owner_of(&row, as_owner)?;
    may_manage_tokens(&caller.actor, &caller.effective, &owner, action)
        .map_err(|denied| ApiError::forbidden(denied.0))?;
    let id = TokenId::parse(&token.id).ok_or_else(|| ApiError::not_found("No such token."))?;
    Ok((token, id))
}

#[derive(Debug, Deserialize, utoipa::ToSchema, validator::Validate)]
pub(crate) struct NewToken {
    #[schema(max_length = 128)]
    #[validate(length(max = 128))]
    name: Option<String>,
    #[schema(max_length = 1024)]
    #[validate(length(max = 1024))]
    description: Option<String>,
    #[serde(rename = "lifetimeDays")]
    #[schema(minimum = 1, maximum = 365)]
    #[validate(range(min = 1, max = 365))]
    lifetime_days: Option<i64>,
}

/// Creates a token for the user, scoped to the effective organization: Pending, no secret.
#[utoipa::path(
    tag = "tokens",
    params(("id" = String, Path, description = "The owner's id"), ("Idempotency-Key" = Option<String>, Header, description = "A client's name for this create: a retry with the same key and body answers the original result (also after a restart or on another replica); the same key with another body is 422")),
    request_body(content = NewToken, content_type = "application/json"),
    responses(
        (status = 201, description = "Created, Pending", body = inline(Value)),
        (status = 400, description = "Missing name, or a lifetime outside 1 to 365 days", body = iam_scim::error::ErrorBody),
        (status = 403, description = "Not allowed, or token authentication not enabled for the owner's role", body = iam_scim::error::ErrorBody),
        (status = 422, description = "The Idempotency-Key was used for a different request", body = iam_scim::error::ErrorBody),
    ),
)]
#[post("/api/iam/Users/{id}/tokens")]
pub(crate) async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    context: RequestContext,
    http: HttpRequest,
    path: web::Path<String>,
    body: web::Json<NewToken>,
) -> Result<HttpResponse, ApiError> {
    crate::limits::check(&*body)?;
    require_password_session(&caller)?;
    let (row, as_owner) = visible_user(&state, &caller, &path).await?;
    let owner = owner_of(&row, as_owner)?;
    may_manage_tokens(
        &caller.actor,
        &caller.effective,
        &owner,
        TokenAction::Create,
    )
    .map_err(|denied| ApiError::forbidden(denied.0))?;
    let name = body
        .name
        .clone()
        .ok_or_else(|| ApiError::bad_request("The element `name` is required."))?;
    let lifetime_days = body.lifetime_days.ok_or_else(|| {
        ApiError::bad_request("The element `lifetimeDays` (1 to 365) is required.")
    })?;
    let creation = Creation::of(
        crate::routes::idempotency_key(&http),
        &caller,
        "token",
        &json!({ "user": owner.user, "name": name, "description": body.description,
                 "lifetimeDays": lifetime_days }),
    )?;
    let id = TokenId::new(creation.id);
    if !creation.already_made(&state, &id.stream()).await? {
        let command = TokenCommand::Create {
            id,
            user: owner.user,
            organization: caller.effective.id,
            name,
            description: body.description.clone().unwrap_or_default(),
            lifetime_days,
            day: chrono::Duration::from_std(state.token_day).map_err(ApiError::internal)?,
            at: chrono::Utc::now(),
        };
        let created = run_token_command(
            &state,
            id,
            command,
            &cause(&caller, &context),
            Some(&creation),
        )
        .await;
        if let Err(error) = created
            && !creation.explains(&state, &id.stream(), &error).await?
        {
            return Err(error.into());
        }
    }
    let token = state
        .read_models
        .token(&id.to_string(), now_ms())
        .await?
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("token {id} is not in the read model"))
        })?;
    Ok(vca_json(StatusCode::CREATED, &view(&token)))
}

/// The user's tokens in the effective organization (no secrets).
#[utoipa::path(
    tag = "tokens",
    params(("id" = String, Path, description = "The owner's id")),
    responses((status = 200, description = "`{\"tokens\": [...]}`", body = inline(Value))),
)]
#[get("/api/iam/Users/{id}/tokens")]
pub(crate) async fn list_of_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (row, _) = visible_user(&state, &caller, &path).await?;
    may_manage_users(
        &caller.actor,
        &caller.effective,
        UserAction::Read,
        UserId::parse(&row.id),
    )
    .map_err(|denied| ApiError::forbidden(denied.0))?;
    let tokens = state
        .read_models
        .tokens_in(
            &caller.effective.id.to_string(),
            None,
            Some(&row.id),
            now_ms(),
            0,
            10_000,
        )
        .await?;
    Ok(vca_json(
        StatusCode::OK,
        &json!({ "tokens": tokens.iter().map(view).collect::<Vec<_>>() }),
    ))
}

/// The one download of a token's secret, by its owner: Pending → Enabled.
#[utoipa::path(
    tag = "tokens",
    params(("id" = String, Path, description = "The owner's id"), ("token_id" = String, Path, description = "The token's id")),
    responses(
        (status = 200, description = "`{\"token\": \"iam_…\"}`: shown this once", body = inline(Value)),
        (status = 403, description = "Not the token's owner", body = iam_scim::error::ErrorBody),
        (status = 409, description = "Already downloaded", body = iam_scim::error::ErrorBody),
    ),
)]
#[post("/api/iam/Users/{id}/tokens/{token_id}/download")]
pub(crate) async fn download(
    state: web::Data<AppState>,
    caller: Caller,
    context: RequestContext,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    require_password_session(&caller)?;
    let (user_id, token_id) = path.into_inner();
    let (_, id) =
        authorized_token(&state, &caller, &user_id, &token_id, TokenAction::Download).await?;
    let mut random = [0u8; token_secret::RANDOM_BYTES];
    getrandom::fill(&mut random)
        .map_err(|error| ApiError::internal(anyhow::anyhow!("no randomness: {error}")))?;
    let secret = token_secret::format(&random);
    let command = TokenCommand::Download {
        secret_hash: sha256_hex(&secret),
        at: chrono::Utc::now(),
    };
    run_token_command(&state, id, command, &cause(&caller, &context), None).await?;
    let mut response = vca_json(StatusCode::OK, &json!({ "token": secret }));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Revokes a token (again: nothing changes).
#[utoipa::path(
    tag = "tokens",
    params(("id" = String, Path, description = "The owner's id"), ("token_id" = String, Path, description = "The token's id")),
    responses((status = 200, description = "The token, Revoked", body = inline(Value))),
)]
#[post("/api/iam/Users/{id}/tokens/{token_id}/revoke")]
pub(crate) async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    context: RequestContext,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, token_id) = path.into_inner();
    let (token, id) =
        authorized_token(&state, &caller, &user_id, &token_id, TokenAction::Revoke).await?;
    run_token_command(
        &state,
        id,
        TokenCommand::Revoke {
            at: chrono::Utc::now(),
        },
        &cause(&caller, &context),
        None,
    )
    .await?;
    let token = state
        .read_models
        .token(&token.id, now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found("No such token."))?;
    Ok(vca_json(StatusCode::OK, &view(&token)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenQuery {
    status: Option<String>,
    #[serde(rename = "userId")]
    user_id: Option<String>,
    page: Option<i64>,
    #[serde(rename = "pageSize")]
    page_size: Option<i64>,
}

/// 403 for a caller that authenticated with an API token: creating or
/// downloading a token needs a password session, or a leaked short-lived
/// token would mint itself long-lived ones. Revoking stays open to tokens.
fn require_password_session(caller: &Caller) -> Result<(), ApiError> {
    if caller.via_token {
        return Err(ApiError::forbidden(
            "Creating or downloading API tokens needs a password session: log in with \
             POST /api/iam/login. An API token may still revoke its own.",
        ));
    }
    Ok(())
}

/// The tokens of the effective organization: by status and user, paged.
#[utoipa::path(
    tag = "tokens",
    params(
        ("status" = Option<String>, Query, description = "Pending, Enabled, Revoked or Expired"),
        ("userId" = Option<String>, Query, description = "One user's tokens"),
        ("page" = Option<i64>, Query, description = "From 1"),
        ("pageSize" = Option<i64>, Query, description = "Default 25, at most 128"),
    ),
    responses(
        (status = 200, description = "`{\"tokens\": [...], \"resultTotal\", \"pageCount\", \"page\", \"pageSize\"}`", body = inline(Value)),
        (status = 400, description = "Unknown status, a userId that is no id, or paging out of range", body = iam_scim::error::ErrorBody),
        (status = 403, description = "`userId` names another user and the caller may read only its own tokens", body = iam_scim::error::ErrorBody),
    ),
)]
#[get("/api/iam/tokens")]
pub(crate) async fn query(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageQuery {
        page: query.page,
        page_size: query.page_size,
    }
    .page()?;
    if let Some(status) = &query.status
        && !["Pending", "Enabled", "Revoked", "Expired"].contains(&status.as_str())
    {
        return Err(ApiError::bad_request(
            "`status` is one of Pending, Enabled, Revoked, Expired.",
        ));
    }
    let named = match query.user_id.as_deref() {
        None => None,
        Some(id) => Some(
            UserId::parse(id)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "`userId` must be a user's id (a UUID), not `{id}`."
                    ))
                })?
                .to_string(),
        ),
    };
    // Who may read every user's tokens here reads them all; others their own.
    let user = match may_manage_users(&caller.actor, &caller.effective, UserAction::Read, None) {
        Ok(()) => named,
        Err(_) if named.as_ref().is_some_and(|id| *id != caller.user.id) => {
            return Err(ApiError::forbidden(
                "Your role lets you read only your own tokens: leave out `userId` or name yourself.",
            ));
        }
        Err(_) => Some(caller.user.id.clone()),
    };
    let organization = caller.effective.id.to_string();
    let now = now_ms();
    let status = query.status.as_deref();
    let total = state
        .read_models
        .count_tokens_in(&organization, status, user.as_deref(), now)
        .await?;
    let tokens = state
        .read_models
        .tokens_in(
            &organization,
            status,
            user.as_deref(),
            now,
            page.offset(),
            page.size,
        )
        .await?;
    Ok(vca_json(
        StatusCode::OK,
        &json!({
            "tokens": tokens.iter().map(view).collect::<Vec<_>>(),
            "resultTotal": total,
            "pageCount": page.count(total),
            "page": page.number,
            "pageSize": page.size,
        }),
    ))
}
