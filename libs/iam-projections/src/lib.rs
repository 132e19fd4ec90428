//! Read models built from the event log, and the runner that keeps them
//! up to date.
//!
//! A [`Projector`] owns some tables of the read-model database and applies
//! batches of events to them. The [`Runner`] gives each projector its own
//! task that follows [`EventStore::subscribe_all`] from the projector's
//! checkpoint, applies each batch in one transaction that also advances the
//! checkpoint (so a batch takes effect exactly once, and a failed batch
//! leaves rows and checkpoint as they were), retries failures with backoff,
//! and reports progress so that a writer can wait until its events are
//! visible ([`RunnerHandle::wait_for`]).
//!
//! The read models live in the same database as the log, reached through
//! sqlx's `Any` driver so one SQL text serves SQLite and PostgreSQL. This
//! crate must not write to the log: projectors only read events.
//!
//! [`EventStore::subscribe_all`]: iam_eventstore::EventStore::subscribe_all

mod database;
mod error;
mod inline;
mod lease;
mod projector;
pub mod read_models;
mod rows;
mod runner;
pub mod statistics;
mod verify;

pub use database::ReadModels;
pub use error::Error;
pub use inline::InlineProjections;
pub use projector::Projector;
pub use rows::execute_for_rows;
pub use runner::{ProjectorStatus, Runner, RunnerHandle, rebuild, rebuild_all, status_of};
pub use verify::{Verification, verify};

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
