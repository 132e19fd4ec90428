//! Inline projections: the hook through which a group's read-model rows are
//! written in the same transaction as its events.
//!
//! The store knows nothing of what the hook writes. It hands the hook the
//! open transaction (as an [`AnyConnection`], so one SQL text serves both
//! databases), the log's head before the group, and each accepted append's
//! recorded events with the appends' attachments. When the hook fails, the
//! transaction is rolled back and the group is split until the append that
//! makes it fail is refused alone: the others commit.

use std::fmt;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::AnyConnection;

use crate::event::{RecordedEvent, clamp};
use crate::{Error, Result};

/// A group's accepted events, as the inline hook sees them.
#[derive(Debug, Default)]
pub struct InlineBatch<'a> {
    /// The group's new events as the log records them, in position order.
    pub events: Vec<RecordedEvent>,
    /// What appenders attached for the hook (never written to the log), as
    /// the first and last positions of the append's events and the value.
    pub attachments: Vec<(u64, u64, &'a Value)>,
}

impl InlineBatch<'_> {
    /// The attachment of the append that wrote the event at `position`.
    pub fn attachment_at(&self, position: u64) -> Option<&Value> {
        self.attachments
            .iter()
            .find(|(first, last, _)| (*first..=*last).contains(&position))
            .map(|(_, _, value)| *value)
    }
}

/// Writes read models inside the writer's transaction.
#[async_trait]
pub trait InlineHook: Send + Sync + 'static {
    /// Applies `batch` (its first event right after `head_before`) in the
    /// open transaction on `connection`. It is also called with an empty
    /// batch when the store asks its hook to catch up
    /// ([`crate::EventStore::sync_inline`]). An error rolls back the whole
    /// group; the store then tells the appends apart by splitting it.
    async fn apply(
        &self,
        connection: &mut AnyConnection,
        head_before: u64,
        batch: &InlineBatch<'_>,
    ) -> std::result::Result<(), InlineError>;
}

impl fmt::Debug for dyn InlineHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InlineHook")
    }
}

/// Why an inline hook failed a group.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InlineError {
    /// The database failed a statement of the hook (the store tells a lost
    /// connection from a refused row).
    #[error("inline projection failed: {0}")]
    Database(std::sync::Arc<sqlx::Error>),
    /// The hook refused the events (for example one it cannot decode).
    #[error("inline projection failed: {0}")]
    Refused(String),
}

/// Reads up to `limit` events of the log from position `from` (included),
/// on `connection`: how an inline hook catches up with events that were
/// appended without it, inside the writer's transaction.
pub async fn read_log_on(
    connection: &mut AnyConnection,
    from: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>> {
    use sqlx::Row;
    let postgres = connection.backend_name() == "PostgreSQL";
    // The Any driver reads neither UUIDs nor JSONB: PostgreSQL casts them to text.
    let sql = if postgres {
        "SELECT position, event_id::text AS event_id, stream, revision, event_type, data::text AS data, \
         metadata::text AS metadata, to_char(recorded_at AT TIME ZONE 'UTC', \
         'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS recorded_at \
         FROM events WHERE position >= $1 ORDER BY position LIMIT $2"
    } else {
        "SELECT position, event_id, stream, revision, event_type, data, metadata, recorded_at \
         FROM events WHERE position >= $1 ORDER BY position LIMIT $2"
    };
    let rows = sqlx::query(sql)
        .bind(clamp(from))
        .bind(clamp(limit))
        .fetch_all(connection)
        .await?;
    rows.iter()
        .map(|row| {
            let id: String = row.try_get("event_id")?;
            let text = |column: &str| -> Result<String> { Ok(row.try_get(column)?) };
            let json = |column: &str| -> Result<Value> {
                serde_json::from_str(&text(column)?)
                    .map_err(|error| Error::Corrupt(format!("{column}: {error}")))
            };
            let recorded_at = text("recorded_at")?;
            Ok(RecordedEvent {
                id: id
                    .parse()
                    .map_err(|error| Error::Corrupt(format!("event id `{id}`: {error}")))?,
                event_type: text("event_type")?,
                data: json("data")?,
                metadata: json("metadata")?,
                stream: text("stream")?,
                revision: row.try_get::<i64, _>("revision")? as u64,
                position: row.try_get::<i64, _>("position")? as u64,
                recorded_at: chrono::DateTime::parse_from_rfc3339(&recorded_at)
                    .map_err(|error| {
                        Error::Corrupt(format!("recorded_at `{recorded_at}`: {error}"))
                    })?
                    .with_timezone(&chrono::Utc),
            })
        })
        .collect()
}
