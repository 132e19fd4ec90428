//! `POST /scim/v2/Bulk` (RFC 7644 §3.7): many operations in one request,
//! with `bulkId` references between them and `failOnErrors`.
//!
//! Operations run in waves: every operation whose references are resolved
//! and whose target no earlier pending operation touches joins the current
//! wave, and a wave's operations run concurrently. Their appends therefore
//! share the event store's group commits: a thousand creates are a few
//! dozen durable commits, not a thousand one after another. An operation
//! that refers to another (`"bulkId:q1"`) waits for its wave; operations on
//! the same resource keep their order. With `failOnErrors`, a wave holds no
//! more operations than the errors still allowed.

use std::collections::{HashMap, HashSet};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use futures::StreamExt;
use iam_scim::scim2::patch::get_ignoring_case;
use iam_scim::scim2::{BULK_MAX_OPERATIONS, BULK_MAX_PAYLOAD, BULK_RESPONSE, ScimError, ScimType};
use serde_json::{Value, json};

use super::{
    Precondition, ScimApiError, ScimCaller, Version, base_url, groups, json_body, scim_json, users,
};
use crate::request_context::RequestContext;
use crate::startup::AppState;

/// How many operations of a wave run at once (each may hash a password).
const CONCURRENCY: usize = 32;

#[derive(Debug, Clone)]
struct Operation {
    method: String,
    path: String,
    bulk_id: Option<String>,
    version: Option<String>,
    data: Value,
}

/// What one operation answered.
#[derive(Debug)]
struct Outcome {
    status: u16,
    location: Option<String>,
    version: Option<String>,
    id: Option<String>,
    error: Option<Value>,
}

fn invalid(index: usize, detail: impl Into<String>) -> ScimApiError {
    ScimApiError::new(
        400,
        Some(ScimType::InvalidSyntax),
        format!("Operations[{index}]: {}", detail.into()),
    )
}

fn parse(body: &Value) -> Result<(Vec<Operation>, Option<usize>), ScimApiError> {
    let object = body.as_object().ok_or_else(|| {
        ScimApiError::new(
            400,
            Some(ScimType::InvalidSyntax),
            "A Bulk body is a JSON object.",
        )
    })?;
    let fail_on_errors = match get_ignoring_case(object, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.as_u64().filter(|n| *n > 0).ok_or_else(|| {
            ScimApiError::invalid_value("`failOnErrors` must be a positive integer.")
        })? as usize),
    };
    let operations = get_ignoring_case(object, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ScimApiError::new(
                400,
                Some(ScimType::InvalidSyntax),
                "A Bulk body needs `Operations`: a list of {method, path, bulkId, data}.",
            )
        })?;
    if operations.len() > BULK_MAX_OPERATIONS {
        return Err(ScimApiError::new(
            413,
            Some(ScimType::TooMany),
            format!(
                "The Bulk request has {} operations; at most {BULK_MAX_OPERATIONS} are accepted per request \
                 (ServiceProviderConfig bulk.maxOperations): split it.",
                operations.len()
            ),
        ));
    }
    let mut bulk_ids = HashSet::new();
    let parsed = operations
        .iter()
        .enumerate()
        .map(|(index, operation)| {
            let operation = operation
                .as_object()
                .ok_or_else(|| invalid(index, "an operation is an object"))?;
            let text = |name| {
                get_ignoring_case(operation, name)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let method = text("method")
                .ok_or_else(|| invalid(index, "`method` is required"))?
                .to_ascii_uppercase();
            let path = text("path").ok_or_else(|| invalid(index, "`path` is required"))?;
            let bulk_id = text("bulkId");
            if method == "POST" && bulk_id.is_none() {
                return Err(invalid(index, "a POST needs a `bulkId`"));
            }
            if let Some(bulk_id) = &bulk_id
                && !bulk_ids.insert(bulk_id.clone())
            {
                return Err(invalid(index, format!("bulkId `{bulk_id}` is used twice")));
            }
            Ok(Operation {
                method,
                path,
                bulk_id,
                version: text("version"),
                data: get_ignoring_case(operation, "data")
                    .cloned()
                    .unwrap_or(Value::Null),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((parsed, fail_on_errors))
}

/// The bulkIds `value` refers to (`"bulkId:q1"` anywhere in it).
fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::String(text) => {
            if let Some(id) = text.strip_prefix("bulkId:") {
                found.push(id.to_owned());
            }
        }
        Value::Array(values) => values.iter().for_each(|v| references(v, found)),
        Value::Object(object) => object.values().for_each(|v| references(v, found)),
        _ => {}
    }
}

fn substitute(value: &mut Value, ids: &HashMap<String, String>) {
    match value {
        Value::String(text) => {
            if let Some(id) = text.strip_prefix("bulkId:").and_then(|b| ids.get(b)) {
                *text = id.clone();
            }
        }
        Value::Array(values) => values.iter_mut().for_each(|v| substitute(v, ids)),
        Value::Object(object) => object.values_mut().for_each(|v| substitute(v, ids)),
        _ => {}
    }
}

fn resolve_path(path: &str, ids: &HashMap<String, String>) -> String {
    path.split('/')
        .map(|segment| match segment.strip_prefix("bulkId:") {
            Some(bulk_id) => ids
                .get(bulk_id)
                .cloned()
                .unwrap_or_else(|| segment.to_owned()),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `POST /scim/v2/Bulk`.
#[utoipa::path(
    tag = "scim",
    description = "Many operations in one request, with bulkId references and failOnErrors; at most 1000 operations and 1 MiB.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Covers each create as <key>/<bulkId>")),
    request_body(content = serde_json::Value, content_type = "application/scim+json"),
    responses(
        (status = 200, description = "A BulkResponse", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 413, description = "Too many operations or bytes (scimType tooMany)", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 400, description = "Refused: RFC 7644 error with scimType", body = serde_json::Value, content_type = "application/scim+json"), (status = 401, description = "No valid API token", body = serde_json::Value, content_type = "application/scim+json"),
    ),
)]
#[post("/scim/v2/Bulk")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn bulk(
    state: web::Data<AppState>,
    caller: ScimCaller,
    context: RequestContext,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ScimApiError> {
    let body = json_body(&http, payload, BULK_MAX_PAYLOAD).await.map_err(|error| match error {
        ScimApiError::Refused(ScimError { status: 413, .. }) => ScimApiError::new(
            413,
            Some(ScimType::TooMany),
            format!(
                "The Bulk request is larger than {BULK_MAX_PAYLOAD} bytes (ServiceProviderConfig \
                 bulk.maxPayloadSize): split it."
            ),
        ),
        other => other,
    })?;
    let (operations, fail_on_errors) = parse(&body)?;
    let key = crate::routes::idempotency_key(&http).map(str::to_owned);
    let base = base_url(&http);

    let mut ids: HashMap<String, String> = HashMap::new();
    let mut failed_bulk_ids: HashSet<String> = HashSet::new();
    let mut outcomes: Vec<Option<Outcome>> = (0..operations.len()).map(|_| None).collect();
    let mut pending: Vec<usize> = (0..operations.len()).collect();
    let mut errors = 0;
    while !pending.is_empty() {
        if fail_on_errors.is_some_and(|limit| errors >= limit) {
            break;
        }
        let mut wave = Vec::new();
        let mut deferred = Vec::new();
        let mut touched = HashSet::new();
        let mut after_delete = false;
        for index in pending {
            let operation = &operations[index];
            let mut refers = Vec::new();
            references(&operation.data, &mut refers);
            references(&Value::String(operation.path.clone()), &mut refers);
            for segment in operation.path.split('/') {
                references(&Value::String(segment.to_owned()), &mut refers);
            }
            if let Some(failed) = refers.iter().find(|r| failed_bulk_ids.contains(*r)) {
                errors += 1;
                if let Some(bulk_id) = &operation.bulk_id {
                    failed_bulk_ids.insert(bulk_id.clone());
                }
                outcomes[index] = Some(error_outcome(&ScimApiError::new(
                    409,
                    Some(ScimType::InvalidValue),
                    format!("It refers to bulkId `{failed}`, whose operation failed."),
                )));
                continue;
            }
            if let Some(unknown) = refers.iter().find(|r| {
                !ids.contains_key(*r)
                    && !operations
                        .iter()
                        .any(|o| o.bulk_id.as_deref() == Some(r.as_str()))
            }) {
                errors += 1;
                outcomes[index] = Some(error_outcome(&ScimApiError::invalid_value(format!(
                    "It refers to bulkId `{unknown}`, which no operation of this request has."
                ))));
                continue;
            }
            // A create's target is new; others keep their order per resource.
            let target = match (&operation.method[..], &operation.bulk_id) {
                ("POST", Some(bulk_id)) => format!("bulkId:{bulk_id}"),
                _ => resolve_path(&operation.path, &ids)
                    .trim_matches('/')
                    .to_ascii_lowercase(),
            };
            let ready = refers.iter().all(|r| ids.contains_key(r));
            if ready && !touched.contains(&target) && !after_delete {
                wave.push(index);
            } else {
                deferred.push(index);
            }
            touched.insert(target);
            // What follows a delete waits for it: a create may reuse the
            // name the delete frees.
            after_delete |= operation.method == "DELETE";
        }
        // With failOnErrors, a wave is no larger than the errors still
        // allowed, so that nothing runs past the limit.
        if let Some(limit) = fail_on_errors {
            let allowed = limit.saturating_sub(errors);
            if allowed == 0 {
                break;
            }
            if wave.len() > allowed {
                deferred.extend(wave.split_off(allowed));
                deferred.sort_unstable();
            }
        }
        if wave.is_empty() {
            // What is left refers to itself in a cycle.
            for index in deferred {
                outcomes[index] = Some(error_outcome(&ScimApiError::new(
                    409,
                    Some(ScimType::InvalidValue),
                    "Its bulkId references form a cycle.",
                )));
            }
            break;
        }
        let results: Vec<(usize, Outcome)> = futures::stream::iter(wave)
            .map(|index| {
                let mut operation = operations[index].clone();
                substitute(&mut operation.data, &ids);
                operation.path = resolve_path(&operation.path, &ids);
                let key = key
                    .as_ref()
                    .zip(operation.bulk_id.as_ref())
                    .map(|(k, b)| format!("{k}/{b}"));
                let (state, caller, context, base) = (&state, &caller, &context, &base);
                async move {
                    let outcome = run(state, caller, context, &operation, key.as_deref(), base)
                        .await
                        .unwrap_or_else(|error| error_outcome(&error));
                    (index, outcome)
                }
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        for (index, outcome) in results {
            let operation = &operations[index];
            if outcome.error.is_some() {
                errors += 1;
                if let Some(bulk_id) = &operation.bulk_id {
                    failed_bulk_ids.insert(bulk_id.clone());
                }
            } else if let (Some(bulk_id), Some(id)) = (&operation.bulk_id, &outcome.id) {
                ids.insert(bulk_id.clone(), id.clone());
            }
            outcomes[index] = Some(outcome);
        }
        pending = deferred;
    }

    let answered: Vec<Value> = operations
        .iter()
        .zip(outcomes)
        .filter_map(|(operation, outcome)| {
            let outcome = outcome?;
            let mut answer =
                json!({"method": operation.method, "status": outcome.status.to_string()});
            if let Some(bulk_id) = &operation.bulk_id {
                answer["bulkId"] = json!(bulk_id);
            }
            if let Some(location) = outcome.location {
                answer["location"] = json!(location);
            }
            if let Some(version) = outcome.version {
                answer["version"] = json!(version);
            }
            if let Some(error) = outcome.error {
                answer["response"] = error;
            }
            Some(answer)
        })
        .collect();
    Ok(scim_json(
        StatusCode::OK,
        &json!({"schemas": [BULK_RESPONSE], "Operations": answered}),
    ))
}

fn error_outcome(error: &ScimApiError) -> Outcome {
    if let ScimApiError::Internal(error) = error {
        tracing::error!(error = %format!("{error:#}"), "a Bulk operation failed");
    }
    let (status, body) = error.parts();
    Outcome {
        status,
        location: None,
        version: None,
        id: None,
        error: Some(body),
    }
}

fn done(status: u16, base: &str, kind: &str, id: &str, version: Option<Version>) -> Outcome {
    Outcome {
        status,
        location: Some(format!("{base}/{kind}/{id}")),
        version: version.map(|version| version.tag()),
        id: Some(id.to_owned()),
        error: None,
    }
}

/// Runs one operation, as the route of its method and path would.
async fn run(
    state: &AppState,
    caller: &ScimCaller,
    context: &RequestContext,
    operation: &Operation,
    key: Option<&str>,
    base: &str,
) -> Result<Outcome, ScimApiError> {
    let segments: Vec<&str> = operation.path.trim_matches('/').split('/').collect();
    let precondition = Precondition::from_tags(operation.version.clone());
    let not_supported = || {
        ScimApiError::new(
            400,
            Some(ScimType::InvalidPath),
            format!(
                "`{} {}` is not a Bulk operation; use POST /Users, POST /Groups, or PUT, PATCH or DELETE \
                 /Users/{{id}} or /Groups/{{id}}.",
                operation.method, operation.path
            ),
        )
    };
    let users = |kind: &str| kind.eq_ignore_ascii_case("Users");
    let groups = |kind: &str| kind.eq_ignore_ascii_case("Groups");
    match (operation.method.as_str(), segments.as_slice()) {
        ("POST", [kind]) if users(kind) => {
            let new = users::new_user(caller, &operation.data, key)?;
            let row = users::create_checked(state, caller, context, new).await?;
            let (_, version) = users::created_resource(&row, caller.effective.kind, base);
            Ok(done(201, base, "Users", &row.id, Some(version)))
        }
        ("POST", [kind]) if groups(kind) => {
            let created =
                groups::create_group(state, caller, context, &operation.data, key, base).await?;
            Ok(done(
                201,
                base,
                "Groups",
                &created.id,
                Some(created.version),
            ))
        }
        ("PUT" | "PATCH", [kind, id]) if users(kind) => {
            let mode = match operation.method.as_str() {
                "PUT" => users::Mode::Replace,
                _ => users::Mode::Patch,
            };
            let row = users::change_user(
                state,
                caller,
                context,
                id,
                &operation.data,
                mode,
                &precondition,
                base,
            )
            .await?;
            let (_, version) = users::one_resource(state, caller, &row, base).await?;
            Ok(done(200, base, "Users", &row.id, Some(version)))
        }
        ("DELETE", [kind, id]) if users(kind) => {
            users::delete_user(state, caller, context, id, &precondition).await?;
            Ok(done(204, base, "Users", id, None))
        }
        ("PUT" | "PATCH", [kind, id]) if groups(kind) => {
            let mode = match operation.method.as_str() {
                "PUT" => groups::Mode::Replace,
                _ => groups::Mode::Patch,
            };
            groups::change_group(
                state,
                caller,
                context,
                id,
                &operation.data,
                mode,
                &precondition,
            )
            .await?;
            let version = groups::version_of(state, caller, id).await?;
            Ok(done(200, base, "Groups", id, version))
        }
        ("DELETE", [kind, id]) if groups(kind) => {
            groups::delete_group(state, caller, context, id, &precondition).await?;
            Ok(done(204, base, "Groups", id, None))
        }
        _ => Err(not_supported()),
    }
}
