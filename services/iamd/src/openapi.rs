//! The OpenAPI description (`/api-docs/openapi.json`) and Swagger UI
//! (`/docs`, assets built into the binary: it works offline).

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{health, login, organizations, role_queries, roles, tokens, users};

/// The service's OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "IAM provisioning service", description = "The vCloud Air identity API (SCIM 1.0 dialect), organizations and roles."),
    paths(
        login::login,
        users::create::create,
        users::list::list,
        users::get::get,
        users::replace::replace,
        users::delete::delete,
        organizations::list,
        organizations::create,
        organizations::add_member,
        roles::list,
        role_queries::list,
        role_queries::holders,
        tokens::create,
        tokens::list_of_user,
        tokens::download,
        tokens::revoke,
        tokens::query,
        health::healthz,
        health::readyz,
        health::metrics,
    ),
    components(schemas(
        iam_scim::vca::User,
        iam_scim::vca::UserList,
        iam_scim::vca::UserRequest,
        iam_scim::error::ErrorBody,
    )),
    modifiers(&SecuritySchemes)
)]
pub(crate) struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}
