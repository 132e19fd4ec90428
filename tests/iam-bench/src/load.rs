//! Bounded load loops and what they measured: a number of concurrent
//! connections repeat one request until a time limit or a request count is
//! reached, whichever comes first, recording every latency.
//!
//! This module knows nothing of the API: a request is any fallible future
//! made from its sequence number.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// When a load loop stops: at its time limit or after `max_requests`
/// requests, whichever comes first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) duration: Duration,
    pub(crate) max_requests: u64,
}

/// One request of a load loop.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Its sequence number in the loop, from 0.
    number: u64,
    latency: Duration,
    succeeded: bool,
}

/// What a load loop measured.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    samples: Vec<Sample>,
    /// From the start of the loop until its last answer.
    elapsed: Duration,
    /// The first failure (its sequence number and what the request reported).
    first_error: Option<(u64, String)>,
}

/// Runs `request(0)`, `request(1)`, … from `connections` concurrent tasks,
/// each sending its next request when the previous one is answered, until
/// `bounds` stop it.
pub(crate) async fn run<F, Fut>(connections: usize, bounds: Bounds, request: F) -> Result<Outcome>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let request = Arc::new(request);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + bounds.duration;
    let tasks: Vec<_> = (0..connections.max(1))
        .map(|_| {
            let request = Arc::clone(&request);
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut first_error = None;
                while Instant::now() < deadline {
                    let number = next.fetch_add(1, Ordering::Relaxed);
                    if number >= bounds.max_requests {
                        break;
                    }
                    let sent = Instant::now();
                    let result = request(number).await;
                    let latency = sent.elapsed();
                    if let Err(error) = &result
                        && first_error.is_none()
                    {
                        first_error = Some((number, format!("{error:#}")));
                    }
                    samples.push(Sample {
                        number,
                        latency,
                        succeeded: result.is_ok(),
                    });
                }
                (samples, first_error)
            })
        })
        .collect();
    let mut outcome = Outcome {
        samples: Vec::new(),
        elapsed: Duration::ZERO,
        first_error: None,
    };
    for task in tasks {
        let (samples, first_error) = task.await.context("a load task panicked")?;
        outcome.samples.extend(samples);
        outcome.first_error = match (outcome.first_error, first_error) {
            (Some(earlier), Some(later)) if later.0 < earlier.0 => Some(later),
            (earlier, later) => earlier.or(later),
        };
    }
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

impl Outcome {
    /// How many requests were sent.
    pub(crate) fn requests(&self) -> u64 {
        self.samples.len() as u64
    }

    /// How many of them failed.
    pub(crate) fn errors(&self) -> u64 {
        self.samples
            .iter()
            .filter(|sample| !sample.succeeded)
            .count() as u64
    }

    /// The first failure, if any.
    pub(crate) fn first_error(&self) -> Option<&str> {
        self.first_error.as_ref().map(|(_, error)| error.as_str())
    }

    /// Answered requests per second.
    pub(crate) fn requests_per_second(&self) -> f64 {
        let succeeded = self.requests() - self.errors();
        if self.elapsed.is_zero() {
            return 0.0;
        }
        succeeded as f64 / self.elapsed.as_secs_f64()
    }

    /// The latencies of the answered requests, shortest first.
    pub(crate) fn sorted_latencies(&self) -> Vec<Duration> {
        let mut latencies: Vec<Duration> = self
            .samples
            .iter()
            .filter(|sample| sample.succeeded)
            .map(|sample| sample.latency)
            .collect();
        latencies.sort_unstable();
        latencies
    }

    /// Splits a loop that alternated two kinds of request by sequence number:
    /// `(where select(number), the others)`. A part's elapsed time is the sum
    /// of its own latencies (from one connection, the time it would have
    /// taken alone), so that its rate compares with the other part's.
    pub(crate) fn split(&self, select: impl Fn(u64) -> bool) -> (Outcome, Outcome) {
        let part = |selected: bool| {
            let samples: Vec<Sample> = self
                .samples
                .iter()
                .filter(|sample| select(sample.number) == selected)
                .copied()
                .collect();
            Outcome {
                elapsed: samples.iter().map(|sample| sample.latency).sum(),
                samples,
                first_error: self
                    .first_error
                    .clone()
                    .filter(|(number, _)| select(*number) == selected),
            }
        };
        (part(true), part(false))
    }
}

/// The nearest-rank percentile (`fraction` 0.5 is the median, 0.99 the
/// 99th) of `sorted` latencies; `None` when there are none.
pub(crate) fn percentile(sorted: &[Duration], fraction: f64) -> Option<Duration> {
    let last = sorted.len().checked_sub(1)?;
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1).min(last)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&ms| Duration::from_millis(ms)).collect()
    }

    #[test]
    fn percentile_takes_the_nearest_rank() {
        let sorted = millis(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&sorted, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&sorted, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&sorted, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&sorted, 0.0), Some(Duration::from_millis(1)));
    }

    #[test]
    fn percentile_of_few_latencies_is_one_of_them() {
        let sorted = millis(&[3, 7, 9]);
        assert_eq!(percentile(&sorted, 0.5), Some(Duration::from_millis(7)));
        assert_eq!(percentile(&sorted, 0.99), Some(Duration::from_millis(9)));
        assert_eq!(
            percentile(&millis(&[4]), 0.99),
            Some(Duration::from_millis(4))
        );
    }

    #[test]
    fn percentile_of_nothing_is_none() {
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[tokio::test]
    async fn a_load_loop_stops_at_its_request_count() {
        let bounds = Bounds {
            duration: Duration::from_secs(60),
            max_requests: 25,
        };
        let outcome = run(4, bounds, |_| async { Ok(()) }).await.unwrap();
        assert_eq!(outcome.requests(), 25);
        assert_eq!(outcome.errors(), 0);
    }

    #[tokio::test]
    async fn a_load_loop_stops_at_its_time_limit_and_counts_failures() {
        let bounds = Bounds {
            duration: Duration::from_millis(50),
            max_requests: u64::MAX,
        };
        let outcome = run(2, bounds, |number| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            anyhow::ensure!(number.is_multiple_of(2), "odd request {number}");
            Ok(())
        })
        .await
        .unwrap();
        assert!(outcome.requests() > 0 && outcome.requests() < 100);
        assert!(outcome.errors() > 0);
        assert!(outcome.first_error().unwrap().starts_with("odd request"));
        assert_eq!(
            outcome.sorted_latencies().len() as u64,
            outcome.requests() - outcome.errors()
        );
    }

    #[tokio::test]
    async fn split_gives_the_first_failure_to_its_own_part() {
        let bounds = Bounds {
            duration: Duration::from_secs(60),
            max_requests: 10,
        };
        let outcome = run(1, bounds, |number| async move {
            anyhow::ensure!(number != 3, "request 3 fails");
            Ok(())
        })
        .await
        .unwrap();
        let (even, odd) = outcome.split(|number| number.is_multiple_of(2));
        assert_eq!((even.errors(), odd.errors()), (0, 1));
        assert_eq!(even.first_error(), None);
        assert_eq!(odd.first_error(), Some("request 3 fails"));
    }

    #[tokio::test]
    async fn split_separates_alternating_requests() {
        let bounds = Bounds {
            duration: Duration::from_secs(60),
            max_requests: 10,
        };
        let outcome = run(1, bounds, |_| async { Ok(()) }).await.unwrap();
        let (even, odd) = outcome.split(|number| number.is_multiple_of(2));
        assert_eq!((even.requests(), odd.requests()), (5, 5));
        assert!(even.first_error().is_none());
    }
}
