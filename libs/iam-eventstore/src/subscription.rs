//! Catch-up-then-live subscriptions to the whole log.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::event::RecordedEvent;
use crate::store::EventStore;
use crate::{Error, Result};

/// How often an idle subscription looks at the log even without a wake-up,
/// so that appends by other processes are seen when their notification is lost.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(500);
const READ_BATCH: usize = 512;

/// A reader of the whole log that catches up, then follows new appends.
///
/// Positions are gapless and follow commit order, so reading by position
/// delivers every event exactly once, in order, however late it committed.
/// Wake-ups come from the writer in this process (and from PostgreSQL
/// `NOTIFY` for other processes); polling covers anything they miss.
pub struct Subscription {
    store: Arc<dyn EventStore>,
    head: watch::Receiver<u64>,
    next: u64,
    buffer: VecDeque<RecordedEvent>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("next", &self.next)
            .field("buffered", &self.buffer.len())
            .finish()
    }
}

impl Subscription {
    pub(crate) fn new(store: Arc<dyn EventStore>, head: watch::Receiver<u64>, from: u64) -> Self {
        Self {
            store,
            head,
            next: from.max(1),
            buffer: VecDeque::new(),
        }
    }

    /// The position of the next event this subscription will deliver.
    pub fn next_position(&self) -> u64 {
        self.buffer
            .front()
            .map_or(self.next, |event| event.position)
    }

    /// The next event, waiting for one to be appended if need be.
    pub async fn next(&mut self) -> Result<RecordedEvent> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Ok(event);
            }
            self.fill(READ_BATCH).await?;
        }
    }

    /// Between 1 and `max` next events, waiting for one if need be.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>> {
        let max = max.max(1);
        if self.buffer.is_empty() {
            self.fill(max).await?;
        }
        let take = self.buffer.len().min(max);
        Ok(self.buffer.drain(..take).collect())
    }

    async fn fill(&mut self, limit: usize) -> Result<()> {
        loop {
            // Mark the current head as seen before reading, so that an append
            // committed after the read still wakes the wait below.
            self.head.borrow_and_update();
            let events = self.store.read_all(self.next, limit).await?;
            if let Some(last) = events.last() {
                for (expected, event) in (self.next..).zip(&events) {
                    if event.position != expected {
                        return Err(Error::Corrupt(format!(
                            "expected position {expected} in the log, found {}",
                            event.position
                        )));
                    }
                }
                self.next = last.position + 1;
                self.buffer.extend(events);
                return Ok(());
            }
            tokio::select! {
                changed = self.head.changed() => {
                    if changed.is_err() {
                        // The store's writer is gone; keep polling the log.
                        tokio::time::sleep(POLL_INTERVAL).await;
                    }
                }
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    }
}
