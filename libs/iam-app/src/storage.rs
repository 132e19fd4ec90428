//! Failures of the database itself rather than of a request: unreachable
//! (a PostgreSQL restart, a network cut), out of space, or read-only. The
//! service answers them 503 with `Retry-After` and a sentence that says
//! which, instead of a bare 500; reads keep working where the database
//! still answers them.

use iam_eventstore::Error as StoreError;
use iam_projections::Error as ReadModelError;

/// What is wrong with the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// It does not answer, or ended the connection.
    Unreachable,
    /// It has no space left for writes.
    Full,
    /// It takes no writes.
    ReadOnly,
}

impl StorageFault {
    /// The fault behind `error`, if its cause chain holds one.
    pub fn of(error: &anyhow::Error) -> Option<Self> {
        error.chain().find_map(|cause| {
            if let Some(error) = cause.downcast_ref::<sqlx::Error>() {
                return of_sqlx(error);
            }
            if let Some(error) = cause.downcast_ref::<StoreError>() {
                return of_store(error);
            }
            if let Some(error) = cause.downcast_ref::<ReadModelError>() {
                return of_read_models(error);
            }
            None
        })
    }

    /// A sentence for the caller.
    pub fn message(self) -> &'static str {
        match self {
            StorageFault::Unreachable => {
                "The database cannot be reached at the moment; try again shortly."
            }
            StorageFault::Full => {
                "The database has no space left, so it takes no writes (reads keep working); an \
                 operator must free space."
            }
            StorageFault::ReadOnly => {
                "The database is read-only, so it takes no writes (reads keep working); an \
                 operator must make it writable."
            }
        }
    }
}

fn of_store(error: &StoreError) -> Option<StorageFault> {
    match error {
        StoreError::Database(error) => of_sqlx(error),
        StoreError::WriterStopped => Some(StorageFault::Unreachable),
        _ => None,
    }
}

fn of_read_models(error: &ReadModelError) -> Option<StorageFault> {
    match error {
        ReadModelError::Database(error) => of_sqlx(error),
        ReadModelError::EventStore(error) => of_store(error),
        _ => None,
    }
}

fn of_sqlx(error: &sqlx::Error) -> Option<StorageFault> {
    match error {
        sqlx::Error::Io(error) if error.kind() == std::io::ErrorKind::StorageFull => {
            Some(StorageFault::Full)
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Some(StorageFault::Unreachable),
        sqlx::Error::Database(error) => {
            let code = error.code()?;
            of_code(&code)
        }
        _ => None,
    }
}

/// PostgreSQL's SQLSTATE, or SQLite's (extended) result code.
fn of_code(code: &str) -> Option<StorageFault> {
    // PostgreSQL: class 08 connection exception, 57P operator intervention
    // (a shutdown or restart), 53100 disk full, 25006 read-only transaction.
    if code.starts_with("08") || code.starts_with("57P") {
        return Some(StorageFault::Unreachable);
    }
    match code {
        "53100" => return Some(StorageFault::Full),
        "25006" => return Some(StorageFault::ReadOnly),
        _ => {}
    }
    // SQLite: the primary result code is the low byte of the extended one.
    let primary = code.parse::<i32>().ok()? & 0xff;
    match primary {
        13 => Some(StorageFault::Full),    // SQLITE_FULL
        8 => Some(StorageFault::ReadOnly), // SQLITE_READONLY
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_name_their_fault() {
        assert_eq!(of_code("57P01"), Some(StorageFault::Unreachable));
        assert_eq!(of_code("08006"), Some(StorageFault::Unreachable));
        assert_eq!(of_code("53100"), Some(StorageFault::Full));
        assert_eq!(of_code("25006"), Some(StorageFault::ReadOnly));
        assert_eq!(of_code("13"), Some(StorageFault::Full));
        assert_eq!(of_code("1032"), Some(StorageFault::ReadOnly));
        assert_eq!(
            of_code("23505"),
            None,
            "a unique violation is the request's"
        );
        assert_eq!(of_code("2067"), None, "SQLite's unique constraint too");
    }

    #[test]
    fn the_chain_is_searched() {
        let error = anyhow::Error::from(StoreError::WriterStopped).context("appending");
        assert_eq!(StorageFault::of(&error), Some(StorageFault::Unreachable));
        let error = anyhow::anyhow!("something else");
        assert_eq!(StorageFault::of(&error), None);
    }
}
