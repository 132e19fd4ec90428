//! The single writer behind each store: group commit.
//!
//! Callers send their [`Append`] over a channel and wait for their own
//! answer. The writer takes every request that is waiting (up to a bound),
//! decides and writes them in one transaction through a [`GroupCommit`]
//! backend, and answers each. While one group's transaction is being made
//! durable, the next group gathers, so throughput grows with concurrency.

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

async fn run(
    mut committer: impl GroupCommit,
    mut receiver: mpsc::Receiver<Request>,
    head: watch::Sender<u64>,
) {
    while let Some(first) = receiver.recv().await {
        let mut events = first.append.event_count();
        let mut requests = vec![first];
        while requests.len() < MAX_GROUP_APPENDS && events < MAX_GROUP_EVENTS {
            let Ok(request) = receiver.try_recv() else {
                break;
            };
            events += request.append.event_count();
            requests.push(request);
        }
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
