//! The values that go into and come out of the log.

use std::fmt;

use chrono::{DateTime, Timelike, Utc};
use serde_json::Value;
use uuid::Uuid;

/// An event to append: the caller chooses its id, so a retry can send the
/// same ids again and be recognized as a retry.
#[derive(Debug, Clone, PartialEq)]
pub struct EventData {
    /// Unique id of the event, chosen by the writer of the event.
    pub id: Uuid,
    /// The event type, e.g. `UserCreated`.
    pub event_type: String,
    /// The event's payload.
    pub data: Value,
    /// Who caused it and why (actor, request id, trace id, …).
    pub metadata: Value,
}

impl EventData {
    /// An event with empty metadata.
    pub fn new(id: Uuid, event_type: impl Into<String>, data: Value) -> Self {
        Self {
            id,
            event_type: event_type.into(),
            data,
            metadata: Value::Object(serde_json::Map::new()),
        }
    }

    /// The same event with the given metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }
}

/// An event as the log holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// The id given at append.
    pub id: Uuid,
    /// The event type.
    pub event_type: String,
    /// The event's payload.
    pub data: Value,
    /// The event's metadata.
    pub metadata: Value,
    /// The stream the event belongs to.
    pub stream: String,
    /// Its revision in that stream, from 0.
    pub revision: u64,
    /// Its position in the whole log, from 1, gapless, in commit order.
    pub position: u64,
    /// When the transaction that appended it was committed (to the writer's clock).
    pub recorded_at: DateTime<Utc>,
}

/// What an append expects of the stream's current revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedRevision {
    /// Whatever the stream's state.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must exist (hold at least one event).
    StreamExists,
    /// The stream's last event must be at exactly this revision.
    Exact(u64),
}

impl ExpectedRevision {
    /// Whether a stream at `current` satisfies this expectation.
    pub fn accepts(self, current: Option<u64>) -> bool {
        match self {
            ExpectedRevision::Any => true,
            ExpectedRevision::NoStream => current.is_none(),
            ExpectedRevision::StreamExists => current.is_some(),
            ExpectedRevision::Exact(revision) => current == Some(revision),
        }
    }
}

impl fmt::Display for ExpectedRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedRevision::Any => f.write_str("any revision"),
            ExpectedRevision::NoStream => f.write_str("no stream"),
            ExpectedRevision::StreamExists => f.write_str("an existing stream"),
            ExpectedRevision::Exact(revision) => write!(f, "revision {revision}"),
        }
    }
}

/// A uniqueness claim: at most one stream holds a given `(kind, value)`.
///
/// Values are compared exactly; a caller that wants case-insensitive
/// uniqueness normalizes the value before claiming it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Claim {
    /// What is claimed, e.g. `userName`.
    pub kind: String,
    /// The claimed value, e.g. `jill@example.com`.
    pub value: String,
}

impl Claim {
    /// A claim of `value` under `kind`.
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            value: value.into(),
        }
    }
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.kind, self.value)
    }
}

/// One append: events for one stream, the expectation they are written
/// under, and the uniqueness claims taken and released with them.
#[derive(Clone, PartialEq)]
pub struct Append {
    /// The stream appended to.
    pub stream: String,
    /// What the stream's revision must be.
    pub expected: ExpectedRevision,
    /// The events, in order.
    pub events: Vec<EventData>,
    /// Claims the stream takes with this append (already held by the same
    /// stream: nothing changes).
    pub claims: Vec<Claim>,
    /// Claims the stream gives up with this append (not held: nothing changes).
    pub releases: Vec<Claim>,
    /// Data for the inline hook alone, written beside the log in the same
    /// transaction (a password hash, say) and never into the log itself.
    pub attachment: Option<Value>,
}

impl fmt::Debug for Append {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The attachment may be a secret's hash: never shown.
        f.debug_struct("Append")
            .field("stream", &self.stream)
            .field("expected", &self.expected)
            .field("events", &self.events)
            .field("claims", &self.claims)
            .field("releases", &self.releases)
            .field(
                "attachment",
                &self.attachment.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Append {
    /// An append of `events` to `stream` under `expected`, with no claims.
    pub fn new(
        stream: impl Into<String>,
        expected: ExpectedRevision,
        events: Vec<EventData>,
    ) -> Self {
        Self {
            stream: stream.into(),
            expected,
            events,
            claims: Vec::new(),
            releases: Vec::new(),
            attachment: None,
        }
    }

    /// Also give the inline hook `attachment` (see [`Append::attachment`]).
    #[must_use]
    pub fn attach(mut self, attachment: Value) -> Self {
        self.attachment = Some(attachment);
        self
    }

    /// Also take `claim`, atomically with the events.
    #[must_use]
    pub fn claim(mut self, claim: Claim) -> Self {
        self.claims.push(claim);
        self
    }

    /// Also release `claim`, atomically with the events.
    #[must_use]
    pub fn release(mut self, claim: Claim) -> Self {
        self.releases.push(claim);
        self
    }

    pub(crate) fn event_count(&self) -> usize {
        self.events.len()
    }
}

/// The outcome of a successful append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream's revision after the append: the revision of its last
    /// event (`None` only for an empty append to a stream that does not exist).
    pub revision: Option<u64>,
    /// Global positions of the appended events, first and last; `None` for an
    /// empty append.
    pub positions: Option<(u64, u64)>,
}

impl AppendResult {
    /// The position of the last event appended, if any: what a reader waits
    /// for to see this append.
    pub fn last_position(&self) -> Option<u64> {
        self.positions.map(|(_, last)| last)
    }
}

/// Which way to read a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    Forwards,
    /// Newest first.
    Backwards,
}

/// Where to start reading a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStart {
    /// The first event (forwards) or the last (backwards).
    Edge,
    /// This revision, included.
    Revision(u64),
}

/// The SQL of a stream read in `direction` (the same text serves both
/// backends: `$1` stream, `$2` first revision, `$3` limit) and the revision
/// to start from.
pub(crate) fn stream_read(direction: Direction, start: StreamStart) -> (&'static str, i64) {
    let sql = match direction {
        Direction::Forwards => {
            "SELECT position, event_id, stream, revision, event_type, data, metadata, recorded_at \
             FROM events WHERE stream = $1 AND revision >= $2 ORDER BY revision LIMIT $3"
        }
        Direction::Backwards => {
            "SELECT position, event_id, stream, revision, event_type, data, metadata, recorded_at \
             FROM events WHERE stream = $1 AND revision <= $2 ORDER BY revision DESC LIMIT $3"
        }
    };
    let from = match (direction, start) {
        (_, StreamStart::Revision(revision)) => clamp(revision),
        (Direction::Forwards, StreamStart::Edge) => 0,
        (Direction::Backwards, StreamStart::Edge) => i64::MAX,
    };
    (sql, from)
}

/// The SQL of a read of the whole log: `$1` first position, `$2` limit.
pub(crate) const LOG_READ: &str = "SELECT position, event_id, stream, revision, event_type, data, metadata, \
     recorded_at FROM events WHERE position >= $1 ORDER BY position LIMIT $2";

/// The time a group is recorded at, to the microsecond that both databases keep.
pub(crate) fn now() -> DateTime<Utc> {
    let now = Utc::now();
    now.with_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// A recorded time as both databases parse it (RFC 3339, microseconds, UTC).
pub(crate) fn timestamp_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A position, revision or limit as the databases' signed 64-bit integers.
pub(crate) fn clamp(value: impl TryInto<i64>) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}
