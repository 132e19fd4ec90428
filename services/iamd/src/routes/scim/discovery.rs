//! Discovery (RFC 7644 §4): `ServiceProviderConfig`, `ResourceTypes` and
//! `Schemas`, generated from the schema table the service answers with.
//! They describe the service, not a tenant, so they need no credentials.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use iam_scim::scim2::{list_response, schema, service_provider_config};
use serde_json::Value;

use super::{ScimApiError, base_url, scim_json};

/// `GET /scim/v2/ServiceProviderConfig`.
#[utoipa::path(
    tag = "scim",
    description = "What is supported: PATCH, Bulk and its limits, filter and maxResults, sort, ETag, the authentication scheme (no credentials needed).",
    responses((status = 200, description = "The document", body = serde_json::Value, content_type = "application/scim+json")),
)]
#[get("/scim/v2/ServiceProviderConfig")]
pub(crate) async fn config(http: HttpRequest) -> HttpResponse {
    scim_json(StatusCode::OK, &service_provider_config(&base_url(&http)))
}

fn listed(resources: Vec<Value>) -> HttpResponse {
    let total = resources.len() as i64;
    scim_json(StatusCode::OK, &list_response(total, 1, resources))
}

fn one(resources: Vec<Value>, id: &str, what: &str) -> Result<HttpResponse, ScimApiError> {
    resources
        .into_iter()
        .find(|resource| {
            resource["id"]
                .as_str()
                .is_some_and(|r| r.eq_ignore_ascii_case(id))
        })
        .map(|resource| scim_json(StatusCode::OK, &resource))
        .ok_or_else(|| ScimApiError::not_found(format!("There is no {what} `{id}`.")))
}

/// `GET /scim/v2/ResourceTypes`.
#[utoipa::path(
    tag = "scim",
    description = "The resource types: User, Group (no credentials needed).",
    responses((status = 200, description = "The document", body = serde_json::Value, content_type = "application/scim+json")),
)]
#[get("/scim/v2/ResourceTypes")]
pub(crate) async fn all_resource_types(http: HttpRequest) -> HttpResponse {
    listed(schema::resource_types(&base_url(&http)))
}

/// `GET /scim/v2/ResourceTypes/{id}`.
#[utoipa::path(
    tag = "scim",
    description = "One resource type (no credentials needed).",
    params(("id" = String, Path, description = "User or Group")),
    responses((status = 200, description = "The document", body = serde_json::Value, content_type = "application/scim+json")),
)]
#[get("/scim/v2/ResourceTypes/{id}")]
pub(crate) async fn resource_type(
    http: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ScimApiError> {
    one(
        schema::resource_types(&base_url(&http)),
        &path,
        "resource type",
    )
}

/// `GET /scim/v2/Schemas`.
#[utoipa::path(
    tag = "scim",
    description = "Every attribute served, with mutability, returned, uniqueness and caseExact (no credentials needed).",
    responses((status = 200, description = "The document", body = serde_json::Value, content_type = "application/scim+json")),
)]
#[get("/scim/v2/Schemas")]
pub(crate) async fn all_schemas(http: HttpRequest) -> HttpResponse {
    listed(schema::schemas(&base_url(&http)))
}

/// `GET /scim/v2/Schemas/{id}`.
#[utoipa::path(
    tag = "scim",
    description = "One schema (no credentials needed).",
    params(("id" = String, Path, description = "The schema URN")),
    responses((status = 200, description = "The document", body = serde_json::Value, content_type = "application/scim+json")),
)]
#[get("/scim/v2/Schemas/{id}")]
pub(crate) async fn schema_by_id(
    http: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ScimApiError> {
    one(schema::schemas(&base_url(&http)), &path, "schema")
}
