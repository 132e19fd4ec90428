//! The one error type of the projections.

use std::sync::Arc;

/// What can go wrong while building read models.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The read-model database refused or failed an operation.
    #[error("read-model database error: {0}")]
    Database(Arc<sqlx::Error>),

    /// The read-model schema could not be brought up to date.
    #[error("read-model schema migration failed: {0}")]
    Migration(Arc<sqlx::migrate::MigrateError>),

    /// Reading the event log failed.
    #[error(transparent)]
    EventStore(#[from] iam_eventstore::Error),

    /// A projector could not apply an event (its transaction was rolled back).
    #[error("projector `{projector}` cannot apply event at position {position}: {reason}")]
    Apply {
        /// The projector that failed.
        projector: String,
        /// The position of the event it failed on.
        position: u64,
        /// Why.
        reason: String,
    },

    /// No projector of that name is registered.
    #[error("no projector is named `{0}`")]
    UnknownProjector(String),

    /// The runner has stopped.
    #[error("the projector runner has stopped")]
    Stopped,
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
