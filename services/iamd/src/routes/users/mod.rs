//! `/api/iam/Users`: the vCloud Air SCIM 1.0 user resource.

pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod get;
pub(crate) mod history;
pub(crate) mod list;
pub(crate) mod replace;

use actix_web::HttpResponse;
use actix_web::http::header::{self, HeaderValue};
use iam_domain::Role;
use iam_projections::read_models::UserRow;
use iam_scim::vca::{self, Meta, RoleView, Roles, ServiceGroupIds, UserRequest};

use crate::error::ApiError;
use crate::request_context::RequestContext;
use iam_app::commands::{Authentication, Cause};

/// The user as the dialect shows it; an Organization Owner listed in a
/// tenant shows that role (its `companyId` stays its provider's).
pub(crate) fn view(row: &UserRow, as_owner: bool) -> vca::User {
    let roles = if as_owner {
        vec![Role::OrganizationOwner]
    } else {
        row.roles.clone()
    };
    vca::User {
        meta: Meta {
            created: row.created_at,
            modified: row.modified_at,
        },
        schemas: vca::User::schemas(),
        state: row.state.clone(),
        id: row.id.clone(),
        company_id: row.organization_id.clone(),
        customer_number: None,
        email: row.email.clone(),
        family_name: row.family_name.clone(),
        given_name: row.given_name.clone(),
        roles: Roles {
            roles: roles.into_iter().map(RoleView::from).collect(),
        },
        service_group_ids: ServiceGroupIds {
            service_group_ids: Vec::new(),
        },
        tos_accept_date: None,
        tos_accepted: false,
        user_name: row.user_name.clone(),
        managed_by_identity_provider: row.managed,
    }
}

/// The strong ETag of a user: its stream's revision.
pub(crate) fn etag(row: &UserRow) -> String {
    format!("\"{}\"", row.revision)
}

/// A response with the user, its ETag and the dialect's content type.
pub(crate) fn user_response(status: actix_web::http::StatusCode, row: &UserRow) -> HttpResponse {
    let mut response = crate::negotiation::vca_json(status, &view(row, false));
    if let Ok(value) = HeaderValue::from_str(&etag(row)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// What the request of `context` says of any change it causes: its ids,
/// trace, source address and user agent, and how its caller authenticated.
pub(crate) fn request_cause(context: &RequestContext, authentication: Authentication) -> Cause {
    Cause {
        authentication: Some(authentication),
        request_id: Some(context.id.clone()),
        client_request_id: context.client_id.clone(),
        trace_id: crate::telemetry::current_trace_id(),
        source_address: context.source_address.clone(),
        user_agent: context.user_agent.clone(),
        ..Cause::default()
    }
}

/// What caused a change made by `caller` in the request of `context`.
pub(crate) fn cause(caller: &iam_app::Caller, context: &RequestContext) -> Cause {
    let authentication = match (&caller.token_id, context.scim) {
        (Some(token), false) => Authentication::ApiToken(token.clone()),
        (Some(token), true) => Authentication::ScimToken(token.clone()),
        (None, _) => Authentication::Session,
    };
    Cause {
        actor: Some(caller.actor.user.to_string()),
        actor_user_name: Some(caller.user.user_name.clone()),
        actor_organization: Some(caller.actor.home.to_string()),
        organization: Some(caller.effective.id.to_string()),
        acting: Some(caller.actor.clone()),
        ..request_cause(context, authentication)
    }
}

/// A required element of a request, or a 400 that names it.
pub(crate) fn required<T: Clone>(value: &Option<T>, element: &str) -> Result<T, ApiError> {
    value
        .clone()
        .ok_or_else(|| ApiError::bad_request(format!("The element `{element}` is required.")))
}

/// The role names of a request (ids and descriptions are ignored).
pub(crate) fn role_names(request: &UserRequest) -> Result<Vec<String>, ApiError> {
    let roles = required(&request.roles, "roles")?;
    roles
        .roles
        .iter()
        .map(|role| {
            role.name.clone().ok_or_else(|| {
                ApiError::bad_request(
                    "Every element of `roles.roles` needs a `name`, e.g. {\"name\": \"End User\"}.",
                )
            })
        })
        .collect()
}

/// The request's `schemas`, when present, must include the dialect's URN.
pub(crate) fn check_schemas(request: &UserRequest) -> Result<(), ApiError> {
    match &request.schemas {
        Some(schemas) if !schemas.iter().any(|s| s == iam_scim::SCIM_CORE_1_0) => {
            Err(ApiError::bad_request(format!(
                "`schemas` must include `{}`.",
                iam_scim::SCIM_CORE_1_0
            )))
        }
        _ => Ok(()),
    }
}
