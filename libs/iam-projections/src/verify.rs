//! Verifying a projector: replay the log into scratch copies of its tables
//! and compare them with the live ones.
//!
//! Everything happens on one connection, inside one transaction that is
//! rolled back at the end. Scratch copies are TEMP tables with the live
//! tables' names: on SQLite and on PostgreSQL a temporary table shadows the
//! permanent one for unqualified names, so the projector's own SQL fills
//! them unchanged. The live checkpoint and rows are read in the same
//! transaction (one snapshot), and the replay stops at that checkpoint, so
//! a running service does not make the comparison flicker.

use iam_eventstore::{Backend, EventStore};
use sqlx::{AnyConnection, Row};

use crate::{Projector, ReadModels, Result};

const BATCH: usize = 500;
const SHOWN_PER_TABLE: usize = 10;

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The projector.
    pub projector: &'static str,
    /// The position both sides were compared at.
    pub position: u64,
    /// Readable differences: `table: only live: row` / `only rebuilt: row`.
    pub differences: Vec<String>,
}

/// Rebuilds `projector` into scratch tables up to its live checkpoint and
/// compares them with its live tables.
pub async fn verify(
    store: &dyn EventStore,
    read_models: &ReadModels,
    projector: &dyn Projector,
) -> Result<Verification> {
    let mut connection = read_models.pool().acquire().await?;
    let connection: &mut AnyConnection = &mut connection;
    let backend = read_models.backend();
    sqlx::raw_sql(match backend {
        Backend::Sqlite => "BEGIN",
        Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ",
    })
    .execute(&mut *connection)
    .await?;
    let outcome = compare(store, connection, backend, projector).await;
    // The rollback also drops the TEMP tables (their creation was part of it).
    sqlx::raw_sql("ROLLBACK").execute(&mut *connection).await?;
    outcome
}

async fn compare(
    store: &dyn EventStore,
    connection: &mut AnyConnection,
    backend: Backend,
    projector: &dyn Projector,
) -> Result<Verification> {
    let position: i64 = sqlx::query_scalar(
        "SELECT COALESCE((SELECT position FROM projection_checkpoints WHERE name = $1), 0)",
    )
    .bind(projector.name())
    .fetch_one(&mut *connection)
    .await?;
    let position = position as u64;
    for table in projector.tables() {
        create_scratch(connection, backend, table).await?;
    }
    let mut next = 1;
    while next <= position {
        let mut events = store.read_all(next, BATCH).await?;
        events.retain(|event| event.position <= position);
        let Some(last) = events.last() else { break };
        next = last.position + 1;
        projector.apply(connection, &events).await?;
    }
    let mut differences = Vec::new();
    for table in projector.tables() {
        let (live, scratch) = match backend {
            Backend::Sqlite => (format!("main.{table}"), format!("temp.{table}")),
            Backend::Postgres => (format!("public.{table}"), format!("pg_temp.{table}")),
        };
        let as_text = row_text(connection, backend, table).await?;
        for (label, from, minus) in [
            ("only live", &live, &scratch),
            ("only rebuilt", &scratch, &live),
        ] {
            let sql = format!(
                "SELECT {as_text} AS row_text FROM (SELECT * FROM {from} EXCEPT SELECT * FROM {minus}) d \
                 LIMIT {SHOWN_PER_TABLE}"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut *connection)
                .await?;
            for row in rows {
                differences.push(format!(
                    "{table}: {label}: {}",
                    row.try_get::<String, _>("row_text")?
                ));
            }
        }
    }
    Ok(Verification {
        projector: projector.name(),
        position,
        differences,
    })
}

/// An empty TEMP copy of `table`, with its keys (projectors rely on them
/// for `ON CONFLICT`).
async fn create_scratch(
    connection: &mut AnyConnection,
    backend: Backend,
    table: &str,
) -> Result<()> {
    match backend {
        Backend::Postgres => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE TEMP TABLE {table} (LIKE public.{table} INCLUDING ALL)"
            )))
            .execute(&mut *connection)
            .await?;
        }
        Backend::Sqlite => {
            let ddl: Vec<(String, String)> = sqlx::query_as(
                "SELECT type, sql FROM main.sqlite_master WHERE tbl_name = $1 AND sql IS NOT NULL \
                 ORDER BY type = 'index'",
            )
            .bind(table.to_owned())
            .fetch_all(&mut *connection)
            .await?;
            for (kind, sql) in ddl {
                let scratch = if kind == "table" {
                    sql.replacen("CREATE TABLE ", "CREATE TEMP TABLE ", 1)
                } else {
                    sql.replacen("CREATE INDEX ", "CREATE INDEX temp.", 1)
                        .replacen("CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX temp.", 1)
                };
                sqlx::raw_sql(sqlx::AssertSqlSafe(scratch))
                    .execute(&mut *connection)
                    .await?;
            }
        }
    }
    Ok(())
}

/// An SQL expression rendering a row of `d` (a subquery over `table`) as text.
async fn row_text(connection: &mut AnyConnection, backend: Backend, table: &str) -> Result<String> {
    Ok(match backend {
        Backend::Postgres => "d::text".to_owned(),
        Backend::Sqlite => {
            let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
                .bind(table.to_owned())
                .fetch_all(&mut *connection)
                .await?;
            let quoted: Vec<String> = columns.iter().map(|c| format!("quote(d.{c})")).collect();
            format!("'(' || {} || ')'", quoted.join(" || ',' || "))
        }
    })
}
