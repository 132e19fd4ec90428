//! Handling a command: load the aggregate from its stream (creating loads
//! nothing: the stream cannot exist yet), decide, and append the events with
//! the expected revision (and the userName claim). The read models are
//! written inline, in the append's transaction, so once the append is
//! answered the caller's next read sees it (read-your-writes), and the answer
//! itself is built from what was decided and appended.

use iam_domain::organization::{self, OrgCommand, OrgEvent, Organization};
use iam_domain::token::{self, Token, TokenCommand, TokenEvent};
use iam_domain::user::{self, User, UserCommand, UserEvent};
use iam_domain::{OrgId, TokenId, UserId, UserName};
use iam_eventstore::{Append, Claim, Direction, EventData, ExpectedRevision, StreamStart};
use iam_projections::read_models::UserRow;
use serde::Serialize;
use serde_json::{Value, json};

use crate::App;
use crate::AppError;
use crate::idempotency::Creation;

/// The claim kind that keeps user names unique (lower-cased).
pub const USER_NAME_CLAIM: &str = "userName";
/// The attachment key of a password hash, for the credentials hook.
pub const PASSWORD_HASH: &str = "passwordHash";
/// The claim kind that makes a password-reset code work once (its hash).
pub const RESET_CODE_CLAIM: &str = "passwordResetCode";

/// A password to keep beside the log, handed to the credentials hook with
/// the append that records it (as the append's attachment, never in the
/// log).
#[derive(Clone, Default)]
pub struct NewPassword {
    /// Its Argon2id hash.
    pub hash: String,
    /// Whether it must be changed at first use (a generated bootstrap
    /// password).
    pub must_change: bool,
    /// The session (SHA-256 of its token) that survives the change: the
    /// caller who changed its own password; every other session ends.
    pub keep_session: Option<String>,
    /// The reset code (SHA-256) this completes: claimed, so that it works
    /// once.
    pub reset_code: Option<String>,
}

impl NewPassword {
    /// A password hash with nothing else to it.
    pub fn hashed(hash: String) -> Self {
        Self {
            hash,
            ..Self::default()
        }
    }

    fn attachment(&self) -> Value {
        json!({
            PASSWORD_HASH: self.hash,
            "mustChange": self.must_change,
            "keepSession": self.keep_session,
        })
    }
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewPassword")
            .field("must_change", &self.must_change)
            .finish_non_exhaustive()
    }
}

/// Who caused a change, recorded in the metadata of its events: what an
/// audit shows beside the change. Never a password, a token secret or a
/// session token.
#[derive(Debug, Clone, Default)]
pub struct Cause {
    /// The acting user (none at bootstrap).
    pub actor: Option<String>,
    /// Its `userName` at the time.
    pub actor_user_name: Option<String>,
    /// The acting user's home organization.
    pub actor_organization: Option<String>,
    /// The organization the request worked on (the tenant-context one where
    /// it applies).
    pub organization: Option<String>,
    /// How the actor authenticated.
    pub authentication: Option<Authentication>,
    /// The server's own id of the request.
    pub request_id: Option<String>,
    /// The `X-Request-Id` the client sent, if any, beside the server's.
    pub client_request_id: Option<String>,
    /// The trace id, when traces are exported.
    pub trace_id: Option<String>,
    /// The client's address: the peer's, or what a trusted proxy forwarded.
    pub source_address: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The caller as the policy sees it, when a user asked (none for the
    /// first start and the service's own sweeps): account changes are
    /// checked against it once decided (`policy::may_change_account`).
    /// Never part of the metadata.
    pub acting: Option<iam_domain::policy::Actor>,
}

/// How the actor of a change authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// A login session.
    Session,
    /// A user name and password (a login).
    Password,
    /// An API token, on the identity API.
    ApiToken(String),
    /// An API token, on SCIM 2.0 (an identity provider).
    ScimToken(String),
    /// The first start, which has no actor.
    Bootstrap,
    /// The service itself (the token sweep).
    Service,
    /// A mailed password-reset code (never recorded).
    ResetCode,
}

impl Authentication {
    /// `{"method", "tokenId"}` as the metadata records it.
    pub fn to_json(&self) -> Value {
        let (method, token) = match self {
            Authentication::Session => ("session", None),
            Authentication::ApiToken(token) => ("apiToken", Some(token)),
            Authentication::ScimToken(token) => ("scimToken", Some(token)),
            Authentication::Password => ("password", None),
            Authentication::Bootstrap => ("bootstrap", None),
            Authentication::Service => ("service", None),
            Authentication::ResetCode => ("resetCode", None),
        };
        match token {
            Some(token) => json!({ "method": method, "tokenId": token }),
            None => json!({ "method": method }),
        }
    }
}

impl Cause {
    fn metadata(&self) -> Value {
        json!({
            "actor": self.actor,
            "actorUserName": self.actor_user_name,
            "actorOrganization": self.actor_organization,
            "organization": self.organization,
            "authentication": self.authentication.as_ref().map(Authentication::to_json),
            "requestId": self.request_id,
            "clientRequestId": self.client_request_id,
            "traceId": self.trace_id,
            "sourceAddress": self.source_address,
            "userAgent": self.user_agent,
        })
    }
}

/// A domain event (serialized as `{"type", "data"}`) as the log takes it:
/// its id, type, data, and the cause (with the create's idempotency key) as
/// metadata.
fn event_data(
    event: &impl Serialize,
    event_type: &str,
    cause: &Cause,
    id: uuid::Uuid,
    idempotency: Option<Value>,
) -> Result<EventData, AppError> {
    let mut value = serde_json::to_value(event).map_err(AppError::internal)?;
    let data = value
        .get_mut("data")
        .map(Value::take)
        .unwrap_or(Value::Null);
    let mut metadata = cause.metadata();
    if let Some(idempotency) = idempotency {
        metadata["idempotency"] = idempotency;
    }
    Ok(EventData::new(id, event_type, data).with_metadata(metadata))
}

/// Reads a stream whole and folds it into the aggregate's state.
pub(crate) async fn load<E, S>(
    state: &App,
    stream: &str,
    apply: impl Fn(Option<S>, &E) -> Option<S>,
) -> Result<(Option<S>, Option<u64>), AppError>
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
                .map_err(AppError::internal)?;
        aggregate = apply(aggregate, &event);
    }
    Ok((aggregate, revision))
}

/// A user as its stream leaves it, and the stream's revision.
pub async fn load_user(state: &App, id: UserId) -> Result<(Option<User>, Option<u64>), AppError> {
    load(state, &id.stream(), user::apply).await
}

/// An organization as its stream leaves it, and the stream's revision.
pub async fn load_organization(
    state: &App,
    id: OrgId,
) -> Result<(Option<Organization>, Option<u64>), AppError> {
    load(state, &id.stream(), organization::apply).await
}

/// What a user command wrote: its events (none when nothing changed), the
/// user as they leave it, and the stream's revision after it (the user's
/// new ETag).
#[derive(Debug)]
pub struct UserWritten {
    pub events: Vec<UserEvent>,
    pub user: Option<User>,
    pub revision: Option<u64>,
}

impl UserWritten {
    /// The user's row after the write, for its answer (`None`: deleted).
    pub fn row(&self) -> Option<UserRow> {
        crate::users::row_of(self.user.as_ref()?, self.revision?)
    }
}

/// An aggregate as its creation left it (its stream's first append: the
/// events that share the first one's request id), the events, and the
/// revision after them: the answer to a retried create, even once the
/// aggregate has changed or is gone.
pub(crate) async fn as_created<E, S>(
    state: &App,
    stream: &str,
    apply: impl Fn(Option<S>, &E) -> Option<S>,
) -> Result<(Option<S>, Vec<E>, Option<u64>), AppError>
where
    E: serde::de::DeserializeOwned,
{
    let recorded = state
        .store
        .read_stream(stream, Direction::Forwards, StreamStart::Edge, 16)
        .await?;
    let request = recorded
        .first()
        .map(|event| event.metadata["requestId"].clone());
    let (mut aggregate, mut events, mut revision) = (None, Vec::new(), None);
    for event in recorded
        .iter()
        .take_while(|event| Some(&event.metadata["requestId"]) == request.as_ref())
    {
        let decoded: E =
            serde_json::from_value(json!({ "type": event.event_type, "data": event.data }))
                .map_err(AppError::internal)?;
        aggregate = apply(aggregate, &decoded);
        events.push(decoded);
        revision = Some(event.revision);
    }
    Ok((aggregate, events, revision))
}

/// A user as its creation left it, for the answer to a retried create.
pub async fn created_user(state: &App, id: UserId) -> Result<UserWritten, AppError> {
    let (user, events, revision) = as_created(state, &id.stream(), user::apply).await?;
    Ok(UserWritten {
        events,
        user,
        revision,
    })
}

/// Creates a user: decides on a stream that cannot exist yet (its id is
/// new), claims the user name, and hands the password hash, if any, to the
/// credentials hook in the same transaction.
#[tracing::instrument(name = "command", skip_all, fields(kind = "CreateUser"))]
pub async fn create_user(
    state: &App,
    command: UserCommand,
    cause: &Cause,
    password: Option<NewPassword>,
    creation: &Creation,
) -> Result<UserWritten, AppError> {
    let events = user::decide(None, command)?;
    if let Some(actor) = &cause.acting {
        iam_domain::policy::may_change_account(actor, None, &events)
            .map_err(|denied| AppError::forbidden(denied.0))?;
    }
    let Some(UserEvent::UserCreated { id, user_name, .. }) = events.first() else {
        return Err(AppError::internal(anyhow::anyhow!(
            "creating a user decided no UserCreated event"
        )));
    };
    let id = *id;
    let name = UserName::parse(user_name).map_err(iam_domain::DomainError::from)?;
    let mut append = append_of(
        id.stream(),
        None,
        &events,
        UserEvent::event_type,
        cause,
        Some(creation),
    )?
    .claim(Claim::new(USER_NAME_CLAIM, name.canonical()));
    if let Some(password) = password {
        append = append.attach(password.attachment());
    }
    let result = state.store.submit(append).await?;
    Ok(UserWritten {
        user: events.iter().fold(None, user::apply),
        events,
        revision: result.revision,
    })
}

/// Decides and appends a user command. With `if_match`, the append expects
/// exactly that revision: a change committed since the caller read the user
/// is 412, never a lost update. Deleting releases the user name.
pub async fn run_user_command(
    state: &App,
    id: UserId,
    command: UserCommand,
    cause: &Cause,
    if_match: Option<u64>,
) -> Result<UserWritten, AppError> {
    run_user_command_with_password(state, id, command, cause, if_match, None).await
}

/// [`run_user_command`], handing a new password (for a command that sets
/// one) to the credentials hook in the append's transaction. A change
/// of the user name moves its claim.
#[tracing::instrument(name = "command", skip_all, fields(stream = %id.stream()))]
pub async fn run_user_command_with_password(
    state: &App,
    id: UserId,
    command: UserCommand,
    cause: &Cause,
    if_match: Option<u64>,
    password: Option<NewPassword>,
) -> Result<UserWritten, AppError> {
    let (current, revision) = load_user(state, id).await?;
    if if_match.is_some_and(|expected| revision != Some(expected)) {
        return Err(changed_since_read("user", revision));
    }
    let events = user::decide(current.as_ref(), command)?;
    if let Some(actor) = &cause.acting {
        iam_domain::policy::may_change_account(actor, current.as_ref(), &events)
            .map_err(|denied| AppError::forbidden(denied.0))?;
    }
    if events.is_empty() {
        return Ok(UserWritten {
            events,
            user: current,
            revision,
        });
    }
    let mut append = append_of(
        id.stream(),
        revision,
        &events,
        UserEvent::event_type,
        cause,
        None,
    )?;
    if events
        .iter()
        .any(|event| matches!(event, UserEvent::UserDeleted { .. }))
        && let Some(user) = &current
    {
        append = append.release(Claim::new(USER_NAME_CLAIM, user.user_name.canonical()));
    }
    for event in &events {
        if let UserEvent::UserNameChanged { user_name, .. } = event
            && let Some(user) = &current
            && let Ok(new) = UserName::parse(user_name)
            && new.canonical() != user.user_name.canonical()
        {
            append = append
                .release(Claim::new(USER_NAME_CLAIM, user.user_name.canonical()))
                .claim(Claim::new(USER_NAME_CLAIM, new.canonical()));
        }
    }
    if let Some(password) = password
        && events.iter().any(|event| {
            matches!(
                event,
                UserEvent::UserPasswordSet { .. } | UserEvent::UserPasswordReset { .. }
            )
        })
    {
        if let Some(code) = &password.reset_code {
            append = append.claim(Claim::new(RESET_CODE_CLAIM, code.clone()));
        }
        append = append.attach(password.attachment());
    }
    let submitted = state.store.submit(append).await;
    // The user may be a caller whose state, roles or sessions just changed.
    state.recent_callers.clear();
    match submitted {
        Err(iam_eventstore::Error::WrongExpectedVersion { current, .. }) if if_match.is_some() => {
            Err(changed_since_read("user", current))
        }
        Err(error) => Err(error.into()),
        Ok(result) => Ok(UserWritten {
            user: events.iter().fold(current, user::apply),
            events,
            revision: result.revision,
        }),
    }
}

/// Deletes a user (as `source` may: a user an identity provider manages is
/// deleted only by it) and revokes its tokens, wherever they are scoped:
/// its sessions end and its password is forgotten in the same transaction
/// as the deletion.
#[tracing::instrument(name = "command", skip_all, fields(stream = %id.stream(), kind = "DeleteUser"))]
pub async fn delete_user(
    state: &App,
    id: UserId,
    source: user::Source,
    cause: &Cause,
    if_match: Option<u64>,
) -> Result<(), AppError> {
    let at = chrono::Utc::now();
    run_user_command(
        state,
        id,
        UserCommand::Delete { source, at },
        cause,
        if_match,
    )
    .await?;
    for token in state
        .read_models
        .tokens_of_user(&id.to_string(), at.timestamp_millis())
        .await?
    {
        if let Some(token_id) = TokenId::parse(&token.id) {
            run_token_command(state, token_id, TokenCommand::Revoke { at }, cause, None).await?;
        }
    }
    Ok(())
}

/// 412: the `what` ("user", "group") changed since the caller read it.
pub(crate) fn changed_since_read(what: &str, revision: Option<u64>) -> AppError {
    let now = revision.map_or_else(|| "gone".to_owned(), |r| format!("\"{r}\""));
    AppError::refused(
        crate::Refusal::PreconditionFailed,
        format!(
            "The {what} has changed since you read it (its ETag is now {now}); read it again and retry."
        ),
    )
}

/// A token as its stream leaves it, and the stream's revision.
pub async fn load_token(
    state: &App,
    id: TokenId,
) -> Result<(Option<Token>, Option<u64>), AppError> {
    load(state, &id.stream(), token::apply).await
}

/// Decides and appends a token command. A concurrent change to the token
/// (two downloads at once) is decided again on the new state, so the loser
/// hears why it lost (already downloaded) rather than "try again".
#[tracing::instrument(name = "command", skip_all, fields(stream = %id.stream()))]
pub async fn run_token_command(
    state: &App,
    id: TokenId,
    command: TokenCommand,
    cause: &Cause,
    creation: Option<&Creation>,
) -> Result<Vec<TokenEvent>, AppError> {
    // A create decides on a stream that cannot exist yet: nothing to load,
    // and a stream found there after all is a conflict, not a retry.
    let creating = matches!(command, TokenCommand::Create { .. });
    loop {
        let (current, revision) = if creating {
            (None, None)
        } else {
            load_token(state, id).await?
        };
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
            creation,
        )?;
        let submitted = state.store.submit(append).await;
        if !creating {
            // The token may be a caller's credential that was just revoked.
            state.recent_callers.clear();
        }
        match submitted {
            Err(iam_eventstore::Error::WrongExpectedVersion { .. }) if !creating => continue,
            Err(error) => return Err(error.into()),
            Ok(_) => return Ok(events),
        }
    }
}

/// Decides and appends an organization command (a create loads nothing).
#[tracing::instrument(name = "command", skip_all, fields(stream = %id.stream()))]
pub async fn run_org_command(
    state: &App,
    id: OrgId,
    command: OrgCommand,
    cause: &Cause,
    claims: Vec<Claim>,
    creation: Option<&Creation>,
) -> Result<Vec<OrgEvent>, AppError> {
    // A create decides on a stream that cannot exist yet: nothing to load.
    let (current, revision) = match command {
        OrgCommand::CreateProvider { .. } | OrgCommand::CreateTenant { .. } => (None, None),
        _ => load_organization(state, id).await?,
    };
    let events = organization::decide(current.as_ref(), command)?;
    if events.is_empty() {
        return Ok(events);
    }
    let mut append = append_of(
        id.stream(),
        revision,
        &events,
        OrgEvent::event_type,
        cause,
        creation,
    )?;
    for claim in claims {
        append = append.claim(claim);
    }
    state.store.submit(append).await?;
    Ok(events)
}

/// The append of `events` to `stream`, expected at `revision` (no stream
/// when `None`), each with the cause as its metadata; a create names its
/// events as `creation` says.
/// Records a login attempt on its organization's login stream, durably:
/// a login the audit cannot show does not happen.
#[tracing::instrument(name = "command", skip_all, fields(kind = "RecordLogin"))]
pub async fn record_login(
    state: &App,
    event: &iam_domain::login::LoginEvent,
    cause: &Cause,
) -> Result<(), AppError> {
    let data = event_data(event, event.event_type(), cause, uuid::Uuid::new_v4(), None)?;
    let stream = iam_domain::login::stream(event.organization());
    state
        .store
        .submit(Append::new(stream, ExpectedRevision::Any, vec![data]))
        .await?;
    Ok(())
}

pub(crate) fn append_of<E: Serialize>(
    stream: String,
    revision: Option<u64>,
    events: &[E],
    event_type: impl Fn(&E) -> &'static str,
    cause: &Cause,
    creation: Option<&Creation>,
) -> Result<Append, AppError> {
    let data = events
        .iter()
        .enumerate()
        .map(|(index, event)| {
            let (id, idempotency) = match creation {
                Some(creation) => (creation.event_id(index), creation.metadata()),
                None => (uuid::Uuid::new_v4(), None),
            };
            event_data(event, event_type(event), cause, id, idempotency)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let expected = revision.map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact);
    Ok(Append::new(stream, expected, data))
}
