//! An audit entry as one Open Cybersecurity Schema Framework event (OCSF
//! 1.5.0), in the Identity & Access Management category (3), so that a
//! SIEM that takes OCSF ingests the export as it is:
//!
//! | events | OCSF class |
//! |---|---|
//! | a user created, enabled, disabled, deleted, its password set, other changes | Account Change (3001) |
//! | logins, successful or not, and logouts | Authentication (3002) |
//! | organizations and API tokens | Entity Management (3004) |
//! | a user's roles changed | User Access Management (3005) |
//! | groups | Group Management (3006) |
//!
//! The actor is `actor.user`, the source address `src_endpoint.ip`, the
//! user agent `http_request.user_agent`, the request id
//! `metadata.correlation_uid`. A field the entry lacks is left out, never
//! null: OCSF's schema refuses nulls.

use iam_projections::read_models::AuditRow;
use serde_json::{Map, Value, json};

/// The OCSF version the events follow.
pub(crate) const VERSION: &str = "1.5.0";
const CATEGORY_IAM: i64 = 3;
const SEVERITY_INFORMATIONAL: i64 = 1;
const STATUS_SUCCESS: i64 = 1;
const STATUS_FAILURE: i64 = 2;
/// Activity "Other", where OCSF has no closer one.
const OTHER: i64 = 99;

/// OCSF's classes of the IAM category that the export emits.
mod class {
    pub(super) const ACCOUNT_CHANGE: i64 = 3001;
    pub(super) const AUTHENTICATION: i64 = 3002;
    pub(super) const ENTITY_MANAGEMENT: i64 = 3004;
    pub(super) const USER_ACCESS: i64 = 3005;
    pub(super) const GROUP_MANAGEMENT: i64 = 3006;
}

/// The OCSF event of an audit entry.
pub(crate) fn event(row: &AuditRow) -> Value {
    let after = |field: &str| row.changes.get(field).map(|change| &change["after"]);
    let before = |field: &str| row.changes.get(field).map(|change| &change["before"]);
    let mut event = Map::new();
    let mut status = STATUS_SUCCESS;
    let (class, activity) = match row.event_type.as_str() {
        "UserCreated" => (class::ACCOUNT_CHANGE, 1),
        "UserStateChanged" if after("state") == Some(&json!("Active")) => {
            (class::ACCOUNT_CHANGE, 2)
        }
        "UserStateChanged" => (class::ACCOUNT_CHANGE, 5),
        "UserPasswordSet" => (class::ACCOUNT_CHANGE, 3),
        "UserPasswordResetRequested" | "UserPasswordReset" => (class::ACCOUNT_CHANGE, 4),
        "UserDeleted" => (class::ACCOUNT_CHANGE, 6),
        "UserRolesChanged" => {
            let roles = |value: Option<&Value>| -> Vec<String> {
                value
                    .and_then(Value::as_array)
                    .map(|roles| {
                        roles
                            .iter()
                            .filter_map(|r| r.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (old, new) = (roles(before("roles")), roles(after("roles")));
            let added: Vec<&String> = new.iter().filter(|role| !old.contains(role)).collect();
            let removed: Vec<&String> = old.iter().filter(|role| !new.contains(role)).collect();
            let (activity, privileges) = if added.is_empty() && !removed.is_empty() {
                (2, removed)
            } else {
                (1, added)
            };
            event.insert("privileges".into(), json!(privileges));
            (class::USER_ACCESS, activity)
        }
        kind if kind.starts_with("User") => (class::ACCOUNT_CHANGE, OTHER),
        "LoginSucceeded" => (class::AUTHENTICATION, 1),
        "LoggedOut" => (class::AUTHENTICATION, 2),
        "LoginFailed" => {
            status = STATUS_FAILURE;
            if let Some(reason) = row.details.as_ref().and_then(|d| d["reason"].as_str()) {
                event.insert("status_detail".into(), json!(reason));
            }
            (class::AUTHENTICATION, 1)
        }
        "GroupCreated" => (class::GROUP_MANAGEMENT, 6),
        "GroupDeleted" => (class::GROUP_MANAGEMENT, 5),
        "GroupMembersAdded" => (class::GROUP_MANAGEMENT, 3),
        "GroupMembersRemoved" => (class::GROUP_MANAGEMENT, 4),
        kind if kind.starts_with("Group") => (class::GROUP_MANAGEMENT, OTHER),
        kind if kind.ends_with("Created") => (class::ENTITY_MANAGEMENT, 1),
        "TokenDownloaded" => (class::ENTITY_MANAGEMENT, 8),
        "TokenRevoked" => (class::ENTITY_MANAGEMENT, 9),
        "TokenExpired" => (class::ENTITY_MANAGEMENT, 11),
        _ => (class::ENTITY_MANAGEMENT, 3),
    };
    event.insert("category_uid".into(), json!(CATEGORY_IAM));
    event.insert("class_uid".into(), json!(class));
    event.insert("activity_id".into(), json!(activity));
    event.insert("type_uid".into(), json!(class * 100 + activity));
    event.insert("time".into(), json!(row.at));
    event.insert("severity_id".into(), json!(SEVERITY_INFORMATIONAL));
    event.insert("status_id".into(), json!(status));
    event.insert("message".into(), json!(row.event_type));
    let mut metadata = json!({
        "version": VERSION,
        "product": { "name": "iamd", "vendor_name": "IAM provisioning service" },
        "uid": row.position.to_string(),
    });
    if let Some(request) = &row.request_id {
        metadata["correlation_uid"] = json!(request);
    }
    event.insert("metadata".into(), metadata);
    if let Some(actor) = &row.actor_id {
        let mut user = json!({ "uid": actor });
        if let Some(name) = &row.actor_user_name {
            user["name"] = json!(name);
        }
        event.insert("actor".into(), json!({ "user": user }));
    }
    if let Some(address) = &row.source_address {
        event.insert("src_endpoint".into(), json!({ "ip": address }));
    }
    if let Some(agent) = &row.user_agent {
        event.insert("http_request".into(), json!({ "user_agent": agent }));
    }
    // The subject, in the object its class names it with.
    match class {
        class::ACCOUNT_CHANGE | class::USER_ACCESS | class::AUTHENTICATION => {
            let mut user = Map::new();
            if let Some(id) = row.user_id.as_ref().filter(|id| !id.is_empty()) {
                user.insert("uid".into(), json!(id));
            }
            let name = row
                .details
                .as_ref()
                .and_then(|details| details["userName"].as_str())
                .or_else(|| after("userName").and_then(Value::as_str));
            if let Some(name) = name {
                user.insert("name".into(), json!(name));
            }
            if user.is_empty() {
                user.insert("uid".into(), json!(row.subject_id));
            }
            event.insert("user".into(), Value::Object(user));
            if class == class::AUTHENTICATION {
                event.insert("service".into(), json!({ "name": "iamd" }));
            }
        }
        class::GROUP_MANAGEMENT => {
            let mut group = json!({ "uid": row.subject_id });
            if let Some(name) = after("displayName").and_then(Value::as_str) {
                group["name"] = json!(name);
            }
            event.insert("group".into(), group);
        }
        _ => {
            let mut entity = json!({ "uid": row.subject_id, "type": row.subject_kind });
            if let Some(name) = after("name").and_then(Value::as_str) {
                entity["name"] = json!(name);
            }
            event.insert("entity".into(), entity);
        }
    }
    Value::Object(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(event_type: &str, changes: Value) -> AuditRow {
        AuditRow {
            position: 7,
            organization_id: "org".into(),
            at: 1_764_500_000_000,
            event_type: event_type.into(),
            stream: "user-u1".into(),
            subject_kind: "user".into(),
            subject_id: "u1".into(),
            user_id: Some("u1".into()),
            actor_id: Some("a1".into()),
            actor_user_name: Some("boss@example.com".into()),
            actor_organization_id: Some("org".into()),
            authentication: Some("session".into()),
            token_id: None,
            request_id: Some("r1".into()),
            client_request_id: None,
            trace_id: None,
            source_address: Some("203.0.113.9".into()),
            user_agent: Some("curl/8".into()),
            changes,
            details: None,
        }
    }

    #[test]
    fn a_role_change_assigns_or_revokes_privileges() {
        let granted = event(&row(
            "UserRolesChanged",
            json!({"roles": {"before": ["EndUser"], "after": ["AccountAdministrator"]}}),
        ));
        assert_eq!(granted["type_uid"], 300_501);
        assert_eq!(granted["privileges"], json!(["AccountAdministrator"]));
        let revoked = event(&row(
            "UserRolesChanged",
            json!({"roles": {"before": ["NetworkAdministrator", "VirtualInfrastructureAdministrator"], "after": ["NetworkAdministrator"]}}),
        ));
        assert_eq!(revoked["type_uid"], 300_502);
        assert_eq!(
            revoked["privileges"],
            json!(["VirtualInfrastructureAdministrator"])
        );
    }

    #[test]
    fn the_actor_address_and_agent_go_in_ocsfs_own_fields_and_nothing_is_null() {
        let created = event(&row(
            "UserCreated",
            json!({"userName": {"before": null, "after": "j@x.org"}}),
        ));
        assert_eq!(created["type_uid"], 300_101);
        assert_eq!(
            created["actor"]["user"],
            json!({"uid": "a1", "name": "boss@example.com"})
        );
        assert_eq!(created["src_endpoint"]["ip"], "203.0.113.9");
        assert_eq!(created["http_request"]["user_agent"], "curl/8");
        assert_eq!(created["user"], json!({"uid": "u1", "name": "j@x.org"}));
        assert!(!created.to_string().contains("null"));
        let mut bootstrap = row("OrganizationCreated", json!({}));
        bootstrap.actor_id = None;
        bootstrap.source_address = None;
        bootstrap.user_agent = None;
        bootstrap.request_id = None;
        let entity = event(&bootstrap);
        assert_eq!(entity["class_uid"], 3004);
        assert!(entity.get("actor").is_none());
        assert!(!entity.to_string().contains("null"));
    }
}
