//! `GET /cloudapi/1.0.0/roles`: the vCloud Director page of roles of the
//! effective organization.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use iam_domain::Role;
use serde_json::json;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::routes::paging::PageQuery;

/// Provider roles without tenant context; the tenant's roles with it.
#[utoipa::path(
    tag = "roles",
    description = "The roles of the effective organization, as a vCloud Director page.",
    params(
        ("page" = Option<i64>, Query, description = "Page, from 1"),
        ("pageSize" = Option<i64>, Query, description = "Default 25, at most 128"),
    ),
    responses(
        (status = 200, description = "A page of roles", body = inline(serde_json::Value)),
        (status = 400, description = "page 0 or pageSize over 128", body = iam_scim::error::ErrorBody),
    ),
)]
#[get("/cloudapi/1.0.0/roles")]
pub(crate) async fn list(
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let roles: Vec<Role> = Role::held_in(caller.effective.kind).collect();
    let total = i64::try_from(roles.len()).unwrap_or(i64::MAX);
    let values: Vec<_> = roles
        .iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.size).unwrap_or(usize::MAX))
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
        "pageCount": page.count(total),
        "page": page.number,
        "pageSize": page.size,
        "associations": null,
        "values": values,
    })))
}
