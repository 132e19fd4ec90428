//! `/scim/v2/Groups`: plain groups (aggregates of their own) and, in a
//! tenant, one built-in group per tenant role whose membership is role
//! assignment. Role groups are listed first, then plain groups by name.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use iam_app::groups::{role_group_id, role_groups, role_members, role_of_group, set_role_members};
use iam_app::idempotency::Creation;
use iam_domain::group::{GroupCommand, GroupFields};
use iam_domain::policy::{UserAction, may_manage_users};
use iam_domain::{GroupId, OrgId, Role, UserId};
use iam_projections::read_models::GroupRow;
use iam_scim::scim2::patch::{self, GROUP_SCHEMA};
use iam_scim::scim2::resources::read_group;
use iam_scim::scim2::{GROUP, ScimType, list_response};
use serde_json::{Value, json};

use super::lists::{GroupColumns, ListQuery, condition, order};
use super::{
    MAX_BODY, ScimApiError, ScimCaller, base_url, cause, if_match, json_body, not_modified,
    not_modified_response, resource_response, scim_json, time,
};
use crate::request_id::RequestId;
use crate::startup::AppState;

/// A group as the service answers it: a plain group's row, or a role group.
#[derive(Debug, Clone)]
pub(crate) enum AnyGroup {
    /// A plain group.
    Plain(GroupRow),
    /// The built-in group of a role.
    Role(Role),
}

/// A member: (user id, userName).
type Members = Vec<(String, String)>;

fn resource(
    id: &str,
    display_name: &str,
    external_id: Option<&str>,
    members: Option<&Members>,
    times: Option<(i64, i64)>,
    revision: i64,
    base: &str,
) -> Value {
    let mut group = json!({
        "schemas": [GROUP],
        "id": id,
        "displayName": display_name,
        "meta": {
            "resourceType": "Group",
            "location": format!("{base}/Groups/{id}"),
            "version": super::etag(revision),
        },
    });
    // A role group has no history of its own: no times.
    if let Some((created, modified)) = times {
        group["meta"]["created"] = json!(time(created));
        group["meta"]["lastModified"] = json!(time(modified));
    }
    if let Some(external_id) = external_id {
        group["externalId"] = json!(external_id);
    }
    if let Some(members) = members {
        group["members"] = members
            .iter()
            .map(|(user, name)| {
                json!({"value": user, "$ref": format!("{base}/Users/{user}"), "display": name, "type": "User"})
            })
            .collect();
    }
    group
}

/// A role group's version: changes whenever its members do.
fn role_group_revision(members: &Members) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (id, _) in members {
        for byte in id.bytes().chain([b',']) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (hash >> 1) as i64
}

/// The group as a resource, its revision, with its members unless `members` is false.
async fn render(
    state: &AppState,
    caller: &ScimCaller,
    group: &AnyGroup,
    with_members: bool,
    base: &str,
) -> Result<(Value, i64), ScimApiError> {
    match group {
        AnyGroup::Plain(row) => {
            let members = if with_members {
                Some(
                    state
                        .read_models
                        .group_members(std::slice::from_ref(&row.id))
                        .await?
                        .into_iter()
                        .map(|(_, user, name)| (user, name))
                        .collect(),
                )
            } else {
                None
            };
            Ok((
                resource(
                    &row.id,
                    &row.display_name,
                    row.external_id.as_deref(),
                    members.as_ref(),
                    Some((row.created_at, row.modified_at)),
                    row.revision,
                    base,
                ),
                row.revision,
            ))
        }
        AnyGroup::Role(role) => {
            let members = role_group_members(state, caller.effective.id, *role).await?;
            let revision = role_group_revision(&members);
            Ok((
                resource(
                    &role_group_id(caller.effective.id, *role).to_string(),
                    role.name(),
                    None,
                    with_members.then_some(&members),
                    None,
                    revision,
                    base,
                ),
                revision,
            ))
        }
    }
}

async fn role_group_members(
    state: &AppState,
    organization: OrgId,
    role: Role,
) -> Result<Members, ScimApiError> {
    let rows = state
        .read_models
        .role_holders(&organization.to_string(), &format!("{role:?}"), 0, i64::MAX)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|row| row.organization_id == organization.to_string())
        .map(|row| (row.id, row.user_name))
        .collect())
}

/// The group `id` of the token's organization, or 404.
pub(crate) async fn group_in_organization(
    state: &AppState,
    caller: &ScimCaller,
    id: &str,
) -> Result<AnyGroup, ScimApiError> {
    if let Some(role) = role_of_group(caller.effective.id, caller.effective.kind, id) {
        return Ok(AnyGroup::Role(role));
    }
    let not_found =
        || ScimApiError::not_found(format!("There is no group `{id}` in this organization."));
    let id = GroupId::parse(id).ok_or_else(not_found)?;
    let row = state
        .read_models
        .group(&id.to_string())
        .await?
        .filter(|row| row.organization_id == caller.effective.id.to_string())
        .ok_or_else(not_found)?;
    Ok(AnyGroup::Plain(row))
}

fn may(caller: &ScimCaller, action: UserAction) -> Result<(), ScimApiError> {
    may_manage_users(&caller.actor, &caller.effective, action, None)
        .map_err(|denied| ScimApiError::new(403, None, denied.0))
}

/// The members named, checked to be users of the token's organization.
async fn members_of_organization(
    state: &AppState,
    caller: &ScimCaller,
    ids: &[String],
) -> Result<BTreeSet<UserId>, ScimApiError> {
    let mut members = BTreeSet::new();
    for id in ids {
        let not_a_user = || {
            ScimApiError::invalid_value(format!(
                "Member `{id}` is not a user of this organization; members are user ids."
            ))
        };
        let user = UserId::parse(id).ok_or_else(not_a_user)?;
        let row = state
            .read_models
            .user(&user.to_string())
            .await?
            .ok_or_else(not_a_user)?;
        if row.organization_id != caller.effective.id.to_string() {
            return Err(not_a_user());
        }
        members.insert(user);
    }
    Ok(members)
}

/// Creates a plain group from a request body (or answers a keyed retry
/// with the original).
pub(crate) async fn create_group(
    state: &AppState,
    caller: &ScimCaller,
    request_id: &RequestId,
    body: &Value,
    key: Option<&str>,
) -> Result<GroupRow, ScimApiError> {
    let input = read_group(body)?;
    let display_name = input
        .display_name
        .clone()
        .filter(|name| !name.trim().is_empty())
        .ok_or_else(|| ScimApiError::invalid_value("`displayName` is required."))?;
    may(caller, UserAction::Create)?;
    let members =
        members_of_organization(state, caller, input.members.as_deref().unwrap_or_default())
            .await?;
    let creation = Creation::of(
        key,
        caller,
        "scim-group",
        &json!({"displayName": display_name, "externalId": input.external_id, "members": members}),
    )?;
    let id = GroupId::new(creation.id);
    if !creation.already_made(state, &id.stream()).await? {
        let written = iam_app::groups::create_group(
            state,
            id,
            caller.effective.id,
            GroupFields {
                display_name,
                external_id: input.external_id,
                members,
            },
            &cause(caller, request_id),
            &creation,
        )
        .await;
        if let Err(error) = written
            && !creation.explains(state, &id.stream(), &error).await?
        {
            return Err(error.into());
        }
    }
    state
        .read_models
        .group(&id.to_string())
        .await?
        .ok_or_else(|| {
            ScimApiError::internal(anyhow::anyhow!("group {id} was created and is gone"))
        })
}

/// `POST /scim/v2/Groups`.
#[utoipa::path(
    tag = "scim",
    description = "Create a plain group. A role's name is 409: its built-in group exists.",
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key and body answers the original result")),
    request_body(content = serde_json::Value, content_type = "application/scim+json"),
    responses(
        (status = 201, description = "Created, with Location and ETag", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 409, description = "displayName taken (scimType uniqueness)", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 400, description = "Refused: RFC 7644 error with scimType", body = serde_json::Value, content_type = "application/scim+json"), (status = 401, description = "No valid API token", body = serde_json::Value, content_type = "application/scim+json"),
    ),
)]
#[post("/scim/v2/Groups")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn create(
    state: web::Data<AppState>,
    caller: ScimCaller,
    request_id: RequestId,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ScimApiError> {
    let body = json_body(&http, payload, MAX_BODY).await?;
    let row = create_group(
        &state,
        &caller,
        &request_id,
        &body,
        crate::routes::idempotency_key(&http),
    )
    .await?;
    let base = base_url(&http);
    let (resource, revision) =
        render(&state, &caller, &AnyGroup::Plain(row.clone()), true, &base).await?;
    let location = format!("{base}/Groups/{}", row.id);
    Ok(resource_response(
        StatusCode::CREATED,
        &resource,
        revision,
        Some(&location),
    ))
}

/// `GET /scim/v2/Groups/{id}`.
#[utoipa::path(
    tag = "scim",
    params(
        ("id" = String, Path, description = "The group's id"),
        ("attributes" = Option<String>, Query, description = "Only these attributes"),
        ("excludedAttributes" = Option<String>, Query, description = "All but these attributes (`members`)"),
        ("If-None-Match" = Option<String>, Header, description = "304 when the version is unchanged"),
    ),
    responses(
        (status = 200, description = "The group", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 304, description = "Not modified"),
        (status = 404, description = "No such group", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 400, description = "Refused: RFC 7644 error with scimType", body = serde_json::Value, content_type = "application/scim+json"), (status = 401, description = "No valid API token", body = serde_json::Value, content_type = "application/scim+json"),
    ),
)]
#[get("/scim/v2/Groups/{id}")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn get(
    state: web::Data<AppState>,
    caller: ScimCaller,
    http: HttpRequest,
    path: web::Path<String>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ScimApiError> {
    let query = ListQuery::parse(&query)?;
    may(&caller, UserAction::Read)?;
    let group = group_in_organization(&state, &caller, &path).await?;
    let selection = query.selection(&GROUP_SCHEMA);
    let (mut resource, revision) = render(
        &state,
        &caller,
        &group,
        !selection.leaves_out("members"),
        &base_url(&http),
    )
    .await?;
    if not_modified(&http, revision) {
        return Ok(not_modified_response(revision));
    }
    selection.apply(&mut resource);
    Ok(resource_response(StatusCode::OK, &resource, revision, None))
}

/// `GET /scim/v2/Groups`: the role groups that match (in a tenant), then
/// the plain groups that match, filtered by the database.
#[utoipa::path(
    tag = "scim",
    params(
        ("filter" = Option<String>, Query, description = "An RFC 7644 filter"),
        ("sortBy" = Option<String>, Query, description = "The attribute to sort plain groups on"),
        ("sortOrder" = Option<String>, Query, description = "`ascending` or `descending`"),
        ("startIndex" = Option<i64>, Query, description = "From 1"),
        ("count" = Option<i64>, Query, description = "At most 1000"),
        ("attributes" = Option<String>, Query, description = "Only these attributes"),
        ("excludedAttributes" = Option<String>, Query, description = "All but these attributes"),
    ),
    responses(
        (status = 200, description = "A ListResponse: role groups, then plain groups", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 400, description = "Refused: RFC 7644 error with scimType", body = serde_json::Value, content_type = "application/scim+json"), (status = 401, description = "No valid API token", body = serde_json::Value, content_type = "application/scim+json"),
    ),
)]
#[get("/scim/v2/Groups")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn list(
    state: web::Data<AppState>,
    caller: ScimCaller,
    http: HttpRequest,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ScimApiError> {
    let query = ListQuery::parse(&query)?;
    may(&caller, UserAction::Read)?;
    let (sql, binds) = condition(
        query.filter.as_deref(),
        &GroupColumns,
        state.read_models.backend(),
    )?;
    let order = order(&query, &GroupColumns, "g.display_name_key", "g.id")?;
    let selection = query.selection(&GROUP_SCHEMA);
    let with_members = !selection.leaves_out("members");
    let base = base_url(&http);
    // Role groups are few and not rows: the same filter is evaluated on
    // their resources (the SQL translation above has already refused what
    // cannot be filtered on).
    let filter = query
        .filter
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(iam_scim::filter::parse_filter)
        .transpose()
        .map_err(|error| {
            ScimApiError::new(400, Some(ScimType::InvalidFilter), error.to_string())
        })?;
    let mut role_resources = Vec::new();
    for role in role_groups(caller.effective.kind) {
        let (resource, _) =
            render(&state, &caller, &AnyGroup::Role(role), with_members, &base).await?;
        if filter
            .as_ref()
            .is_none_or(|filter| patch::matches(&resource, filter))
        {
            role_resources.push(resource);
        }
    }
    let roles = role_resources.len() as i64;
    let offset = query.start_index - 1;
    let from_roles: Vec<Value> = role_resources
        .into_iter()
        .skip(offset as usize)
        .take(query.count as usize)
        .collect();
    let plain_offset = (offset - roles).max(0);
    let plain_limit = query.count - from_roles.len() as i64;
    let (rows, plain_total) = state
        .read_models
        .groups_where(
            &caller.effective.id.to_string(),
            &sql,
            binds,
            &order,
            plain_offset,
            plain_limit,
        )
        .await?;
    let mut resources = from_roles;
    for row in rows {
        let (resource, _) =
            render(&state, &caller, &AnyGroup::Plain(row), with_members, &base).await?;
        resources.push(resource);
    }
    for resource in &mut resources {
        selection.apply(resource);
    }
    Ok(scim_json(
        StatusCode::OK,
        &list_response(roles + plain_total, query.start_index, resources),
    ))
}

/// Brings `group` to what `body` describes (a PUT body or a PATCH's end
/// result). A role group keeps its name; its members are the users holding
/// the role, so a change of them is role assignment.
pub(crate) async fn replace_with(
    state: &AppState,
    caller: &ScimCaller,
    request_id: &RequestId,
    group: &AnyGroup,
    body: &Value,
    expected: Option<u64>,
) -> Result<(), ScimApiError> {
    may(caller, UserAction::Replace)?;
    let input = read_group(body)?;
    let display_name = input
        .display_name
        .clone()
        .filter(|name| !name.trim().is_empty())
        .ok_or_else(|| ScimApiError::invalid_value("`displayName` is required."))?;
    let cause = cause(caller, request_id);
    match group {
        AnyGroup::Role(role) => {
            if !display_name.trim().eq_ignore_ascii_case(role.name()) {
                return Err(ScimApiError::new(
                    400,
                    Some(ScimType::Mutability),
                    format!(
                        "`{}` is the built-in group of a role: it is named after the role and cannot be renamed.",
                        role.name()
                    ),
                ));
            }
            let Some(members) = input.members else {
                return Ok(());
            };
            let wanted = members_of_organization(state, caller, &members).await?;
            let current = role_members(state, caller.effective.id, *role).await?;
            let joined = wanted.difference(&current).copied().collect();
            let left = current.difference(&wanted).copied().collect();
            set_role_members(state, *role, &joined, &left, &cause).await?;
            Ok(())
        }
        AnyGroup::Plain(row) => {
            let id =
                GroupId::parse(&row.id).ok_or_else(|| ScimApiError::not_found("No such group."))?;
            let members = match input.members {
                Some(members) => members_of_organization(state, caller, &members).await?,
                None => state
                    .read_models
                    .group_members(std::slice::from_ref(&row.id))
                    .await?
                    .into_iter()
                    .filter_map(|(_, user, _)| UserId::parse(&user))
                    .collect(),
            };
            let command = GroupCommand::Change {
                fields: GroupFields {
                    display_name,
                    external_id: input.external_id.or_else(|| row.external_id.clone()),
                    members,
                },
                at: chrono::Utc::now(),
            };
            iam_app::groups::run_group_command(state, id, command, &cause, expected).await?;
            Ok(())
        }
    }
}

/// The expected revision of a plain group from `If-Match` (a role group's
/// version is checked here and then not again).
fn expected(
    http: &HttpRequest,
    revision: i64,
    group: &AnyGroup,
) -> Result<Option<u64>, ScimApiError> {
    let expected = if_match(http, revision)?;
    Ok(match group {
        AnyGroup::Plain(_) => expected,
        AnyGroup::Role(_) => None,
    })
}

async fn answer(
    state: &AppState,
    caller: &ScimCaller,
    http: &HttpRequest,
    id: &str,
) -> Result<HttpResponse, ScimApiError> {
    let group = group_in_organization(state, caller, id).await?;
    let (resource, revision) = render(state, caller, &group, true, &base_url(http)).await?;
    Ok(resource_response(StatusCode::OK, &resource, revision, None))
}

/// `PUT /scim/v2/Groups/{id}`.
#[utoipa::path(
    tag = "scim",
    description = "Replace a group (a role group: its members, which is role assignment).",
    params(
        ("id" = String, Path, description = "The group's id"),
        ("If-Match" = Option<String>, Header, description = "412 unless this is the current version"),
    ),
    request_body(content = serde_json::Value, content_type = "application/scim+json"),
    responses(
        (status = 200, description = "The group", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 404, description = "No such group", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 412, description = "Stale If-Match", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 400, description = "Refused: RFC 7644 error with scimType", body = serde_json::Value, content_type = "application/scim+json"), (status = 401, description = "No valid API token", body = serde_json::Value, content_type = "application/scim+json"),
    ),
)]
#[put("/scim/v2/Groups/{id}")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn replace(
    state: web::Data<AppState>,
    caller: ScimCaller,
    request_id: RequestId,
    http: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ScimApiError> {
    let body = json_body(&http, payload, MAX_BODY).await?;
    let group = group_in_organization(&state, &caller, &path).await?;
    let (_, revision) = render(&state, &caller, &group, true, "").await?;
    let expected = expected(&http, revision, &group)?;
    replace_with(&state, &caller, &request_id, &group, &body, expected).await?;
    answer(&state, &caller, &http, &path).await
}

/// Applies a PATCH body to `group`, validated on its end result.
pub(crate) async fn patch_group(
    state: &AppState,
    caller: &ScimCaller,
    request_id: &RequestId,
    group: &AnyGroup,
    body: &Value,
    expected: Option<u64>,
) -> Result<(), ScimApiError> {
    let operations = patch::parse(body)?;
    let (mut resource, _) = render(state, caller, group, true, "").await?;
    patch::apply(&mut resource, &operations, &GROUP_SCHEMA)?;
    replace_with(state, caller, request_id, group, &resource, expected).await
}

/// `PATCH /scim/v2/Groups/{id}`: 200 with the group.
#[utoipa::path(
    tag = "scim",
    description = "Change a group with PATCH operations.",
    params(
        ("id" = String, Path, description = "The group's id"),
        ("If-Match" = Option<String>, Header, description = "412 unless this is the current version"),
    ),
    request_body(content = serde_json::Value, content_type = "application/scim+json"),
    responses(
        (status = 200, description = "The group", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 404, description = "No such group", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 412, description = "Stale If-Match", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 400, description = "Refused: RFC 7644 error with scimType", body = serde_json::Value, content_type = "application/scim+json"), (status = 401, description = "No valid API token", body = serde_json::Value, content_type = "application/scim+json"),
    ),
)]
#[patch("/scim/v2/Groups/{id}")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn modify(
    state: web::Data<AppState>,
    caller: ScimCaller,
    request_id: RequestId,
    http: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ScimApiError> {
    let body = json_body(&http, payload, MAX_BODY).await?;
    let group = group_in_organization(&state, &caller, &path).await?;
    let (_, revision) = render(&state, &caller, &group, true, "").await?;
    let expected = expected(&http, revision, &group)?;
    patch_group(&state, &caller, &request_id, &group, &body, expected).await?;
    answer(&state, &caller, &http, &path).await
}

/// Deletes a plain group; a role group cannot be deleted.
pub(crate) async fn delete_group(
    state: &AppState,
    caller: &ScimCaller,
    request_id: &RequestId,
    group: &AnyGroup,
    expected: Option<u64>,
) -> Result<(), ScimApiError> {
    may(caller, UserAction::Delete)?;
    match group {
        AnyGroup::Role(role) => Err(ScimApiError::new(
            400,
            Some(ScimType::Mutability),
            format!(
                "`{}` is the built-in group of a role and cannot be deleted; remove its members to take \
                 the role from them.",
                role.name()
            ),
        )),
        AnyGroup::Plain(row) => {
            let id =
                GroupId::parse(&row.id).ok_or_else(|| ScimApiError::not_found("No such group."))?;
            let command = GroupCommand::Delete {
                at: chrono::Utc::now(),
            };
            iam_app::groups::run_group_command(
                state,
                id,
                command,
                &cause(caller, request_id),
                expected,
            )
            .await?;
            Ok(())
        }
    }
}

/// `DELETE /scim/v2/Groups/{id}`.
#[utoipa::path(
    tag = "scim",
    params(
        ("id" = String, Path, description = "The group's id"),
        ("If-Match" = Option<String>, Header, description = "412 unless this is the current version"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such group", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 400, description = "Refused: RFC 7644 error with scimType", body = serde_json::Value, content_type = "application/scim+json"), (status = 401, description = "No valid API token", body = serde_json::Value, content_type = "application/scim+json"),
    ),
)]
#[delete("/scim/v2/Groups/{id}")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn remove(
    state: web::Data<AppState>,
    caller: ScimCaller,
    request_id: RequestId,
    http: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ScimApiError> {
    let group = group_in_organization(&state, &caller, &path).await?;
    let (_, revision) = render(&state, &caller, &group, false, "").await?;
    let expected = expected(&http, revision, &group)?;
    delete_group(&state, &caller, &request_id, &group, expected).await?;
    Ok(HttpResponse::NoContent().finish())
}
