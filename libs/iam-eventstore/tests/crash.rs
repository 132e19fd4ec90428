//! An acknowledged append survives `kill -9` of the process that made it.
//!
//! The test runs its own binary again as a child process (only the ignored
//! `child_appends_until_killed` test, with the database in an environment
//! variable). The child appends from several tasks and prints a line for
//! every acknowledged append; the parent kills it with SIGKILL in the middle
//! of that, reopens the file, and looks for every acknowledged event.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use iam_eventstore::{EventData, EventStore, ExpectedRevision, SqliteEventStore};
use iam_test_databases::TestDatabase;
use serde_json::json;
use uuid::Uuid;

const CHILD_DATABASE: &str = "IAM_CRASH_TEST_DATABASE_URL";
const ACKED: &str = "acked";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_acknowledged_before_sigkill_is_present_after_reopening() {
    let database = TestDatabase::sqlite().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_appends_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DATABASE, database.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acknowledged = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        let mut words = line.split_whitespace();
        if words.next() != Some(ACKED) {
            continue;
        }
        let id: Uuid = words.next().unwrap().parse().unwrap();
        let position: u64 = words.next().unwrap().parse().unwrap();
        acknowledged.push((id, position));
        if acknowledged.len() == 300 {
            child.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush runs.
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the child must have been killed, not have finished"
    );
    assert_eq!(
        acknowledged.len(),
        300,
        "the child acknowledged appends before it was killed"
    );

    let store = SqliteEventStore::open(database.url()).await.unwrap();
    let log = store.read_all(1, 100_000).await.unwrap();
    assert!(log.len() >= acknowledged.len());
    for (id, position) in acknowledged {
        let event = &log[(position - 1) as usize];
        assert_eq!(
            event.id, id,
            "acknowledged event at position {position} is missing after the crash"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of an_append_acknowledged_before_sigkill_is_present_after_reopening"]
async fn child_appends_until_killed() {
    let Ok(url) = std::env::var(CHILD_DATABASE) else {
        return;
    };
    let store = SqliteEventStore::open(&url).await.unwrap();
    let mut tasks = Vec::new();
    for task in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let event =
                    EventData::new(Uuid::new_v4(), "Happened", json!({ "task": task, "i": i }));
                let id = event.id;
                let result = store
                    .append(
                        &format!("crash-{task}-{i}"),
                        ExpectedRevision::NoStream,
                        vec![event],
                    )
                    .await
                    .unwrap();
                println!("{ACKED} {id} {}", result.last_position().unwrap());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}
