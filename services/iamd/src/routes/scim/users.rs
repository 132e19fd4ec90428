//! `/scim/v2/Users`: the users of the token's organization as SCIM 2.0
//! resources. One user, two wire formats: the same commands, events and
//! read model as `/api/iam/Users`. Users created here are managed by the
//! identity provider.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use iam_app::idempotency::Creation;
use iam_app::users::row_of;
use iam_domain::policy::{UserAction, may_manage_users};
use iam_domain::user::{NewUser, Replacement, UserCommand};
use iam_domain::{OrgKind, Source, UserId, UserName};
use iam_projections::read_models::UserRow;
use iam_scim::scim2::patch::{self, USER_SCHEMA};
use iam_scim::scim2::resources::{UserInput, read_user};
use iam_scim::scim2::{ENTERPRISE_USER, IAM_USER, USER, list_response};
use serde_json::{Map, Value, json};

use super::lists::{ListQuery, UserColumns, condition, order};
use super::{
    MAX_BODY, Precondition, RETRIES, ScimApiError, ScimCaller, Version, back_off, base_url, cause,
    digest, is_stale, json_body, not_modified, not_modified_response, resource_response, scim_json,
    time,
};
use crate::request_context::RequestContext;
use crate::startup::AppState;

/// A user's groups for its `groups` attribute: (id, displayName).
type GroupRefs = Vec<(String, String)>;

/// A user's version: its revision, and a digest of its groups.
fn version_of(row: &UserRow, groups: &GroupRefs) -> Version {
    Version {
        revision: row.revision,
        digest: digest(
            groups
                .iter()
                .flat_map(|(id, name)| [id.as_str(), name.as_str()]),
        ),
    }
}

/// The user as a SCIM 2.0 resource.
pub(crate) fn resource(row: &UserRow, groups: &GroupRefs, base: &str) -> Value {
    let location = format!("{base}/Users/{}", row.id);
    let mut user = json!({
        "schemas": [USER, ENTERPRISE_USER, IAM_USER],
        "id": row.id,
        "userName": row.user_name,
        "name": {"givenName": row.given_name, "familyName": row.family_name},
        "emails": [{"value": row.email, "type": "work", "primary": true}],
        "active": row.state == "Active",
        "roles": row.roles.iter().enumerate().map(|(index, role)| json!({
            "value": role.name(), "display": role.name(), "primary": index == 0,
        })).collect::<Vec<_>>(),
        "groups": groups.iter().map(|(id, display)| json!({
            "value": id, "$ref": format!("{base}/Groups/{id}"), "display": display, "type": "direct",
        })).collect::<Vec<_>>(),
        IAM_USER: {"managedByIdentityProvider": row.managed},
        "meta": {
            "resourceType": "User",
            "created": time(row.created_at),
            "lastModified": time(row.modified_at),
            "location": location,
            "version": version_of(row, groups).tag(),
        },
    });
    if let Some(external_id) = &row.profile.external_id {
        user["externalId"] = json!(external_id);
    }
    let mut enterprise = Map::new();
    if let Some(number) = &row.profile.employee_number {
        enterprise.insert("employeeNumber".into(), json!(number));
    }
    if let Some(department) = &row.profile.department {
        enterprise.insert("department".into(), json!(department));
    }
    if let Some(manager) = &row.profile.manager {
        enterprise.insert(
            "manager".into(),
            json!({"value": manager, "$ref": format!("{base}/Users/{manager}")}),
        );
    }
    user[ENTERPRISE_USER] = Value::Object(enterprise);
    user
}

/// The role groups of `row`'s roles (in a tenant).
fn role_group_refs(row: &UserRow, kind: OrgKind) -> GroupRefs {
    match (kind, iam_domain::OrgId::parse(&row.organization_id)) {
        (OrgKind::Tenant, Some(organization)) => row
            .roles
            .iter()
            .map(|role| {
                (
                    iam_app::groups::role_group_id(organization, *role).to_string(),
                    role.name().to_owned(),
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The groups of each of `rows`: its role groups (in a tenant), then its
/// plain groups.
pub(crate) async fn groups_of(
    state: &AppState,
    rows: &[UserRow],
    kind: OrgKind,
) -> Result<HashMap<String, GroupRefs>, ScimApiError> {
    let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
    let mut groups: HashMap<String, GroupRefs> = rows
        .iter()
        .map(|row| (row.id.clone(), role_group_refs(row, kind)))
        .collect();
    for (user, id, display) in state.read_models.groups_of_users(&ids).await? {
        groups.entry(user).or_default().push((id, display));
    }
    Ok(groups)
}

/// A user as its create answers it: no plain group can hold it yet, so its
/// groups are its role groups, and nothing is read.
pub(crate) fn created_resource(row: &UserRow, kind: OrgKind, base: &str) -> (Value, Version) {
    let groups = role_group_refs(row, kind);
    (resource(row, &groups, base), version_of(row, &groups))
}

/// The user as a resource, and its version.
pub(crate) async fn one_resource(
    state: &AppState,
    caller: &ScimCaller,
    row: &UserRow,
    base: &str,
) -> Result<(Value, Version), ScimApiError> {
    let groups = groups_of(state, std::slice::from_ref(row), caller.effective.kind).await?;
    let groups = groups.get(&row.id).cloned().unwrap_or_default();
    Ok((resource(row, &groups, base), version_of(row, &groups)))
}

/// A user of the token's organization (its home), or 404.
pub(crate) async fn user_in_organization(
    state: &AppState,
    caller: &ScimCaller,
    id: &str,
) -> Result<UserRow, ScimApiError> {
    let not_found =
        || ScimApiError::not_found(format!("There is no user `{id}` in this organization."));
    let parsed = UserId::parse(id).ok_or_else(not_found)?;
    let row = state
        .read_models
        .user(&parsed.to_string())
        .await?
        .ok_or_else(not_found)?;
    if row.organization_id != caller.effective.id.to_string() {
        return Err(not_found());
    }
    Ok(row)
}

fn may(
    caller: &ScimCaller,
    action: UserAction,
    target: Option<UserId>,
) -> Result<(), ScimApiError> {
    may_manage_users(&caller.actor, &caller.effective, action, target)
        .map_err(|denied| ScimApiError::new(403, None, denied.0))
}

/// The message for a userName and primary email that differ.
fn mapping_advice(user_name: &str, email: &str) -> String {
    format!(
        "userName `{user_name}` and the primary email `{email}` must be the same address. Map both from \
         one attribute of the identity provider: Entra ID maps userName from userPrincipalName and emails \
         from mail by default, so map emails[type eq \"work\"].value from userPrincipalName too (or \
         userName from mail); in Okta, map both from user.email."
    )
}

/// The roles a create gives: those named, or End User in a tenant.
fn roles_of_new_user(input: &UserInput, kind: OrgKind) -> Result<Vec<String>, ScimApiError> {
    match (&input.roles, kind) {
        (Some(roles), _) if !roles.is_empty() => Ok(roles.clone()),
        (_, OrgKind::Tenant) => Ok(vec!["End User".to_owned()]),
        (_, OrgKind::Provider) => Err(ScimApiError::invalid_value(
            "A provider user needs one role: send roles with Provider Administrator, Provider Account \
             Administrator or Provider Business Specialist.",
        )),
    }
}

fn required(value: &Option<String>, name: &str) -> Result<String, ScimApiError> {
    value
        .clone()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ScimApiError::invalid_value(format!("`{name}` is required.")))
}

async fn password_hash(input: &UserInput) -> Result<Option<String>, ScimApiError> {
    let Some(password) = &input.password else {
        return Ok(None);
    };
    iam_app::credentials::check_password(password)
        .map_err(|why| ScimApiError::invalid_value(format!("The {why}.")))?;
    Ok(Some(
        iam_app::credentials::hash_password(password.clone()).await?,
    ))
}

/// What a create decides from a request's user, before any write.
pub(crate) struct NewScimUser {
    pub(crate) user: NewUser,
    pub(crate) creation: Creation,
    pub(crate) input: UserInput,
}

/// Checks a create: the fields, the userName = email rule, the permission,
/// and the idempotency key.
pub(crate) fn new_user(
    caller: &ScimCaller,
    body: &Value,
    key: Option<&str>,
) -> Result<NewScimUser, ScimApiError> {
    let input = read_user(body)?;
    let user_name = required(&input.user_name, "userName")?;
    let email = input.email.clone().unwrap_or_else(|| user_name.clone());
    if !email.trim().eq_ignore_ascii_case(user_name.trim()) {
        return Err(ScimApiError::invalid_value(mapping_advice(
            &user_name, &email,
        )));
    }
    let user = NewUser {
        id: UserId::new(uuid::Uuid::now_v7()),
        organization: caller.effective.id,
        organization_kind: caller.effective.kind,
        user_name,
        email,
        given_name: required(&input.given_name, "name.givenName")?,
        family_name: required(&input.family_name, "name.familyName")?,
        state: if input.active == Some(false) {
            "Inactive"
        } else {
            "Active"
        }
        .to_owned(),
        roles: roles_of_new_user(&input, caller.effective.kind)?,
        with_password: input.password.is_some(),
        profile: input.profile.clone(),
        source: Source::IdentityProvider,
    };
    may(caller, UserAction::Create, None)?;
    // The password stays out of the fingerprint: the fingerprint is logged.
    let creation = Creation::of(
        key,
        caller,
        "scim-user",
        &json!({
            "userName": user.user_name, "email": user.email, "givenName": user.given_name,
            "familyName": user.family_name, "state": user.state, "roles": user.roles,
            "profile": user.profile, "withPassword": user.with_password,
        }),
    )?;
    Ok(NewScimUser {
        user: NewUser {
            id: UserId::new(creation.id),
            ..user
        },
        creation,
        input,
    })
}

/// Creates a checked user (or answers a keyed retry with the original):
/// its row after the write.
pub(crate) async fn create_checked(
    state: &AppState,
    caller: &ScimCaller,
    context: &RequestContext,
    new: NewScimUser,
) -> Result<UserRow, ScimApiError> {
    let id = new.user.id;
    if new.creation.already_made(state, &id.stream()).await? {
        return created_row(state, id).await;
    }
    check_manager(state, caller, new.user.profile.manager.as_deref()).await?;
    let hash = password_hash(&new.input).await?;
    let command = UserCommand::Create {
        user: new.user,
        at: chrono::Utc::now(),
    };
    match iam_app::commands::create_user(
        state,
        command,
        &cause(caller, context),
        hash.map(iam_app::commands::NewPassword::hashed),
        &new.creation,
    )
    .await
    {
        Ok(written) => written.row().ok_or_else(|| {
            ScimApiError::internal(anyhow::anyhow!("creating user {id} decided no user"))
        }),
        Err(error) if new.creation.explains(state, &id.stream(), &error).await? => {
            created_row(state, id).await
        }
        Err(error) => Err(error.into()),
    }
}

async fn created_row(state: &AppState, id: UserId) -> Result<UserRow, ScimApiError> {
    iam_app::commands::created_user(state, id)
        .await?
        .row()
        .ok_or_else(|| ScimApiError::internal(anyhow::anyhow!("user {id} was created and is gone")))
}

/// `POST /scim/v2/Users`.
#[utoipa::path(
    tag = "scim",
    description = "Create a user (managed by the identity provider). `userName` must equal the primary email.",
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key and body answers the original result")),
    request_body(content = serde_json::Value, content_type = "application/scim+json"),
    responses(
        (status = 201, description = "Created, with Location and ETag", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 409, description = "userName taken (scimType uniqueness)", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 400, description = "Refused: RFC 7644 error with scimType", body = serde_json::Value, content_type = "application/scim+json"), (status = 401, description = "No valid API token", body = serde_json::Value, content_type = "application/scim+json"),
    ),
)]
#[post("/scim/v2/Users")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn create(
    state: web::Data<AppState>,
    caller: ScimCaller,
    context: RequestContext,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ScimApiError> {
    let body = json_body(&http, payload, MAX_BODY).await?;
    let new = new_user(&caller, &body, crate::routes::idempotency_key(&http))?;
    let row = create_checked(&state, &caller, &context, new).await?;
    let base = base_url(&http);
    let (resource, version) = created_resource(&row, caller.effective.kind, &base);
    let location = format!("{base}/Users/{}", row.id);
    Ok(resource_response(
        StatusCode::CREATED,
        &resource,
        &version,
        Some(&location),
    ))
}

/// `GET /scim/v2/Users/{id}`.
#[utoipa::path(
    tag = "scim",
    params(
        ("id" = String, Path, description = "The user's id"),
        ("attributes" = Option<String>, Query, description = "Only these attributes (comma-separated)"),
        ("excludedAttributes" = Option<String>, Query, description = "All but these attributes"),
        ("If-None-Match" = Option<String>, Header, description = "304 when the version is unchanged"),
    ),
    responses(
        (status = 200, description = "The user, with its ETag", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 304, description = "Not modified"),
        (status = 404, description = "No such user in the token's organization", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 400, description = "Refused: RFC 7644 error with scimType", body = serde_json::Value, content_type = "application/scim+json"), (status = 401, description = "No valid API token", body = serde_json::Value, content_type = "application/scim+json"),
    ),
)]
#[get("/scim/v2/Users/{id}")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn get(
    state: web::Data<AppState>,
    caller: ScimCaller,
    http: HttpRequest,
    path: web::Path<String>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ScimApiError> {
    let query = ListQuery::parse(&query)?;
    let row = user_in_organization(&state, &caller, &path).await?;
    may(&caller, UserAction::Read, UserId::parse(&row.id))?;
    let (mut resource, version) = one_resource(&state, &caller, &row, &base_url(&http)).await?;
    if not_modified(&http, &version) {
        return Ok(not_modified_response(&version));
    }
    query.selection(&USER_SCHEMA).apply(&mut resource);
    Ok(resource_response(StatusCode::OK, &resource, &version, None))
}

/// `GET /scim/v2/Me` (RFC 7644 §3.11): the token's own user.
#[utoipa::path(
    tag = "scim",
    responses(
        (status = 200, description = "The user the API token acts as", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 401, description = "No valid API token", body = serde_json::Value, content_type = "application/scim+json"),
    ),
)]
#[get("/scim/v2/Me")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn me(
    state: web::Data<AppState>,
    caller: ScimCaller,
    http: HttpRequest,
) -> Result<HttpResponse, ScimApiError> {
    let row = caller.user.clone();
    let (resource, version) = one_resource(&state, &caller, &row, &base_url(&http)).await?;
    Ok(resource_response(StatusCode::OK, &resource, &version, None))
}

/// `GET /scim/v2/Users`: filtered by the database, sorted, a page at a time.
#[utoipa::path(
    tag = "scim",
    params(
        ("filter" = Option<String>, Query, description = "An RFC 7644 filter, evaluated by the database"),
        ("sortBy" = Option<String>, Query, description = "The attribute to sort on"),
        ("sortOrder" = Option<String>, Query, description = "`ascending` or `descending`"),
        ("startIndex" = Option<i64>, Query, description = "From 1"),
        ("count" = Option<i64>, Query, description = "At most 1000; 0 gives only the total"),
        ("attributes" = Option<String>, Query, description = "Only these attributes"),
        ("excludedAttributes" = Option<String>, Query, description = "All but these attributes"),
    ),
    responses(
        (status = 200, description = "A ListResponse", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 400, description = "Refused: RFC 7644 error with scimType", body = serde_json::Value, content_type = "application/scim+json"), (status = 401, description = "No valid API token", body = serde_json::Value, content_type = "application/scim+json"),
    ),
)]
#[get("/scim/v2/Users")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn list(
    state: web::Data<AppState>,
    caller: ScimCaller,
    http: HttpRequest,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ScimApiError> {
    let query = ListQuery::parse(&query)?;
    may(&caller, UserAction::Read, None)?;
    let (sql, binds) = condition(
        query.filter.as_deref(),
        &UserColumns,
        state.read_models.backend(),
    )?;
    let order = order(&query, &UserColumns, "u.user_name_key", "u.id")?;
    let (rows, total) = state
        .read_models
        .users_where(
            &caller.effective.id.to_string(),
            &sql,
            binds,
            &order,
            query.start_index - 1,
            query.count,
        )
        .await?;
    let selection = query.selection(&USER_SCHEMA);
    let groups = if selection.leaves_out("groups") {
        HashMap::new()
    } else {
        groups_of(&state, &rows, caller.effective.kind).await?
    };
    let base = base_url(&http);
    let resources = rows
        .iter()
        .map(|row| {
            let mut resource = resource(row, groups.get(&row.id).unwrap_or(&Vec::new()), &base);
            selection.apply(&mut resource);
            resource
        })
        .collect();
    Ok(scim_json(
        StatusCode::OK,
        &list_response(total, query.start_index, resources),
    ))
}

/// How a body describes the user: a PUT body (what it leaves out is
/// kept: identity providers PUT profiles without `roles`, `active` or
/// `externalId`), or the end result of a PATCH (what it lacks was removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// PUT.
    Replace,
    /// PATCH.
    Patch,
}

/// Checks that `manager` names a user of the organization.
async fn check_manager(
    state: &AppState,
    caller: &ScimCaller,
    manager: Option<&str>,
) -> Result<(), ScimApiError> {
    let Some(manager) = manager else {
        return Ok(());
    };
    let not_a_user = || {
        ScimApiError::invalid_value(format!(
            "manager `{manager}` is not a user of this organization; send the manager's id."
        ))
    };
    let id = UserId::parse(manager).ok_or_else(not_a_user)?;
    match state.read_models.user(&id.to_string()).await? {
        Some(row) if row.organization_id == caller.effective.id.to_string() => Ok(()),
        _ => Err(not_a_user()),
    }
}

/// Brings user `row` to the user `body` describes, expecting its revision
/// (412 when another request changed it first). `userName` may change, and
/// the primary email with it.
async fn replace_with(
    state: &AppState,
    caller: &ScimCaller,
    context: &RequestContext,
    row: &UserRow,
    body: &Value,
    mode: Mode,
) -> Result<UserRow, ScimApiError> {
    let id = UserId::parse(&row.id).ok_or_else(|| ScimApiError::not_found("No such user."))?;
    may(caller, UserAction::Replace, Some(id))?;
    let input = read_user(body)?;
    let user_name = required(&input.user_name, "userName")?;
    let renamed = user_name.trim() != row.user_name;
    let email = match &input.email {
        // Renamed with the old address left in place: the address follows.
        Some(email) if renamed && email.trim().eq_ignore_ascii_case(&row.email) => {
            user_name.clone()
        }
        Some(email) => email.clone(),
        None if renamed => user_name.clone(),
        None => row.email.clone(),
    };
    if renamed
        && let (Ok(name), Ok(address)) = (
            UserName::parse(&user_name),
            iam_domain::Email::parse(&email),
        )
        && !name.matches(&address)
    {
        return Err(ScimApiError::invalid_value(mapping_advice(
            &user_name, &email,
        )));
    }
    let roles = match (&input.roles, mode) {
        (Some(roles), _) if !roles.is_empty() => roles.clone(),
        (_, Mode::Replace) => row
            .roles
            .iter()
            .map(|role| role.name().to_owned())
            .collect(),
        // A PATCH that removed every role leaves the default one.
        (_, Mode::Patch) => roles_of_new_user(&input, caller.effective.kind)?,
    };
    let state_name = match input.active {
        Some(true) => "Active".to_owned(),
        Some(false) => "Inactive".to_owned(),
        None => row.state.clone(),
    };
    let mut profile = input.profile.clone();
    if mode == Mode::Replace && profile.external_id.is_none() {
        profile.external_id = row.profile.external_id.clone();
    }
    if profile.manager != row.profile.manager {
        check_manager(state, caller, profile.manager.as_deref()).await?;
    }
    let replacement = Replacement {
        user_name,
        email,
        given_name: required(&input.given_name, "name.givenName")?,
        family_name: required(&input.family_name, "name.familyName")?,
        state: state_name,
        roles,
        organization_kind: caller.effective.kind,
        profile: Some(profile),
        with_password: input.password.is_some(),
        source: Source::IdentityProvider,
    };
    let hash = password_hash(&input).await?;
    let written = iam_app::commands::run_user_command_with_password(
        state,
        id,
        UserCommand::Replace {
            replacement,
            at: chrono::Utc::now(),
        },
        &cause(caller, context),
        Some(row.revision as u64),
        hash.map(iam_app::commands::NewPassword::hashed),
    )
    .await?;
    let (Some(user), Some(revision)) = (&written.user, written.revision) else {
        return Err(ScimApiError::not_found("No such user."));
    };
    row_of(user, revision).ok_or_else(|| ScimApiError::not_found("No such user."))
}

/// Changes user `id` as `body` says (a PUT body, or PATCH operations
/// applied to the user as it is now). Without a precondition, a change
/// that another request beat is decided again on the new state, so nothing
/// the other request did is lost; with one, it is 412.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn change_user(
    state: &AppState,
    caller: &ScimCaller,
    context: &RequestContext,
    id: &str,
    body: &Value,
    mode: Mode,
    precondition: &Precondition,
    base: &str,
) -> Result<UserRow, ScimApiError> {
    let operations = match mode {
        Mode::Patch => patch::parse(body)?,
        Mode::Replace => Vec::new(),
    };
    let mut attempt = 0;
    loop {
        let row = user_in_organization(state, caller, id).await?;
        let (mut resource, version) = one_resource(state, caller, &row, base).await?;
        precondition.check(&version, false)?;
        let end = match mode {
            Mode::Replace => body,
            Mode::Patch => {
                patch::apply(&mut resource, &operations, &USER_SCHEMA)?;
                &resource
            }
        };
        match replace_with(state, caller, context, &row, end, mode).await {
            Err(error) if is_stale(&error) && !precondition.given() && attempt < RETRIES => {
                attempt += 1;
                back_off(attempt).await;
            }
            other => return other,
        }
    }
}

/// Changes user `id` and answers it.
async fn answer_change(
    state: &AppState,
    caller: &ScimCaller,
    context: &RequestContext,
    http: &HttpRequest,
    id: &str,
    body: &Value,
    mode: Mode,
) -> Result<HttpResponse, ScimApiError> {
    let base = base_url(http);
    let precondition = Precondition::of(http);
    let row = change_user(state, caller, context, id, body, mode, &precondition, &base).await?;
    let (resource, version) = one_resource(state, caller, &row, &base).await?;
    Ok(resource_response(StatusCode::OK, &resource, &version, None))
}

/// `PUT /scim/v2/Users/{id}`.
#[utoipa::path(
    tag = "scim",
    description = "Replace a user.",
    params(
        ("id" = String, Path, description = "The user's id"),
        ("If-Match" = Option<String>, Header, description = "412 unless this is the current version"),
    ),
    request_body(content = serde_json::Value, content_type = "application/scim+json"),
    responses(
        (status = 200, description = "The user, with its ETag", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 404, description = "No such user", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 412, description = "Stale If-Match", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 400, description = "Refused: RFC 7644 error with scimType", body = serde_json::Value, content_type = "application/scim+json"), (status = 401, description = "No valid API token", body = serde_json::Value, content_type = "application/scim+json"),
    ),
)]
#[put("/scim/v2/Users/{id}")]
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

/// `PATCH /scim/v2/Users/{id}`.
#[utoipa::path(
    tag = "scim",
    description = "Change a user with PATCH operations, validated on the end result.",
    params(
        ("id" = String, Path, description = "The user's id"),
        ("If-Match" = Option<String>, Header, description = "412 unless this is the current version"),
    ),
    request_body(content = serde_json::Value, content_type = "application/scim+json"),
    responses(
        (status = 200, description = "The user, with its ETag", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 404, description = "No such user", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 412, description = "Stale If-Match", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 400, description = "Refused: RFC 7644 error with scimType", body = serde_json::Value, content_type = "application/scim+json"), (status = 401, description = "No valid API token", body = serde_json::Value, content_type = "application/scim+json"),
    ),
)]
#[patch("/scim/v2/Users/{id}")]
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

/// Deletes user `row`: it leaves every list and group, its sessions end and
/// its tokens are revoked.
pub(crate) async fn delete_user(
    state: &AppState,
    caller: &ScimCaller,
    context: &RequestContext,
    id: &str,
    precondition: &Precondition,
) -> Result<(), ScimApiError> {
    let row = user_in_organization(state, caller, id).await?;
    let expected = match precondition.given() {
        true => precondition.check(&one_resource(state, caller, &row, "").await?.1, false)?,
        false => None,
    };
    let id = UserId::parse(&row.id).ok_or_else(|| ScimApiError::not_found("No such user."))?;
    may(caller, UserAction::Delete, Some(id))?;
    if id == caller.actor.user {
        return Err(ScimApiError::new(
            403,
            None,
            "A token cannot delete its own user; use another administrator's token.",
        ));
    }
    iam_app::commands::delete_user(
        state,
        id,
        Source::IdentityProvider,
        &cause(caller, context),
        expected,
    )
    .await?;
    Ok(())
}

/// `DELETE /scim/v2/Users/{id}`.
#[utoipa::path(
    tag = "scim",
    params(
        ("id" = String, Path, description = "The user's id"),
        ("If-Match" = Option<String>, Header, description = "412 unless this is the current version"),
    ),
    responses(
        (status = 204, description = "Deleted: sessions ended, tokens revoked"),
        (status = 404, description = "No such user", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 412, description = "Stale If-Match", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 400, description = "Refused: RFC 7644 error with scimType", body = serde_json::Value, content_type = "application/scim+json"), (status = 401, description = "No valid API token", body = serde_json::Value, content_type = "application/scim+json"),
    ),
)]
#[delete("/scim/v2/Users/{id}")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn remove(
    state: web::Data<AppState>,
    caller: ScimCaller,
    context: RequestContext,
    http: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ScimApiError> {
    delete_user(&state, &caller, &context, &path, &Precondition::of(&http)).await?;
    Ok(HttpResponse::NoContent().finish())
}
