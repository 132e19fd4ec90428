//! The change feed's contracts (`proto/iam/events/v1`), compiled by
//! `build.rs` with protox, and the mapping from the log's events to them.
//!
//! Each event message mirrors the event's JSON in the log (camelCase
//! names, absent fields at their default), so [`to_feed_event`] reads an
//! event's data straight into its message; a field the contract does not
//! carry (a token's secret hash) is simply not read.

use iam_eventstore::RecordedEvent;
use serde_json::Value;

/// The generated messages and the `EventFeed` client and server.
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod v1 {
    tonic::include_proto!("iam.events.v1");
}

/// The contract as a sorted summary (one line per field and method), for
/// the test that keeps it additive.
pub const CONTRACT: &str = include_str!(concat!(env!("OUT_DIR"), "/contract.txt"));

use v1::event::Payload;

/// Why an event of the log has no message in the contract.
#[derive(Debug, thiserror::Error)]
pub enum Unmapped {
    /// No message has its type's name.
    #[error("event type `{0}` has no message in the contract")]
    UnknownType(String),
    /// Its data does not read as its message.
    #[error("event at position {position} does not read as {event_type}: {reason}")]
    Unreadable {
        /// Where.
        position: u64,
        /// Its type.
        event_type: String,
        /// What serde said.
        reason: String,
    },
}

/// The payload of an event of type `event_type` with `data`.
pub fn payload(event_type: &str, data: &Value) -> Result<Payload, Unmapped> {
    let data = without_nulls(data);
    macro_rules! read {
        ($($name:ident),* $(,)?) => {
            match event_type {
                $(stringify!($name) => serde_json::from_value(data).map(Payload::$name),)*
                other => return Err(Unmapped::UnknownType(other.to_owned())),
            }
        };
    }
    read!(
        OrganizationCreated,
        OrganizationMemberAdded,
        UserCreated,
        UserNameChanged,
        UserProfileChanged,
        UserEmailChanged,
        UserRenamed,
        UserStateChanged,
        UserRolesChanged,
        UserPasswordSet,
        UserPasswordResetRequested,
        UserPasswordReset,
        UserDeleted,
        GroupCreated,
        GroupRenamed,
        GroupExternalIdChanged,
        GroupMembersAdded,
        GroupMembersRemoved,
        GroupDeleted,
        TokenCreated,
        TokenDownloaded,
        TokenRevoked,
        TokenExpired,
        LoginSucceeded,
        LoggedOut,
        LoginFailed,
    )
    .map_err(|error| Unmapped::Unreadable {
        position: 0,
        event_type: event_type.to_owned(),
        reason: error.to_string(),
    })
}

/// The organization whose feed carries `event`: an organization's own
/// events belong to it; any other to the organization its request worked
/// on, else the one its data names (a first start has no request).
pub fn organization_of(event: &RecordedEvent) -> Option<String> {
    if let Some(id) = event.stream.strip_prefix("org-") {
        return Some(id.to_owned());
    }
    let text = |value: &Value| value.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    text(&event.metadata["organization"]).or_else(|| text(&event.data["organization"]))
}

/// The feed's message for an event of the log.
pub fn to_feed_event(event: &RecordedEvent) -> Result<v1::Event, Unmapped> {
    let payload = payload(&event.event_type, &event.data).map_err(|error| match error {
        Unmapped::Unreadable {
            event_type, reason, ..
        } => Unmapped::Unreadable {
            position: event.position,
            event_type,
            reason,
        },
        other => other,
    })?;
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let metadata = &event.metadata;
    let authentication = &metadata["authentication"];
    Ok(v1::Event {
        position: event.position,
        stream: event.stream.clone(),
        revision: event.revision,
        time: event.recorded_at.to_rfc3339(),
        event_type: event.event_type.clone(),
        event_id: event.id.to_string(),
        metadata: Some(v1::Metadata {
            actor: text(&metadata["actor"]),
            actor_user_name: text(&metadata["actorUserName"]),
            actor_organization: text(&metadata["actorOrganization"]),
            organization: text(&metadata["organization"]),
            authentication_method: text(&authentication["method"]),
            token_id: text(&authentication["tokenId"]),
            request_id: text(&metadata["requestId"]),
            client_request_id: text(&metadata["clientRequestId"]),
            trace_id: text(&metadata["traceId"]),
            source_address: text(&metadata["sourceAddress"]),
            user_agent: text(&metadata["userAgent"]),
        }),
        organization: organization_of(event).unwrap_or_default(),
        payload: Some(payload),
    })
}

/// `value` without the object members that are `null` (a message's field
/// is then its default, as when it is absent).
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(_, value)| !value.is_null())
                .map(|(key, value)| (key.clone(), without_nulls(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_events_data_reads_into_its_message() {
        let data = json!({
            "id": "0190d6c2-7c51-7e2a-8d1f-2b3c4d5e6f70",
            "organization": "0190d6c2-7c51-7e2a-8d1f-2b3c4d5e6f71",
            "userName": "jill@example.com",
            "email": "jill@example.com",
            "givenName": "Jill",
            "familyName": "Hill",
            "state": "Active",
            "roles": ["EndUser"],
            "at": "2026-11-30T12:00:00Z",
            "profile": { "externalId": "00u1" },
            "managedByIdentityProvider": true,
        });
        let Payload::UserCreated(user) = payload("UserCreated", &data).unwrap() else {
            panic!("a UserCreated");
        };
        assert_eq!(user.user_name, "jill@example.com");
        assert_eq!(user.roles, ["EndUser"]);
        assert_eq!(user.profile.unwrap().external_id, "00u1");
        assert!(user.managed_by_identity_provider);
    }

    #[test]
    fn nulls_read_as_defaults_and_secret_hashes_are_not_read() {
        let Payload::GroupExternalIdChanged(changed) = payload(
            "GroupExternalIdChanged",
            &json!({ "externalId": null, "at": "2026-11-30T12:00:00Z" }),
        )
        .unwrap() else {
            panic!("a GroupExternalIdChanged");
        };
        assert_eq!(changed.external_id, "");
        let downloaded = payload(
            "TokenDownloaded",
            &json!({ "secretHash": "abc", "at": "2026-11-30T12:00:00Z" }),
        )
        .unwrap();
        assert!(!format!("{downloaded:?}").contains("abc"));
    }

    #[test]
    fn an_unknown_type_is_named() {
        assert!(matches!(
            payload("SomethingNew", &json!({})),
            Err(Unmapped::UnknownType(name)) if name == "SomethingNew"
        ));
    }
}
