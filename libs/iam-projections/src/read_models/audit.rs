//! The `audit` projector: one row per event of the log (`read_audit`), in
//! the organization whose audit shows it, with its actor, how the actor
//! authenticated, the request it came from, and what changed: each field
//! before and after. It runs asynchronously (the runner, under a lease): an
//! append never waits for it, and a query says up to which position it is
//! complete.
//!
//! "Before" is what the subject looked like after its previous event, kept
//! per stream in `read_audit_subjects` ([`fold`] computes both). Secrets
//! never reach either table: events hold none, and the hash of a downloaded
//! token's secret is left out by name.

use std::collections::HashMap;

use async_trait::async_trait;
use iam_eventstore::RecordedEvent;
use serde_json::{Map, Value, json};
use sqlx::{AnyConnection, Row};

use crate::rows::execute_for_rows;
use crate::{Projector, ReadModels, Result};

/// The audit index.
#[derive(Debug, Default, Clone, Copy)]
pub struct AuditProjector;

/// Fields that are never part of a subject's state or of a change.
const NEVER_SHOWN: [&str; 4] = ["at", "secretHash", "passwordHash", "password"];
/// Fields that describe one change, not the subject: shown as the change's
/// "after", not kept for the next "before".
const OF_THE_CHANGE: [&str; 2] = ["displaced", "defaulted"];

/// The subject's state after an event of type `event_type` with `data`,
/// and the change: `{field: {"before", "after"}}` for every field whose
/// value differs. A deletion empties the state (every field's "after" is
/// null).
pub fn fold(
    state: &Map<String, Value>,
    event_type: &str,
    data: &Value,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut changes = Map::new();
    if event_type.ends_with("Deleted") {
        for (field, before) in state {
            changes.insert(field.clone(), json!({ "before": before, "after": null }));
        }
        return (Map::new(), changes);
    }
    let mut after = state.clone();
    let Some(fields) = data.as_object() else {
        return (after, changes);
    };
    for (field, value) in fields {
        if NEVER_SHOWN.contains(&field.as_str()) {
            continue;
        }
        if OF_THE_CHANGE.contains(&field.as_str()) {
            if !value.is_null() && value != &json!([]) {
                changes.insert(field.clone(), json!({ "before": null, "after": value }));
            }
            continue;
        }
        let before = state.get(field).cloned().unwrap_or(Value::Null);
        if &before != value {
            changes.insert(field.clone(), json!({ "before": before, "after": value }));
        }
        after.insert(field.clone(), value.clone());
    }
    (after, changes)
}

/// The kind and id of an event's subject, from its stream (`user-<id>`).
fn subject(stream: &str) -> (&str, &str) {
    let (kind, id) = stream.split_once('-').unwrap_or((stream, ""));
    let kind = match kind {
        "org" => "organization",
        "login" => "login",
        other => other,
    };
    (kind, id)
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

#[async_trait]
impl Projector for AuditProjector {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["read_audit", "read_audit_subjects"]
    }

    async fn apply(&self, connection: &mut AnyConnection, events: &[RecordedEvent]) -> Result<()> {
        let mut streams: Vec<String> = events.iter().map(|event| event.stream.clone()).collect();
        streams.sort();
        streams.dedup();
        let mut subjects = load_subjects(connection, &streams).await?;
        let mut changed = Vec::new();
        let mut entries = Vec::with_capacity(events.len());
        for event in events {
            let (kind, id) = subject(&event.stream);
            let metadata = &event.metadata;
            let at = event.data["at"]
                .as_str()
                .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
                .map_or(event.recorded_at.timestamp_millis(), |at| {
                    at.timestamp_millis()
                });
            let (subject_kind, subject_id, user, changes, details, organization) =
                if kind == "login" {
                    // A login changes no subject: its facts are its details.
                    let mut details = event.data.as_object().cloned().unwrap_or_default();
                    details.remove("at");
                    let user = text(&event.data["user"]);
                    let organization = text(&event.data["organization"]);
                    (
                        "user",
                        user.clone().unwrap_or_default(),
                        user,
                        Map::new(),
                        Some(Value::Object(details)),
                        organization,
                    )
                } else {
                    let (known_organization, state) = subjects
                        .remove(&event.stream)
                        .unwrap_or_else(|| (None, Map::new()));
                    let (after, changes) = fold(&state, &event.event_type, &event.data);
                    let organization = text(&event.data["organization"])
                        .or(known_organization)
                        .or_else(|| (kind == "organization").then(|| id.to_owned()));
                    let user = match kind {
                        "user" => Some(id.to_owned()),
                        _ => after.get("user").and_then(text),
                    };
                    subjects.insert(event.stream.clone(), (organization.clone(), after));
                    changed.push(event.stream.clone());
                    (kind, id.to_owned(), user, changes, None, organization)
                };
            // The organization the request worked on; the subject's own
            // when there was no request (the first start). An event about
            // an organization belongs to that organization's audit, whatever
            // tenant the request named: creating tenant B, or adding an
            // owner to it, must not show in tenant A's audit.
            let shown_in = if kind == "organization" {
                id.to_owned()
            } else {
                text(&metadata["organization"])
                    .or(organization)
                    .unwrap_or_default()
            };
            let authentication = &metadata["authentication"];
            entries.push(json!({
                "position": event.position,
                "organization": shown_in,
                "at": at,
                "type": event.event_type,
                "stream": event.stream,
                "subjectKind": subject_kind,
                "subjectId": subject_id,
                "user": user,
                "actor": metadata["actor"],
                "actorUserName": metadata["actorUserName"],
                "actorOrganization": metadata["actorOrganization"],
                "authentication": authentication["method"],
                "tokenId": authentication["tokenId"],
                "requestId": metadata["requestId"],
                "clientRequestId": metadata["clientRequestId"],
                "traceId": metadata["traceId"],
                "sourceAddress": metadata["sourceAddress"],
                "userAgent": metadata["userAgent"],
                "changes": Value::Object(changes).to_string(),
                "details": details.map(|details| details.to_string()),
            }));
        }
        execute_for_rows(
            connection,
            "INSERT INTO read_audit (position, organization_id, at, event_type, stream, subject_kind, \
             subject_id, user_id, actor_id, actor_user_name, actor_organization_id, authentication, \
             token_id, request_id, client_request_id, trace_id, source_address, user_agent, changes, \
             details) \
             SELECT CAST(j.value ->> 'position' AS BIGINT), j.value ->> 'organization', \
                    CAST(j.value ->> 'at' AS BIGINT), j.value ->> 'type', j.value ->> 'stream', \
                    j.value ->> 'subjectKind', j.value ->> 'subjectId', j.value ->> 'user', \
                    j.value ->> 'actor', j.value ->> 'actorUserName', j.value ->> 'actorOrganization', \
                    j.value ->> 'authentication', j.value ->> 'tokenId', j.value ->> 'requestId', \
                    j.value ->> 'clientRequestId', j.value ->> 'traceId', j.value ->> 'sourceAddress', \
                    j.value ->> 'userAgent', j.value ->> 'changes', j.value ->> 'details' FROM {rows}",
            entries,
        )
        .await?;
        changed.sort();
        changed.dedup();
        let states = changed
            .into_iter()
            .filter_map(|stream| {
                let (organization, state) = subjects.remove(&stream)?;
                Some(json!({
                    "stream": stream,
                    "organization": organization,
                    "state": Value::Object(state).to_string(),
                }))
            })
            .collect();
        // `WHERE true` lets SQLite parse the upsert after a SELECT.
        execute_for_rows(
            connection,
            "INSERT INTO read_audit_subjects (stream, organization_id, state) \
             SELECT j.value ->> 'stream', j.value ->> 'organization', j.value ->> 'state' FROM {rows} \
             WHERE true \
             ON CONFLICT (stream) DO UPDATE SET organization_id = excluded.organization_id, \
             state = excluded.state",
            states,
        )
        .await
    }
}

/// The kept state of each of `streams` that has one.
async fn load_subjects(
    connection: &mut AnyConnection,
    streams: &[String],
) -> Result<HashMap<String, (Option<String>, Map<String, Value>)>> {
    if streams.is_empty() {
        return Ok(HashMap::new());
    }
    let source = if connection.backend_name() == "PostgreSQL" {
        "jsonb_array_elements_text($1::jsonb) AS j(value)"
    } else {
        "json_each($1) AS j"
    };
    let sql = format!(
        "SELECT s.stream, s.organization_id, s.state FROM read_audit_subjects s \
         WHERE s.stream IN (SELECT j.value FROM {source})"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(json!(streams).to_string())
        .fetch_all(&mut *connection)
        .await?;
    let mut subjects = HashMap::with_capacity(rows.len());
    for row in rows {
        let stream: String = row.try_get("stream")?;
        let organization: Option<String> = row.try_get("organization_id")?;
        let state: String = row.try_get("state")?;
        let state = serde_json::from_str::<Map<String, Value>>(&state).unwrap_or_default();
        subjects.insert(stream, (organization, state));
    }
    Ok(subjects)
}

/// One entry of the audit, as `read_audit` holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub position: i64,
    pub organization_id: String,
    pub at: i64,
    pub event_type: String,
    pub stream: String,
    pub subject_kind: String,
    pub subject_id: String,
    pub user_id: Option<String>,
    pub actor_id: Option<String>,
    pub actor_user_name: Option<String>,
    pub actor_organization_id: Option<String>,
    pub authentication: Option<String>,
    pub token_id: Option<String>,
    pub request_id: Option<String>,
    pub client_request_id: Option<String>,
    pub trace_id: Option<String>,
    pub source_address: Option<String>,
    pub user_agent: Option<String>,
    /// `{field: {"before", "after"}}`.
    pub changes: Value,
    /// What a login recorded (the name tried, why it was refused).
    pub details: Option<Value>,
}

impl AuditRow {
    /// When, as RFC 3339 with milliseconds.
    pub fn time(&self) -> Option<String> {
        chrono::DateTime::from_timestamp_millis(self.at)
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }

    /// The entry as the audit API and the JSON Lines export show it.
    pub fn to_json(&self) -> Value {
        json!({
            "position": self.position,
            "time": self.time(),
            "type": self.event_type,
            "subject": { "kind": self.subject_kind, "id": self.subject_id },
            "userId": self.user_id,
            "organization": self.organization_id,
            "actor": {
                "id": self.actor_id,
                "userName": self.actor_user_name,
                "organization": self.actor_organization_id,
            },
            "authentication": { "method": self.authentication, "tokenId": self.token_id },
            "requestId": self.request_id,
            "clientRequestId": self.client_request_id,
            "traceId": self.trace_id,
            "sourceAddress": self.source_address,
            "userAgent": self.user_agent,
            "changes": self.changes,
            "details": self.details,
        })
    }
}

/// What an audit query selects, besides the organization.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Entries at or after this time (epoch milliseconds).
    pub since: Option<i64>,
    /// Entries before this time (epoch milliseconds).
    pub until: Option<i64>,
    /// The actor's id or `userName` (any case).
    pub actor: Option<String>,
    /// Entries about this user.
    pub user: Option<String>,
    /// Entries of these event types (any of them); all when empty.
    pub types: Vec<String>,
    /// Entries of this request (the server's id or the client's).
    pub request: Option<String>,
    /// Entries before this position (the cursor of the page before).
    pub before: Option<i64>,
    /// Entries after this position, oldest first (an export).
    pub after: Option<i64>,
}

const AUDIT_COLUMNS: &str = "position, organization_id, at, event_type, stream, subject_kind, subject_id, \
     user_id, actor_id, actor_user_name, actor_organization_id, authentication, token_id, request_id, \
     client_request_id, trace_id, source_address, user_agent, changes, details";

impl ReadModels {
    /// Up to `limit` entries of `organization`'s audit that match `filter`:
    /// newest first, or oldest first when `filter.after` is set.
    pub async fn audit(
        &self,
        organization: &str,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditRow>> {
        let mut conditions = vec!["organization_id = $1".to_owned()];
        let mut binds: Vec<Bind> = vec![Bind::Text(organization.to_owned())];
        let next = |bind: Bind, binds: &mut Vec<Bind>| {
            binds.push(bind);
            format!("${}", binds.len())
        };
        if let Some(since) = filter.since {
            conditions.push(format!("at >= {}", next(Bind::Integer(since), &mut binds)));
        }
        if let Some(until) = filter.until {
            conditions.push(format!("at < {}", next(Bind::Integer(until), &mut binds)));
        }
        if let Some(actor) = &filter.actor {
            let id = next(Bind::Text(actor.clone()), &mut binds);
            let name = next(Bind::Text(actor.to_lowercase()), &mut binds);
            conditions.push(format!(
                "(actor_id = {id} OR LOWER(actor_user_name) = {name})"
            ));
        }
        if let Some(user) = &filter.user {
            conditions.push(format!(
                "user_id = {}",
                next(Bind::Text(user.clone()), &mut binds)
            ));
        }
        if !filter.types.is_empty() {
            let list: Vec<String> = filter
                .types
                .iter()
                .map(|kind| next(Bind::Text(kind.clone()), &mut binds))
                .collect();
            conditions.push(format!("event_type IN ({})", list.join(", ")));
        }
        if let Some(request) = &filter.request {
            let id = next(Bind::Text(request.clone()), &mut binds);
            let client = next(Bind::Text(request.clone()), &mut binds);
            conditions.push(format!(
                "(request_id = {id} OR client_request_id = {client})"
            ));
        }
        if let Some(before) = filter.before {
            conditions.push(format!(
                "position < {}",
                next(Bind::Integer(before), &mut binds)
            ));
        }
        let order = match filter.after {
            Some(after) => {
                conditions.push(format!(
                    "position > {}",
                    next(Bind::Integer(after), &mut binds)
                ));
                "ASC"
            }
            None => "DESC",
        };
        let limit = next(Bind::Integer(i64::from(limit)), &mut binds);
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM read_audit WHERE {} ORDER BY position {order} LIMIT {limit}",
            conditions.join(" AND ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for bind in binds {
            query = match bind {
                Bind::Text(text) => query.bind(text),
                Bind::Integer(number) => query.bind(number),
            };
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(audit_row).collect()
    }

    /// The position up to which the audit is complete: the audit projector's
    /// checkpoint.
    pub async fn audit_complete_up_to(&self) -> Result<u64> {
        let position: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT position FROM projection_checkpoints WHERE name = 'audit'), 0)",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(position.max(0) as u64)
    }
}

enum Bind {
    Text(String),
    Integer(i64),
}

fn audit_row(row: &sqlx::any::AnyRow) -> Result<AuditRow> {
    let json = |text: Option<String>| text.and_then(|text| serde_json::from_str(&text).ok());
    Ok(AuditRow {
        position: row.try_get("position")?,
        organization_id: row.try_get("organization_id")?,
        at: row.try_get("at")?,
        event_type: row.try_get("event_type")?,
        stream: row.try_get("stream")?,
        subject_kind: row.try_get("subject_kind")?,
        subject_id: row.try_get("subject_id")?,
        user_id: row.try_get("user_id")?,
        actor_id: row.try_get("actor_id")?,
        actor_user_name: row.try_get("actor_user_name")?,
        actor_organization_id: row.try_get("actor_organization_id")?,
        authentication: row.try_get("authentication")?,
        token_id: row.try_get("token_id")?,
        request_id: row.try_get("request_id")?,
        client_request_id: row.try_get("client_request_id")?,
        trace_id: row.try_get("trace_id")?,
        source_address: row.try_get("source_address")?,
        user_agent: row.try_get("user_agent")?,
        changes: json(row.try_get("changes")?).unwrap_or_else(|| json!({})),
        details: json(row.try_get("details")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn a_change_shows_each_differing_field_before_and_after() {
        let (created, changes) = fold(
            &Map::new(),
            "UserCreated",
            &json!({"userName": "a@x.org", "state": "Active", "roles": ["EndUser"], "at": "2026-01-01T00:00:00Z"}),
        );
        assert_eq!(changes["state"], json!({"before": null, "after": "Active"}));
        assert!(
            !changes.contains_key("at"),
            "the time is the entry's, not a field"
        );
        let (changed, changes) = fold(
            &created,
            "UserRolesChanged",
            &json!({"roles": ["AccountAdministrator"], "displaced": ["EndUser"], "at": "x"}),
        );
        assert_eq!(
            Value::Object(changes),
            json!({
                "roles": {"before": ["EndUser"], "after": ["AccountAdministrator"]},
                "displaced": {"before": null, "after": ["EndUser"]},
            })
        );
        assert!(!changed.contains_key("displaced"));
        let (_, unchanged) = fold(&changed, "UserStateChanged", &json!({"state": "Active"}));
        assert!(unchanged.is_empty());
    }

    #[test]
    fn a_deletion_empties_the_subject_and_secrets_never_show() {
        let state = object(json!({"userName": "a@x.org", "state": "Active"}));
        let (after, changes) = fold(&state, "UserDeleted", &json!({"at": "x"}));
        assert!(after.is_empty());
        assert_eq!(
            changes["userName"],
            json!({"before": "a@x.org", "after": null})
        );
        let (after, changes) = fold(
            &Map::new(),
            "TokenDownloaded",
            &json!({"secretHash": "abc", "at": "x"}),
        );
        assert!(after.is_empty() && changes.is_empty());
    }

    #[test]
    fn subjects_are_named_by_their_stream() {
        assert_eq!(subject("user-1f"), ("user", "1f"));
        assert_eq!(subject("org-2a"), ("organization", "2a"));
        assert_eq!(subject("login-2a"), ("login", "2a"));
    }
}
