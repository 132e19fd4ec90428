//! `/scim/v2/Groups`: plain groups (aggregates of their own) and, in a
//! tenant, one built-in group per tenant role whose membership is role
//! assignment. Role groups are listed first, then plain groups.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use iam_app::groups::{role_group_id, role_groups, role_of_group, set_role_members};
use iam_app::idempotency::Creation;
use iam_domain::group::{Group, GroupCommand, GroupFields};
use iam_domain::policy::{UserAction, may_manage_users};
use iam_domain::{GroupId, OrgId, Role, UserId};
use iam_projections::read_models::GroupRow;
use iam_scim::scim2::patch::{self, GROUP_SCHEMA};
use iam_scim::scim2::resources::read_group;
use iam_scim::scim2::{GROUP, ScimType, list_response};
use serde_json::{Value, json};

use super::lists::{GroupColumns, ListQuery, condition, order};
use super::{
    MAX_BODY, Precondition, RETRIES, ScimApiError, ScimCaller, Version, back_off, base_url, cause,
    digest, is_stale, json_body, not_modified, not_modified_response, resource_response, scim_json,
    time,
};
use crate::request_context::RequestContext;
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

/// A group as a resource: what `render` needs of either kind.
struct Shown<'a> {
    id: &'a str,
    display_name: &'a str,
    external_id: Option<&'a str>,
    members: Option<&'a Members>,
    /// A role group has no history of its own: no times.
    times: Option<(i64, i64)>,
    version: Version,
}

fn resource(group: &Shown<'_>, base: &str) -> Value {
    let mut resource = json!({
        "schemas": [GROUP],
        "id": group.id,
        "displayName": group.display_name,
        "meta": {
            "resourceType": "Group",
            "location": format!("{base}/Groups/{}", group.id),
            "version": group.version.tag(),
        },
    });
    if let Some((created, modified)) = group.times {
        resource["meta"]["created"] = json!(time(created));
        resource["meta"]["lastModified"] = json!(time(modified));
    }
    if let Some(external_id) = group.external_id {
        resource["externalId"] = json!(external_id);
    }
    if let Some(members) = group.members {
        resource["members"] = members
            .iter()
            .map(|(user, name)| {
                json!({"value": user, "$ref": format!("{base}/Users/{user}"), "display": name, "type": "User"})
            })
            .collect();
    }
    resource
}

fn members_digest(members: &Members) -> u64 {
    digest(
        members
            .iter()
            .flat_map(|(id, name)| [id.as_str(), name.as_str()]),
    )
}

/// The group as a resource (with its members unless `with_members` is
/// false), its version, and its members when they were read.
async fn render(
    state: &AppState,
    caller: &ScimCaller,
    group: &AnyGroup,
    with_members: bool,
    base: &str,
) -> Result<(Value, Version, Option<Members>), ScimApiError> {
    match group {
        AnyGroup::Plain(row) => {
            // Members are read either way: the version covers them.
            let members: Members = state
                .read_models
                .group_members(std::slice::from_ref(&row.id))
                .await?
                .into_iter()
                .map(|(_, user, name)| (user, name))
                .collect();
            let version = Version {
                revision: row.revision,
                digest: members_digest(&members),
            };
            let shown = Shown {
                id: &row.id,
                display_name: &row.display_name,
                external_id: row.external_id.as_deref(),
                members: with_members.then_some(&members),
                times: Some((row.created_at, row.modified_at)),
                version,
            };
            Ok((resource(&shown, base), version, Some(members)))
        }
        AnyGroup::Role(role) => {
            let organization = caller.effective.id.to_string();
            let role_key = format!("{role:?}");
            let (count, revisions, latest) = state
                .read_models
                .role_holder_digest(&organization, &role_key)
                .await?;
            let version = Version {
                revision: 0,
                digest: digest([
                    count.to_string().as_str(),
                    revisions.to_string().as_str(),
                    latest.to_string().as_str(),
                ]),
            };
            let members = if with_members {
                Some(role_group_members(state, caller.effective.id, *role).await?)
            } else {
                None
            };
            let id = role_group_id(caller.effective.id, *role).to_string();
            let shown = Shown {
                id: &id,
                display_name: role.name(),
                external_id: None,
                members: members.as_ref(),
                times: None,
                version,
            };
            Ok((resource(&shown, base), version, members))
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

/// What a create answers: the group and its version.
pub(crate) struct Created {
    pub(crate) resource: Value,
    pub(crate) version: Version,
    pub(crate) id: String,
}

/// The group as its creation left it, for a retried create (it may have
/// changed or be gone since).
async fn created_before(
    state: &AppState,
    id: GroupId,
    base: &str,
) -> Result<Created, ScimApiError> {
    let written = iam_app::groups::created_group(state, id).await?;
    let (Some(group), Some(revision)) = (written.group, written.revision) else {
        return Err(ScimApiError::internal(anyhow::anyhow!(
            "group {id} has no creation in the log"
        )));
    };
    shown_created(state, &group, revision as i64, base).await
}

async fn shown_created(
    state: &AppState,
    group: &Group,
    revision: i64,
    base: &str,
) -> Result<Created, ScimApiError> {
    let mut members = Members::new();
    for member in &group.members {
        let id = member.to_string();
        let name = state
            .read_models
            .user(&id)
            .await?
            .map_or_else(|| id.clone(), |row| row.user_name);
        members.push((id, name));
    }
    members.sort_by_key(|(_, name)| name.to_lowercase());
    let version = Version {
        revision,
        digest: members_digest(&members),
    };
    let id = group.id.to_string();
    let shown = Shown {
        id: &id,
        display_name: &group.display_name,
        external_id: group.external_id.as_deref(),
        members: Some(&members),
        times: Some((
            group.created_at.timestamp_millis(),
            group.modified_at.timestamp_millis(),
        )),
        version,
    };
    Ok(Created {
        resource: resource(&shown, base),
        version,
        id,
    })
}

/// Creates a plain group from a request body (or answers a keyed retry
/// with the original answer).
pub(crate) async fn create_group(
    state: &AppState,
    caller: &ScimCaller,
    context: &RequestContext,
    body: &Value,
    key: Option<&str>,
    base: &str,
) -> Result<Created, ScimApiError> {
    let input = read_group(body)?;
    let display_name = input
        .display_name
        .clone()
        .filter(|name| !name.trim().is_empty())
        .ok_or_else(|| ScimApiError::invalid_value("`displayName` is required."))?;
    may(caller, UserAction::Create)?;
    let named: Vec<String> = input.members.clone().unwrap_or_default();
    let creation = Creation::of(
        key,
        caller,
        "scim-group",
        &json!({"displayName": display_name, "externalId": input.external_id, "members": named}),
    )?;
    let id = GroupId::new(creation.id);
    if creation.already_made(state, &id.stream()).await? {
        return created_before(state, id, base).await;
    }
    let members = members_of_organization(state, caller, &named).await?;
    let written = iam_app::groups::create_group(
        state,
        id,
        caller.effective.id,
        GroupFields {
            display_name,
            external_id: input.external_id,
            members,
        },
        &cause(caller, context),
        &creation,
    )
    .await;
    match written {
        Ok(written) => {
            let (Some(group), Some(revision)) = (written.group, written.revision) else {
                return Err(ScimApiError::internal(anyhow::anyhow!(
                    "creating group {id} decided no group"
                )));
            };
            shown_created(state, &group, revision as i64, base).await
        }
        Err(error) if creation.explains(state, &id.stream(), &error).await? => {
            created_before(state, id, base).await
        }
        Err(error) => Err(error.into()),
    }
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
    context: RequestContext,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ScimApiError> {
    let body = json_body(&http, payload, MAX_BODY).await?;
    let base = base_url(&http);
    let key = crate::routes::idempotency_key(&http);
    let created = create_group(&state, &caller, &context, &body, key, &base).await?;
    let location = format!("{base}/Groups/{}", created.id);
    Ok(resource_response(
        StatusCode::CREATED,
        &created.resource,
        &created.version,
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
    let with_members = !selection.leaves_out("members");
    let (mut resource, version, _) =
        render(&state, &caller, &group, with_members, &base_url(&http)).await?;
    if not_modified(&http, &version) {
        return Ok(not_modified_response(&version));
    }
    selection.apply(&mut resource);
    Ok(resource_response(StatusCode::OK, &resource, &version, None))
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
    // cannot be filtered on). Their members are read only for the page.
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
    let mut matching_roles = Vec::new();
    for role in role_groups(caller.effective.kind) {
        let (resource, _, _) = render(&state, &caller, &AnyGroup::Role(role), false, &base).await?;
        if filter
            .as_ref()
            .is_none_or(|filter| patch::matches(&resource, filter))
        {
            matching_roles.push(role);
        }
    }
    let roles = matching_roles.len() as i64;
    let offset = query.start_index - 1;
    let mut resources = Vec::new();
    for role in matching_roles
        .into_iter()
        .skip(offset as usize)
        .take(query.count as usize)
    {
        let (resource, _, _) =
            render(&state, &caller, &AnyGroup::Role(role), with_members, &base).await?;
        resources.push(resource);
    }
    let plain_offset = (offset - roles).max(0);
    let plain_limit = query.count - resources.len() as i64;
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
    for row in rows {
        let (resource, _, _) =
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

/// How a body describes the group: a PUT body (a missing `members` or
/// `externalId` is kept), or the end result of a PATCH (what it lacks was
/// removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// PUT.
    Replace,
    /// PATCH.
    Patch,
}

/// Brings `group`, read with `members` at `version`, to what `body`
/// describes. A plain group's change expects that version's revision (412
/// when another request changed it first). A role group keeps its name, and
/// its users who joined or left relative to what was read change roles:
/// only those, so a concurrent move of another user is never undone.
async fn replace_with(
    state: &AppState,
    caller: &ScimCaller,
    context: &RequestContext,
    group: &AnyGroup,
    members: &Members,
    body: &Value,
    mode: Mode,
) -> Result<(), ScimApiError> {
    may(caller, UserAction::Replace)?;
    let input = read_group(body)?;
    let display_name = input
        .display_name
        .clone()
        .filter(|name| !name.trim().is_empty())
        .ok_or_else(|| ScimApiError::invalid_value("`displayName` is required."))?;
    let cause = cause(caller, context);
    let read: BTreeSet<UserId> = members
        .iter()
        .filter_map(|(id, _)| UserId::parse(id))
        .collect();
    let wanted = match &input.members {
        Some(named) => members_of_organization(state, caller, named).await?,
        None if mode == Mode::Patch => BTreeSet::new(),
        None => read.clone(),
    };
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
            let joined = wanted.difference(&read).copied().collect();
            let left = read.difference(&wanted).copied().collect();
            set_role_members(state, *role, &joined, &left, &cause).await?;
            Ok(())
        }
        AnyGroup::Plain(row) => {
            let id =
                GroupId::parse(&row.id).ok_or_else(|| ScimApiError::not_found("No such group."))?;
            let external_id = match (input.external_id, mode) {
                (None, Mode::Replace) => row.external_id.clone(),
                (external_id, _) => external_id,
            };
            let command = GroupCommand::Change {
                fields: GroupFields {
                    display_name,
                    external_id,
                    members: wanted,
                },
                at: chrono::Utc::now(),
            };
            iam_app::groups::run_group_command(
                state,
                id,
                command,
                &cause,
                Some(row.revision as u64),
            )
            .await?;
            Ok(())
        }
    }
}

/// Changes group `id` as `body` says (a PUT body, or PATCH operations
/// applied to the group as it is now). Without a precondition, a change
/// that another request beat is decided again on the new state.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn change_group(
    state: &AppState,
    caller: &ScimCaller,
    context: &RequestContext,
    id: &str,
    body: &Value,
    mode: Mode,
    precondition: &Precondition,
) -> Result<(), ScimApiError> {
    let operations = match mode {
        Mode::Patch => patch::parse(body)?,
        Mode::Replace => Vec::new(),
    };
    let mut attempt = 0;
    loop {
        let group = group_in_organization(state, caller, id).await?;
        let (mut resource, version, members) = render(state, caller, &group, true, "").await?;
        precondition.check(&version, matches!(group, AnyGroup::Role(_)))?;
        let end = match mode {
            Mode::Replace => body,
            Mode::Patch => {
                patch::apply(&mut resource, &operations, &GROUP_SCHEMA)?;
                &resource
            }
        };
        let members = members.unwrap_or_default();
        match replace_with(state, caller, context, &group, &members, end, mode).await {
            Err(error) if is_stale(&error) && !precondition.given() && attempt < RETRIES => {
                attempt += 1;
                back_off(attempt).await;
            }
            other => return other,
        }
    }
}

/// Changes group `id` and answers it.
async fn answer_change(
    state: &AppState,
    caller: &ScimCaller,
    context: &RequestContext,
    http: &HttpRequest,
    id: &str,
    body: &Value,
    mode: Mode,
) -> Result<HttpResponse, ScimApiError> {
    let precondition = Precondition::of(http);
    change_group(state, caller, context, id, body, mode, &precondition).await?;
    let group = group_in_organization(state, caller, id).await?;
    let (resource, version, _) = render(state, caller, &group, true, &base_url(http)).await?;
    Ok(resource_response(StatusCode::OK, &resource, &version, None))
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
    context: RequestContext,
    http: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ScimApiError> {
    let body = json_body(&http, payload, MAX_BODY).await?;
    answer_change(
        &state,
        &caller,
        &context,
        &http,
        &path,
        &body,
        Mode::Replace,
    )
    .await
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
    context: RequestContext,
    http: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ScimApiError> {
    let body = json_body(&http, payload, MAX_BODY).await?;
    answer_change(&state, &caller, &context, &http, &path, &body, Mode::Patch).await
}

/// Deletes a plain group; a role group cannot be deleted.
pub(crate) async fn delete_group(
    state: &AppState,
    caller: &ScimCaller,
    context: &RequestContext,
    id: &str,
    precondition: &Precondition,
) -> Result<(), ScimApiError> {
    may(caller, UserAction::Delete)?;
    let group = group_in_organization(state, caller, id).await?;
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
        AnyGroup::Plain(ref row) => {
            let (_, version, _) = render(state, caller, &group, false, "").await?;
            let expected = precondition.check(&version, false)?;
            let id =
                GroupId::parse(&row.id).ok_or_else(|| ScimApiError::not_found("No such group."))?;
            let command = GroupCommand::Delete {
                at: chrono::Utc::now(),
            };
            iam_app::groups::run_group_command(
                state,
                id,
                command,
                &cause(caller, context),
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
    context: RequestContext,
    http: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ScimApiError> {
    delete_group(&state, &caller, &context, &path, &Precondition::of(&http)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The version of group `id`, for a Bulk answer (`None`: gone).
pub(crate) async fn version_of(
    state: &AppState,
    caller: &ScimCaller,
    id: &str,
) -> Result<Option<Version>, ScimApiError> {
    let group = group_in_organization(state, caller, id).await?;
    let (_, version, _) = render(state, caller, &group, false, "").await?;
    Ok(Some(version))
}
