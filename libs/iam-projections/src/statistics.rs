//! Fresh planner statistics for the read models on PostgreSQL.
//!
//! PostgreSQL plans a query from its statistics of the tables, which
//! autovacuum refreshes only after a table has changed by a tenth, and at
//! best once a minute per database. A bulk import grows a tenant from nothing
//! to a hundred thousand users in less time than that. Until the first
//! analysis the planner takes the tenant for a few hundred rows and scans
//! all of it for every lookup by `externalId`: measured, such a lookup grew
//! from 60 ms to 490 ms within one import, and the import ran at 1,200
//! users/s instead of 4,500.
//!
//! So `iamd` analyzes a read-model table itself once it has changed by more
//! than [`THRESHOLD_ROWS`] plus a tenth of its rows since its last analysis
//! (autovacuum's rule, at a pace of seconds). PostgreSQL's manual advises the
//! same after a bulk load ("Populating a Database": run `ANALYZE`
//! afterwards); here the load arrives through the API, so the service runs
//! it. SQLite plans without statistics: there this does nothing.

use std::time::Duration;

use iam_eventstore::Backend;
use sqlx::Row as _;

use crate::read_models::ALL;
use crate::{ReadModels, Result};

/// The changed rows that make any table worth a new analysis.
pub const THRESHOLD_ROWS: i64 = 1_000;

/// Analyzes every read-model table whose statistics are stale; returns the
/// tables it analyzed. Does nothing on SQLite.
pub async fn refresh(read_models: &ReadModels) -> Result<Vec<&'static str>> {
    if read_models.backend() != Backend::Postgres {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT CAST(relname AS TEXT) AS name, n_live_tup, n_mod_since_analyze \
         FROM pg_stat_user_tables WHERE schemaname = current_schema()",
    )
    .fetch_all(read_models.pool())
    .await?;
    let mut analyzed = Vec::new();
    for row in rows {
        let name: String = row.try_get("name")?;
        let live: i64 = row.try_get("n_live_tup")?;
        let changed: i64 = row.try_get("n_mod_since_analyze")?;
        // Only the tables the projectors own, named from this crate's own
        // list, never from the database.
        let Some(table) = ALL
            .iter()
            .flat_map(|projector| projector.tables())
            .find(|table| **table == name)
        else {
            continue;
        };
        if changed > THRESHOLD_ROWS + live / 10 {
            sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}")))
                .execute(read_models.pool())
                .await?;
            analyzed.push(*table);
        }
    }
    Ok(analyzed)
}

/// Runs [`refresh`] every `interval`, forever; a failure is logged and
/// tried again at the next tick.
pub async fn refresh_forever(read_models: ReadModels, interval: Duration) {
    if read_models.backend() != Backend::Postgres {
        return;
    }
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match refresh(&read_models).await {
            Ok(analyzed) if analyzed.is_empty() => {}
            Ok(analyzed) => {
                tracing::debug!(tables = ?analyzed, "analyzed read models that changed");
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot refresh the read models' statistics; will try again");
            }
        }
    }
}
