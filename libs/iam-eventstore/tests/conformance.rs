//! The conformance suite of the event store: every behaviour the trait
//! promises, run against SQLite and against PostgreSQL.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use iam_eventstore::{
    Append, Backend, Claim, Direction, Error, EventData, EventStore, ExpectedRevision, InlineBatch,
    InlineError, InlineHook, StreamStart,
};
use iam_test_databases::{Kind, TestDatabase};
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

struct Harness {
    store: Arc<dyn EventStore>,
    database: TestDatabase,
}

impl Harness {
    async fn new(kind: Kind) -> Self {
        let database = TestDatabase::new(kind).await.expect("a test database");
        let store = iam_eventstore::connect(database.url())
            .await
            .expect("the store opens");
        Self { store, database }
    }

    /// A second, independent store on the same database: another process, as
    /// far as the database can tell.
    async fn second_store(&self) -> Arc<dyn EventStore> {
        iam_eventstore::connect(self.database.url())
            .await
            .expect("the store opens again")
    }

    async fn raw_sql_text(&self, sql: &str) -> Result<(), sqlx::Error> {
        sqlx::any::install_default_drivers();
        let mut connection = sqlx::AnyConnection::connect(self.database.url()).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut connection)
            .await
            .map(|_| ())
    }

    async fn count_rows(&self, sql: &str) -> i64 {
        sqlx::any::install_default_drivers();
        let mut connection = sqlx::AnyConnection::connect(self.database.url())
            .await
            .unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut connection)
            .await
            .unwrap()
    }

    async fn raw_sql(&self, sql: &'static str) -> Result<(), sqlx::Error> {
        sqlx::any::install_default_drivers();
        let mut connection = sqlx::AnyConnection::connect(self.database.url()).await?;
        sqlx::raw_sql(sql)
            .execute(&mut connection)
            .await
            .map(|_| ())
    }
}

fn event(kind: &str) -> EventData {
    EventData::new(Uuid::new_v4(), kind, json!({ "kind": kind }))
        .with_metadata(json!({ "requestId": Uuid::new_v4() }))
}

fn events(n: usize) -> Vec<EventData> {
    (0..n).map(|i| event(&format!("Happened{i}"))).collect()
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Harness::new(iam_test_databases::Kind::Sqlite).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Harness::new(iam_test_databases::Kind::Postgres).await).await;
                }
            )*
        }
    };
}

conformance!(
    no_stream_is_accepted_for_a_new_stream_and_refused_for_an_existing_one,
    stream_exists_is_refused_for_a_new_stream_and_accepted_for_an_existing_one,
    exact_revision_is_accepted_only_at_that_revision,
    any_is_accepted_whatever_the_stream,
    a_retried_append_returns_the_original_positions_and_writes_nothing,
    a_retry_of_part_of_an_append_is_refused,
    a_retry_under_any_or_stream_exists_is_recognized_anywhere_in_the_stream,
    sixteen_appenders_expecting_the_same_revision_have_exactly_one_winner,
    sixteen_appenders_on_different_streams_all_win_with_gapless_positions,
    a_subscriber_started_midway_sees_every_event_once_in_order_while_eight_writers_append,
    two_stores_on_one_database_keep_positions_gapless_and_wake_each_other,
    updates_and_deletes_of_the_log_are_refused_by_the_database,
    a_held_claim_fails_the_append_and_writes_nothing,
    a_released_claim_can_be_taken_again,
    streams_read_forwards_and_backwards_from_a_revision,
    read_all_pages_through_the_log,
    events_keep_their_data_metadata_and_time,
    inserts_anywhere_but_the_next_position_are_refused_by_the_database,
    an_append_the_database_refuses_does_not_fail_the_rest_of_its_group,
    an_append_its_inline_hook_refuses_is_refused_alone_and_the_hook_sees_attachments,
);

async fn no_stream_is_accepted_for_a_new_stream_and_refused_for_an_existing_one(h: Harness) {
    let first = h
        .store
        .append("s", ExpectedRevision::NoStream, events(2))
        .await
        .unwrap();
    assert_eq!(first.revision, Some(1));
    assert_eq!(first.positions, Some((1, 2)));

    let refused = h
        .store
        .append("s", ExpectedRevision::NoStream, events(1))
        .await;
    assert!(
        matches!(
            refused,
            Err(Error::WrongExpectedVersion {
                current: Some(1),
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        h.store.head_position().await.unwrap(),
        2,
        "a refusal writes nothing"
    );
}

async fn stream_exists_is_refused_for_a_new_stream_and_accepted_for_an_existing_one(h: Harness) {
    let refused = h
        .store
        .append("s", ExpectedRevision::StreamExists, events(1))
        .await;
    assert!(
        matches!(
            refused,
            Err(Error::WrongExpectedVersion { current: None, .. })
        ),
        "{refused:?}"
    );
    assert_eq!(h.store.stream_revision("s").await.unwrap(), None);

    h.store
        .append("s", ExpectedRevision::NoStream, events(1))
        .await
        .unwrap();
    let accepted = h
        .store
        .append("s", ExpectedRevision::StreamExists, events(1))
        .await
        .unwrap();
    assert_eq!(accepted.revision, Some(1));
}

async fn exact_revision_is_accepted_only_at_that_revision(h: Harness) {
    let refused = h
        .store
        .append("s", ExpectedRevision::Exact(0), events(1))
        .await;
    assert!(matches!(
        refused,
        Err(Error::WrongExpectedVersion { current: None, .. })
    ));

    h.store
        .append("s", ExpectedRevision::NoStream, events(3))
        .await
        .unwrap();
    for stale in [0, 1, 3] {
        let refused = h
            .store
            .append("s", ExpectedRevision::Exact(stale), events(1))
            .await;
        assert!(
            matches!(
                refused,
                Err(Error::WrongExpectedVersion {
                    current: Some(2),
                    ..
                })
            ),
            "expected revision {stale}: {refused:?}"
        );
    }
    let accepted = h
        .store
        .append("s", ExpectedRevision::Exact(2), events(1))
        .await
        .unwrap();
    assert_eq!(accepted.revision, Some(3));
    assert_eq!(accepted.positions, Some((4, 4)));
}

async fn any_is_accepted_whatever_the_stream(h: Harness) {
    let created = h
        .store
        .append("s", ExpectedRevision::Any, events(1))
        .await
        .unwrap();
    assert_eq!(created.revision, Some(0));
    let extended = h
        .store
        .append("s", ExpectedRevision::Any, events(2))
        .await
        .unwrap();
    assert_eq!(extended.revision, Some(2));
}

async fn a_retried_append_returns_the_original_positions_and_writes_nothing(h: Harness) {
    h.store
        .append("other", ExpectedRevision::NoStream, events(1))
        .await
        .unwrap();
    let batch = events(3);
    let original = h
        .store
        .append("s", ExpectedRevision::NoStream, batch.clone())
        .await
        .unwrap();
    h.store
        .append("s", ExpectedRevision::Exact(2), events(1))
        .await
        .unwrap();

    let retried = h
        .store
        .append("s", ExpectedRevision::NoStream, batch.clone())
        .await
        .unwrap();
    assert_eq!(retried, original);
    assert_eq!(retried.positions, Some((2, 4)));

    // The tail of the original append is a retry too, at the matching revision.
    let tail = h
        .store
        .append("s", ExpectedRevision::Exact(0), batch[1..].to_vec())
        .await
        .unwrap();
    assert_eq!(tail.positions, Some((3, 4)));
    assert_eq!(
        h.store.head_position().await.unwrap(),
        5,
        "retries write nothing"
    );
}

async fn a_retry_of_part_of_an_append_is_refused(h: Harness) {
    let batch = events(2);
    h.store
        .append("s", ExpectedRevision::NoStream, batch.clone())
        .await
        .unwrap();

    let mut partly_new = vec![batch[0].clone()];
    partly_new.push(event("New"));
    let refused = h
        .store
        .append("s", ExpectedRevision::NoStream, partly_new)
        .await;
    assert!(
        matches!(refused, Err(Error::WrongExpectedVersion { .. })),
        "{refused:?}"
    );

    let wrong_place = h
        .store
        .append("s", ExpectedRevision::Exact(0), batch.clone())
        .await;
    assert!(
        matches!(wrong_place, Err(Error::WrongExpectedVersion { .. })),
        "{wrong_place:?}"
    );
    assert_eq!(h.store.head_position().await.unwrap(), 2);
}

async fn a_retry_under_any_or_stream_exists_is_recognized_anywhere_in_the_stream(h: Harness) {
    let batch = events(2);
    let original = h
        .store
        .append("s", ExpectedRevision::Any, batch.clone())
        .await
        .unwrap();
    for _ in 0..3 {
        h.store
            .append("s", ExpectedRevision::Any, events(1))
            .await
            .unwrap();
    }
    let retried = h
        .store
        .append("s", ExpectedRevision::Any, batch.clone())
        .await
        .unwrap();
    assert_eq!(retried, original);
    let retried = h
        .store
        .append("s", ExpectedRevision::StreamExists, batch)
        .await
        .unwrap();
    assert_eq!(retried, original);
    assert_eq!(h.store.head_position().await.unwrap(), 5);
}

async fn sixteen_appenders_expecting_the_same_revision_have_exactly_one_winner(h: Harness) {
    h.store
        .append("s", ExpectedRevision::NoStream, events(1))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = h.store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append("s", ExpectedRevision::Exact(0), events(2))
                .await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(result) => {
                winners += 1;
                assert_eq!(result.revision, Some(2));
            }
            Err(Error::WrongExpectedVersion {
                current: Some(2), ..
            }) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(h.store.head_position().await.unwrap(), 3);
}

async fn sixteen_appenders_on_different_streams_all_win_with_gapless_positions(h: Harness) {
    let mut tasks = Vec::new();
    for appender in 0..16 {
        let store = h.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut positions = Vec::new();
            for round in 0..10u64 {
                let expected = if round == 0 {
                    ExpectedRevision::NoStream
                } else {
                    ExpectedRevision::Exact(round * 2 - 1)
                };
                let result = store
                    .append(&format!("stream-{appender}"), expected, events(2))
                    .await
                    .unwrap();
                let (first, last) = result.positions.unwrap();
                assert_eq!(last, first + 1);
                positions.extend([first, last]);
            }
            positions
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let positions = task.await.unwrap();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "one appender's positions increase"
        );
        all.extend(positions);
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=320).collect::<Vec<u64>>(),
        "positions are gapless and unique"
    );

    let log = h.store.read_all(1, 1000).await.unwrap();
    let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=320).collect::<Vec<u64>>());
}

async fn a_subscriber_started_midway_sees_every_event_once_in_order_while_eight_writers_append(
    h: Harness,
) {
    for i in 0..50 {
        h.store
            .append(
                &format!("before-{i}"),
                ExpectedRevision::NoStream,
                events(1),
            )
            .await
            .unwrap();
    }
    let mut subscription = h.store.subscribe_all(21);
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < 30 + 8 * 40 {
            seen.push(subscription.next().await.unwrap());
        }
        seen
    });
    let mut writers = Vec::new();
    for writer in 0..8 {
        let store = h.store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..20 {
                store
                    .append(
                        &format!("w{writer}-{i}"),
                        ExpectedRevision::NoStream,
                        events(2),
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let seen = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .unwrap()
        .unwrap();
    let positions: Vec<u64> = seen.iter().map(|e| e.position).collect();
    assert_eq!(positions, (21..=370).collect::<Vec<u64>>());
    let ids: HashSet<Uuid> = seen.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), seen.len(), "no event twice");
}

async fn two_stores_on_one_database_keep_positions_gapless_and_wake_each_other(h: Harness) {
    let other = h.second_store().await;
    let mut subscription = other.subscribe_all(1);
    let mut tasks = Vec::new();
    for (n, store) in [h.store.clone(), other.clone()].into_iter().enumerate() {
        for appender in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..15 {
                    store
                        .append(
                            &format!("p{n}-{appender}-{i}"),
                            ExpectedRevision::NoStream,
                            events(1),
                        )
                        .await
                        .unwrap();
                }
            }));
        }
    }
    let reader = tokio::spawn(async move {
        let mut positions = Vec::new();
        while positions.len() < 120 {
            positions.push(subscription.next().await.unwrap().position);
        }
        positions
    });
    for task in tasks {
        task.await.unwrap();
    }
    let positions = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(positions, (1..=120).collect::<Vec<u64>>());
}

async fn updates_and_deletes_of_the_log_are_refused_by_the_database(h: Harness) {
    h.store
        .append("s", ExpectedRevision::NoStream, events(2))
        .await
        .unwrap();
    let update = h.raw_sql("UPDATE events SET event_type = 'Forged'").await;
    assert!(update.is_err(), "UPDATE must be refused");
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = h.raw_sql("DELETE FROM events").await;
    assert!(delete.is_err(), "DELETE must be refused");
    let log = h.store.read_all(1, 10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|e| e.event_type != "Forged"));
}

async fn a_held_claim_fails_the_append_and_writes_nothing(h: Harness) {
    let jill = Claim::new("userName", "jill@example.com");
    h.store
        .submit(Append::new("user-1", ExpectedRevision::NoStream, events(1)).claim(jill.clone()))
        .await
        .unwrap();
    let refused = h
        .store
        .submit(
            Append::new("user-2", ExpectedRevision::NoStream, events(1))
                .claim(Claim::new("userName", "jack@example.com"))
                .claim(jill.clone()),
        )
        .await;
    match refused {
        Err(Error::ClaimHeld { claim, holder }) => {
            assert_eq!(claim, jill);
            assert_eq!(holder, "user-1");
        }
        other => panic!("expected ClaimHeld, got {other:?}"),
    }
    assert_eq!(h.store.stream_revision("user-2").await.unwrap(), None);
    assert_eq!(h.store.head_position().await.unwrap(), 1);
    // The other claim of the refused append was not taken either.
    h.store
        .submit(
            Append::new("user-3", ExpectedRevision::NoStream, events(1))
                .claim(Claim::new("userName", "jack@example.com")),
        )
        .await
        .unwrap();
}

async fn a_released_claim_can_be_taken_again(h: Harness) {
    let jill = Claim::new("userName", "jill@example.com");
    h.store
        .submit(Append::new("user-1", ExpectedRevision::NoStream, events(1)).claim(jill.clone()))
        .await
        .unwrap();
    let not_owner = h
        .store
        .submit(Append::new("user-2", ExpectedRevision::Any, events(1)).release(jill.clone()))
        .await;
    assert!(
        matches!(not_owner, Err(Error::ClaimNotOwned { .. })),
        "{not_owner:?}"
    );

    h.store
        .submit(Append::new("user-1", ExpectedRevision::Exact(0), events(1)).release(jill.clone()))
        .await
        .unwrap();
    h.store
        .submit(Append::new("user-2", ExpectedRevision::NoStream, events(1)).claim(jill.clone()))
        .await
        .unwrap();
    // Claiming again what one already holds changes nothing.
    h.store
        .submit(Append::new("user-2", ExpectedRevision::Exact(0), events(1)).claim(jill))
        .await
        .unwrap();
}

async fn streams_read_forwards_and_backwards_from_a_revision(h: Harness) {
    let batch = events(5);
    h.store
        .append("s", ExpectedRevision::NoStream, batch.clone())
        .await
        .unwrap();
    h.store
        .append("other", ExpectedRevision::NoStream, events(1))
        .await
        .unwrap();

    let forwards = h
        .store
        .read_stream("s", Direction::Forwards, StreamStart::Revision(1), 3)
        .await
        .unwrap();
    assert_eq!(
        forwards.iter().map(|e| e.revision).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(forwards[0].id, batch[1].id);

    let backwards = h
        .store
        .read_stream("s", Direction::Backwards, StreamStart::Revision(3), 10)
        .await
        .unwrap();
    assert_eq!(
        backwards.iter().map(|e| e.revision).collect::<Vec<_>>(),
        [3, 2, 1, 0]
    );

    let last = h
        .store
        .read_stream("s", Direction::Backwards, StreamStart::Edge, 1)
        .await
        .unwrap();
    assert_eq!(last[0].revision, 4);
    let all = h
        .store
        .read_stream("s", Direction::Forwards, StreamStart::Edge, 100)
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.iter().all(|e| e.stream == "s"));

    let missing = h
        .store
        .read_stream("missing", Direction::Forwards, StreamStart::Edge, 10)
        .await
        .unwrap();
    assert!(missing.is_empty());
}

async fn read_all_pages_through_the_log(h: Harness) {
    for i in 0..7 {
        h.store
            .append(&format!("s{i}"), ExpectedRevision::NoStream, events(3))
            .await
            .unwrap();
    }
    let mut from = 1;
    let mut seen = Vec::new();
    loop {
        let page = h.store.read_all(from, 4).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 4);
        from = page.last().unwrap().position + 1;
        seen.extend(page.into_iter().map(|e| e.position));
    }
    assert_eq!(seen, (1..=21).collect::<Vec<u64>>());
}

async fn events_keep_their_data_metadata_and_time(h: Harness) {
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let sent = EventData::new(
        Uuid::new_v4(),
        "UserCreated",
        json!({ "userName": "Jill@Example.com", "nested": { "list": [1, 2.5, "x", null] }, "quote": "O'Brien \"x\"" }),
    )
    .with_metadata(json!({ "actor": "admin", "requestId": "r-1" }));
    h.store
        .append("user-1", ExpectedRevision::NoStream, vec![sent.clone()])
        .await
        .unwrap();
    let read = h.store.read_all(1, 1).await.unwrap().remove(0);
    assert_eq!(read.id, sent.id);
    assert_eq!(read.event_type, sent.event_type);
    assert_eq!(read.data, sent.data);
    assert_eq!(read.metadata, sent.metadata);
    assert_eq!(read.stream, "user-1");
    assert_eq!((read.revision, read.position), (0, 1));
    assert!(
        read.recorded_at >= before
            && read.recorded_at <= chrono::Utc::now() + chrono::Duration::seconds(1)
    );
}

async fn inserts_anywhere_but_the_next_position_are_refused_by_the_database(h: Harness) {
    h.store
        .append("s", ExpectedRevision::NoStream, events(2))
        .await
        .unwrap();
    let columns = "(position, event_id, stream, revision, event_type, data, metadata, recorded_at)";
    let row = |position: u64, stream: &str, revision: u64| {
        format!(
            "({position}, '00000000-0000-0000-0000-00000000000{position}', '{stream}', {revision}, \
             'Forged', '{{}}', '{{}}', '2026-01-01T00:00:00Z')"
        )
    };
    let mut attempts = vec![
        format!("INSERT INTO events {columns} VALUES {}", row(1, "t", 0)),
        format!("INSERT INTO events {columns} VALUES {}", row(5, "t", 0)),
    ];
    attempts.extend(match h.store.backend() {
        // REPLACE deletes the row it collides with, and SQLite fires no
        // delete trigger for that: the insert itself must be refused.
        Backend::Sqlite => vec![
            format!("INSERT OR REPLACE INTO events {columns} VALUES {}", row(1, "s", 0)),
            format!("INSERT OR REPLACE INTO events {columns} VALUES {}", row(3, "s", 0)),
        ],
        Backend::Postgres => vec![format!(
            "INSERT INTO events {columns} VALUES {} ON CONFLICT (position) DO UPDATE SET event_type = 'Forged'",
            row(1, "s", 0)
        )],
    });
    for attempt in attempts {
        let refused = h.raw_sql_text(&attempt).await;
        assert!(refused.is_err(), "must be refused: {attempt}");
    }
    let log = h.store.read_all(1, 10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|e| e.event_type != "Forged"));
    // The next position is still open to the store itself.
    let next = h
        .store
        .append("s", ExpectedRevision::Exact(1), events(1))
        .await;
    assert_eq!(next.unwrap().positions, Some((3, 3)));
}

async fn an_append_the_database_refuses_does_not_fail_the_rest_of_its_group(h: Harness) {
    // PostgreSQL's jsonb refuses a NUL character; SQLite stores it. Either
    // way, the other appends sent at the same moment (one group) commit.
    let appends = (0..24).map(|i| {
        let store = h.store.clone();
        async move {
            let data = if i == 7 {
                json!({ "name": "nul\u{0}byte" })
            } else {
                json!({ "i": i })
            };
            let event = EventData::new(Uuid::new_v4(), "Happened", data);
            store
                .append(&format!("s-{i}"), ExpectedRevision::NoStream, vec![event])
                .await
        }
    });
    let outcomes = futures::future::join_all(appends).await;
    for (i, outcome) in outcomes.iter().enumerate() {
        if i != 7 {
            assert!(outcome.is_ok(), "append {i}: {outcome:?}");
        }
    }
    let expected = match h.store.backend() {
        Backend::Sqlite => 24,
        Backend::Postgres => {
            assert!(outcomes[7].is_err());
            23
        }
    };
    assert_eq!(h.store.head_position().await.unwrap(), expected);
    let positions: Vec<u64> = h
        .store
        .read_all(1, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(positions, (1..=expected).collect::<Vec<_>>(), "gapless");
}

/// Counts events into a table of its own, refuses `Poison`, and records
/// attachments.
#[derive(Debug)]
struct CountingHook;

#[async_trait::async_trait]
impl InlineHook for CountingHook {
    async fn apply(
        &self,
        connection: &mut sqlx::AnyConnection,
        _head_before: u64,
        batch: &InlineBatch<'_>,
    ) -> Result<(), InlineError> {
        for event in &batch.events {
            if event.event_type == "Poison" {
                return Err(InlineError::Refused("poison".into()));
            }
            let attachment = batch
                .attachment_at(event.position)
                .map(|value| value.to_string());
            sqlx::query("INSERT INTO hooked (position, attachment) VALUES ($1, $2)")
                .bind(event.position as i64)
                .bind(attachment)
                .execute(&mut *connection)
                .await
                .map_err(|error| InlineError::Database(Arc::new(error)))?;
        }
        Ok(())
    }
}

async fn an_append_its_inline_hook_refuses_is_refused_alone_and_the_hook_sees_attachments(
    h: Harness,
) {
    h.raw_sql("CREATE TABLE hooked (position BIGINT PRIMARY KEY, attachment TEXT)")
        .await
        .unwrap();
    h.store
        .install_inline(Arc::new(CountingHook))
        .await
        .unwrap();
    let appends = (0..16).map(|i| {
        let store = h.store.clone();
        async move {
            let kind = if i == 5 { "Poison" } else { "Happened" };
            let mut append = Append::new(
                format!("s-{i}"),
                ExpectedRevision::NoStream,
                vec![event(kind)],
            );
            if i == 3 {
                append = append.attach(json!({ "secret": "beside the log" }));
            }
            store.submit(append).await
        }
    });
    let outcomes = futures::future::join_all(appends).await;
    assert!(
        matches!(outcomes[5], Err(Error::Inline(_))),
        "{:?}",
        outcomes[5]
    );
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 15);
    assert_eq!(h.store.head_position().await.unwrap(), 15);
    let log = h.store.read_all(1, 100).await.unwrap();
    assert!(log.iter().all(|e| e.event_type != "Poison"));
    assert!(
        log.iter()
            .all(|e| !e.data.to_string().contains("beside the log")
                && !e.metadata.to_string().contains("beside the log")),
        "an attachment never reaches the log"
    );
    let third = outcomes[3].as_ref().unwrap().last_position().unwrap();
    let rows = h
        .count_rows(&format!(
            "SELECT COUNT(*) FROM hooked WHERE position = {third} AND attachment LIKE '%beside the log%'"
        ))
        .await;
    assert_eq!(rows, 1);
    assert_eq!(h.count_rows("SELECT COUNT(*) FROM hooked").await, 15);
}

/// A COMMIT whose connection is lost: PostgreSQL cuts the writer's session
/// while it commits (a deferred trigger ends its own backend, once). The
/// group did not commit; the writer tries it again on a new connection, and
/// the append is answered once, at the next position, written once.
#[tokio::test]
async fn postgres_a_commit_whose_connection_is_lost_is_settled_on_a_new_connection() {
    let h = Harness::new(Kind::Postgres).await;
    h.store
        .append("before", ExpectedRevision::NoStream, events(1))
        .await
        .unwrap();
    h.raw_sql(
        "CREATE SEQUENCE cut_once;
         CREATE FUNCTION cut_the_writer_once() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF current_setting('application_name') = 'iam-eventstore-writer'
                AND nextval('cut_once') = 1 THEN
                 PERFORM pg_terminate_backend(pg_backend_pid());
             END IF;
             RETURN NULL;
         END $$;
         CREATE CONSTRAINT TRIGGER cut_at_commit AFTER INSERT ON events
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cut_the_writer_once();",
    )
    .await
    .unwrap();
    let appended = h
        .store
        .append("cut", ExpectedRevision::NoStream, events(2))
        .await
        .expect("the group is settled on a new connection");
    assert_eq!(appended.positions, Some((2, 3)));
    let log = h.store.read_all(1, 10).await.unwrap();
    assert_eq!(log.len(), 3, "written once: {log:?}");
    assert_eq!(
        h.count_rows("SELECT nextval('cut_once')").await,
        4,
        "the trigger cut the first COMMIT at its first row, then ran for both rows of the retry"
    );
}

/// Stalls once, for `STALL`, inside the writer's transaction (holding the
/// append lock) when it sees a `Stall` event: a writer process frozen
/// mid-commit.
#[derive(Debug, Default)]
struct StallOnce {
    stalled: std::sync::atomic::AtomicBool,
}

const STALL: Duration = Duration::from_secs(9);

#[async_trait::async_trait]
impl InlineHook for StallOnce {
    async fn apply(
        &self,
        _connection: &mut sqlx::AnyConnection,
        _head_before: u64,
        batch: &InlineBatch<'_>,
    ) -> Result<(), InlineError> {
        if batch.events.iter().any(|e| e.event_type == "Stall")
            && !self.stalled.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            tokio::time::sleep(STALL).await;
        }
        Ok(())
    }
}

/// A writer that stalls inside its transaction holds the append lock of
/// every replica. The server ends its session after 5 s idle in the
/// transaction, so another replica's append waits seconds, not for the
/// stall; the stalled writer's group is then retried on a new connection
/// and written once.
#[tokio::test]
async fn postgres_a_writer_stalled_in_its_transaction_delays_the_others_by_seconds_only() {
    let h = Harness::new(Kind::Postgres).await;
    let other = h.second_store().await;
    h.store
        .install_inline(Arc::new(StallOnce::default()))
        .await
        .unwrap();
    let stalled = {
        let store = h.store.clone();
        tokio::spawn(async move {
            store
                .append("stalled", ExpectedRevision::NoStream, vec![event("Stall")])
                .await
        })
    };
    // Let the stalled writer take the lock first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let appended = other
        .append("other", ExpectedRevision::NoStream, events(1))
        .await
        .expect("the other replica appends once the stalled one is cut off");
    let waited = started.elapsed();
    assert!(
        waited < STALL - Duration::from_secs(2),
        "the other replica waited {waited:?}, about as long as the stall"
    );
    assert!(appended.positions.is_some());
    let stalled = stalled
        .await
        .unwrap()
        .expect("the stalled group is retried and written");
    assert!(stalled.positions.is_some());
    let log = h.store.read_all(1, 10).await.unwrap();
    assert_eq!(log.len(), 2, "each append written once: {log:?}");
}
