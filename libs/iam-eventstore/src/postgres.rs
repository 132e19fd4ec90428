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

use crate::event::{
    Append, AppendResult, Direction, LOG_READ, RecordedEvent, StreamStart, clamp, stream_read,
};
use crate::plan::{Keys, Snapshot, plan};
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
        let (sql, from) = stream_read(direction, start);
        let rows = sqlx::query(sql)
            .bind(stream)
            .bind(from)
            .bind(clamp(limit))
            .fetch_all(&self.inner.pool)
            .await?;
        rows.iter().map(recorded_event).collect()
    }

    async fn read_all(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>> {
        let rows = sqlx::query(LOG_READ)
            .bind(clamp(from))
            .bind(clamp(limit))
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

/// Reads everything a group can touch in one statement. It must run after
/// the lock is taken, as a statement of its own: a READ COMMITTED statement
/// sees what was committed when it started.
const READ_SNAPSHOT: &str = "SELECT
    (SELECT COALESCE(MAX(position), 0) FROM events) AS head,
    (SELECT COALESCE(json_agg(json_build_array(s.stream,
        (SELECT MAX(e.revision) FROM events e WHERE e.stream = s.stream))), '[]')
        FROM UNNEST($1::text[]) AS s(stream))::text AS streams,
    (SELECT COALESCE(json_agg(json_build_array(e.event_id, e.stream, e.revision, e.position)), '[]')
        FROM UNNEST($2::text[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS p(stream, first, last, probe)
        JOIN events e ON e.stream = p.stream AND e.revision BETWEEN p.first AND p.last
        WHERE e.event_id IN (SELECT i.id FROM UNNEST($5::uuid[], $6::bigint[]) AS i(id, probe)
                             WHERE i.probe = p.probe))::text AS stored,
    (SELECT COALESCE(json_agg(json_build_array(c.kind, c.value, c.stream)), '[]')
        FROM UNNEST($7::text[], $8::text[]) AS j(kind, value)
        JOIN event_claims c ON c.kind = j.kind AND c.value = j.value)::text AS holders";

/// Writes the plan and announces the new head, in one statement. Released
/// and taken claims are disjoint, so the two claim statements cannot meet.
const WRITE_PLAN: &str = "WITH appended AS (
    INSERT INTO events (position, event_id, stream, revision, event_type, data, metadata, recorded_at)
    SELECT r.*, clock_timestamp() FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::bigint[],
                                               $5::text[], $6::jsonb[], $7::jsonb[]) AS r
    RETURNING 1
), released AS (
    DELETE FROM event_claims c USING UNNEST($8::text[], $9::text[]) AS j(kind, value)
    WHERE c.kind = j.kind AND c.value = j.value
    RETURNING 1
), taken AS (
    INSERT INTO event_claims (kind, value, stream)
    SELECT * FROM UNNEST($10::text[], $11::text[], $12::text[])
    ON CONFLICT (kind, value) DO UPDATE SET stream = EXCLUDED.stream
    RETURNING 1
)
SELECT pg_notify($13, $14) WHERE cardinality($1::bigint[]) > 0";

async fn commit_group(
    connection: &mut PgConnection,
    group: &[&Append],
) -> Result<(Vec<Result<AppendResult>>, u64)> {
    let keys = Keys::of(group);
    // One round trip opens the transaction and waits for the lock: from here
    // on no other writer, in any process, commits until this one has.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "BEGIN; SELECT pg_advisory_xact_lock({APPEND_LOCK})"
    )))
    .execute(&mut *connection)
    .await?;
    let row = sqlx::query(READ_SNAPSHOT)
        .bind(&keys.streams)
        .bind(keys.probes.iter().map(|p| p.stream).collect::<Vec<_>>())
        .bind(
            keys.probes
                .iter()
                .map(|p| p.first as i64)
                .collect::<Vec<_>>(),
        )
        .bind(
            keys.probes
                .iter()
                .map(|p| p.last as i64)
                .collect::<Vec<_>>(),
        )
        .bind(
            keys.probes
                .iter()
                .flat_map(|p| p.ids.iter().copied())
                .collect::<Vec<_>>(),
        )
        .bind(
            (1i64..)
                .zip(&keys.probes)
                .flat_map(|(probe, p)| std::iter::repeat_n(probe, p.ids.len()))
                .collect::<Vec<_>>(),
        )
        .bind(
            keys.claims
                .iter()
                .map(|c| c.kind.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            keys.claims
                .iter()
                .map(|c| c.value.as_str())
                .collect::<Vec<_>>(),
        )
        .fetch_one(&mut *connection)
        .await?;
    let snapshot = Snapshot::from_json(
        row.try_get("head")?,
        row.try_get("streams")?,
        row.try_get("stored")?,
        row.try_get("holders")?,
    )?;
    let plan = plan(snapshot, group);
    if !(plan.events.is_empty() && plan.released.is_empty() && plan.taken.is_empty()) {
        let events = &plan.events;
        sqlx::query(WRITE_PLAN)
            .bind(events.iter().map(|e| e.position as i64).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.event.id).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.stream).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.revision as i64).collect::<Vec<_>>())
            .bind(
                events
                    .iter()
                    .map(|e| e.event.event_type.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(events.iter().map(|e| &e.event.data).collect::<Vec<_>>())
            .bind(events.iter().map(|e| &e.event.metadata).collect::<Vec<_>>())
            .bind(
                plan.released
                    .iter()
                    .map(|c| c.kind.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                plan.released
                    .iter()
                    .map(|c| c.value.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                plan.taken
                    .iter()
                    .map(|(c, _)| c.kind.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                plan.taken
                    .iter()
                    .map(|(c, _)| c.value.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                plan.taken
                    .iter()
                    .map(|(_, stream)| stream.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(NOTIFY_CHANNEL)
            .bind(plan.head().unwrap_or(0).to_string())
            .execute(&mut *connection)
            .await?;
    }
    sqlx::raw_sql("COMMIT").execute(&mut *connection).await?;
    let head = plan.head().unwrap_or(0);
    Ok((plan.outcomes, head))
}
