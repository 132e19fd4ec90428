//! Discovery (RFC 7644 §4): `ServiceProviderConfig`, `ResourceTypes` and
//! `Schemas`, generated from the schema table the service answers with.
//! They describe the service, not a tenant, so they need no credentials.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use iam_scim::scim2::{list_response, schema, service_provider_config};
use serde_json::Value;

use super::{ScimApiError, base_url, scim_json};

/// `GET /scim/v2/ServiceProviderConfig`.
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
#[get("/scim/v2/ResourceTypes")]
pub(crate) async fn resource_types(http: HttpRequest) -> HttpResponse {
    listed(schema::resource_types(&base_url(&http)))
}

/// `GET /scim/v2/ResourceTypes/{id}`.
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
#[get("/scim/v2/Schemas")]
pub(crate) async fn schemas(http: HttpRequest) -> HttpResponse {
    listed(schema::schemas(&base_url(&http)))
}

/// `GET /scim/v2/Schemas/{id}`.
#[get("/scim/v2/Schemas/{id}")]
pub(crate) async fn schema_by_id(
    http: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ScimApiError> {
    one(schema::schemas(&base_url(&http)), &path, "schema")
}
