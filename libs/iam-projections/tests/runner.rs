//! The projector runner against SQLite and PostgreSQL: exactly-once
//! batches, rollback on failure, wait_for, restart and rebuild.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use iam_eventstore::{EventData, EventStore, ExpectedRevision, RecordedEvent};
use iam_projections::{Error, Projector, ReadModels, Runner, rebuild};
use iam_test_databases::{Kind, TestDatabase};
use serde_json::json;
use sqlx::AnyConnection;
use uuid::Uuid;

/// Counts the events of each stream; fails on `Poison` events while `poisoned` is set.
#[derive(Clone, Default)]
struct StreamLengths {
    poisoned: Arc<AtomicBool>,
    failures: Arc<AtomicUsize>,
}

#[async_trait]
impl Projector for StreamLengths {
    fn name(&self) -> &'static str {
        "stream_lengths"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["test_stream_lengths"]
    }

    async fn apply(
        &self,
        connection: &mut AnyConnection,
        events: &[RecordedEvent],
    ) -> iam_projections::Result<()> {
        for event in events {
            if event.event_type == "Poison" && self.poisoned.load(Ordering::SeqCst) {
                self.failures.fetch_add(1, Ordering::SeqCst);
                return Err(Error::Apply {
                    projector: self.name().into(),
                    position: event.position,
                    reason: "poisoned".into(),
                });
            }
            sqlx::query(
                "INSERT INTO test_stream_lengths (stream, events) VALUES ($1, 1) \
                 ON CONFLICT (stream) DO UPDATE SET events = test_stream_lengths.events + 1",
            )
            .bind(event.stream.clone())
            .execute(&mut *connection)
            .await?;
        }
        Ok(())
    }
}

/// Records each event's id with a plain INSERT: applying a batch twice
/// fails on the key instead of being absorbed.
#[derive(Clone, Copy, Default)]
struct EventIds;

#[async_trait]
impl Projector for EventIds {
    fn name(&self) -> &'static str {
        "event_ids"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["test_event_ids"]
    }

    async fn apply(
        &self,
        connection: &mut AnyConnection,
        events: &[RecordedEvent],
    ) -> iam_projections::Result<()> {
        for event in events {
            sqlx::query("INSERT INTO test_event_ids (id) VALUES ($1)")
                .bind(event.id.to_string())
                .execute(&mut *connection)
                .await?;
        }
        Ok(())
    }
}

struct Harness {
    store: Arc<dyn EventStore>,
    read_models: ReadModels,
    _database: TestDatabase,
}

impl Harness {
    async fn new(kind: Kind) -> Self {
        let database = TestDatabase::new(kind).await.unwrap();
        let store = iam_eventstore::connect(database.url()).await.unwrap();
        let read_models = ReadModels::connect(database.url()).await.unwrap();
        sqlx::query(
            "CREATE TABLE test_stream_lengths (stream TEXT PRIMARY KEY, events BIGINT NOT NULL)",
        )
        .execute(read_models.pool())
        .await
        .unwrap();
        sqlx::query("CREATE TABLE test_event_ids (id TEXT PRIMARY KEY)")
            .execute(read_models.pool())
            .await
            .unwrap();
        Self {
            store,
            read_models,
            _database: database,
        }
    }

    async fn append(&self, stream: &str, types: &[&str]) -> u64 {
        let events = types
            .iter()
            .map(|t| EventData::new(Uuid::new_v4(), *t, json!({})))
            .collect();
        let result = self
            .store
            .append(stream, ExpectedRevision::Any, events)
            .await
            .unwrap();
        result.last_position().unwrap()
    }

    async fn rows(&self) -> Vec<(String, i64)> {
        sqlx::query_as("SELECT stream, events FROM test_stream_lengths ORDER BY stream")
            .fetch_all(self.read_models.pool())
            .await
            .unwrap()
    }

    async fn checkpoint(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT position FROM projection_checkpoints WHERE name = 'stream_lengths'",
        )
        .fetch_one(self.read_models.pool())
        .await
        .unwrap()
    }
}

macro_rules! both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::Harness::new(iam_test_databases::Kind::Sqlite).await).await; }
        )* }
        mod postgres { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::Harness::new(iam_test_databases::Kind::Postgres).await).await; }
        )* }
    };
}

both_backends!(
    wait_for_returns_once_the_rows_include_the_event,
    a_failing_batch_leaves_rows_and_checkpoint_unchanged_until_a_retry_succeeds,
    a_restarted_runner_resumes_from_its_checkpoint_without_applying_twice,
    rebuilding_live_or_offline_gives_the_same_rows,
    lag_counts_the_events_not_yet_applied,
    two_processes_running_one_projector_apply_each_event_once_and_the_survivor_takes_over,
);

async fn wait_for_returns_once_the_rows_include_the_event(h: Harness) {
    let runner = Runner::new(h.store.clone(), h.read_models.clone())
        .with(StreamLengths::default())
        .start()
        .await
        .unwrap();
    for round in 0..20 {
        let position = h.append("s", &["Happened", "Happened"]).await;
        runner.wait_for(position).await.unwrap();
        assert_eq!(h.rows().await, [("s".to_owned(), (round + 1) * 2)]);
    }
}

async fn a_failing_batch_leaves_rows_and_checkpoint_unchanged_until_a_retry_succeeds(h: Harness) {
    let projector = StreamLengths::default();
    let runner = Runner::new(h.store.clone(), h.read_models.clone())
        .with(projector.clone())
        .start()
        .await
        .unwrap();
    let before = h.append("a", &["Happened"]).await;
    runner.wait_for(before).await.unwrap();

    projector.poisoned.store(true, Ordering::SeqCst);
    // One append, one batch: the handler writes for `b` before it meets the poison.
    let poisoned = h.append("b", &["Happened", "Poison", "Happened"]).await;
    while projector.failures.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        h.rows().await,
        [("a".to_owned(), 1)],
        "the failed batch's rows were rolled back"
    );
    assert_eq!(
        h.checkpoint().await,
        before as i64,
        "the checkpoint did not move"
    );
    let waiting = tokio::time::timeout(Duration::from_millis(200), runner.wait_for(poisoned)).await;
    assert!(
        waiting.is_err(),
        "wait_for must not return while the batch fails"
    );

    projector.poisoned.store(false, Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(30), runner.wait_for(poisoned))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.rows().await, [("a".to_owned(), 1), ("b".to_owned(), 3)]);
    assert_eq!(h.checkpoint().await, poisoned as i64);
}

async fn a_restarted_runner_resumes_from_its_checkpoint_without_applying_twice(h: Harness) {
    let first = Runner::new(h.store.clone(), h.read_models.clone())
        .with(StreamLengths::default())
        .start()
        .await
        .unwrap();
    let position = h.append("s", &["Happened"; 5]).await;
    first.wait_for(position).await.unwrap();
    drop(first);

    let position = h.append("s", &["Happened"; 3]).await;
    let second = Runner::new(h.store.clone(), h.read_models.clone())
        .with(StreamLengths::default())
        .start()
        .await
        .unwrap();
    second.wait_for(position).await.unwrap();
    assert_eq!(h.rows().await, [("s".to_owned(), 8)]);
}

async fn rebuilding_live_or_offline_gives_the_same_rows(h: Harness) {
    let runner = Runner::new(h.store.clone(), h.read_models.clone())
        .with(StreamLengths::default())
        .start()
        .await
        .unwrap();
    let mut head = 0;
    for i in 0..30 {
        head = h.append(&format!("s{}", i % 7), &["Happened"; 3]).await;
    }
    runner.wait_for(head).await.unwrap();
    let live = h.rows().await;

    runner.rebuild("stream_lengths").await.unwrap();
    runner.wait_for(head).await.unwrap();
    assert_eq!(h.rows().await, live);
    assert!(matches!(
        runner.rebuild("nope").await,
        Err(Error::UnknownProjector(_))
    ));
    drop(runner);

    let reached = rebuild(&h.store, &h.read_models, &StreamLengths::default())
        .await
        .unwrap();
    assert_eq!(reached, head);
    assert_eq!(h.rows().await, live);
}

async fn lag_counts_the_events_not_yet_applied(h: Harness) {
    let projector = StreamLengths::default();
    projector.poisoned.store(true, Ordering::SeqCst);
    let runner = Runner::new(h.store.clone(), h.read_models.clone())
        .with(projector.clone())
        .start()
        .await
        .unwrap();
    let applied = h.append("a", &["Happened"; 4]).await;
    runner.wait_for(applied).await.unwrap();
    assert_eq!(runner.lag().await.unwrap(), 0);
    h.append("b", &["Poison", "Happened", "Happened"]).await;
    while projector.failures.load(Ordering::SeqCst) < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = runner.status().await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(
        (status[0].name, status[0].checkpoint, status[0].lag),
        ("stream_lengths", applied, 3)
    );
}

/// Two processes (two stores, two read-model pools) run the same projector
/// on one database. Before, both applied the same batch; the loser's plain
/// INSERT failed on the winner's rows before it ever reached the checkpoint,
/// and it retried that batch forever.
async fn two_processes_running_one_projector_apply_each_event_once_and_the_survivor_takes_over(
    h: Harness,
) {
    let url = h._database.url().to_owned();
    let second_store = iam_eventstore::connect(&url).await.unwrap();
    let second_models = ReadModels::connect(&url).await.unwrap();
    let first = Runner::new(h.store.clone(), h.read_models.clone())
        .with(EventIds)
        .start()
        .await
        .unwrap();
    let second = Runner::new(second_store.clone(), second_models)
        .with(EventIds)
        .start()
        .await
        .unwrap();
    let mut head = 0;
    for i in 0..30 {
        let store = if i % 2 == 0 { &h.store } else { &second_store };
        let events = (0..10)
            .map(|_| EventData::new(Uuid::new_v4(), "Happened", json!({})))
            .collect();
        head = store
            .append(&format!("s-{i}"), ExpectedRevision::NoStream, events)
            .await
            .unwrap()
            .last_position()
            .unwrap();
    }
    for runner in [&first, &second] {
        tokio::time::timeout(Duration::from_secs(15), runner.wait_for(head))
            .await
            .expect("both processes follow the head")
            .unwrap();
    }
    let count = |pool: ReadModels| async move {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM test_event_ids")
            .fetch_one(pool.pool())
            .await
            .unwrap()
    };
    assert_eq!(count(h.read_models.clone()).await, 300);

    // The first process goes away; the second carries on alone.
    drop(first);
    let more = (0..10)
        .map(|_| EventData::new(Uuid::new_v4(), "Happened", json!({})))
        .collect();
    let head = second_store
        .append("after", ExpectedRevision::NoStream, more)
        .await
        .unwrap()
        .last_position()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), second.wait_for(head))
        .await
        .expect("the survivor takes over within seconds")
        .unwrap();
    assert_eq!(count(h.read_models.clone()).await, 310);
}
