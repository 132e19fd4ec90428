//! The role query: `GET /api/iam/Roles` (the effective organization's roles
//! with how many hold each) and `GET /api/iam/Roles/{roleId}/Users`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use iam_domain::Role;
use iam_domain::policy::{UserAction, may_manage_users};
use serde_json::{Value, json};

use crate::caller::Caller;
use crate::error::ApiError;
use crate::negotiation::vca_json;
use crate::routes::paging::PageQuery;
use crate::routes::users::view;
use crate::startup::AppState;

fn read_allowed(caller: &Caller) -> Result<(), ApiError> {
    may_manage_users(&caller.actor, &caller.effective, UserAction::Read, None)
        .map_err(|denied| ApiError::forbidden(denied.0))
}

/// The effective organization's roles, each with its number of holders.
#[utoipa::path(
    tag = "roles",
    responses(
        (status = 200, description = "`{\"roles\": [{\"id\", \"name\", \"description\", \"members\", \"rights\"}]}`: `rights` names what the role grants in this service", body = inline(Value)),
        (status = 403, description = "Not allowed to read this organization's users", body = iam_scim::error::ErrorBody),
    ),
)]
#[get("/api/iam/Roles")]
pub(crate) async fn list(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    read_allowed(&caller)?;
    let counts = state
        .read_models
        .role_counts(&caller.effective.id.to_string())
        .await?;
    let roles: Vec<Value> = Role::held_in(caller.effective.kind)
        .map(|role| {
            let entry = role.entry();
            let members = counts
                .iter()
                .find(|(name, _)| *name == format!("{role:?}"))
                .map_or(0, |(_, count)| *count);
            json!({
                "id": entry.id,
                "name": entry.name,
                "description": entry.description,
                "members": members,
                "rights": iam_domain::policy::rights_of(role),
            })
        })
        .collect();
    Ok(vca_json(StatusCode::OK, &json!({ "roles": roles })))
}

/// The users holding a role (by id, e.g. `2`, or `urn:vcloud:role:…`) in
/// the effective organization.
#[utoipa::path(
    tag = "roles",
    params(
        ("role_id" = String, Path, description = "The role's id (`2`) or urn"),
        ("page" = Option<i64>, Query, description = "From 1"),
        ("pageSize" = Option<i64>, Query, description = "Default 25, at most 128"),
    ),
    responses(
        (status = 200, description = "`{\"users\": [...], \"resultTotal\", \"pageCount\", \"page\", \"pageSize\"}`", body = inline(Value)),
        (status = 400, description = "page 0 or pageSize over 128", body = iam_scim::error::ErrorBody),
        (status = 404, description = "No such role in this organization", body = iam_scim::error::ErrorBody),
    ),
)]
#[get("/api/iam/Roles/{role_id}/Users")]
pub(crate) async fn holders(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    read_allowed(&caller)?;
    let role = Role::from_id(&path)
        .filter(|role| Role::held_in(caller.effective.kind).any(|r| r == *role))
        .ok_or_else(|| {
            ApiError::not_found(format!("There is no role `{path}` in this organization."))
        })?;
    let page = query.page()?;
    let organization = caller.effective.id.to_string();
    let key = format!("{role:?}");
    let total = state
        .read_models
        .role_counts(&organization)
        .await?
        .into_iter()
        .find_map(|(held, members)| (held == key).then_some(members))
        .unwrap_or(0);
    let rows = state
        .read_models
        .role_holders(&organization, &key, page.offset(), page.size)
        .await?;
    let users: Vec<_> = rows
        .iter()
        .map(|row| view(row, role == Role::OrganizationOwner))
        .collect();
    Ok(vca_json(
        StatusCode::OK,
        &json!({
            "users": users,
            "resultTotal": total,
            "pageCount": page.count(total),
            "page": page.number,
            "pageSize": page.size,
        }),
    ))
}
