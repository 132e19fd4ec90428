//! Many rows, one statement: a projector folds a batch of events into rows
//! per table and writes each table's rows with one statement, passing them
//! as a JSON array. The statement count of a batch is then fixed, however
//! many events it holds; with SQLite every statement is a hand-off to
//! another thread and with PostgreSQL a round trip, so this is what makes a
//! group commit of hundreds of appends cheap.
//!
//! In the SQL, `{rows}` stands for the array's elements as a table `j`
//! whose column `value` is one row (a JSON object): `j.value ->> 'id'`
//! reads a field as text on both databases, `CAST(… AS BIGINT)` a number.

use serde_json::Value;
use sqlx::AnyConnection;

use crate::Result;

/// Runs `sql` once for all of `rows` (nothing when there are none).
pub async fn execute_for_rows(
    connection: &mut AnyConnection,
    sql: &'static str,
    rows: Vec<Value>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let source = if connection.backend_name() == "PostgreSQL" {
        "jsonb_array_elements($1::jsonb) AS j(value)"
    } else {
        "jsonb_each($1) AS j"
    };
    let sql = sql.replace("{rows}", source);
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(Value::Array(rows).to_string())
        .execute(&mut *connection)
        .await?;
    Ok(())
}
