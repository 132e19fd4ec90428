//! Failed logins, throttled per `userName` and per source address: each
//! failure slows the next answer a little, and past a limit the name or the
//! address is refused (429 with `Retry-After`) until its lockout ends. A
//! successful login clears its name's count. The counts live in this
//! replica's memory: behind a load balancer of N replicas an attacker gets
//! up to N times the limit.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The limits (`IAM_LOGIN_MAX_FAILURES`, `IAM_LOGIN_MAX_FAILURES_PER_ADDRESS`,
/// `IAM_LOGIN_LOCKOUT_SECS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures of one `userName` before it is refused.
    pub per_name: u32,
    /// Failures from one source address before it is refused.
    pub per_address: u32,
    /// How long failures are counted, and a refusal lasts.
    pub lockout: Duration,
}

/// The longest a failed login's answer is held back.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// What each failure adds to that delay.
const DELAY_STEP: Duration = Duration::from_millis(100);
/// Entries kept at most; the oldest go first, so that a flood of names
/// cannot grow memory without bound.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
    /// Whether a refusal of this lockout was reported (and so audited):
    /// one is, the rest are not, or a locked-out caller could grow the log
    /// without end at no cost.
    refusal_reported: bool,
}

/// A refused login: when to come back, and whether it is the lockout's
/// first refusal (the one to audit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) retry_after: Duration,
    pub(crate) first: bool,
}

impl Refused {
    /// 429 with `Retry-After`, the same whether the user exists; `what`
    /// failed ("logins", "password checks").
    pub(crate) fn answer(&self, what: &str) -> crate::error::ApiError {
        let seconds = self.retry_after.as_secs().max(1);
        crate::error::ApiError::too_many_requests(
            format!(
                "Too many failed {what} for this user name or from this address; try again in {seconds} s."
            ),
            seconds,
        )
    }
}

/// The failure counts of names and addresses.
#[derive(Debug)]
pub struct LoginThrottle {
    limits: LoginLimits,
    failures: Mutex<HashMap<String, Failures>>,
}

fn name_key(user_name: &str) -> String {
    format!("name:{}", user_name.trim().to_lowercase())
}

fn address_key(address: &str) -> String {
    format!("address:{address}")
}

impl LoginThrottle {
    pub fn new(limits: LoginLimits) -> Self {
        Self {
            limits,
            failures: Mutex::default(),
        }
    }

    /// Refused while `user_name` or `address` is locked out.
    pub(crate) fn check(&self, user_name: &str, address: Option<&str>) -> Result<(), Refused> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let mut refused: Option<Refused> = None;
        let keys = [
            Some((name_key(user_name), self.limits.per_name)),
            address.map(|address| (address_key(address), self.limits.per_address)),
        ];
        for (key, limit) in keys.into_iter().flatten() {
            let Some(entry) = failures.get_mut(&key) else {
                continue;
            };
            let ends = entry.since + self.limits.lockout;
            if entry.count < limit || ends <= now {
                continue;
            }
            let first = !entry.refusal_reported;
            entry.refusal_reported = true;
            let retry_after = ends - now;
            refused = Some(match refused {
                None => Refused { retry_after, first },
                Some(other) => Refused {
                    retry_after: other.retry_after.max(retry_after),
                    first: other.first || first,
                },
            });
        }
        match refused {
            Some(refused) => Err(refused),
            None => Ok(()),
        }
    }

    /// Counts a failure of `user_name` from `address`; returns how long to
    /// hold the answer back.
    pub(crate) fn failed(&self, user_name: &str, address: Option<&str>) -> Duration {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if failures.len() >= MAX_ENTRIES {
            let lockout = self.limits.lockout;
            failures.retain(|_, entry| entry.since + lockout > now);
            if failures.len() >= MAX_ENTRIES {
                failures.clear();
            }
        }
        let mut count = 0;
        for key in std::iter::once(name_key(user_name)).chain(address.map(address_key)) {
            let fresh = Failures {
                count: 0,
                since: now,
                refusal_reported: false,
            };
            let entry = failures.entry(key).or_insert(fresh);
            if entry.since + self.limits.lockout <= now {
                *entry = fresh;
            }
            entry.count += 1;
            count = count.max(entry.count);
        }
        (DELAY_STEP * count).min(MAX_DELAY)
    }

    /// A successful login: its name's failures are forgotten.
    pub(crate) fn succeeded(&self, user_name: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.remove(&name_key(user_name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(LoginLimits {
            per_name: 3,
            per_address: 5,
            lockout: Duration::from_secs(60),
        })
    }

    #[test]
    fn a_name_is_slowed_then_refused_and_a_success_forgives_it() {
        let throttle = throttle();
        assert_eq!(
            throttle.failed("Jill@x.org", None),
            Duration::from_millis(100)
        );
        assert_eq!(
            throttle.failed("jill@x.org", None),
            Duration::from_millis(200)
        );
        assert!(throttle.check("jill@x.org", None).is_ok());
        throttle.failed("jill@x.org", None);
        let refused = throttle.check("JILL@x.org", None).unwrap_err();
        assert!(
            refused.retry_after <= Duration::from_secs(60)
                && refused.retry_after > Duration::from_secs(50)
        );
        assert!(refused.first, "the first refusal is the one audited");
        assert!(
            !throttle.check("jill@x.org", None).unwrap_err().first,
            "later ones are not"
        );
        assert!(
            throttle.check("jack@x.org", None).is_ok(),
            "other names are not held back"
        );
        throttle.succeeded("jill@x.org");
        assert!(throttle.check("jill@x.org", None).is_ok());
    }

    #[test]
    fn an_address_trying_many_names_is_refused() {
        let throttle = throttle();
        for n in 0..5 {
            assert!(
                throttle
                    .check(&format!("user{n}@x.org"), Some("203.0.113.9"))
                    .is_ok()
            );
            throttle.failed(&format!("user{n}@x.org"), Some("203.0.113.9"));
        }
        assert!(
            throttle
                .check("someone@x.org", Some("203.0.113.9"))
                .is_err()
        );
        assert!(
            throttle
                .check("someone@x.org", Some("198.51.100.1"))
                .is_ok()
        );
        assert!(throttle.failed("x@x.org", Some("203.0.113.9")) <= MAX_DELAY);
    }
}
