//! The embedded backend: one SQLite file in WAL mode with `synchronous=FULL`.
//!
//! One writer connection appends (`BEGIN IMMEDIATE` takes SQLite's write
//! lock, so other processes on the same file wait their turn); a small pool
//! of connections reads. Groups are decided in memory and written with one
//! statement per table, passing rows as a JSON array (`json_each`) so that
//! the statement text, and its prepared plan, never change. The writer's
//! connection goes through sqlx's `Any` driver, because the inline hook
//! writes its read models on it with SQL text shared with PostgreSQL.

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
use sqlx::{AnyConnection, Connection, Row};
use tokio::sync::watch;
use uuid::Uuid;

use crate::event::{
    Append, AppendResult, Direction, LOG_READ, RecordedEvent, StreamStart, clamp, stream_read,
};
use crate::inline::InlineHook;
use crate::plan::{Keys, Plan, Snapshot, plan};
use crate::store::{Backend, EventStore};
use crate::subscription::Subscription;
use crate::writer::{GroupCommit, InlineSlot, Writer};
use crate::{Error, Result};

const MIGRATIONS_TABLE: &str = "iam_eventstore_migrations";

/// The writer's connection: durable commits; a page cache that holds the hot
/// parts of the log's and read models' indexes (64 MiB); and WAL checkpoints
/// left to [`checkpoint_after_commits`], off the commit path, with a large
/// automatic one (64 MiB of WAL) only as a backstop.
const WRITER_SETTINGS: &str = "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; \
     PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 16384";

/// How often, at most, the WAL is copied back into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// Copies committed WAL frames back into the database file on a connection
/// of its own, after commits, at most every [`CHECKPOINT_INTERVAL`]: the
/// writer then never pays for a checkpoint (a copy and an fsync of the
/// database file) inside a commit. Ends when the store is dropped.
async fn checkpoint_after_commits(
    mut connection: SqliteConnection,
    mut head: watch::Receiver<u64>,
) {
    while head.changed().await.is_ok() {
        tokio::time::sleep(CHECKPOINT_INTERVAL).await;
        // PASSIVE never waits for the writer or readers; what it cannot copy
        // now it copies next time.
        if let Err(error) = sqlx::raw_sql("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut connection)
            .await
        {
            tracing::warn!(error = %error, "WAL checkpoint failed; retrying after the next commit");
        }
    }
}

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
    /// Opens (creating if needed) the database a `sqlite://PATH` URL names,
    /// with the durability settings the log needs (WAL, `synchronous=FULL`).
    /// The folder of the file must exist.
    pub async fn open(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|error| Error::InvalidUrl(error.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));

        let mut migrating = SqliteConnection::connect_with(&options).await?;
        let mut migrator = sqlx::migrate!("./migrations/sqlite");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&mut migrating).await?;
        let head_position = head(&mut migrating).await?;
        migrating.close().await?;

        sqlx::any::install_default_drivers();
        let mut writer = AnyConnection::connect(url).await?;
        // The Any driver takes only the URL; the settings go by PRAGMA (WAL
        // is already recorded in the file by the connection above).
        sqlx::raw_sql(WRITER_SETTINGS).execute(&mut writer).await?;

        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        let (head, _) = watch::channel(head_position);
        let checkpointer = SqliteConnection::connect_with(&options).await?;
        tokio::spawn(checkpoint_after_commits(checkpointer, head.subscribe()));
        let inline = InlineSlot::default();
        let writer = Writer::spawn(
            SqliteGroupCommit {
                connection: writer,
                inline: inline.clone(),
            },
            head.clone(),
            inline,
        );
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

    async fn install_inline(&self, hook: Arc<dyn InlineHook>) -> Result<()> {
        self.inner.writer.install(hook).await
    }

    async fn sync_inline(&self) -> Result<()> {
        self.inner.writer.sync().await
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
            .fetch_all(&self.inner.readers)
            .await?;
        rows.iter().map(recorded_event).collect()
    }

    async fn read_all(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>> {
        let rows = sqlx::query(LOG_READ)
            .bind(clamp(from))
            .bind(clamp(limit))
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
    connection: AnyConnection,
    inline: InlineSlot,
}

/// Takes the write lock, then reads everything the group can touch, in one
/// hand-off to SQLite's worker thread. `BEGIN IMMEDIATE` takes the lock now,
/// so the snapshot cannot change before the commit, even from another process.
const LOCK_AND_READ_SNAPSHOT: &str = "BEGIN IMMEDIATE;
SELECT
    (SELECT COALESCE(MAX(position), 0) FROM events) AS head,
    (SELECT json_group_array(json_array(s.value,
        (SELECT MAX(e.revision) FROM events e WHERE e.stream = s.value))) FROM json_each($1) s) AS streams,
    (SELECT json_group_array(json_array(e.event_id, e.stream, e.revision, e.position))
        FROM json_each($2) p
        JOIN events e ON e.stream = p.value ->> 0 AND e.revision BETWEEN p.value ->> 1 AND p.value ->> 2
        WHERE e.event_id IN (SELECT value FROM json_each(p.value -> 3))) AS stored,
    (SELECT json_group_array(json_array(c.kind, c.value, c.stream)) FROM json_each($3) j
        JOIN event_claims c ON c.kind = j.value ->> 0 AND c.value = j.value ->> 1) AS holders";

/// Writes the plan. Rows travel as JSON arrays, so the statement text (and
/// its prepared form) never changes; `jsonb_each` parses each array once
/// (with `json_each`, every `->>` parsed its row's text again).
macro_rules! write_plan_sql {
    () => {
        "INSERT INTO events
    (position, event_id, stream, revision, event_type, data, metadata, recorded_at)
    SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4,
           j.value -> 5, j.value -> 6, $4
    FROM jsonb_each($1) j ORDER BY j.key;
DELETE FROM event_claims WHERE (kind, value) IN
    (SELECT j.value ->> 0, j.value ->> 1 FROM jsonb_each($2) j);
INSERT INTO event_claims (kind, value, stream)
    SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2 FROM jsonb_each($3) j WHERE true
    ON CONFLICT (kind, value) DO UPDATE SET stream = excluded.stream"
    };
}
const WRITE: &str = write_plan_sql!();
/// The same with the commit riding along, when there is no inline hook to
/// run in between: one hand-off less.
const WRITE_AND_COMMIT: &str = concat!(write_plan_sql!(), ";\nCOMMIT");

#[async_trait]
impl GroupCommit for SqliteGroupCommit {
    async fn commit(&mut self, group: &[&Append]) -> Result<(Vec<Result<AppendResult>>, u64)> {
        let outcome = self.try_commit(group).await;
        if outcome.is_err() {
            // Whatever step failed, leave no transaction open; "no transaction
            // is active" is the expected answer when BEGIN itself failed.
            let _ = sqlx::raw_sql("ROLLBACK")
                .execute(&mut self.connection)
                .await;
        }
        outcome
    }
}

impl SqliteGroupCommit {
    async fn try_commit(&mut self, group: &[&Append]) -> Result<(Vec<Result<AppendResult>>, u64)> {
        let keys = Keys::of(group);
        let probes: Vec<Value> = keys
            .probes
            .iter()
            .map(|p| json!([p.stream, p.first, p.last, p.ids]))
            .collect();
        let claims: Vec<[&str; 2]> = keys
            .claims
            .iter()
            .map(|c| [c.kind.as_str(), c.value.as_str()])
            .collect();
        let row = sqlx::query(LOCK_AND_READ_SNAPSHOT)
            .bind(json!(keys.streams).to_string())
            .bind(Value::Array(probes).to_string())
            .bind(json!(claims).to_string())
            // Through the Any driver, `fetch_one` stops at BEGIN's empty
            // result; the snapshot is the one row of the whole text.
            .fetch_all(&mut self.connection)
            .await?
            .pop()
            .ok_or(sqlx::Error::RowNotFound)?;
        let snapshot = Snapshot::from_json(
            row.try_get("head")?,
            &row.try_get::<String, _>("streams")?,
            &row.try_get::<String, _>("stored")?,
            &row.try_get::<String, _>("holders")?,
        )?;
        let head_before = snapshot.head;
        let plan = plan(snapshot, group);
        let recorded_at = crate::event::now();
        let hook = self.inline.get().cloned();
        let statement = if hook.is_some() {
            WRITE
        } else {
            WRITE_AND_COMMIT
        };
        sqlx::query(statement)
            .bind(event_rows(&plan).to_string())
            .bind(
                json!(
                    plan.released
                        .iter()
                        .map(|c| [&c.kind, &c.value])
                        .collect::<Vec<_>>()
                )
                .to_string(),
            )
            .bind(
                json!(
                    plan.taken
                        .iter()
                        .map(|(c, stream)| [&c.kind, &c.value, stream])
                        .collect::<Vec<_>>()
                )
                .to_string(),
            )
            .bind(crate::event::timestamp_text(recorded_at))
            .execute(&mut self.connection)
            .await?;
        if let Some(hook) = hook {
            hook.apply(
                &mut self.connection,
                head_before,
                &plan.inline_batch(group, recorded_at),
            )
            .await?;
            sqlx::raw_sql("COMMIT")
                .execute(&mut self.connection)
                .await?;
        }
        let head = plan.head().unwrap_or(head_before);
        Ok((plan.outcomes, head))
    }
}

fn event_rows(plan: &Plan<'_>) -> Value {
    plan.events
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
        .collect()
}
