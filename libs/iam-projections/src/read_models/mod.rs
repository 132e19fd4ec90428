//! The read models the service answers from, one module per projector with
//! the queries answered from its tables beside it. Each projector owns its
//! tables alone.

mod groups;
mod organizations;
mod tokens;
mod users;

use iam_eventstore::RecordedEvent;
use serde::de::DeserializeOwned;
use serde_json::json;

pub use groups::{GroupRow, GroupsProjector, QueryValue};
pub use organizations::{OrganizationRow, OrganizationsProjector, kind_name};
pub use tokens::{TokenRef, TokenRow, TokensProjector};
pub use users::{TokenHolder, UserRow, UsersProjector};

use crate::{Error, Projector, Result};

/// Decodes a domain event from its type and data, or `None` for events of
/// other aggregates (streams not starting with `prefix`): each projector
/// sees the whole log.
fn decode<E: DeserializeOwned>(
    projector: &str,
    prefix: &str,
    event: &RecordedEvent,
) -> Result<Option<E>> {
    if !event.stream.starts_with(prefix) {
        return Ok(None);
    }
    serde_json::from_value(json!({ "type": event.event_type, "data": event.data }))
        .map(Some)
        .map_err(|error| Error::Apply {
            projector: projector.to_owned(),
            position: event.position,
            reason: format!("cannot decode {}: {error}", event.event_type),
        })
}

fn millis(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_millis()
}

/// Every projector of the service's read models, in the order they run.
pub const ALL: [&dyn Projector; 4] = [
    &OrganizationsProjector,
    &UsersProjector,
    &TokensProjector,
    &GroupsProjector,
];
