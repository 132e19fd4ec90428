//! The embedded backend: one SQLite file in WAL mode with `synchronous=FULL`.
//!
//! One writer connection appends (`BEGIN IMMEDIATE` takes SQLite's write
//! lock, so other processes on the same file wait their turn); a small pool
//! of connections reads. Groups are decided in memory and written with one
//! statement per table, passing rows as a JSON array (`json_each`) so that
//! the statement text, and its prepared plan, never change.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::types::Json;
use sqlx::{Connection, Row};
use tokio::sync::watch;
use uuid::Uuid;

use crate::event::{Append, AppendResult, Direction, RecordedEvent, StreamStart};
use crate::plan::{Keys, Plan, Snapshot, StoredEvent, plan};
use crate::store::{Backend, EventStore};
use crate::subscription::Subscription;
use crate::writer::{GroupCommit, Writer};
use crate::{Error, Result};

const MIGRATIONS_TABLE: &str = "iam_eventstore_migrations";

/// The event log in an embedded SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteEventStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    readers: SqlitePool,
    writer: Writer,
    head: watch::Sender<u64>,
}

impl SqliteEventStore {
    /// Opens (creating if needed) the database a `sqlite://PATH` URL names.
    /// The folder of the file must exist.
    pub async fn open(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|error| Error::InvalidUrl(error.to_string()))?;
        Self::open_with(options).await
    }

    /// Opens the database `options` describe, with the durability settings
    /// the log needs (WAL, `synchronous=FULL`) put on top.
    pub async fn open_with(options: SqliteConnectOptions) -> Result<Self> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));

        let mut writer = SqliteConnection::connect_with(&options).await?;
        let mut migrator = sqlx::migrate!("./migrations/sqlite");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&mut writer).await?;

        let head_position = head(&mut writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let (head, _) = watch::channel(head_position);
        let writer = Writer::spawn(SqliteGroupCommit { connection: writer }, head.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                readers,
                writer,
                head,
            }),
        })
    }

    /// The pool of reading connections (for diagnostics and tests).
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.readers
    }
}

async fn head(connection: &mut SqliteConnection) -> Result<u64> {
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(connection)
        .await?;
    Ok(head as u64)
}

#[async_trait]
impl EventStore for SqliteEventStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    #[tracing::instrument(skip_all, fields(stream = %append.stream, events = append.events.len()))]
    async fn submit(&self, append: Append) -> Result<AppendResult> {
        self.inner.writer.submit(append).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        start: StreamStart,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
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
            (_, StreamStart::Revision(revision)) => revision.min(i64::MAX as u64) as i64,
            (Direction::Forwards, StreamStart::Edge) => 0,
            (Direction::Backwards, StreamStart::Edge) => i64::MAX,
        };
        let rows = sqlx::query(sql)
            .bind(stream)
            .bind(from)
            .bind(clamp_limit(limit))
            .fetch_all(&self.inner.readers)
            .await?;
        rows.iter().map(recorded_event).collect()
    }

    async fn read_all(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>> {
        let rows = sqlx::query(
            "SELECT position, event_id, stream, revision, event_type, data, metadata, recorded_at \
             FROM events WHERE position >= $1 ORDER BY position LIMIT $2",
        )
        .bind(from.min(i64::MAX as u64) as i64)
        .bind(clamp_limit(limit))
        .fetch_all(&self.inner.readers)
        .await?;
        rows.iter().map(recorded_event).collect()
    }

    async fn head_position(&self) -> Result<u64> {
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
            .fetch_one(&self.inner.readers)
            .await?;
        Ok(head as u64)
    }

    async fn stream_revision(&self, stream: &str) -> Result<Option<u64>> {
        let revision: Option<i64> =
            sqlx::query_scalar("SELECT MAX(revision) FROM events WHERE stream = $1")
                .bind(stream)
                .fetch_one(&self.inner.readers)
                .await?;
        Ok(revision.map(|revision| revision as u64))
    }

    fn subscribe_all(&self, from: u64) -> Subscription {
        Subscription::new(Arc::new(self.clone()), self.inner.head.subscribe(), from)
    }
}

fn clamp_limit(limit: usize) -> i64 {
    limit.min(i64::MAX as usize) as i64
}

fn recorded_event(row: &SqliteRow) -> Result<RecordedEvent> {
    let id: String = row.try_get("event_id")?;
    let Json(data): Json<Value> = row.try_get("data")?;
    let Json(metadata): Json<Value> = row.try_get("metadata")?;
    Ok(RecordedEvent {
        id: Uuid::parse_str(&id)
            .map_err(|error| Error::Corrupt(format!("event id `{id}`: {error}")))?,
        event_type: row.try_get("event_type")?,
        data,
        metadata,
        stream: row.try_get("stream")?,
        revision: row.try_get::<i64, _>("revision")? as u64,
        position: row.try_get::<i64, _>("position")? as u64,
        recorded_at: row.try_get::<DateTime<Utc>, _>("recorded_at")?,
    })
}

struct SqliteGroupCommit {
    connection: SqliteConnection,
}

#[async_trait]
impl GroupCommit for SqliteGroupCommit {
    async fn commit(&mut self, group: &[&Append]) -> Result<(Vec<Result<AppendResult>>, u64)> {
        let keys = Keys::of(group);
        // BEGIN IMMEDIATE takes the write lock now, so the snapshot below
        // cannot change before the commit, even from another process.
        let mut tx = self.connection.begin_with("BEGIN IMMEDIATE").await?;
        let snapshot = read_snapshot(&mut tx, &keys).await?;
        let plan = plan(snapshot, group);
        let recorded_at = Utc::now();
        write_plan(&mut tx, &plan, recorded_at).await?;
        tx.commit().await?;
        let head = plan.head().unwrap_or(0);
        Ok((plan.outcomes, head))
    }
}

async fn read_snapshot(connection: &mut SqliteConnection, keys: &Keys<'_>) -> Result<Snapshot> {
    let mut snapshot = Snapshot {
        head: head(connection).await?,
        ..Snapshot::default()
    };
    let streams = sqlx::query(
        "SELECT s.value AS stream, (SELECT MAX(revision) FROM events e WHERE e.stream = s.value) AS revision \
         FROM json_each($1) s",
    )
    .bind(json!(keys.streams).to_string())
    .fetch_all(&mut *connection)
    .await?;
    for row in streams {
        if let Some(revision) = row.try_get::<Option<i64>, _>("revision")? {
            snapshot
                .revisions
                .insert(row.try_get("stream")?, revision as u64);
        }
    }
    if !keys.event_ids.is_empty() {
        let ids: Vec<String> = keys.event_ids.iter().map(Uuid::to_string).collect();
        let stored = sqlx::query(
            "SELECT event_id, stream, revision, position FROM events \
             WHERE event_id IN (SELECT value FROM json_each($1))",
        )
        .bind(json!(ids).to_string())
        .fetch_all(&mut *connection)
        .await?;
        for row in stored {
            let id: String = row.try_get("event_id")?;
            let id = Uuid::parse_str(&id)
                .map_err(|error| Error::Corrupt(format!("event id `{id}`: {error}")))?;
            snapshot.stored.insert(
                id,
                StoredEvent {
                    stream: row.try_get("stream")?,
                    revision: row.try_get::<i64, _>("revision")? as u64,
                    position: row.try_get::<i64, _>("position")? as u64,
                },
            );
        }
    }
    if !keys.claims.is_empty() {
        let claims: Vec<[&str; 2]> = keys
            .claims
            .iter()
            .map(|c| [c.kind.as_str(), c.value.as_str()])
            .collect();
        let held = sqlx::query(
            "SELECT c.kind, c.value, c.stream FROM json_each($1) j \
             JOIN event_claims c ON c.kind = j.value ->> 0 AND c.value = j.value ->> 1",
        )
        .bind(json!(claims).to_string())
        .fetch_all(&mut *connection)
        .await?;
        for row in held {
            snapshot.holders.insert(
                crate::Claim::new(
                    row.try_get::<String, _>("kind")?,
                    row.try_get::<String, _>("value")?,
                ),
                row.try_get("stream")?,
            );
        }
    }
    Ok(snapshot)
}

async fn write_plan(
    connection: &mut SqliteConnection,
    plan: &Plan<'_>,
    recorded_at: DateTime<Utc>,
) -> Result<()> {
    if !plan.events.is_empty() {
        let rows: Vec<Value> = plan
            .events
            .iter()
            .map(|new| {
                json!([
                    new.position,
                    new.event.id.to_string(),
                    new.stream,
                    new.revision,
                    new.event.event_type,
                    new.event.data,
                    new.event.metadata,
                ])
            })
            .collect();
        sqlx::query(
            "INSERT INTO events (position, event_id, stream, revision, event_type, data, metadata, recorded_at) \
             SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, \
                    j.value -> 5, j.value -> 6, $2 \
             FROM json_each($1) j",
        )
        .bind(Value::Array(rows).to_string())
        .bind(recorded_at)
        .execute(&mut *connection)
        .await?;
    }
    if !plan.released.is_empty() {
        let released: Vec<[&str; 2]> = plan
            .released
            .iter()
            .map(|c| [c.kind.as_str(), c.value.as_str()])
            .collect();
        sqlx::query(
            "DELETE FROM event_claims WHERE (kind, value) IN \
             (SELECT j.value ->> 0, j.value ->> 1 FROM json_each($1) j)",
        )
        .bind(json!(released).to_string())
        .execute(&mut *connection)
        .await?;
    }
    if !plan.taken.is_empty() {
        let taken: Vec<[&str; 3]> = plan
            .taken
            .iter()
            .map(|(c, stream)| [c.kind.as_str(), c.value.as_str(), stream.as_str()])
            .collect();
        sqlx::query(
            "INSERT INTO event_claims (kind, value, stream) \
             SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2 FROM json_each($1) j",
        )
        .bind(json!(taken).to_string())
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}
