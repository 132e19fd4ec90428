//! The read models the service answers from, one module per projector with
//! the queries answered from its tables beside it. Each projector owns its
//! tables alone.

mod audit;
mod groups;
mod organizations;
mod tokens;
mod users;

use iam_eventstore::RecordedEvent;
use serde::de::DeserializeOwned;
use serde_json::json;

pub use audit::{AuditFilter, AuditProjector, AuditRow, fold};
pub use groups::{GroupRow, GroupsProjector, QueryValue};
pub use organizations::{OrganizationRow, OrganizationsProjector, kind_name};
pub use tokens::{TokenRef, TokenRow, TokensProjector};
pub use users::{TokenHolder, UserRow, UsersProjector};

use crate::{Error, Projector, Result};

/// Decodes a domain event from its type and data, or `None` for events of
/// other aggregates (streams not starting with `prefix`): each projector
/// sees the whole log.
fn decode<E: DeserializeOwned>(
    projector: &str,
    prefix: &str,
    event: &RecordedEvent,
) -> Result<Option<E>> {
    if !event.stream.starts_with(prefix) {
        return Ok(None);
    }
    serde_json::from_value(json!({ "type": event.event_type, "data": event.data }))
        .map(Some)
        .map_err(|error| Error::Apply {
            projector: projector.to_owned(),
            position: event.position,
            reason: format!("cannot decode {}: {error}", event.event_type),
        })
}

/// A filtered list's query: the rows of `table` (aliased `alias`) in
/// `organization` that match `condition` (SQL over the alias, whose
/// parameters start at `$2`), ordered by `order`, a page at a time.
struct PageWhere<'a> {
    table: &'a str,
    alias: &'a str,
    columns: &'a str,
    organization: &'a str,
    condition: &'a str,
    binds: Vec<QueryValue>,
    order: &'a str,
    offset: i64,
    limit: i64,
}

impl crate::ReadModels {
    /// The page's rows and how many rows match in all.
    async fn page_where(&self, page: PageWhere<'_>) -> Result<(Vec<sqlx::any::AnyRow>, i64)> {
        use sqlx::Row;
        let PageWhere {
            table,
            alias,
            columns,
            organization,
            condition,
            binds,
            order,
            offset,
            limit,
        } = page;
        let from =
            format!("FROM {table} {alias} WHERE {alias}.organization_id = $1 AND ({condition})");
        let mut count = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS total {from}"
        )))
        .bind(organization.to_owned());
        for bind in &binds {
            count = bind.clone().bind_to(count);
        }
        let total: i64 = count.fetch_one(self.pool()).await?.try_get("total")?;
        if limit == 0 {
            return Ok((Vec::new(), total));
        }
        let n = binds.len();
        let sql = format!(
            "SELECT {columns} {from} ORDER BY {order} LIMIT ${} OFFSET ${}",
            n + 2,
            n + 3
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(organization.to_owned());
        for bind in binds {
            query = bind.bind_to(query);
        }
        let rows = query
            .bind(limit)
            .bind(offset)
            .fetch_all(self.pool())
            .await?;
        Ok((rows, total))
    }
}

fn millis(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_millis()
}

/// Every projector of the service's read models, in the order they run.
pub const ALL: [&dyn Projector; 5] = [
    &OrganizationsProjector,
    &UsersProjector,
    &TokensProjector,
    &GroupsProjector,
    &AuditProjector,
];
