//! One replica at a time per async projector: a lease.
//!
//! On PostgreSQL the lease is a session-level advisory lock, keyed by the
//! projector's name, held on a connection of its own. The server releases it
//! when that session ends, so when the holding process dies (even by
//! `kill -9`) another replica's standby takes it over within about a
//! second. The holder checks its connection every few seconds and stands
//! down when it is gone. SQLite is one process's database: the lease is
//! always held.

use std::time::Duration;

use iam_eventstore::Backend;
use sqlx::AnyConnection;

use crate::ReadModels;

/// How often a standby tries to take the lease.
pub(crate) const RETRY: Duration = Duration::from_secs(1);
/// How often the holder checks that it still holds the lease.
pub(crate) const CHECK: Duration = Duration::from_secs(2);

/// A held lease; dropping it (its connection) releases it.
#[derive(Debug)]
pub(crate) struct Lease {
    connection: Option<AnyConnection>,
}

impl Lease {
    /// Tries once to take the lease of projector `name`.
    pub(crate) async fn try_take(read_models: &ReadModels, name: &str) -> Option<Lease> {
        if read_models.backend() == Backend::Sqlite {
            return Some(Lease { connection: None });
        }
        let mut connection = read_models.pool().acquire().await.ok()?.detach();
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key(name))
            .fetch_one(&mut connection)
            .await
            .ok()?;
        taken.then_some(Lease {
            connection: Some(connection),
        })
    }

    /// Whether the lease is still held: its session still answers.
    pub(crate) async fn held(&mut self) -> bool {
        match &mut self.connection {
            None => true,
            Some(connection) => sqlx::query("SELECT 1").execute(connection).await.is_ok(),
        }
    }
}

/// The advisory lock key of a projector: FNV-1a of its name, in a range of
/// its own ("iamproj" in the high bytes) so it meets no other lock.
fn key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (0x6961_6d70_0000_0000 | (hash & 0x0000_0000_ffff_ffff)) as i64
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn projectors_have_distinct_stable_keys_apart_from_the_append_lock() {
        assert_ne!(key("audit"), key("users"));
        assert_eq!(key("audit"), key("audit"));
        // The event store's append lock is "iam_log" in ASCII.
        assert_ne!(key("audit") >> 32, 0x0069_616d_5f6c_6f67 >> 32);
    }
}
