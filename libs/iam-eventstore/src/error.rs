//! The one error type of the event store.

use std::sync::Arc;

use crate::event::{Claim, ExpectedRevision};

/// Everything that can go wrong with the event log.
///
/// The first variants are refusals of one append (nothing was written); the
/// last ones are failures of the store itself.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The stream is not at the revision the append expected.
    #[error(
        "stream `{stream}` is at {}, but the append expected {expected}",
        current.map_or_else(|| "no stream".to_owned(), |r| format!("revision {r}"))
    )]
    WrongExpectedVersion {
        /// The stream appended to.
        stream: String,
        /// What the append expected.
        expected: ExpectedRevision,
        /// The stream's current revision; `None` when the stream does not exist.
        current: Option<u64>,
    },

    /// A uniqueness claim of the append is held by another stream.
    #[error("{claim} is already claimed by stream `{holder}`")]
    ClaimHeld {
        /// The claim that could not be taken.
        claim: Claim,
        /// The stream that holds it.
        holder: String,
    },

    /// The append released a claim that another stream holds.
    #[error(
        "{claim} is held by stream `{holder}`, not by `{stream}`, so `{stream}` cannot release it"
    )]
    ClaimNotOwned {
        /// The claim that could not be released.
        claim: Claim,
        /// The stream that tried to release it.
        stream: String,
        /// The stream that holds it.
        holder: String,
    },

    /// The append itself is malformed (for example an empty stream name or the
    /// same event id twice).
    #[error("invalid append: {0}")]
    InvalidAppend(String),

    /// The database URL is not one this crate can open.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),

    /// The database refused or failed an operation.
    #[error("database error: {0}")]
    Database(Arc<sqlx::Error>),

    /// The schema could not be brought up to date.
    #[error("schema migration failed: {0}")]
    Migration(Arc<sqlx::migrate::MigrateError>),

    /// A stored row could not be read back (for example malformed JSON).
    #[error("corrupt row in the event log: {0}")]
    Corrupt(String),

    /// The database engine cannot keep the log's guarantees.
    #[error("{0}")]
    UnsupportedEngine(String),

    /// An inline projection refused the append (it wrote nothing).
    #[error("inline projection failed: {0}")]
    Inline(String),

    /// The store's writer has stopped (the store is shutting down).
    #[error("the event store's writer has stopped")]
    WriterStopped,
}

impl Error {
    /// Whether this is a refusal of the append (as opposed to a store failure):
    /// such an append wrote nothing and retrying it unchanged will fail again.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Error::WrongExpectedVersion { .. }
                | Error::ClaimHeld { .. }
                | Error::ClaimNotOwned { .. }
                | Error::InvalidAppend(_)
        )
    }
}

impl Error {
    /// Whether the failure of a whole group may be caused by one of its
    /// appends (the database refused a row, or an inline projection did):
    /// then the writer splits the group to refuse that append alone. A lost
    /// connection or a stopped writer is no append's doing.
    pub(crate) fn may_belong_to_one_append(&self) -> bool {
        match self {
            Error::Inline(_) | Error::Corrupt(_) => true,
            Error::Database(error) => {
                matches!(**error, sqlx::Error::Database(_)) && !self.is_connection_failure()
            }
            _ => false,
        }
    }

    /// Whether the database connection itself failed (the outcome of the
    /// transaction may be unknown).
    pub(crate) fn is_connection_failure(&self) -> bool {
        match self {
            Error::Database(error) => match &**error {
                sqlx::Error::Io(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                // PostgreSQL ending the session: class 57P "operator
                // intervention" (an administrator, a server restart), class
                // 08 "connection exception", and 25P03, the end of a session
                // left idle inside its transaction for too long.
                sqlx::Error::Database(error) => error.code().is_some_and(|code| {
                    code.starts_with("57P") || code.starts_with("08") || code == "25P03"
                }),
                _ => false,
            },
            _ => false,
        }
    }
}

impl From<crate::inline::InlineError> for Error {
    fn from(error: crate::inline::InlineError) -> Self {
        match error {
            crate::inline::InlineError::Database(error) => Error::Database(error),
            crate::inline::InlineError::Refused(reason) => Error::Inline(reason),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        Error::Database(Arc::new(error))
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Error::Migration(Arc::new(error))
    }
}
