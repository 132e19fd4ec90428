//! The [`Projector`] trait.

use async_trait::async_trait;
use iam_eventstore::RecordedEvent;
use sqlx::AnyConnection;

use crate::Result;

/// Builds one read model from the log.
///
/// A projector is asynchronous with respect to appends, and must be
/// replayable: applying the whole log to empty tables gives the live rows.
/// The runner calls [`Projector::apply`] inside a transaction that also
/// advances the projector's checkpoint; an error rolls both back.
#[async_trait]
pub trait Projector: Send + Sync + 'static {
    /// A stable name: the key of the checkpoint, used by `rebuild`.
    fn name(&self) -> &'static str;

    /// The tables this projector owns, emptied (in this order) by a rebuild.
    fn tables(&self) -> &'static [&'static str];

    /// Applies `events` (consecutive positions, oldest first) to the tables.
    /// Events it has no interest in are skipped.
    async fn apply(&self, connection: &mut AnyConnection, events: &[RecordedEvent]) -> Result<()>;
}
