//! Demand-driven polling: the loop runs while at least one stream subscriber
//! is connected, each probe on its own schedule, and stops when the last one
//! leaves.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Engine, MIN_POLL_INTERVAL, Phase, Scheduling};

/// The subscribers and the loop they keep alive.
#[derive(Debug, Default)]
pub(crate) struct Poller {
    subscribers: usize,
    task: Option<JoinHandle<()>>,
}

/// Held by each stream client; the loop runs while any exists.
#[derive(Debug)]
pub(crate) struct Subscription {
    engine: Arc<Engine>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut poller = self.engine.poller();
        poller.subscribers -= 1;
        if poller.subscribers == 0
            && let Some(task) = poller.task.take()
        {
            self.engine.polling.store(false, Ordering::Release);
            task.abort();
            tracing::debug!("last stream subscriber left: poll loop stopped");
        }
    }
}

impl Engine {
    fn poller(&self) -> MutexGuard<'_, Poller> {
        self.poller.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a stream subscriber, starting the poll loop for the first.
    pub(crate) fn subscribe(self: &Arc<Self>) -> Subscription {
        let mut poller = self.poller();
        poller.subscribers += 1;
        self.ensure_loop(&mut poller);
        Subscription {
            engine: Arc::clone(self),
        }
    }

    /// Starts the poll loop when it should run and does not: while a
    /// stream subscriber is connected, or always in background mode; never
    /// after shutdown began, nor in on-request mode.
    fn ensure_loop(self: &Arc<Self>, poller: &mut Poller) {
        let wanted = poller.subscribers > 0 || self.scheduling() == Scheduling::Background;
        if wanted && poller.task.is_none() && self.polls() && *self.phase.borrow() == Phase::Running {
            if tokio::runtime::Handle::try_current().is_err() {
                // Built outside a runtime: the first request or stream starts it.
                return;
            }
            let engine = Arc::downgrade(self);
            poller.task = Some(self.executor.spawn_run(poll_loop(engine)));
            self.polling.store(true, Ordering::Release);
            tracing::debug!(scheduling = self.scheduling().as_str(), "poll loop started");
        }
    }

    /// Starts background polling if this engine schedules in the background.
    pub(crate) fn start_background(self: &Arc<Self>) {
        if self.scheduling() == Scheduling::Background {
            let mut poller = self.poller();
            self.ensure_loop(&mut poller);
        }
    }

    /// The list of probes changed: the poll loop looks at it again (and
    /// starts, when a new probe has an interval and nothing else had).
    pub(super) fn probes_changed(self: &Arc<Self>) {
        self.wake.notify_one();
        let mut poller = self.poller();
        self.ensure_loop(&mut poller);
    }

    /// Stops the poll loop for good (shutdown).
    pub(crate) fn stop_polling(&self) {
        let mut poller = self.poller();
        if let Some(task) = poller.task.take() {
            task.abort();
        }
        self.polling.store(false, Ordering::Release);
    }

    /// Every report the engine publishes from now on; the current one is
    /// marked as seen.
    pub(crate) fn updates(&self) -> tokio::sync::watch::Receiver<Option<Arc<super::Snapshot>>> {
        self.reports.subscribe()
    }

    /// How many stream clients are connected.
    pub(crate) fn subscribers(&self) -> usize {
        self.poller().subscribers
    }

    /// Whether the poll loop is running.
    pub(crate) fn is_polling(&self) -> bool {
        self.polling.load(Ordering::Acquire)
    }

    /// Whether anything has a poll interval (and the mode polls at all), so
    /// that streams stay open.
    pub(crate) fn polls(&self) -> bool {
        self.scheduling() != Scheduling::OnRequest
            && (self.poll_interval().is_some() || self.entries().iter().any(|e| e.poll_interval.is_some()))
    }

    /// The registry's current poll interval.
    pub(crate) fn poll_interval(&self) -> Option<Duration> {
        *self.interval.borrow()
    }

    /// Changes the registry's poll interval (clamped); running streams get
    /// the new schedule at once.
    pub(crate) fn set_poll_interval(self: &Arc<Self>, interval: Option<Duration>) {
        self.interval.send_replace(super::clamp_interval(interval));
        let mut poller = self.poller();
        self.ensure_loop(&mut poller);
    }
}

/// Starts the probes due at each tick as one batch on its own task, so a
/// slow probe delays no probe of another tick; each batch is published as
/// one report.
///
/// The loop holds the engine weakly between ticks: a registry that is
/// dropped ends its loop.
async fn poll_loop(engine: Weak<Engine>) {
    let (mut changes, wake, first) = {
        let Some(engine) = engine.upgrade() else { return };
        (
            engine.interval.subscribe(),
            Arc::clone(&engine.wake),
            engine.latest().is_none(),
        )
    };
    if first && let Some(engine) = engine.upgrade() {
        engine.first_report().await;
    }
    let finished = Arc::new(Notify::new());
    loop {
        let next = {
            let Some(engine) = engine.upgrade() else { return };
            let now = Instant::now();
            let registry_interval = engine.poll_interval();
            let mut next: Option<Instant> = None;
            let mut due_now = Vec::new();
            // A probe taken by a run or a batch is looked at again shortly:
            // only a finished batch wakes the loop, and one batch may wait
            // long for a slow probe while the others of it are long done.
            let mut taken = false;
            for entry in engine.entries().iter() {
                if entry.is_running() {
                    taken = true;
                    continue;
                }
                let Some(due) = entry.next_due(registry_interval) else {
                    continue;
                };
                if due > now {
                    next = Some(next.map_or(due, |n| n.min(due)));
                    continue;
                }
                // Mark it before the task starts so the next pass skips it.
                entry.mark_running();
                due_now.push(Arc::clone(entry));
                taken = true;
            }
            if taken {
                let soon = now + MIN_POLL_INTERVAL;
                next = Some(next.map_or(soon, |n| n.min(soon)));
            }
            // The probes due now run as one batch; a batch in flight never
            // holds up the probes of a later tick.
            if !due_now.is_empty() {
                let finished = Arc::clone(&finished);
                tokio::spawn(async move {
                    engine.poll_due(due_now).await;
                    finished.notify_one();
                });
            }
            next
        };
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {}
            () = finished.notified() => {}
            () = wake.notified() => {}
            _ = changes.changed() => {}
        }
    }
}
