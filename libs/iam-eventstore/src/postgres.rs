//! The server backend: PostgreSQL, shared by any number of `iamd` processes.
//!
//! Each process has one writer connection. A writer takes a
//! transaction-scoped advisory lock before it reads the log's head, so
//! writers of all processes commit one group at a time and positions are
//! assigned in commit order: a reader that sees position N has already been
//! able to see every position below N. The commit sends a `NOTIFY` that
//! wakes subscribers in every process. Commits are durable
//! (`synchronous_commit=on`).
//!
//! The writer's session has bounded waits (`lock_timeout`,
//! `statement_timeout`), and the server ends it when it sits idle inside a
//! transaction (`idle_in_transaction_session_timeout`): a stalled process
//! that holds the append lock delays the other replicas by seconds, not
//! forever. A group whose connection fails is retried once on a new
//! connection, which settles a COMMIT whose answer was lost: the retry finds
//! the group's events already stored and answers their original positions.
//! The writer's connection goes through sqlx's `Any` driver, because the
//! inline hook writes its read models on it with SQL text shared with SQLite.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{AnyConnection, Connection, Row};
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
/// The advisory lock key that serializes appends across processes ("iam_log").
const APPEND_LOCK: i64 = 0x0069_616d_5f6c_6f67;
/// The channel on which commits announce the new head.
const NOTIFY_CHANNEL: &str = "iam_events";
/// The writer's session: named for operators (`pg_stat_activity`), durable
/// commits, and bounded waits. A writer that
/// stalls inside its transaction is ended by the server after 5 s, which
/// frees the append lock; the others wait at most 15 s for it.
///
/// Every statement of the writer (and of the inline hook on its connection)
/// looks rows up by key for a group's few hundred keys, which arrive as a
/// JSON array the planner cannot size. It chose hash joins over sequential
/// scans of the claims and the log (measured: a quarter of the server's time
/// under load, growing with the tables), so this session asks for nested
/// loops over the indexes instead.
const WRITER_SESSION: &str = "SET application_name = 'iam-eventstore-writer'; \
     SET synchronous_commit = on; SET lock_timeout = '15s'; \
     SET statement_timeout = '30s'; SET idle_in_transaction_session_timeout = '5s'; \
     SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_seqscan = off";

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
            .map_err(|error| Error::InvalidUrl(error.to_string()))?
            .options([("synchronous_commit", "on")]);
        // One direct connection first: it reports why a server cannot be
        // reached (a pool would only report that it timed out), and runs the
        // migrations.
        let mut connection = PgConnection::connect_with(&options).await?;
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&mut connection).await?;
        let head_position = head(&mut connection).await?;
        ensure_advisory_locks_exclude(&mut connection, &options).await?;
        connection.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options);

        let (head, _) = watch::channel(head_position);
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        let listener = tokio::spawn(follow_notifications(listener, head.clone()));
        sqlx::any::install_default_drivers();
        let inline = InlineSlot::default();
        let mut committer = PgGroupCommit {
            url: url.to_owned(),
            connection: None,
            inline: inline.clone(),
        };
        committer.connection().await?;
        let writer = Writer::spawn(committer, head.clone(), inline);
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

/// The key of the advisory lock that start-up takes to see that such locks
/// are real ("iam_prb").
const PROBE_LOCK: i64 = 0x0069_616d_5f70_7262;

/// Refuses an engine whose advisory locks do not exclude each other (a
/// PostgreSQL-compatible engine may accept them as no-ops, CockroachDB for
/// one): appends serialize on such a lock, and without it positions would
/// no longer be gapless in commit order. `connection` takes the lock in a
/// transaction; a second session must then fail to take it.
async fn ensure_advisory_locks_exclude(
    connection: &mut PgConnection,
    options: &PgConnectOptions,
) -> Result<()> {
    let refuse = |why: String| {
        Error::UnsupportedEngine(format!(
            "IAM_DATABASE_URL: this database cannot keep the log's order: {why}. Appends serialize \
             on a transaction-scoped advisory lock, and without a real one positions would no \
             longer be gapless in commit order. Use PostgreSQL (see deploy/README.md)."
        ))
    };
    let mut other = PgConnection::connect_with(options).await?;
    sqlx::query("BEGIN").execute(&mut *connection).await?;
    let taken = sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PROBE_LOCK)
        .execute(&mut *connection)
        .await;
    let outcome = match taken {
        Err(error) => Err(refuse(format!("it has no advisory locks ({error})"))),
        Ok(_) => {
            let also: std::result::Result<bool, sqlx::Error> =
                sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                    .bind(PROBE_LOCK)
                    .fetch_one(&mut other)
                    .await;
            match also {
                Ok(false) => Ok(()),
                Ok(true) => Err(refuse(
                    "its advisory locks do not exclude each other (two sessions held the same one)"
                        .into(),
                )),
                Err(error) => Err(refuse(format!("it has no advisory locks ({error})"))),
            }
        }
    };
    sqlx::query("ROLLBACK").execute(&mut *connection).await?;
    let _ = other.close().await;
    outcome
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
    /// The database URL, for new connections.
    url: String,
    /// Dropped after any failure, so that a broken connection is replaced.
    connection: Option<AnyConnection>,
    inline: InlineSlot,
}

impl PgGroupCommit {
    async fn connection(&mut self) -> Result<&mut AnyConnection> {
        Ok(match &mut self.connection {
            Some(connection) => connection,
            slot => {
                let mut connection = AnyConnection::connect(&self.url).await?;
                sqlx::raw_sql(WRITER_SESSION)
                    .execute(&mut connection)
                    .await?;
                slot.insert(connection)
            }
        })
    }

    async fn attempt(&mut self, group: &[&Append]) -> Result<(Vec<Result<AppendResult>>, u64)> {
        let hook = self.inline.get().cloned();
        let connection = self.connection().await?;
        let outcome = commit_group(connection, group, hook.as_deref()).await;
        if outcome.is_err() {
            // A rollback on a broken connection fails too: then drop it.
            if sqlx::raw_sql("ROLLBACK")
                .execute(&mut *connection)
                .await
                .is_err()
            {
                self.connection = None;
            }
        }
        outcome
    }
}

#[async_trait]
impl GroupCommit for PgGroupCommit {
    async fn commit(&mut self, group: &[&Append]) -> Result<(Vec<Result<AppendResult>>, u64)> {
        match self.attempt(group).await {
            Err(error) if error.is_connection_failure() => {
                // The group may or may not have committed before the
                // connection failed. Trying it again on a new connection
                // settles it: appends that committed are recognized by their
                // event ids and answered with their original positions.
                tracing::warn!(error = %error, "the writer's connection failed; retrying the group once");
                self.connection = None;
                self.attempt(group).await
            }
            outcome => outcome,
        }
    }
}

/// Reads everything a group can touch in one statement. It must run after
/// the lock is taken, as a statement of its own: a READ COMMITTED statement
/// sees what was committed when it started. Keys travel as JSON (`$1`
/// streams, `$2` retry probes `[stream, first, last, [ids]]`, `$3` claims).
const READ_SNAPSHOT: &str = "SELECT
    (SELECT COALESCE(MAX(position), 0) FROM events) AS head,
    (SELECT COALESCE(json_agg(json_build_array(s.stream,
        (SELECT MAX(e.revision) FROM events e WHERE e.stream = s.stream))), '[]')
        FROM jsonb_array_elements_text($1::jsonb) AS s(stream))::text AS streams,
    (SELECT COALESCE(json_agg(json_build_array(e.event_id, e.stream, e.revision, e.position)), '[]')
        FROM jsonb_array_elements($2::jsonb) AS p(probe)
        JOIN events e ON e.stream = p.probe ->> 0
            AND e.revision BETWEEN (p.probe ->> 1)::bigint AND (p.probe ->> 2)::bigint
        WHERE e.event_id IN (SELECT i::uuid FROM jsonb_array_elements_text(p.probe -> 3) AS i))::text AS stored,
    (SELECT COALESCE(json_agg(json_build_array(c.kind, c.value, c.stream)), '[]')
        FROM jsonb_array_elements($3::jsonb) AS j(claim)
        JOIN event_claims c ON c.kind = j.claim ->> 0 AND c.value = j.claim ->> 1)::text AS holders";

/// Writes the plan and announces the new head, in one statement. Released
/// and taken claims are disjoint, so the two claim statements cannot meet.
/// Events are inserted in position order: the log accepts only the next one.
const WRITE_PLAN: &str = "WITH appended AS (
    INSERT INTO events (position, event_id, stream, revision, event_type, data, metadata, recorded_at)
    SELECT (r.event ->> 0)::bigint, (r.event ->> 1)::uuid, r.event ->> 2, (r.event ->> 3)::bigint,
           r.event ->> 4, r.event -> 5, r.event -> 6, $4::timestamptz
    FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS r(event, n) ORDER BY r.n
    RETURNING 1
), released AS (
    DELETE FROM event_claims c USING jsonb_array_elements($2::jsonb) AS j(claim)
    WHERE c.kind = j.claim ->> 0 AND c.value = j.claim ->> 1
    RETURNING 1
), taken AS (
    INSERT INTO event_claims (kind, value, stream)
    SELECT j.claim ->> 0, j.claim ->> 1, j.claim ->> 2 FROM jsonb_array_elements($3::jsonb) AS j(claim)
    ON CONFLICT (kind, value) DO UPDATE SET stream = EXCLUDED.stream
    RETURNING 1
)
SELECT pg_notify($5, $6) WHERE jsonb_array_length($1::jsonb) > 0";

async fn commit_group(
    connection: &mut AnyConnection,
    group: &[&Append],
    hook: Option<&dyn InlineHook>,
) -> Result<(Vec<Result<AppendResult>>, u64)> {
    let keys = Keys::of(group);
    // One round trip opens the transaction and waits for the lock: from here
    // on no other writer, in any process, commits until this one has.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "BEGIN; SELECT pg_advisory_xact_lock({APPEND_LOCK})"
    )))
    .execute(&mut *connection)
    .await?;
    let probes: Vec<Value> = keys
        .probes
        .iter()
        .map(|p| serde_json::json!([p.stream, p.first, p.last, p.ids]))
        .collect();
    let claims: Vec<[&str; 2]> = keys
        .claims
        .iter()
        .map(|c| [c.kind.as_str(), c.value.as_str()])
        .collect();
    let row = sqlx::query(READ_SNAPSHOT)
        .bind(serde_json::json!(keys.streams).to_string())
        .bind(Value::Array(probes).to_string())
        .bind(serde_json::json!(claims).to_string())
        .fetch_one(&mut *connection)
        .await?;
    let snapshot = Snapshot::from_json(
        row.try_get("head")?,
        &row.try_get::<String, _>("streams")?,
        &row.try_get::<String, _>("stored")?,
        &row.try_get::<String, _>("holders")?,
    )?;
    let head_before = snapshot.head;
    let plan = plan(snapshot, group);
    let recorded_at = crate::event::now();
    if !(plan.events.is_empty() && plan.released.is_empty() && plan.taken.is_empty()) {
        write_plan(connection, &plan, recorded_at).await?;
    }
    if let Some(hook) = hook {
        hook.apply(
            connection,
            head_before,
            &plan.inline_batch(group, recorded_at),
        )
        .await?;
    }
    sqlx::raw_sql("COMMIT").execute(&mut *connection).await?;
    let head = plan.head().unwrap_or(head_before);
    Ok((plan.outcomes, head))
}

async fn write_plan(
    connection: &mut AnyConnection,
    plan: &Plan<'_>,
    recorded_at: DateTime<Utc>,
) -> Result<()> {
    let events: Vec<Value> = plan
        .events
        .iter()
        .map(|e| {
            serde_json::json!([
                e.position,
                e.event.id,
                e.stream,
                e.revision,
                e.event.event_type,
                e.event.data,
                e.event.metadata
            ])
        })
        .collect();
    let released: Vec<[&str; 2]> = plan
        .released
        .iter()
        .map(|c| [c.kind.as_str(), c.value.as_str()])
        .collect();
    let taken: Vec<[&str; 3]> = plan
        .taken
        .iter()
        .map(|(c, stream)| [c.kind.as_str(), c.value.as_str(), stream.as_str()])
        .collect();
    sqlx::query(WRITE_PLAN)
        .bind(Value::Array(events).to_string())
        .bind(serde_json::json!(released).to_string())
        .bind(serde_json::json!(taken).to_string())
        .bind(crate::event::timestamp_text(recorded_at))
        .bind(NOTIFY_CHANNEL)
        .bind(plan.head().unwrap_or(0).to_string())
        .execute(&mut *connection)
        .await?;
    Ok(())
}
