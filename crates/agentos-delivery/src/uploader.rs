//! The background uploader: one tokio task owns the [`Delivery`] (and so the HTTP client and the
//! lock) and keeps delivering; callers nudge it, wait for it ([`Uploader::flush`]) or stop it
//! ([`Uploader::shutdown`]). The recorder never waits on it: recording appends to the log, and
//! the log is the queue.

use std::sync::Arc;
use std::time::Duration;

use agentos_core::tier::Tier;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::engine::Delivery;
use crate::error::DeliveryError;
use crate::outbox::Paths;
use crate::outbox::log::complete_len;
use crate::settings::{Settings, TierHandle};

/// Handle to a running background uploader.
#[derive(Debug)]
pub struct Uploader {
    nudge: Arc<Notify>,
    stop: watch::Sender<bool>,
    acked: watch::Receiver<u64>,
    tier: TierHandle,
    paths: Paths,
    task: JoinHandle<()>,
}

impl Uploader {
    /// Opens delivery for `settings.data_dir` (taking its lock) and starts the worker on the
    /// current tokio runtime.
    ///
    /// # Errors
    /// As [`Delivery::open`].
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn start(settings: Settings) -> Result<Uploader, DeliveryError> {
        let poll = settings.poll_interval;
        let mut delivery = Delivery::open(settings)?;
        let (acked_tx, acked_rx) = watch::channel(0u64);
        delivery.set_progress(acked_tx);
        let (stop_tx, stop_rx) = watch::channel(false);
        let nudge = Arc::new(Notify::new());
        let tier = delivery.tier();
        let paths = delivery.paths().clone();
        let task = tokio::spawn(worker(delivery, Arc::clone(&nudge), stop_rx, poll));
        Ok(Uploader {
            nudge,
            stop: stop_tx,
            acked: acked_rx,
            tier,
            paths,
            task,
        })
    }

    /// Tells the worker new lines were recorded (it also polls on its own).
    pub fn notify(&self) {
        self.nudge.notify_one();
    }

    /// Changes the tier in force; lowering it stops pending uploads above it.
    pub fn set_tier(&self, tier: Tier) {
        self.tier.set(tier);
        self.nudge.notify_one();
    }

    /// The live tier handle.
    pub fn tier(&self) -> TierHandle {
        self.tier.clone()
    }

    /// Waits until every complete line recorded before this call is delivered (or withheld or
    /// rejected); `false` when `timeout` passed first or the worker is gone.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let target = match complete_len(&self.paths.log) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read windows.jsonl to flush");
                return false;
            }
        };
        self.nudge.notify_one();
        let mut rx = self.acked.clone();
        let wait = rx.wait_for(|offset| *offset >= target);
        matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(_)))
    }

    /// Flushes for at most `timeout`, then stops the worker and releases the lock. Returns the
    /// flush result. Stopping mid-request is safe: the cursor only moves after acknowledgements.
    pub async fn shutdown(self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let flushed = self.flush(timeout).await;
        let _ = self.stop.send(true);
        let mut task = self.task;
        let rest = deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(100);
        if tokio::time::timeout(rest, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
        flushed
    }
}

async fn worker(
    mut delivery: Delivery,
    nudge: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    poll: Duration,
) {
    loop {
        if *stop.borrow() {
            break;
        }
        let pause = tokio::select! {
            r = delivery.sync(None) => match r {
                Ok(_) => None,
                Err(e) => {
                    // Refusals (401/403/…) need a human; keep trying slowly so a fixed
                    // server-side key or license is picked up without a restart.
                    tracing::error!(error = %e, code = e.code(), "delivery stopped; retrying later");
                    Some(delivery.max_backoff())
                }
            },
            _ = stop.changed() => break,
        };
        let wait = pause.unwrap_or(poll);
        tokio::select! {
            _ = nudge.notified(), if pause.is_none() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
    }
}
