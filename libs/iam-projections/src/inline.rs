//! Projectors run inline: in the event store's writer transaction, so a
//! group's read-model rows and checkpoints commit with its events, in one
//! durable commit. What a write's answer and the next read depend on is
//! projected this way; the [`crate::Runner`] follows the log for what may lag.
//!
//! Each projector keeps its checkpoint, moved in the same transaction. A
//! projector that is behind the log (events appended by a process without
//! the hook, or a projector that is new) first catches up, reading the log
//! on the writer's connection, so the rows never skip an event.

use std::sync::Arc;

use async_trait::async_trait;
use iam_eventstore::{InlineBatch, InlineError, InlineHook, read_log_on};
use sqlx::{AnyConnection, Row};

use crate::{Error, Projector, Result};

/// Events read at a time when a projector catches up.
const CATCH_UP_BATCH: usize = 500;

/// Projectors applied in the writer's transaction.
#[derive(Clone)]
pub struct InlineProjections {
    projectors: Vec<Arc<dyn Projector>>,
    /// Moves every checkpoint that is where the group starts, in one statement.
    advance_sql: String,
}

impl std::fmt::Debug for InlineProjections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.projectors).finish()
    }
}

impl InlineProjections {
    /// Runs `projectors` inline (their names are static identifiers).
    pub fn new(projectors: Vec<Arc<dyn Projector>>) -> Self {
        let names: Vec<String> = projectors
            .iter()
            .map(|projector| format!("'{}'", projector.name()))
            .collect();
        Self {
            advance_sql: format!(
                "UPDATE projection_checkpoints SET position = $1 WHERE position = $2 AND name IN ({})",
                names.join(", ")
            ),
            projectors,
        }
    }

    /// The projectors, for status, rebuild and verify.
    pub fn projectors(&self) -> &[Arc<dyn Projector>] {
        &self.projectors
    }

    /// Applies `batch` to every projector and moves their checkpoints from
    /// `head_before` to the batch's last position.
    pub async fn apply_batch(
        &self,
        connection: &mut AnyConnection,
        head_before: u64,
        batch: &InlineBatch<'_>,
    ) -> Result<()> {
        let head_after = batch.events.last().map_or(head_before, |e| e.position);
        let moved = sqlx::query(sqlx::AssertSqlSafe(self.advance_sql.clone()))
            .bind(head_after as i64)
            .bind(head_before as i64)
            .execute(&mut *connection)
            .await?
            .rows_affected();
        if moved != self.projectors.len() as u64 {
            self.catch_up(connection, head_before, head_after).await?;
        }
        for projector in &self.projectors {
            projector.apply(connection, &batch.events).await?;
        }
        Ok(())
    }

    /// Brings every projector whose checkpoint is behind `head_before` up to
    /// it, then sets its checkpoint to `head_after`.
    async fn catch_up(
        &self,
        connection: &mut AnyConnection,
        head_before: u64,
        head_after: u64,
    ) -> Result<()> {
        for projector in &self.projectors {
            let name = projector.name();
            sqlx::query(
                "INSERT INTO projection_checkpoints (name, position) VALUES ($1, 0) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .execute(&mut *connection)
            .await?;
            let row = sqlx::query("SELECT position FROM projection_checkpoints WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *connection)
                .await?;
            let mut checkpoint = row.try_get::<i64, _>("position")? as u64;
            if checkpoint == head_after {
                continue;
            }
            if checkpoint > head_before {
                return Err(Error::Apply {
                    projector: name.to_owned(),
                    position: checkpoint,
                    reason: format!("the checkpoint is ahead of the log's head {head_before}"),
                });
            }
            if checkpoint < head_before {
                tracing::info!(
                    projector = name,
                    from = checkpoint + 1,
                    to = head_before,
                    "catching up with the log"
                );
            }
            while checkpoint < head_before {
                let limit = CATCH_UP_BATCH.min((head_before - checkpoint) as usize);
                let events = read_log_on(connection, checkpoint + 1, limit).await?;
                let Some(last) = events.last() else { break };
                checkpoint = last.position;
                projector.apply(connection, &events).await?;
            }
            sqlx::query("UPDATE projection_checkpoints SET position = $1 WHERE name = $2")
                .bind(head_after as i64)
                .bind(name)
                .execute(&mut *connection)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl InlineHook for InlineProjections {
    async fn apply(
        &self,
        connection: &mut AnyConnection,
        head_before: u64,
        batch: &InlineBatch<'_>,
    ) -> std::result::Result<(), InlineError> {
        self.apply_batch(connection, head_before, batch)
            .await
            .map_err(|error| match error {
                Error::Database(error) => InlineError::Database(error),
                Error::EventStore(iam_eventstore::Error::Database(error)) => {
                    InlineError::Database(error)
                }
                other => InlineError::Refused(other.to_string()),
            })
    }
}
