//! The [`EventStore`] trait and how to open one from a URL.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::event::{
    Append, AppendResult, Direction, EventData, ExpectedRevision, RecordedEvent, StreamStart,
};
use crate::inline::InlineHook;
use crate::subscription::Subscription;
use crate::{Error, PostgresEventStore, Result, SqliteEventStore};

/// Which database a store keeps its log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend a database URL names, if any.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// The append-only event log.
#[async_trait]
pub trait EventStore: Send + Sync + fmt::Debug {
    /// The database behind this store.
    fn backend(&self) -> Backend;

    /// Appends `events` to `stream` if it is at the `expected` revision.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<EventData>,
    ) -> Result<AppendResult> {
        self.submit(Append::new(stream, expected, events)).await
    }

    /// Appends as [`EventStore::append`] does, with the append's claims and
    /// releases committed in the same transaction.
    async fn submit(&self, append: Append) -> Result<AppendResult>;

    /// Installs the hook that writes inline read models in every append's
    /// transaction (once per store), then lets it catch up with the log.
    async fn install_inline(&self, hook: Arc<dyn InlineHook>) -> Result<()>;

    /// Lets the inline hook catch up with events appended without it (by
    /// another process, or before it was installed): an empty transaction
    /// under the append lock in which the hook runs.
    async fn sync_inline(&self) -> Result<()>;

    /// Up to `limit` events of `stream`, from `start` in `direction`.
    /// A stream that does not exist reads as empty.
    async fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        start: StreamStart,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>>;

    /// Up to `limit` events of the whole log, from position `from` (included).
    async fn read_all(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>>;

    /// The position of the last committed event (0 for an empty log).
    async fn head_position(&self) -> Result<u64>;

    /// The current revision of `stream`, `None` when it does not exist.
    async fn stream_revision(&self, stream: &str) -> Result<Option<u64>>;

    /// Every event from position `from` (included), first those already in
    /// the log, then new ones as they commit: no gap, no duplicate, in
    /// position order.
    fn subscribe_all(&self, from: u64) -> Subscription;
}

/// Opens the store a URL names (`sqlite://PATH` or `postgres://...`),
/// bringing its schema up to date.
pub async fn connect(url: &str) -> Result<Arc<dyn EventStore>> {
    match Backend::of_url(url) {
        Some(Backend::Sqlite) => Ok(Arc::new(SqliteEventStore::open(url).await?)),
        Some(Backend::Postgres) => Ok(Arc::new(PostgresEventStore::connect(url).await?)),
        None => Err(Error::InvalidUrl(
            "expected `sqlite://PATH` or `postgres://USER@HOST:PORT/DATABASE`".into(),
        )),
    }
}
