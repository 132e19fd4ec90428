//! `GET /api/org`, `POST /api/orgs`, `POST /api/orgs/{orgId}/members`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use iam_domain::organization::OrgCommand;
use iam_domain::policy::may_manage_organizations;
use iam_domain::{OrgId, OrgKind, UserId};
use serde::Deserialize;
use serde_json::json;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::negotiation::vca_json;
use crate::request_context::RequestContext;
use crate::routes::users::cause;
use crate::startup::AppState;
use iam_app::idempotency::Creation;

/// The organizations the caller can see: its own and, for a provider user,
/// the provider's tenants. An API token sees from its organization only:
/// a token scoped to a tenant lists that tenant alone.
#[utoipa::path(
    tag = "organizations",
    responses((status = 200, description = "`{\"organizations\": [{\"id\", \"name\", \"kind\"}]}`", body = inline(serde_json::Value))),
)]
#[get("/api/org")]
pub(crate) async fn list(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let (from, kind) = if caller.via_token {
        (caller.effective.id, caller.effective.kind)
    } else {
        (caller.actor.home, caller.actor.home_kind)
    };
    let from = from.to_string();
    let rows = if kind == OrgKind::Provider {
        state.read_models.organizations_visible_from(&from).await?
    } else {
        state
            .read_models
            .organization(&from)
            .await?
            .into_iter()
            .collect()
    };
    let organizations: Vec<_> = rows
        .iter()
        .map(|row| json!({ "id": row.id, "name": row.name, "kind": row.kind }))
        .collect();
    Ok(vca_json(
        StatusCode::OK,
        &json!({ "organizations": organizations }),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewTenant {
    name: Option<String>,
    #[serde(rename = "delegatesUserManagement")]
    delegates_user_management: Option<bool>,
}

/// A provider administrator creates a tenant organization.
#[utoipa::path(
    tag = "organizations",
    params(("Idempotency-Key" = Option<String>, Header, description = "A client's name for this create: a retry with the same key and body answers the original result (also after a restart or on another replica); the same key with another body is 422")),
    request_body(content = inline(serde_json::Value), description = "`{\"name\": \"Acme\", \"delegatesUserManagement\": true}`"),
    responses(
        (status = 201, description = "`{\"id\", \"name\", \"kind\", \"providerId\", \"delegatesUserManagement\"}`", body = inline(serde_json::Value)),
        (status = 403, description = "Not a Provider Administrator", body = iam_scim::error::ErrorBody),
        (status = 422, description = "The Idempotency-Key was used for a different request", body = iam_scim::error::ErrorBody),
    ),
)]
#[post("/api/orgs")]
pub(crate) async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    context: RequestContext,
    http: HttpRequest,
    body: web::Json<NewTenant>,
) -> Result<HttpResponse, ApiError> {
    // A tenant is created in its provider: a token must be scoped there.
    caller.require_token_scope(caller.actor.home)?;
    may_manage_organizations(&caller.actor).map_err(|denied| ApiError::forbidden(denied.0))?;
    let name = body
        .name
        .clone()
        .ok_or_else(|| ApiError::bad_request("The element `name` is required."))?;
    let delegates = body.delegates_user_management.unwrap_or(true);
    let creation = Creation::of(
        crate::routes::idempotency_key(&http),
        &caller,
        "organization",
        &json!({ "name": name, "delegatesUserManagement": delegates }),
    )?;
    let id = OrgId::new(creation.id);
    if !creation.already_made(&state, &id.stream()).await? {
        let command = OrgCommand::CreateTenant {
            id,
            name,
            provider: caller.actor.home,
            delegates_user_management: delegates,
            at: chrono::Utc::now(),
        };
        let created = iam_app::commands::run_org_command(
            &state,
            id,
            command,
            &cause(&caller, &context),
            Vec::new(),
            Some(&creation),
        )
        .await;
        if let Err(error) = created
            && !creation.explains(&state, &id.stream(), &error).await?
        {
            return Err(error.into());
        }
    }
    let row = state
        .read_models
        .organization(&id.to_string())
        .await?
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "organization {id} is not in the read model"
            ))
        })?;
    Ok(vca_json(
        StatusCode::CREATED,
        &json!({ "id": row.id, "name": row.name, "kind": row.kind, "providerId": row.provider_id,
                 "delegatesUserManagement": row.delegates }),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewMember {
    #[serde(rename = "userId")]
    user_id: Option<String>,
}

/// A provider administrator adds a provider user to a tenant, where it
/// holds Organization Owner.
#[utoipa::path(
    tag = "organizations",
    params(("org_id" = String, Path, description = "A tenant of the caller's provider")),
    request_body(content = inline(serde_json::Value), description = "`{\"userId\": \"<provider user id>\"}`"),
    responses(
        (status = 201, description = "Added as Organization Owner", body = inline(serde_json::Value)),
        (status = 200, description = "Already a member: nothing changed", body = inline(serde_json::Value)),
        (status = 404, description = "No such tenant", body = iam_scim::error::ErrorBody),
    ),
)]
#[post("/api/orgs/{org_id}/members")]
pub(crate) async fn add_member(
    state: web::Data<AppState>,
    caller: Caller,
    context: RequestContext,
    path: web::Path<String>,
    body: web::Json<NewMember>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || {
        ApiError::not_found(format!(
            "There is no tenant organization `{path}` of your provider."
        ))
    };
    let org_id = OrgId::parse(&path).ok_or_else(not_found)?;
    // Membership changes the tenant: a token must be scoped to it.
    caller.require_token_scope(org_id)?;
    may_manage_organizations(&caller.actor).map_err(|denied| ApiError::forbidden(denied.0))?;
    let tenant = state
        .read_models
        .organization(&org_id.to_string())
        .await?
        .ok_or_else(not_found)?;
    if tenant.provider_id.as_deref() != Some(caller.actor.home.to_string().as_str()) {
        return Err(not_found());
    }
    let user_id = body
        .user_id
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("The element `userId` is required."))?;
    let no_user = || {
        ApiError::bad_request(format!(
            "`{user_id}` is not a user of your provider organization."
        ))
    };
    let user_id = UserId::parse(user_id).ok_or_else(no_user)?;
    let user = state
        .read_models
        .user(&user_id.to_string())
        .await?
        .ok_or_else(no_user)?;
    if user.organization_id != caller.actor.home.to_string() {
        return Err(no_user());
    }
    let role = user.roles.first().copied().ok_or_else(no_user)?;
    let command = OrgCommand::AddMember {
        user: user_id,
        user_organization: caller.actor.home,
        user_role: role,
        at: chrono::Utc::now(),
    };
    let events = iam_app::commands::run_org_command(
        &state,
        org_id,
        command,
        &cause(&caller, &context),
        Vec::new(),
        None,
    )
    .await?;
    let status = if events.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(vca_json(
        status,
        &json!({ "organizationId": org_id, "userId": user_id, "role": "Organization Owner" }),
    ))
}
