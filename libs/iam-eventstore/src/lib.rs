//! The append-only event log of the IAM service.
//!
//! One [`EventStore`] trait with two backends: [`SqliteEventStore`] (embedded,
//! the default) and [`PostgresEventStore`] (the server backend, shared by
//! several `iamd` replicas). Both follow EventStoreDB's semantics:
//!
//! - an event belongs to one stream, at a stream revision (0, 1, …) and a
//!   global position (1, 2, …) that is gapless and follows commit order;
//! - [`EventStore::append`] checks an [`ExpectedRevision`]; a mismatch is
//!   [`Error::WrongExpectedVersion`] and writes nothing;
//! - appending events whose ids already stand right after the expected
//!   revision is an idempotent retry that returns the original result;
//! - an append may carry uniqueness [`Claim`]s that commit with it;
//! - the database itself refuses `UPDATE` and `DELETE` on the log.
//!
//! Appends go through a single writer per store that gathers concurrent
//! requests into one transaction (group commit); each caller still gets its
//! own result. An append is acknowledged only once durable.
//!
//! This crate knows nothing of users, organizations or HTTP: streams, event
//! types and claims are opaque strings to it.

mod error;
mod event;
mod inline;
mod plan;
mod postgres;
mod sqlite;
mod store;
mod subscription;
mod writer;

pub use error::Error;
pub use event::{
    Append, AppendResult, Claim, Direction, EventData, ExpectedRevision, RecordedEvent, StreamStart,
};
pub use inline::{InlineBatch, InlineError, InlineHook, read_log_on};
pub use postgres::PostgresEventStore;
pub use sqlite::SqliteEventStore;
pub use store::{Backend, EventStore, connect};
pub use subscription::Subscription;

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
