//! The runner of async projectors: one task per projector, each following
//! the log while it holds the projector's lease (one replica at a time),
//! checkpoints, retries, `wait_for`, lag and rebuild.

use std::sync::Arc;
use std::time::Duration;

use iam_eventstore::{Backend, EventStore, RecordedEvent};
use sqlx::{Any, Transaction};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::lease::{self, Lease};
use crate::{Error, Projector, ReadModels, Result};

/// Events applied in one transaction at most.
const BATCH_SIZE: usize = 500;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The projectors to run, before they start.
#[derive(Debug)]
pub struct Runner {
    store: Arc<dyn EventStore>,
    read_models: ReadModels,
    projectors: Vec<Arc<dyn Projector>>,
}

impl std::fmt::Debug for dyn Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Runner {
    /// A runner over `store` that writes to `read_models`.
    pub fn new(store: Arc<dyn EventStore>, read_models: ReadModels) -> Self {
        Self {
            store,
            read_models,
            projectors: Vec::new(),
        }
    }

    /// Adds a projector.
    #[must_use]
    pub fn with(mut self, projector: impl Projector) -> Self {
        self.projectors.push(Arc::new(projector));
        self
    }

    /// Starts every projector from its checkpoint.
    pub async fn start(self) -> Result<RunnerHandle> {
        let mut running = Vec::with_capacity(self.projectors.len());
        for projector in self.projectors {
            let position = load_checkpoint(&self.read_models, projector.name()).await?;
            let (checkpoint, checkpoint_receiver) = watch::channel(position);
            let (control, control_receiver) = mpsc::channel(4);
            let task = tokio::spawn(
                ProjectorTask {
                    store: self.store.clone(),
                    read_models: self.read_models.clone(),
                    projector: projector.clone(),
                    checkpoint,
                }
                .run(control_receiver),
            );
            running.push(Running {
                name: projector.name(),
                checkpoint: checkpoint_receiver,
                control,
                task,
            });
        }
        Ok(RunnerHandle {
            store: self.store,
            projectors: running,
        })
    }
}

/// How far one projector has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectorStatus {
    /// The projector's name.
    pub name: &'static str,
    /// The position of the last event it has applied (0: none).
    pub checkpoint: u64,
    /// Events in the log that it has not applied yet.
    pub lag: u64,
}

/// The checkpoint and lag of each projector of `names`, as the database
/// records them: how inline projectors, and those that run in another
/// process, are watched.
pub async fn status_of(
    store: &dyn EventStore,
    read_models: &ReadModels,
    names: impl IntoIterator<Item = &'static str>,
) -> Result<Vec<ProjectorStatus>> {
    let head = store.head_position().await?;
    let mut status = Vec::new();
    for name in names {
        let checkpoint = load_checkpoint(read_models, name).await?;
        status.push(ProjectorStatus {
            name,
            checkpoint,
            lag: head.saturating_sub(checkpoint),
        });
    }
    Ok(status)
}

/// The running projectors. Dropping the handle stops them.
#[derive(Debug)]
pub struct RunnerHandle {
    store: Arc<dyn EventStore>,
    projectors: Vec<Running>,
}

#[derive(Debug)]
struct Running {
    name: &'static str,
    checkpoint: watch::Receiver<u64>,
    control: mpsc::Sender<Control>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
enum Control {
    Rebuild(oneshot::Sender<Result<()>>),
}

impl Drop for RunnerHandle {
    fn drop(&mut self) {
        for running in &self.projectors {
            running.task.abort();
        }
    }
}

impl RunnerHandle {
    /// Waits until every projector has applied the log up to `position`:
    /// then a read of any read model includes the event at `position`.
    pub async fn wait_for(&self, position: u64) -> Result<()> {
        for running in &self.projectors {
            let mut checkpoint = running.checkpoint.clone();
            checkpoint
                .wait_for(|&checkpoint| checkpoint >= position)
                .await
                .map_err(|_| Error::Stopped)?;
        }
        Ok(())
    }

    /// Each projector's checkpoint and lag behind the head of the log.
    pub async fn status(&self) -> Result<Vec<ProjectorStatus>> {
        let head = self.store.head_position().await?;
        Ok(self
            .projectors
            .iter()
            .map(|running| {
                let checkpoint = *running.checkpoint.borrow();
                ProjectorStatus {
                    name: running.name,
                    checkpoint,
                    lag: head.saturating_sub(checkpoint),
                }
            })
            .collect())
    }

    /// The largest lag of any projector, in events.
    pub async fn lag(&self) -> Result<u64> {
        Ok(self
            .status()
            .await?
            .iter()
            .map(|status| status.lag)
            .max()
            .unwrap_or(0))
    }

    /// Empties the tables of projector `name`, resets its checkpoint and
    /// replays the log into them; returns once the reset is done (the replay
    /// goes on in the background: `wait_for` the head to wait for it).
    pub async fn rebuild(&self, name: &str) -> Result<()> {
        let running = self
            .projectors
            .iter()
            .find(|running| running.name == name)
            .ok_or_else(|| Error::UnknownProjector(name.to_owned()))?;
        let (reply, answer) = oneshot::channel();
        running
            .control
            .send(Control::Rebuild(reply))
            .await
            .map_err(|_| Error::Stopped)?;
        answer.await.map_err(|_| Error::Stopped)?
    }
}

struct ProjectorTask {
    store: Arc<dyn EventStore>,
    read_models: ReadModels,
    projector: Arc<dyn Projector>,
    checkpoint: watch::Sender<u64>,
}

impl ProjectorTask {
    async fn run(self, mut control: mpsc::Receiver<Control>) {
        loop {
            let lease = self.stand_by(&mut control).await;
            self.run_while_held(lease, &mut control).await;
        }
    }

    /// Waits until this process holds the projector's lease, following the
    /// checkpoint that the holder moves meanwhile (for status and lag).
    async fn stand_by(&self, control: &mut mpsc::Receiver<Control>) -> Lease {
        let name = self.projector.name();
        let mut announced = false;
        loop {
            if let Some(lease) = Lease::try_take(&self.read_models, name).await {
                if announced {
                    tracing::info!(projector = name, "took over the projector's lease");
                }
                if let Ok(position) = load_checkpoint(&self.read_models, name).await {
                    self.checkpoint.send_replace(position);
                }
                return lease;
            }
            if !announced {
                tracing::info!(
                    projector = name,
                    "another replica runs this projector; standing by"
                );
                announced = true;
            }
            if let Ok(position) = load_checkpoint(&self.read_models, name).await {
                self.checkpoint.send_replace(position);
            }
            tokio::select! {
                Some(Control::Rebuild(reply)) = control.recv() => {
                    let _ = reply.send(Err(Error::Apply {
                        projector: name.to_owned(),
                        position: 0,
                        reason: "another replica runs this projector; rebuild it there".into(),
                    }));
                }
                () = tokio::time::sleep(lease::RETRY) => {}
            }
        }
    }

    /// Follows the log while `lease` is held.
    async fn run_while_held(&self, mut lease: Lease, control: &mut mpsc::Receiver<Control>) {
        let name = self.projector.name();
        let mut subscription = self.store.subscribe_all(*self.checkpoint.borrow() + 1);
        let mut backoff = FIRST_BACKOFF;
        let mut check = tokio::time::interval(lease::CHECK);
        loop {
            tokio::select! {
                Some(Control::Rebuild(reply)) = control.recv() => {
                    let reset = reset(&self.read_models, &*self.projector).await;
                    if reset.is_ok() {
                        tracing::info!(projector = name, "rebuilding from the start of the log");
                        self.checkpoint.send_replace(0);
                        subscription = self.store.subscribe_all(1);
                    }
                    let _ = reply.send(reset);
                }
                _ = check.tick() => {
                    if !lease.held().await {
                        tracing::warn!(projector = name, "lost the projector's lease; standing by");
                        return;
                    }
                }
                batch = subscription.next_batch(BATCH_SIZE) => {
                    let applied = match batch {
                        Ok(events) => self.apply_until_done(&events).await,
                        Err(error) => Err(error.into()),
                    };
                    match applied {
                        Ok(()) => backoff = FIRST_BACKOFF,
                        Err(error) => {
                            // Reading the log failed; the subscription keeps its place.
                            tracing::warn!(projector = name, error = %error, "cannot read the log; retrying");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                    if *self.checkpoint.borrow() + 1 != subscription.next_position() {
                        // Another process moved the checkpoint: follow it.
                        subscription = self.store.subscribe_all(*self.checkpoint.borrow() + 1);
                    }
                }
            }
        }
    }

    /// Applies `events`, retrying with backoff until it succeeds; a failing
    /// batch leaves rows and checkpoint as they were before each attempt.
    async fn apply_until_done(&self, events: &[RecordedEvent]) -> Result<()> {
        let name = self.projector.name();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let expected = *self.checkpoint.borrow();
            match apply_batch(&self.read_models, &*self.projector, expected, events).await {
                Ok(Applied::Done(position)) => {
                    self.checkpoint.send_replace(position);
                    metrics::gauge!("iam_projection_checkpoint", "projector" => name)
                        .set(position as f64);
                    return Ok(());
                }
                Ok(Applied::Superseded(position)) => {
                    tracing::info!(
                        projector = name,
                        position,
                        "checkpoint moved by another process"
                    );
                    self.checkpoint.send_replace(position);
                    return Ok(());
                }
                Err(error) => {
                    metrics::counter!("iam_projection_failures_total", "projector" => name)
                        .increment(1);
                    tracing::error!(projector = name, error = %error, retry_in = ?backoff, "batch failed; rolled back");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

enum Applied {
    /// The batch is applied; the checkpoint is now this position.
    Done(u64),
    /// Another process had already moved the checkpoint (to this position);
    /// nothing was applied.
    Superseded(u64),
}

async fn begin(read_models: &ReadModels) -> Result<Transaction<'static, Any>> {
    Ok(match read_models.backend() {
        // Take SQLite's write lock up front: a deferred transaction that reads
        // first fails outright when the log's writer commits in between.
        Backend::Sqlite => read_models.pool().begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => read_models.pool().begin().await?,
    })
}

/// Applies `events` and moves the checkpoint from `expected` to the last
/// event's position, in one transaction.
async fn apply_batch(
    read_models: &ReadModels,
    projector: &dyn Projector,
    expected: u64,
    events: &[RecordedEvent],
) -> Result<Applied> {
    let Some(last) = events.last() else {
        return Ok(Applied::Done(expected));
    };
    let mut tx = begin(read_models).await?;
    // The checkpoint moves first: its row lock makes another process that
    // applies the same batch wait for this transaction and then find the
    // checkpoint moved, so it never applies the batch a second time (where
    // plain inserts would fail on the rows this one wrote).
    let moved = sqlx::query(
        "UPDATE projection_checkpoints SET position = $1 WHERE name = $2 AND position = $3",
    )
    .bind(last.position as i64)
    .bind(projector.name())
    .bind(expected as i64)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if moved != 1 {
        tx.rollback().await?;
        let position = load_checkpoint(read_models, projector.name()).await?;
        return Ok(Applied::Superseded(position));
    }
    projector.apply(&mut tx, events).await?;
    tx.commit().await?;
    Ok(Applied::Done(last.position))
}

/// The checkpoint of `name`, created at 0 when the projector is new.
async fn load_checkpoint(read_models: &ReadModels, name: &str) -> Result<u64> {
    sqlx::query("INSERT INTO projection_checkpoints (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .execute(read_models.pool())
        .await?;
    let position: i64 =
        sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_one(read_models.pool())
            .await?;
    Ok(position as u64)
}

/// Empties the projector's tables and sets its checkpoint to 0, atomically.
async fn reset(read_models: &ReadModels, projector: &dyn Projector) -> Result<()> {
    let mut tx = begin(read_models).await?;
    for table in projector.tables() {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, position) VALUES ($1, 0) \
         ON CONFLICT (name) DO UPDATE SET position = 0",
    )
    .bind(projector.name())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Rebuilds `projector` from the whole log, without a running runner (the
/// operator's offline rebuild): see [`rebuild_all`].
pub async fn rebuild(
    store: &Arc<dyn EventStore>,
    read_models: &ReadModels,
    projector: &dyn Projector,
) -> Result<u64> {
    rebuild_all(store, read_models, &[projector]).await
}

/// Events read and applied at once by an offline rebuild: larger than a
/// live batch, since nobody waits for the first ones.
const REBUILD_BATCH_SIZE: usize = 2_000;

/// Rebuilds `projectors` from the whole log in one pass, without a running
/// runner (the operator's offline rebuild): resets them, then applies the
/// log up to its current head, each batch to every projector in one
/// transaction, while the next batch is read. Returns the position reached.
pub async fn rebuild_all(
    store: &Arc<dyn EventStore>,
    read_models: &ReadModels,
    projectors: &[&dyn Projector],
) -> Result<u64> {
    for projector in projectors {
        reset(read_models, *projector).await?;
    }
    let read = |from: u64| {
        let store = Arc::clone(store);
        tokio::spawn(async move { store.read_all(from, REBUILD_BATCH_SIZE).await })
    };
    let mut checkpoint = 0;
    let mut events = read(1).await.map_err(|_| Error::Stopped)??;
    while let Some(last) = events.last().map(|event| event.position) {
        // The next batch is read (and decoded) on another task, and so
        // another core, while this one is applied.
        let next = read(last + 1);
        apply_to_all(read_models, projectors, checkpoint, &events).await?;
        checkpoint = last;
        events = next.await.map_err(|_| Error::Stopped)??;
    }
    Ok(checkpoint)
}

/// Applies `events` to every projector and moves their checkpoints from
/// `expected` to the last event's position, in one transaction.
async fn apply_to_all(
    read_models: &ReadModels,
    projectors: &[&dyn Projector],
    expected: u64,
    events: &[RecordedEvent],
) -> Result<()> {
    let Some(last) = events.last() else {
        return Ok(());
    };
    let mut tx = begin(read_models).await?;
    for projector in projectors {
        let moved = sqlx::query(
            "UPDATE projection_checkpoints SET position = $1 WHERE name = $2 AND position = $3",
        )
        .bind(last.position as i64)
        .bind(projector.name())
        .bind(expected as i64)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved != 1 {
            tx.rollback().await?;
            return Err(Error::Apply {
                projector: projector.name().to_owned(),
                position: expected + 1,
                reason:
                    "another process is running this projector; stop it before an offline rebuild"
                        .into(),
            });
        }
        projector.apply(&mut tx, events).await?;
    }
    tx.commit().await?;
    Ok(())
}
