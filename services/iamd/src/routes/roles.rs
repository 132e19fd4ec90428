//! `GET /cloudapi/1.0.0/roles`: the vCloud Director page of roles of the
//! effective organization.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use iam_domain::{OrgKind, Role, RoleScope};
use serde::Deserialize;
use serde_json::json;

use crate::caller::Caller;
use crate::error::ApiError;

const DEFAULT_PAGE_SIZE: u64 = 25;
const MAX_PAGE_SIZE: u64 = 128;

#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    page: Option<u64>,
    #[serde(rename = "pageSize")]
    page_size: Option<u64>,
}

/// Provider roles without tenant context; the tenant's roles with it.
#[utoipa::path(
    tag = "roles",
    description = "The roles of the effective organization, as a vCloud Director page.",
    params(
        ("page" = Option<u64>, Query, description = "Page, from 1"),
        ("pageSize" = Option<u64>, Query, description = "Default 25, at most 128"),
        ("X-VMware-VCloud-Tenant-Context" = Option<String>, Header, description = "A tenant organization to act in (provider users), or the caller's own"),
    ),
    responses(
        (status = 200, description = "A page of roles", body = inline(serde_json::Value)),
        (status = 400, description = "page 0 or pageSize over 128", body = iam_scim::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/cloudapi/1.0.0/roles")]
pub(crate) async fn list(
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page.unwrap_or(1);
    let page_size = query.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if page < 1 {
        return Err(ApiError::bad_request("`page` counts from 1."));
    }
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(ApiError::bad_request(format!(
            "`pageSize` must be between 1 and {MAX_PAGE_SIZE}; ask for the next page instead."
        )));
    }
    let roles: Vec<Role> = Role::all()
        .filter(|role| match caller.effective.kind {
            OrgKind::Provider => role.entry().scope == RoleScope::Provider,
            OrgKind::Tenant => role.entry().scope != RoleScope::Provider,
        })
        .collect();
    let total = roles.len() as u64;
    let values: Vec<_> = roles
        .iter()
        .skip(((page - 1) * page_size) as usize)
        .take(page_size as usize)
        .map(|role| {
            let entry = role.entry();
            json!({
                "name": entry.name,
                "id": format!("urn:vcloud:role:{}", entry.urn_uuid),
                "description": entry.description,
                "bundleKey": entry.bundle_key,
                "readOnly": true,
            })
        })
        .collect();
    Ok(HttpResponse::build(StatusCode::OK).json(json!({
        "resultTotal": total,
        "pageCount": total.div_ceil(page_size),
        "page": page,
        "pageSize": page_size,
        "associations": null,
        "values": values,
    })))
}
