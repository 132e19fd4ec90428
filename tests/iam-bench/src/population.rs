//! The users the read phases look up: created once in the bench tenant,
//! before the first run, and picked from by a request's sequence number.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::api::{Api, Credential, User};
use crate::load::{self, Bounds};

/// How many connections create the population.
pub(crate) const CONNECTIONS: usize = 64;
/// A population that takes longer than this to create is a failure.
const TIME_LIMIT: Duration = Duration::from_secs(30 * 60);

/// The users created in the bench tenant, in no particular order.
#[derive(Debug)]
pub(crate) struct Population {
    users: Vec<User>,
}

/// Creates `size` End Users named `u-<prefix>-<n>@bench.example.com` in
/// `tenant`, printing progress on stderr every tenth.
pub(crate) async fn populate(
    api: &Api,
    admin: &Credential,
    tenant: &str,
    prefix: &str,
    size: usize,
) -> Result<Population> {
    let creator = Arc::new(Creator {
        api: api.clone(),
        admin: admin.clone(),
        tenant: tenant.to_owned(),
        prefix: prefix.to_owned(),
        size,
        users: Mutex::new(Vec::with_capacity(size)),
        started: Instant::now(),
    });
    let bounds = Bounds {
        duration: TIME_LIMIT,
        max_requests: size as u64,
    };
    let outcome = {
        let creator = Arc::clone(&creator);
        load::run(CONNECTIONS, bounds, move |number| {
            let creator = Arc::clone(&creator);
            async move { creator.create(number).await }
        })
        .await?
    };
    if let Some(error) = outcome.first_error() {
        bail!(
            "populating failed: {} of {} requests failed; the first: {error}",
            outcome.errors(),
            outcome.requests()
        );
    }
    let users = std::mem::take(&mut *creator.users());
    if users.is_empty() || users.len() < size {
        bail!(
            "populating created {} of {size} users in {} s",
            users.len(),
            TIME_LIMIT.as_secs()
        );
    }
    Ok(Population { users })
}

/// What the population's creating tasks share.
#[derive(Debug)]
struct Creator {
    api: Api,
    admin: Credential,
    tenant: String,
    prefix: String,
    size: usize,
    users: Mutex<Vec<User>>,
    started: Instant,
}

impl Creator {
    /// Creates user `number`, and says so every tenth of the population.
    async fn create(&self, number: u64) -> Result<()> {
        let user_name = format!("u-{}-{number}@bench.example.com", self.prefix);
        let id = self
            .api
            .create_user(&self.admin, &self.tenant, &user_name)
            .await?;
        let created = {
            let mut users = self.users();
            users.push(User { id, user_name });
            users.len()
        };
        if created % (self.size / 10).max(1) == 0 || created == self.size {
            eprintln!(
                "populating: {created}/{} users ({:.1} s)",
                self.size,
                self.started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }

    fn users(&self) -> MutexGuard<'_, Vec<User>> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Population {
    /// The user request `number` looks up: spread over the whole population,
    /// the same for the same number in every run.
    pub(crate) fn pick(&self, number: u64) -> &User {
        // Never empty: `populate` fails unless it created at least one user.
        &self.users[spread(number, self.users.len())]
    }
}

/// An index below `len` (at least 1) that looks random but depends only on
/// `number`: SplitMix64's mix of it, reduced to the range.
fn spread(number: u64, len: usize) -> usize {
    let mut z = number.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % len as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_stays_in_range_and_reaches_most_of_it() {
        let len = 100;
        let mut seen = vec![false; len];
        for number in 0..1000 {
            let index = spread(number, len);
            assert!(index < len);
            seen[index] = true;
        }
        assert!(seen.iter().filter(|&&hit| hit).count() > 95);
    }

    #[test]
    fn spread_does_not_walk_in_order() {
        let first: Vec<usize> = (0..5).map(|number| spread(number, 1000)).collect();
        assert_ne!(first, [0, 1, 2, 3, 4]);
        assert_eq!(first, (0..5).map(|n| spread(n, 1000)).collect::<Vec<_>>());
    }
}
