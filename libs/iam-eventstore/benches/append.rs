//! Append throughput of the event store, beside a baseline in the same run.
//!
//! For each backend (SQLite in a temporary file; PostgreSQL when
//! `IAM_TEST_POSTGRES_URL` is set, as `./scripts/bench.sh` does), each batch
//! size (1, 10, 100) and each number of concurrent appenders (1, 32), it
//! measures events/s of
//!
//! - the store: `append` of a batch to the appender's own stream, with an
//!   exact expected revision, acknowledged once durable;
//! - the baseline: the same rows as one plain multi-row `INSERT` into a bare
//!   table (no index, no constraint) of the same database, one transaction
//!   per batch, with the same durability settings.
//!
//! Store and baseline runs alternate, `IAM_BENCH_RUNS` times each (default
//! 5), `IAM_BENCH_SECONDS` each (default 2); the table shows the medians and
//! the ratio of the medians. `IAM_BENCH_BACKENDS` (`sqlite,postgres`),
//! `IAM_BENCH_BATCHES` (`1,10,100`) and `IAM_BENCH_APPENDERS` (`1,32`)
//! narrow the table to some cells. `--quick` runs once for a fraction of a second
//! (a smoke test of the benchmark itself).

// A benchmark binary: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iam_eventstore::{EventData, EventStore, ExpectedRevision};
use iam_test_databases::{Kind, TestDatabase};
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, QueryBuilder};
use uuid::Uuid;

const BATCH_SIZES: &str = "1,10,100";
const APPENDERS: &str = "1,32";

#[derive(Clone, Copy)]
struct Settings {
    runs: usize,
    duration: Duration,
}

fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let settings = if quick {
        Settings {
            runs: 1,
            duration: Duration::from_millis(200),
        }
    } else {
        Settings {
            runs: env_number("IAM_BENCH_RUNS", 5),
            duration: Duration::from_secs_f64(env_number("IAM_BENCH_SECONDS", 2) as f64),
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(settings))
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

fn env_numbers(name: &str, default: &str) -> Vec<usize> {
    env_list(name, default)
        .iter()
        .map(|item| {
            item.parse()
                .unwrap_or_else(|_| panic!("{name}: `{item}` is not a number"))
        })
        .collect()
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let backends = env_list("IAM_BENCH_BACKENDS", "sqlite,postgres");
    let mut kinds = Vec::new();
    if backends.iter().any(|b| b == "sqlite") {
        kinds.push(Kind::Sqlite);
    }
    if backends.iter().any(|b| b == "postgres") {
        if std::env::var(iam_test_databases::POSTGRES_URL_VARIABLE).is_ok() {
            kinds.push(Kind::Postgres);
        } else {
            eprintln!(
                "IAM_TEST_POSTGRES_URL is not set: PostgreSQL is skipped (./scripts/bench.sh sets it)"
            );
        }
    }
    let batch_sizes = env_numbers("IAM_BENCH_BATCHES", BATCH_SIZES);
    let appender_counts = env_numbers("IAM_BENCH_APPENDERS", APPENDERS);
    println!(
        "append throughput, median of {} runs of {:.1} s each, store and baseline alternating\n",
        settings.runs,
        settings.duration.as_secs_f64()
    );
    println!(
        "| backend | batch | appenders | store events/s | baseline events/s | store/baseline |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for kind in kinds {
        for &batch in &batch_sizes {
            for &appenders in &appender_counts {
                let database = TestDatabase::new(kind).await?;
                let store: Arc<dyn EventStore> = iam_eventstore::connect(database.url()).await?;
                let baseline = Baseline::open(kind, database.url(), appenders).await?;
                let mut store_rates = Vec::new();
                let mut baseline_rates = Vec::new();
                for run in 0..settings.runs {
                    store_rates.push(
                        measure_store(&store, batch, appenders, run, settings.duration).await,
                    );
                    baseline_rates
                        .push(baseline.measure(batch, appenders, settings.duration).await);
                }
                let store_rate = median(&mut store_rates);
                let baseline_rate = median(&mut baseline_rates);
                println!(
                    "| {} | {batch} | {appenders} | {store_rate:.0} | {baseline_rate:.0} | {:.2} |",
                    match kind {
                        Kind::Sqlite => "SQLite",
                        Kind::Postgres => "PostgreSQL",
                    },
                    store_rate / baseline_rate
                );
            }
        }
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

/// A row as both the store and the baseline write it.
fn payload(appender: usize, n: usize) -> (Value, Value) {
    (
        json!({
            "userName": format!("user-{appender}-{n}@example.com"),
            "email": format!("user-{appender}-{n}@example.com"),
            "givenName": "Jill",
            "familyName": "Example",
            "state": "Active",
            "roles": ["End User"],
        }),
        json!({
            "actor": "7179ba2e-6d49-485f-b54e-16e3b8ea3058",
            "organization": "422ca48d-a8e6-4b71-9f8f-5aa78362f98e",
            "requestId": Uuid::new_v4(),
        }),
    )
}

async fn measure_store(
    store: &Arc<dyn EventStore>,
    batch: usize,
    appenders: usize,
    run: usize,
    duration: Duration,
) -> f64 {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for appender in 0..appenders {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("bench-{run}-{appender}");
            let mut expected = ExpectedRevision::NoStream;
            let mut written = 0;
            while Instant::now() < deadline {
                let events = (0..batch)
                    .map(|i| {
                        let (data, metadata) = payload(appender, written + i);
                        EventData::new(Uuid::new_v4(), "UserCreated", data).with_metadata(metadata)
                    })
                    .collect();
                let result = store.append(&stream, expected, events).await.unwrap();
                expected = ExpectedRevision::Exact(result.revision.unwrap());
                written += batch;
            }
            written
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

enum Baseline {
    Sqlite(Pool<sqlx::Sqlite>),
    Postgres(Pool<sqlx::Postgres>),
}

const BASELINE_TABLE: &str = "CREATE TABLE baseline_events (position BIGINT, event_id TEXT, stream TEXT, \
     revision BIGINT, event_type TEXT, data TEXT, metadata TEXT, recorded_at TEXT)";

impl Baseline {
    async fn open(kind: Kind, url: &str, appenders: usize) -> anyhow::Result<Self> {
        Ok(match kind {
            Kind::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)?
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(30));
                let pool = SqlitePoolOptions::new()
                    .max_connections(appenders as u32)
                    .connect_with(options)
                    .await?;
                sqlx::query(BASELINE_TABLE).execute(&pool).await?;
                Baseline::Sqlite(pool)
            }
            Kind::Postgres => {
                let pool = PgPoolOptions::new()
                    .max_connections(appenders as u32)
                    .connect(url)
                    .await?;
                sqlx::query("SET synchronous_commit = on")
                    .execute(&pool)
                    .await?;
                sqlx::query(BASELINE_TABLE).execute(&pool).await?;
                Baseline::Postgres(pool)
            }
        })
    }

    async fn measure(&self, batch: usize, appenders: usize, duration: Duration) -> f64 {
        let started = Instant::now();
        let deadline = started + duration;
        let mut tasks = Vec::new();
        for appender in 0..appenders {
            let this = match self {
                Baseline::Sqlite(pool) => Baseline::Sqlite(pool.clone()),
                Baseline::Postgres(pool) => Baseline::Postgres(pool.clone()),
            };
            tasks.push(tokio::spawn(async move {
                let mut written = 0;
                while Instant::now() < deadline {
                    this.insert_batch(appender, written, batch).await;
                    written += batch;
                }
                written
            }));
        }
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        total as f64 / started.elapsed().as_secs_f64()
    }

    /// One transaction, one multi-row INSERT of `batch` rows.
    async fn insert_batch(&self, appender: usize, first: usize, batch: usize) {
        let now = chrono::Utc::now().to_rfc3339();
        let rows: Vec<(String, Value, Value)> = (0..batch)
            .map(|i| {
                let (data, metadata) = payload(appender, first + i);
                (Uuid::new_v4().to_string(), data, metadata)
            })
            .collect();
        macro_rules! insert {
            ($pool:expr, $db:ty) => {{
                let mut tx = $pool.begin().await.unwrap();
                let mut query = QueryBuilder::<$db>::new(
                    "INSERT INTO baseline_events (position, event_id, stream, revision, event_type, data, metadata, recorded_at) ",
                );
                query.push_values(rows.iter().enumerate(), |mut row, (i, (id, data, metadata))| {
                    row.push_bind((first + i) as i64)
                        .push_bind(id.clone())
                        .push_bind(format!("bench-{appender}"))
                        .push_bind((first + i) as i64)
                        .push_bind("UserCreated")
                        .push_bind(data.to_string())
                        .push_bind(metadata.to_string())
                        .push_bind(now.clone());
                });
                query.build().execute(&mut *tx).await.unwrap();
                tx.commit().await.unwrap();
            }};
        }
        match self {
            Baseline::Sqlite(pool) => insert!(pool, sqlx::Sqlite),
            Baseline::Postgres(pool) => insert!(pool, sqlx::Postgres),
        }
    }
}
