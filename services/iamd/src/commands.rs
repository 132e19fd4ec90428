//! Handling a command: load the aggregate from its stream, decide, append
//! the events with the expected revision (and the userName claim), then wait
//! until the read models include them, so that the answer and the caller's
//! next read agree (read-your-writes).

use std::time::Duration;

use iam_domain::organization::{self, OrgCommand, OrgEvent, Organization};
use iam_domain::token::{self, Token, TokenCommand, TokenEvent};
use iam_domain::user::{self, User, UserCommand, UserEvent};
use iam_domain::{OrgId, TokenId, UserId, UserName};
use iam_eventstore::{Append, Claim, Direction, EventData, ExpectedRevision, StreamStart};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::startup::AppState;

/// The claim kind that keeps user names unique (lower-cased).
pub(crate) const USER_NAME_CLAIM: &str = "userName";
/// How long a write waits for the read models before it answers anyway.
const VISIBILITY_WAIT: Duration = Duration::from_secs(30);

/// Who caused a change, recorded in the metadata of its events.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cause {
    /// The acting user (none at bootstrap).
    pub(crate) actor: Option<String>,
    /// The acting user's home organization.
    pub(crate) actor_organization: Option<String>,
    /// The organization the request worked on.
    pub(crate) organization: Option<String>,
    /// The request id.
    pub(crate) request_id: Option<String>,
    /// The trace id, when traces are exported.
    pub(crate) trace_id: Option<String>,
}

impl Cause {
    fn metadata(&self) -> Value {
        json!({
            "actor": self.actor,
            "actorOrganization": self.actor_organization,
            "organization": self.organization,
            "requestId": self.request_id,
            "traceId": self.trace_id,
        })
    }
}

/// The `data` half of a domain event serialized as `{"type", "data"}`.
fn event_data(
    event: &impl Serialize,
    event_type: &str,
    cause: &Cause,
) -> Result<EventData, ApiError> {
    let mut value = serde_json::to_value(event).map_err(ApiError::internal)?;
    let data = value
        .get_mut("data")
        .map(Value::take)
        .unwrap_or(Value::Null);
    Ok(EventData::new(uuid::Uuid::new_v4(), event_type, data).with_metadata(cause.metadata()))
}

/// Reads a stream whole and folds it into the aggregate's state.
async fn load<E, S>(
    state: &AppState,
    stream: &str,
    apply: impl Fn(Option<S>, &E) -> Option<S>,
) -> Result<(Option<S>, Option<u64>), ApiError>
where
    E: serde::de::DeserializeOwned,
{
    let events = state
        .store
        .read_stream(stream, Direction::Forwards, StreamStart::Edge, usize::MAX)
        .await?;
    let revision = events.last().map(|event| event.revision);
    let mut aggregate = None;
    for recorded in &events {
        let event: E =
            serde_json::from_value(json!({ "type": recorded.event_type, "data": recorded.data }))
                .map_err(ApiError::internal)?;
        aggregate = apply(aggregate, &event);
    }
    Ok((aggregate, revision))
}

/// A user as its stream leaves it, and the stream's revision.
pub(crate) async fn load_user(
    state: &AppState,
    id: UserId,
) -> Result<(Option<User>, Option<u64>), ApiError> {
    load(state, &id.stream(), user::apply).await
}

/// An organization as its stream leaves it, and the stream's revision.
pub(crate) async fn load_organization(
    state: &AppState,
    id: OrgId,
) -> Result<(Option<Organization>, Option<u64>), ApiError> {
    load(state, &id.stream(), organization::apply).await
}

/// Decides and appends a user command; returns the events (none when
/// nothing changed). Creating claims the user name; deleting releases it.
pub(crate) async fn run_user_command(
    state: &AppState,
    id: UserId,
    command: UserCommand,
    cause: &Cause,
) -> Result<Vec<UserEvent>, ApiError> {
    let (current, revision) = load_user(state, id).await?;
    let events = user::decide(current.as_ref(), command)?;
    if events.is_empty() {
        return Ok(events);
    }
    let mut append = append_of(id.stream(), revision, &events, UserEvent::event_type, cause)?;
    for event in &events {
        match event {
            UserEvent::UserCreated { user_name, .. } => {
                let name = UserName::parse(user_name).map_err(iam_domain::DomainError::from)?;
                append = append.claim(Claim::new(USER_NAME_CLAIM, name.canonical()));
            }
            UserEvent::UserDeleted { .. } => {
                if let Some(user) = &current {
                    append =
                        append.release(Claim::new(USER_NAME_CLAIM, user.user_name.canonical()));
                }
            }
            _ => {}
        }
    }
    submit(state, append).await?;
    Ok(events)
}

/// A token as its stream leaves it, and the stream's revision.
pub(crate) async fn load_token(
    state: &AppState,
    id: TokenId,
) -> Result<(Option<Token>, Option<u64>), ApiError> {
    load(state, &id.stream(), token::apply).await
}

/// Decides and appends a token command. A concurrent change to the token
/// (two downloads at once) is decided again on the new state, so the loser
/// hears why it lost (already downloaded) rather than "try again".
pub(crate) async fn run_token_command(
    state: &AppState,
    id: TokenId,
    command: TokenCommand,
    cause: &Cause,
) -> Result<Vec<TokenEvent>, ApiError> {
    loop {
        let (current, revision) = load_token(state, id).await?;
        let events = token::decide(current.as_ref(), command.clone())?;
        if events.is_empty() {
            return Ok(events);
        }
        let append = append_of(
            id.stream(),
            revision,
            &events,
            TokenEvent::event_type,
            cause,
        )?;
        match state.store.submit(append).await {
            Err(iam_eventstore::Error::WrongExpectedVersion { .. }) => continue,
            Err(error) => return Err(error.into()),
            Ok(result) => {
                wait_until_visible(state, result.last_position()).await;
                return Ok(events);
            }
        }
    }
}

/// Decides and appends an organization command.
pub(crate) async fn run_org_command(
    state: &AppState,
    id: OrgId,
    command: OrgCommand,
    cause: &Cause,
    claims: Vec<Claim>,
) -> Result<Vec<OrgEvent>, ApiError> {
    let (current, revision) = load_organization(state, id).await?;
    let events = organization::decide(current.as_ref(), command)?;
    if events.is_empty() {
        return Ok(events);
    }
    let mut append = append_of(id.stream(), revision, &events, OrgEvent::event_type, cause)?;
    for claim in claims {
        append = append.claim(claim);
    }
    submit(state, append).await?;
    Ok(events)
}

/// The append of `events` to `stream`, expected at `revision` (no stream
/// when `None`), each with the cause as its metadata.
fn append_of<E: Serialize>(
    stream: String,
    revision: Option<u64>,
    events: &[E],
    event_type: impl Fn(&E) -> &'static str,
    cause: &Cause,
) -> Result<Append, ApiError> {
    let data = events
        .iter()
        .map(|event| event_data(event, event_type(event), cause))
        .collect::<Result<Vec<_>, _>>()?;
    let expected = revision.map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact);
    Ok(Append::new(stream, expected, data))
}

/// Appends, then waits until the read models include the append.
async fn submit(state: &AppState, append: Append) -> Result<(), ApiError> {
    let result = state.store.submit(append).await?;
    wait_until_visible(state, result.last_position()).await;
    Ok(())
}

/// Waits until the read models include `position` (or a generous bound passes).
async fn wait_until_visible(state: &AppState, position: Option<u64>) {
    if let Some(position) = position {
        let visible =
            tokio::time::timeout(VISIBILITY_WAIT, state.projections.wait_for(position)).await;
        if !matches!(visible, Ok(Ok(()))) {
            tracing::warn!(
                position,
                "the read models did not catch up with a write in time"
            );
        }
    }
}
