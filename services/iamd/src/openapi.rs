//! The OpenAPI description (`/api-docs/openapi.json`) and Swagger UI
//! (`/docs`, assets built into the binary: it works offline).

use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Object, RefOr, Required, Type};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    audit, health, login, organizations, passwords, role_queries, roles, scim, tokens, users,
};

/// The service's OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "IAM provisioning service", description = "The vCloud Air identity API (SCIM 1.0 dialect), organizations and roles, and SCIM 2.0 for identity providers at /scim/v2."),
    paths(
        login::login,
        login::logout,
        login::instances,
        passwords::change,
        passwords::set,
        passwords::request_reset,
        passwords::complete_reset,
        users::create::create,
        users::list::list,
        users::get::get,
        users::history::history,
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
        audit::query,
        scim::discovery::config,
        scim::discovery::all_resource_types,
        scim::discovery::resource_type,
        scim::discovery::all_schemas,
        scim::discovery::schema_by_id,
        scim::users::me,
        scim::users::create,
        scim::users::list,
        scim::users::get,
        scim::users::replace,
        scim::users::modify,
        scim::users::remove,
        scim::groups::create,
        scim::groups::list,
        scim::groups::get,
        scim::groups::replace,
        scim::groups::modify,
        scim::groups::remove,
        scim::bulk::bulk,
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
    modifiers(&SecuritySchemes, &CallerOperations)
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
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token from POST /api/iam/login on /api; on /scim/v2, an API token \
                         (as identity providers send it)",
                    ))
                    .build(),
            ),
        );
        // `Authorization: Token <secret>` is no registered HTTP scheme, so it
        // is described as the header it is.
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Token <secret>`: an API token, downloaded once from \
                 POST /api/iam/Users/{id}/tokens/{tokenId}/download",
            ))),
        );
    }
}

/// The header as the vCloud Air documents spell it.
const TENANT_CONTEXT: &str = "X-VMware-VCloud-Tenant-Context";

/// Every operation behind the `Caller` extractor (all of `/api/` and
/// `/cloudapi/` but login) takes the same credentials and the tenant-context
/// header: described here once rather than on each route.
struct CallerOperations;

impl CallerOperations {
    fn describe(operation: &mut Operation) {
        operation.security = Some(vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("token", Vec::<String>::new()),
        ]);
        let tenant_context = ParameterBuilder::new()
            .name(TENANT_CONTEXT)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "The organization to act in: a tenant of the caller's provider (provider users) or \
                 the caller's own. An API token acts only in its own organization.",
            ))
            .schema(Some(Object::with_type(Type::String)))
            .build();
        let parameters = operation.parameters.get_or_insert_with(Vec::new);
        let declared = parameters.iter().any(|parameter| {
            matches!(parameter, RefOr::T(p) if p.name.eq_ignore_ascii_case(TENANT_CONTEXT))
        });
        if !declared {
            parameters.push(RefOr::T(tenant_context));
        }
    }
}

impl CallerOperations {
    /// SCIM 2.0's discovery documents, served without credentials.
    fn is_discovery(path: &str) -> bool {
        [
            "/scim/v2/ServiceProviderConfig",
            "/scim/v2/ResourceTypes",
            "/scim/v2/Schemas",
        ]
        .iter()
        .any(|prefix| path.starts_with(prefix))
    }
}

impl Modify for CallerOperations {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if path.starts_with("/scim/v2/") && !Self::is_discovery(path) {
                for operation in [
                    &mut item.get,
                    &mut item.put,
                    &mut item.post,
                    &mut item.delete,
                    &mut item.patch,
                ]
                .into_iter()
                .flatten()
                {
                    operation.security = Some(vec![
                        SecurityRequirement::new("bearer", Vec::<String>::new()),
                        SecurityRequirement::new("token", Vec::<String>::new()),
                    ]);
                }
                continue;
            }
            let behind_caller = (path.starts_with("/api/") || path.starts_with("/cloudapi/"))
                && path != "/api/iam/login"
                && path != "/api/iam/password/reset";
            if !behind_caller {
                continue;
            }
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                Self::describe(operation);
            }
        }
    }
}
