//! Who a credential named a moment ago: authenticating the same session or
//! API token again within half a second reads no database. Entries are kept
//! for half a second only, so a deactivation, deletion, role change,
//! revocation or logout takes effect on every replica within one second
//! without any invalidation message; the replica that makes such a change
//! forgets at once, so its own next request sees it. Keys are SHA-256 hashes of the
//! credentials: no secret is kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use iam_projections::read_models::UserRow;

/// How long an entry is believed.
const FRESH_FOR: Duration = Duration::from_millis(500);
/// Beyond this many entries the cache starts over (bounds memory).
const MAX_ENTRIES: usize = 100_000;

/// The user a credential names and, for an API token, its organization.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) user: UserRow,
    pub(crate) token_scope: Option<String>,
    pub(crate) token_id: Option<String>,
    pub(crate) must_change_password: bool,
}

/// Credentials resolved in the last half second.
#[derive(Debug, Default)]
pub(crate) struct RecentCallers {
    entries: Mutex<HashMap<String, (Instant, Resolved)>>,
}

impl RecentCallers {
    /// What `key` resolved to, if that was less than half a second ago.
    pub(crate) fn get(&self, key: &str) -> Option<Resolved> {
        let entries = self.entries.lock().ok()?;
        let (at, resolved) = entries.get(key)?;
        (at.elapsed() < FRESH_FOR).then(|| resolved.clone())
    }

    /// Forgets everything: this replica has just changed a user or a token,
    /// and its own next request must see the change.
    pub(crate) fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    /// Remembers what `key` resolved to now.
    pub(crate) fn insert(&self, key: String, resolved: Resolved) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.retain(|_, (at, _)| at.elapsed() < FRESH_FOR);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(key, (Instant::now(), resolved));
        }
    }
}
