//! `/api/iam/Users`: the vCloud Air SCIM 1.0 user resource.

pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod get;
pub(crate) mod list;
pub(crate) mod replace;

use actix_web::HttpResponse;
use actix_web::http::header::{self, HeaderValue};
use iam_domain::user::UserEvent;
use iam_domain::{OrgId, OrgKind, Role, UserId};
use iam_projections::read_models::UserRow;
use iam_scim::vca::{self, Meta, RoleView, Roles, ServiceGroupIds, UserRequest};

use crate::caller::Caller;
use crate::commands::Cause;
use crate::error::ApiError;
use crate::request_id::RequestId;
use crate::startup::AppState;

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
    }
}

/// The user's row after `events`, built from what a write decided rather
/// than read back: the answer to a write. `revision` is the append's.
pub(crate) fn row_after(
    mut row: Option<UserRow>,
    events: &[UserEvent],
    revision: Option<u64>,
) -> Option<UserRow> {
    for event in events {
        if let UserEvent::UserCreated {
            id,
            organization,
            user_name,
            email,
            given_name,
            family_name,
            state,
            roles,
            at,
        } = event
        {
            row = Some(UserRow {
                id: id.to_string(),
                organization_id: organization.to_string(),
                user_name: user_name.trim().to_owned(),
                email: email.clone(),
                given_name: given_name.clone(),
                family_name: family_name.clone(),
                state: state.as_str().to_owned(),
                roles: roles.clone(),
                created_at: at.timestamp_millis(),
                modified_at: at.timestamp_millis(),
                revision: 0,
            });
            continue;
        }
        let Some(current) = row.as_mut() else {
            continue;
        };
        match event {
            UserEvent::UserCreated { .. } => {}
            UserEvent::UserEmailChanged { email, at } => {
                current.email = email.clone();
                current.modified_at = at.timestamp_millis();
            }
            UserEvent::UserRenamed {
                given_name,
                family_name,
                at,
            } => {
                current.given_name = given_name.clone();
                current.family_name = family_name.clone();
                current.modified_at = at.timestamp_millis();
            }
            UserEvent::UserStateChanged { state, at } => {
                current.state = state.as_str().to_owned();
                current.modified_at = at.timestamp_millis();
            }
            UserEvent::UserRolesChanged { roles, at } => {
                current.roles = roles.clone();
                current.modified_at = at.timestamp_millis();
            }
            UserEvent::UserPasswordSet { at } => current.modified_at = at.timestamp_millis(),
            UserEvent::UserDeleted { .. } => row = None,
        }
    }
    if let (Some(current), Some(revision)) = (row.as_mut(), revision) {
        current.revision = revision as i64;
    }
    row
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

/// The user `id` as seen from the caller's effective organization: a user
/// whose home it is, or (in a tenant) one of its Organization Owners.
/// Anything else is 404, so that other organizations' users stay invisible.
pub(crate) async fn visible_user(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(UserRow, bool), ApiError> {
    let not_found =
        || ApiError::not_found(format!("There is no user `{id}` in this organization."));
    let id = UserId::parse(id).ok_or_else(not_found)?.to_string();
    let row = state.read_models.user(&id).await?.ok_or_else(not_found)?;
    let effective = caller.effective.id.to_string();
    if row.organization_id == effective {
        return Ok((row, false));
    }
    if caller.effective.kind == OrgKind::Tenant
        && state.read_models.is_member(&effective, &id).await?
    {
        return Ok((row, true));
    }
    // A user of another organization: an API token hears why; a session
    // does not learn that it exists.
    if let Some(home) = OrgId::parse(&row.organization_id) {
        caller.require_token_scope(home)?;
    }
    Err(not_found())
}

/// What caused a change made by `caller` in request `request_id`.
pub(crate) fn cause(caller: &Caller, request_id: &RequestId) -> Cause {
    Cause {
        actor: Some(caller.actor.user.to_string()),
        actor_organization: Some(caller.actor.home.to_string()),
        organization: Some(caller.effective.id.to_string()),
        request_id: Some(request_id.0.clone()),
        trace_id: crate::telemetry::current_trace_id(),
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
