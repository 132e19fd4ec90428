//! The server backend: PostgreSQL, shared by any number of `iamd` processes.
//!
//! Each process has one writer connection. A writer takes a
//! transaction-scoped advisory lock before it reads the log's head, so
//! writers of all processes commit one group at a time and positions are
//! assigned in commit order: a reader that sees position N has already been
//! able to see every position below N. The commit sends a `NOTIFY` that
//! wakes subscribers in every process. Commits are durable
//! (`synchronous_commit=on`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Connection, Row};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::event::{Append, AppendResult, Claim, Direction, RecordedEvent, StreamStart};
use crate::plan::{Keys, Plan, Snapshot, StoredEvent, plan};
use crate::store::{Backend, EventStore};
use crate::subscription::Subscription;
use crate::writer::{GroupCommit, Writer};
use crate::{Error, Result};

const MIGRATIONS_TABLE: &str = "iam_eventstore_migrations";
/// The advisory lock key that serializes appends across processes ("iam_log").
const APPEND_LOCK: i64 = 0x0069_616d_5f6c_6f67;
/// The channel on which commits announce the new head.
const NOTIFY_CHANNEL: &str = "iam_events";

/// The event log in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresEventStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    writer: Writer,
    head: watch::Sender<u64>,
    listener: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PostgresEventStore {
    /// Connects to the database a `postgres://` URL names and brings the
    /// log's schema up to date.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|error| Error::InvalidUrl(error.to_string()))?;
        Self::connect_with(options).await
    }

    /// Connects with `options`, requiring durable commits.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self> {
        let options = options.options([("synchronous_commit", "on")]);
        // One direct connection first: it reports why a server cannot be
        // reached (a pool would only report that it timed out), runs the
        // migrations, then becomes the writer's connection.
        let mut connection = PgConnection::connect_with(&options).await?;
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&mut connection).await?;
        let head_position = head(&mut connection).await?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options.clone());

        let (head, _) = watch::channel(head_position);
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        let listener = tokio::spawn(follow_notifications(listener, head.clone()));
        let writer = Writer::spawn(
            PgGroupCommit {
                options,
                connection: Some(connection),
            },
            head.clone(),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                writer,
                head,
                listener,
            }),
        })
    }

    /// The pool of reading connections (for diagnostics and tests).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }
}

async fn head<'e>(executor: impl sqlx::PgExecutor<'e>) -> Result<u64> {
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(executor)
        .await?;
    Ok(head as u64)
}

/// Wakes this process's subscribers when another process commits.
async fn follow_notifications(mut listener: PgListener, head: watch::Sender<u64>) {
    loop {
        match listener.recv().await {
            Ok(notification) => {
                if let Ok(position) = notification.payload().parse::<u64>() {
                    head.send_if_modified(|known| {
                        let advanced = position > *known;
                        *known = (*known).max(position);
                        advanced
                    });
                }
            }
            Err(error) => {
                // The listener reconnects by itself; subscriptions poll meanwhile.
                tracing::warn!(error = %error, "lost the event notification channel");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[async_trait]
impl EventStore for PostgresEventStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
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
            .bind(limit.min(i64::MAX as usize) as i64)
            .fetch_all(&self.inner.pool)
            .await?;
        rows.iter().map(recorded_event).collect()
    }

    async fn read_all(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>> {
        let rows = sqlx::query(
            "SELECT position, event_id, stream, revision, event_type, data, metadata, recorded_at \
             FROM events WHERE position >= $1 ORDER BY position LIMIT $2",
        )
        .bind(from.min(i64::MAX as u64) as i64)
        .bind(limit.min(i64::MAX as usize) as i64)
        .fetch_all(&self.inner.pool)
        .await?;
        rows.iter().map(recorded_event).collect()
    }

    async fn head_position(&self) -> Result<u64> {
        head(&self.inner.pool).await
    }

    async fn stream_revision(&self, stream: &str) -> Result<Option<u64>> {
        let revision: Option<i64> =
            sqlx::query_scalar("SELECT MAX(revision) FROM events WHERE stream = $1")
                .bind(stream)
                .fetch_one(&self.inner.pool)
                .await?;
        Ok(revision.map(|revision| revision as u64))
    }

    fn subscribe_all(&self, from: u64) -> Subscription {
        Subscription::new(Arc::new(self.clone()), self.inner.head.subscribe(), from)
    }
}

fn recorded_event(row: &PgRow) -> Result<RecordedEvent> {
    let Json(data): Json<Value> = row.try_get("data")?;
    let Json(metadata): Json<Value> = row.try_get("metadata")?;
    Ok(RecordedEvent {
        id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        data,
        metadata,
        stream: row.try_get("stream")?,
        revision: row.try_get::<i64, _>("revision")? as u64,
        position: row.try_get::<i64, _>("position")? as u64,
        recorded_at: row.try_get::<DateTime<Utc>, _>("recorded_at")?,
    })
}

struct PgGroupCommit {
    options: PgConnectOptions,
    /// Dropped after any failure, so that a broken connection is replaced.
    connection: Option<PgConnection>,
}

#[async_trait]
impl GroupCommit for PgGroupCommit {
    async fn commit(&mut self, group: &[&Append]) -> Result<(Vec<Result<AppendResult>>, u64)> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            slot => slot.insert(PgConnection::connect_with(&self.options).await?),
        };
        let outcome = commit_group(connection, group).await;
        if outcome.is_err() {
            self.connection = None;
        }
        outcome
    }
}

async fn commit_group(
    connection: &mut PgConnection,
    group: &[&Append],
) -> Result<(Vec<Result<AppendResult>>, u64)> {
    let keys = Keys::of(group);
    let mut tx = connection.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_LOCK)
        .execute(&mut *tx)
        .await?;
    let snapshot = read_snapshot(&mut tx, &keys).await?;
    let plan = plan(snapshot, group);
    write_plan(&mut tx, &plan).await?;
    let head = plan.head();
    if let Some(head) = head {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFY_CHANNEL)
            .bind(head.to_string())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok((plan.outcomes, head.unwrap_or(0)))
}

async fn read_snapshot(connection: &mut PgConnection, keys: &Keys<'_>) -> Result<Snapshot> {
    let mut snapshot = Snapshot {
        head: head(&mut *connection).await?,
        ..Snapshot::default()
    };
    let streams = sqlx::query(
        "SELECT s.stream, (SELECT MAX(revision) FROM events e WHERE e.stream = s.stream) AS revision \
         FROM UNNEST($1::text[]) AS s(stream)",
    )
    .bind(&keys.streams)
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
        let stored = sqlx::query(
            "SELECT event_id, stream, revision, position FROM events WHERE event_id = ANY($1)",
        )
        .bind(&keys.event_ids)
        .fetch_all(&mut *connection)
        .await?;
        for row in stored {
            snapshot.stored.insert(
                row.try_get::<Uuid, _>("event_id")?,
                StoredEvent {
                    stream: row.try_get("stream")?,
                    revision: row.try_get::<i64, _>("revision")? as u64,
                    position: row.try_get::<i64, _>("position")? as u64,
                },
            );
        }
    }
    if !keys.claims.is_empty() {
        let kinds: Vec<&str> = keys.claims.iter().map(|c| c.kind.as_str()).collect();
        let values: Vec<&str> = keys.claims.iter().map(|c| c.value.as_str()).collect();
        let held = sqlx::query(
            "SELECT c.kind, c.value, c.stream FROM UNNEST($1::text[], $2::text[]) AS j(kind, value) \
             JOIN event_claims c ON c.kind = j.kind AND c.value = j.value",
        )
        .bind(&kinds)
        .bind(&values)
        .fetch_all(&mut *connection)
        .await?;
        for row in held {
            snapshot.holders.insert(
                Claim::new(
                    row.try_get::<String, _>("kind")?,
                    row.try_get::<String, _>("value")?,
                ),
                row.try_get("stream")?,
            );
        }
    }
    Ok(snapshot)
}

async fn write_plan(connection: &mut PgConnection, plan: &Plan<'_>) -> Result<()> {
    if !plan.events.is_empty() {
        let events = &plan.events;
        let positions: Vec<i64> = events.iter().map(|e| e.position as i64).collect();
        let ids: Vec<Uuid> = events.iter().map(|e| e.event.id).collect();
        let streams: Vec<&str> = events.iter().map(|e| e.stream).collect();
        let revisions: Vec<i64> = events.iter().map(|e| e.revision as i64).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event.event_type.as_str()).collect();
        let data: Vec<&Value> = events.iter().map(|e| &e.event.data).collect();
        let metadata: Vec<&Value> = events.iter().map(|e| &e.event.metadata).collect();
        sqlx::query(
            "INSERT INTO events (position, event_id, stream, revision, event_type, data, metadata, recorded_at) \
             SELECT r.*, now() FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], \
                                          $6::jsonb[], $7::jsonb[]) AS r",
        )
        .bind(positions)
        .bind(ids)
        .bind(streams)
        .bind(revisions)
        .bind(types)
        .bind(data)
        .bind(metadata)
        .execute(&mut *connection)
        .await?;
    }
    if !plan.released.is_empty() {
        let kinds: Vec<&str> = plan.released.iter().map(|c| c.kind.as_str()).collect();
        let values: Vec<&str> = plan.released.iter().map(|c| c.value.as_str()).collect();
        sqlx::query(
            "DELETE FROM event_claims c USING UNNEST($1::text[], $2::text[]) AS j(kind, value) \
             WHERE c.kind = j.kind AND c.value = j.value",
        )
        .bind(kinds)
        .bind(values)
        .execute(&mut *connection)
        .await?;
    }
    if !plan.taken.is_empty() {
        let kinds: Vec<&str> = plan.taken.iter().map(|(c, _)| c.kind.as_str()).collect();
        let values: Vec<&str> = plan.taken.iter().map(|(c, _)| c.value.as_str()).collect();
        let streams: Vec<&str> = plan.taken.iter().map(|(_, s)| s.as_str()).collect();
        sqlx::query(
            "INSERT INTO event_claims (kind, value, stream) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[])",
        )
        .bind(kinds)
        .bind(values)
        .bind(streams)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}
