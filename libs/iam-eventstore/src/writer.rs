//! The single writer behind each store: group commit.
//!
//! Callers send their [`Append`] over a channel and wait for their own
//! answer. The writer takes every request that is waiting (up to a bound),
//! decides and writes them in one transaction through a [`GroupCommit`]
//! backend, and answers each. While one group's transaction is being made
//! durable, the next group gathers, so throughput grows with concurrency.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use crate::event::{Append, AppendResult};
use crate::inline::InlineHook;
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
    /// Decides and writes `group` in one durable transaction, together with
    /// what the inline hook writes for it. Returns each append's outcome and
    /// the log's head after the commit; an `Err` means the transaction failed
    /// as a whole and nothing was written. An empty group writes no event
    /// but still runs the inline hook (which catches up with the log).
    async fn commit(&mut self, group: &[&Append]) -> Result<(Vec<Result<AppendResult>>, u64)>;
}

/// Where a store keeps its inline hook, installed once, read by its writer.
pub(crate) type InlineSlot = Arc<OnceLock<Arc<dyn InlineHook>>>;

struct Request {
    append: Append,
    reply: oneshot::Sender<Result<AppendResult>>,
    /// The appender's `append` span: the group's commit (and the inline
    /// projection in it) is traced under the first append's.
    span: tracing::Span,
}

enum Job {
    Append(Request),
    /// Run the inline hook on an empty group (it catches up with the log).
    Sync(oneshot::Sender<Result<()>>),
}

/// The handle through which appends reach the writer task.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
    inline: InlineSlot,
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
    /// `head` is advanced after every commit so that subscribers wake up;
    /// `inline` is the slot the committer reads its inline hook from.
    pub(crate) fn spawn(
        committer: impl GroupCommit,
        head: watch::Sender<u64>,
        inline: InlineSlot,
    ) -> Self {
        // Register the counters at zero so that they are exported before the first append.
        metrics::counter!("iam_eventstore_events_appended_total").increment(0);
        metrics::counter!("iam_eventstore_appends_total", "outcome" => "ok").increment(0);
        let (jobs, receiver) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run(committer, receiver, head));
        Self { jobs, inline }
    }

    /// Installs the inline hook (once), then lets it catch up with the log.
    pub(crate) async fn install(&self, hook: Arc<dyn InlineHook>) -> Result<()> {
        self.inline
            .set(hook)
            .map_err(|_| Error::InvalidAppend("an inline hook is already installed".into()))?;
        self.sync().await
    }

    pub(crate) async fn submit(&self, append: Append) -> Result<AppendResult> {
        let started = Instant::now();
        let span = tracing::info_span!(
            "append",
            stream = %append.stream,
            position = tracing::field::Empty,
            revision = tracing::field::Empty,
        );
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Append(Request {
                append,
                reply,
                span: span.clone(),
            }))
            .await
            .map_err(|_| Error::WriterStopped)?;
        let result = answer.await.map_err(|_| Error::WriterStopped)?;
        metrics::histogram!("iam_eventstore_append_seconds")
            .record(started.elapsed().as_secs_f64());
        if let Ok(appended) = &result {
            if let Some(position) = appended.last_position() {
                span.record("position", position);
            }
            if let Some(revision) = appended.revision {
                span.record("revision", revision);
            }
        }
        result
    }

    pub(crate) async fn sync(&self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Sync(reply))
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
    sync: Option<oneshot::Sender<Result<()>>>,
}

impl Gathered {
    fn new(first: Request) -> Self {
        Self {
            events: first.append.event_count(),
            requests: vec![first],
            sync: None,
        }
    }

    fn is_full(&self) -> bool {
        self.requests.len() >= MAX_GROUP_APPENDS || self.events >= MAX_GROUP_EVENTS
    }

    /// Takes what is waiting in the queue, up to the bounds of a group;
    /// a sync request met on the way is kept for after the group.
    fn drain(&mut self, receiver: &mut mpsc::Receiver<Job>) {
        while !self.is_full() && self.sync.is_none() {
            match receiver.try_recv() {
                Ok(Job::Append(request)) => {
                    self.events += request.append.event_count();
                    self.requests.push(request);
                }
                Ok(Job::Sync(reply)) => self.sync = Some(reply),
                Err(_) => break,
            }
        }
    }
}

async fn run(
    mut committer: impl GroupCommit,
    mut receiver: mpsc::Receiver<Job>,
    head: watch::Sender<u64>,
) {
    let mut previous_group = 1;
    while let Some(job) = receiver.recv().await {
        let first = match job {
            Job::Append(request) => request,
            Job::Sync(reply) => {
                let _ = reply.send(sync(&mut committer, &head).await);
                continue;
            }
        };
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
                && gathered.sync.is_none()
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
        let committing = Instant::now();
        // The commit writes the read models inline: the projection of the
        // group's positions, traced under its first append.
        let projection = tracing::info_span!(
            parent: &requests[0].span,
            "commit_and_project",
            appends = group.len(),
            first_position = tracing::field::Empty,
            last_position = tracing::field::Empty,
        );
        for request in &requests[1..] {
            projection.follows_from(&request.span);
        }
        let (outcomes, new_head) = commit_splitting(&mut committer, &group)
            .instrument(projection.clone())
            .await;
        let positions = outcomes
            .iter()
            .filter_map(|outcome| outcome.as_ref().ok()?.positions);
        if let (Some(first), Some(last)) = (
            positions.clone().map(|(first, _)| first).min(),
            positions.map(|(_, last)| last).max(),
        ) {
            projection.record("first_position", first);
            projection.record("last_position", last);
        }
        metrics::histogram!("iam_eventstore_commit_seconds")
            .record(committing.elapsed().as_secs_f64());
        if let Some(new_head) = new_head {
            advance(&head, new_head);
        }
        let mut appended = 0u64;
        for (request, outcome) in requests.into_iter().zip(outcomes) {
            let label = match &outcome {
                Ok(_) => {
                    appended += request.append.event_count() as u64;
                    "ok"
                }
                Err(error) if error.is_refusal() => "refused",
                Err(_) => "failed",
            };
            metrics::counter!("iam_eventstore_appends_total", "outcome" => label).increment(1);
            // The caller may have given up waiting; its append stands all the same.
            let _ = request.reply.send(outcome);
        }
        metrics::counter!("iam_eventstore_events_appended_total").increment(appended);
        if let Some(reply) = gathered.sync {
            let _ = reply.send(sync(&mut committer, &head).await);
        }
    }
}

fn advance(head: &watch::Sender<u64>, new_head: u64) {
    head.send_if_modified(|known| {
        let advanced = new_head > *known;
        *known = (*known).max(new_head);
        advanced
    });
}

/// Commits an empty group: the inline hook catches up with the log.
async fn sync(committer: &mut impl GroupCommit, head: &watch::Sender<u64>) -> Result<()> {
    let (_, new_head) = committer.commit(&[]).await?;
    advance(head, new_head);
    Ok(())
}

/// Commits `group`; when the transaction fails for a reason that may belong
/// to one of its appends (the database or an inline projection refused a
/// row), commits each half on its own, down to single appends, so that one
/// append's failure never fails another's. Returns each append's outcome and
/// the highest head committed, if any.
async fn commit_splitting(
    committer: &mut impl GroupCommit,
    group: &[&Append],
) -> (Vec<Result<AppendResult>>, Option<u64>) {
    match committer.commit(group).await {
        Ok((outcomes, head)) => (outcomes, Some(head)),
        Err(error) if group.len() > 1 && error.may_belong_to_one_append() => {
            tracing::warn!(error = %error, appends = group.len(), "group commit failed; splitting the group");
            let (left, right) = group.split_at(group.len() / 2);
            let (mut outcomes, left_head) = Box::pin(commit_splitting(committer, left)).await;
            let (right_outcomes, right_head) = Box::pin(commit_splitting(committer, right)).await;
            outcomes.extend(right_outcomes);
            (outcomes, left_head.max(right_head))
        }
        Err(error) => {
            tracing::error!(error = %error, appends = group.len(), "group commit failed");
            (vec![Err(error); group.len()], None)
        }
    }
}
