//! The single writer behind each store: group commit.
//!
//! Callers send their [`Append`] over a channel and wait for their own
//! answer. The writer takes every request that is waiting (up to a bound),
//! decides and writes them in one transaction through a [`GroupCommit`]
//! backend, and answers each. While one group's transaction is being made
//! durable, the next group gathers, so throughput grows with concurrency.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, watch};

use crate::event::{Append, AppendResult};
use crate::{Error, Result};

/// At most this many appends share one transaction.
const MAX_GROUP_APPENDS: usize = 512;
/// A group stops gathering once it holds this many events.
const MAX_GROUP_EVENTS: usize = 4096;
/// Appends that may wait for the writer before callers are slowed down.
const QUEUE_DEPTH: usize = 4096;

/// A backend's way of writing one group of appends in one transaction.
#[async_trait]
pub(crate) trait GroupCommit: Send + 'static {
    /// Decides and writes `group` in one durable transaction. Returns each
    /// append's outcome and the log's head after the commit; an `Err` means
    /// the transaction failed as a whole and nothing was written.
    async fn commit(&mut self, group: &[&Append]) -> Result<(Vec<Result<AppendResult>>, u64)>;
}

struct Request {
    append: Append,
    reply: oneshot::Sender<Result<AppendResult>>,
}

/// The handle through which appends reach the writer task.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    requests: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("stream", &self.append.stream)
            .finish()
    }
}

impl Writer {
    /// Starts the writer task; it ends when the last handle is dropped.
    /// `head` is advanced after every commit so that subscribers wake up.
    pub(crate) fn spawn(committer: impl GroupCommit, head: watch::Sender<u64>) -> Self {
        // Register the counters at zero so that they are exported before the first append.
        metrics::counter!("iam_eventstore_events_appended_total").increment(0);
        metrics::counter!("iam_eventstore_appends_total", "outcome" => "ok").increment(0);
        let (requests, receiver) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run(committer, receiver, head));
        Self { requests }
    }

    pub(crate) async fn submit(&self, append: Append) -> Result<AppendResult> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request { append, reply })
            .await
            .map_err(|_| Error::WriterStopped)?;
        answer.await.map_err(|_| Error::WriterStopped)?
    }
}

/// How long a writer that has seen concurrent appenders waits for them to
/// join the next group (compare PostgreSQL's `commit_delay`).
const GATHER_WINDOW: Duration = Duration::from_micros(200);

/// The requests of one group, gathered from the queue.
struct Gathered {
    requests: Vec<Request>,
    events: usize,
}

impl Gathered {
    fn new(first: Request) -> Self {
        Self {
            events: first.append.event_count(),
            requests: vec![first],
        }
    }

    fn is_full(&self) -> bool {
        self.requests.len() >= MAX_GROUP_APPENDS || self.events >= MAX_GROUP_EVENTS
    }

    /// Takes what is waiting in the queue, up to the bounds of a group.
    fn drain(&mut self, receiver: &mut mpsc::Receiver<Request>) {
        while !self.is_full() {
            let Ok(request) = receiver.try_recv() else {
                break;
            };
            self.events += request.append.event_count();
            self.requests.push(request);
        }
    }
}

async fn run(
    mut committer: impl GroupCommit,
    mut receiver: mpsc::Receiver<Request>,
    head: watch::Sender<u64>,
) {
    let mut previous_group = 1;
    while let Some(first) = receiver.recv().await {
        let mut gathered = Gathered::new(first);
        gathered.drain(&mut receiver);
        // Appenders that were answered a moment ago are about to send their
        // next append; without a short wait the writer would commit the
        // first of them alone while the others queue up behind it, and the
        // groups would alternate between one append and all the rest.
        if previous_group > 1 {
            let started = Instant::now();
            while gathered.requests.len() < previous_group
                && !gathered.is_full()
                && started.elapsed() < GATHER_WINDOW
            {
                tokio::task::yield_now().await;
                gathered.drain(&mut receiver);
            }
        }
        let requests = gathered.requests;
        previous_group = requests.len();
        let group: Vec<&Append> = requests.iter().map(|request| &request.append).collect();
        metrics::histogram!("iam_eventstore_group_appends").record(group.len() as f64);
        match committer.commit(&group).await {
            Ok((outcomes, new_head)) => {
                head.send_if_modified(|known| {
                    let advanced = new_head > *known;
                    *known = (*known).max(new_head);
                    advanced
                });
                let mut appended = 0u64;
                for (request, outcome) in requests.into_iter().zip(outcomes) {
                    match &outcome {
                        Ok(_) => {
                            appended += request.append.event_count() as u64;
                            metrics::counter!("iam_eventstore_appends_total", "outcome" => "ok")
                                .increment(1);
                        }
                        Err(_) => {
                            metrics::counter!("iam_eventstore_appends_total", "outcome" => "refused")
                                .increment(1);
                        }
                    }
                    // The caller may have given up waiting; its append stands all the same.
                    let _ = request.reply.send(outcome);
                }
                metrics::counter!("iam_eventstore_events_appended_total").increment(appended);
            }
            Err(error) => {
                tracing::error!(error = %error, appends = requests.len(), "group commit failed");
                metrics::counter!("iam_eventstore_appends_total", "outcome" => "failed")
                    .increment(requests.len() as u64);
                for request in requests {
                    let _ = request.reply.send(Err(error.clone()));
                }
            }
        }
    }
}
