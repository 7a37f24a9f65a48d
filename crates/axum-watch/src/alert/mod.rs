//! Alerting: the [`Alerter`] trait and the dispatcher that calls alerters
//! without ever delaying a check.
//!
//! Every transition is queued once per alerter (each alerter has its own
//! bounded queue and worker task, so a slow one delays no other). A worker
//! calls its alerter with a timeout and retries transient failures with
//! backoff. When a queue is full the alert is dropped for that alerter,
//! logged and counted (`health_alerts_dropped_total` in `/metrics`). During
//! maintenance nothing is sent; transitions are still recorded.
//!
//! ```
//! use axum_watch::{AlertRecord, Alerter, HealthRegistry, alert::AlertError};
//!
//! struct Pager;
//!
//! impl Alerter for Pager {
//!     fn name(&self) -> &str {
//!         "pager"
//!     }
//!
//!     async fn notify(&self, alert: &AlertRecord) -> Result<(), AlertError> {
//!         println!("{} went {} -> {}", alert.probe, alert.old_status, alert.new_status);
//!         Ok(())
//!     }
//! }
//!
//! let registry = HealthRegistry::builder().alerter(Pager).build().unwrap();
//! # drop(registry);
//! ```

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use crate::model::AlertRecord;

/// Something that tells people about a transition.
pub trait Alerter: Send + Sync + 'static {
    /// A short name for logs (`webhook`, `slack`, …); never a URL or a key.
    fn name(&self) -> &str;

    /// Sends one alert. A [transient](AlertError::transient) error is retried.
    fn notify(&self, alert: &AlertRecord) -> impl Future<Output = Result<(), AlertError>> + Send;
}

/// Why an alert could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AlertError {
    message: String,
    transient: bool,
}

impl AlertError {
    /// A failure worth retrying: a connection error, a timeout, a 5xx or 429.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: crate::redact(&message.into()).into_owned(),
            transient: true,
        }
    }

    /// A failure that retrying will not fix, such as a 4xx.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: crate::redact(&message.into()).into_owned(),
            transient: false,
        }
    }

    /// Whether the dispatcher retries it.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        self.transient
    }
}

/// The object-safe twin of [`Alerter`].
trait DynAlerter: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn notify_boxed<'a>(&'a self, alert: &'a AlertRecord) -> BoxFuture<'a, Result<(), AlertError>>;
}

impl<A: Alerter> DynAlerter for A {
    fn name(&self) -> &str {
        Alerter::name(self)
    }

    fn notify_boxed<'a>(&'a self, alert: &'a AlertRecord) -> BoxFuture<'a, Result<(), AlertError>> {
        Box::pin(Alerter::notify(self, alert))
    }
}

/// How the dispatcher treats every alerter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DispatchPolicy {
    /// Alerts waiting per alerter before new ones are dropped.
    pub(crate) queue: usize,
    /// How long one call may take.
    pub(crate) timeout: Duration,
    /// Retries after the first attempt, for transient failures.
    pub(crate) retries: u32,
    /// The first backoff; it doubles after each retry.
    pub(crate) backoff: Duration,
}

impl Default for DispatchPolicy {
    fn default() -> Self {
        Self {
            queue: 256,
            timeout: Duration::from_secs(5),
            retries: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// When one alerter is notified: a minimum interval between notifications
/// for the same probe, a reminder while a probe stays failing, and whether
/// recoveries are sent. Maintenance and draining still suppress sending, not
/// recording.
///
/// ```
/// use std::time::Duration;
/// use axum_watch::alert::NotifyPolicy;
///
/// let pager = NotifyPolicy::new()
///     .min_interval(Duration::from_secs(300))    // at most one page per probe per 5 minutes
///     .reminder(Duration::from_secs(3600))       // and once an hour while it stays unhealthy
///     .recoveries(false);                         // no page when it recovers
/// assert_ne!(pager, NotifyPolicy::new());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct NotifyPolicy {
    min_interval: Duration,
    reminder: Option<Duration>,
    recoveries: bool,
}

impl Default for NotifyPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl NotifyPolicy {
    /// Every transition, recoveries included, no reminders.
    pub const fn new() -> Self {
        Self {
            min_interval: Duration::ZERO,
            reminder: None,
            recoveries: true,
        }
    }

    /// Notifications for one probe closer together than this are held back
    /// (logged, never queued; the alert log still records every transition).
    pub const fn min_interval(mut self, interval: Duration) -> Self {
        self.min_interval = interval;
        self
    }

    /// While a probe stays unhealthy, sends its state again once this long
    /// has passed since its last notification (a record whose old and new
    /// status are both `unhealthy`), checked whenever the probe runs.
    pub const fn reminder(mut self, every: Duration) -> Self {
        self.reminder = Some(every);
        self
    }

    /// Whether transitions to a better status are sent (default yes).
    pub const fn recoveries(mut self, send: bool) -> Self {
        self.recoveries = send;
        self
    }
}

struct Worker {
    alerter: Arc<dyn DynAlerter>,
    notify: NotifyPolicy,
    sender: Mutex<Option<mpsc::Sender<AlertRecord>>>,
    /// When each probe's last notification was queued.
    last: Mutex<std::collections::HashMap<String, tokio::time::Instant>>,
}

impl Worker {
    /// Whether `alert` may be queued now under this alerter's policy;
    /// remembers it when it may.
    fn admits(&self, alert: &AlertRecord) -> Admission {
        if alert.new_status < alert.old_status && !self.notify.recoveries {
            return Admission::NotWanted;
        }
        let now = tokio::time::Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = last.get(&alert.probe)
            && !self.notify.min_interval.is_zero()
            && now.saturating_duration_since(*at) < self.notify.min_interval
        {
            return Admission::Throttled;
        }
        last.insert(alert.probe.clone(), now);
        Admission::Queue
    }

    /// Whether a reminder for `probe` is due, remembering it when it is.
    fn reminder_due(&self, probe: &str) -> bool {
        let Some(every) = self.notify.reminder else {
            return false;
        };
        let now = tokio::time::Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        match last.get_mut(probe) {
            Some(at) if now.saturating_duration_since(*at) >= every => {
                *at = now;
                true
            }
            _ => false,
        }
    }
}

/// What a worker's policy says of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    Queue,
    Throttled,
    NotWanted,
}

/// Fans transitions out to the alerters' queues.
pub(crate) struct Dispatcher {
    workers: Vec<Worker>,
    policy: DispatchPolicy,
    dropped: AtomicU64,
    /// Alerts queued or being delivered, and a signal when that reaches 0.
    pending: Arc<(AtomicU64, tokio::sync::Notify)>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.workers.iter().map(|w| w.alerter.name()).collect();
        f.debug_struct("Dispatcher")
            .field("alerters", &names)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A type-erased alerter, as the builder collects them.
#[derive(Clone)]
pub(crate) struct AlerterHandle(Arc<dyn DynAlerter>, NotifyPolicy);

impl AlerterHandle {
    pub(crate) fn new(alerter: impl Alerter, notify: NotifyPolicy) -> Self {
        Self(Arc::new(alerter), notify)
    }
}

impl fmt::Debug for AlerterHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Alerter").field(&self.0.name()).finish()
    }
}

impl Dispatcher {
    pub(crate) fn new(alerters: Vec<AlerterHandle>, policy: DispatchPolicy) -> Self {
        let workers = alerters
            .into_iter()
            .map(|a| Worker {
                alerter: a.0,
                notify: a.1,
                sender: Mutex::new(None),
                last: Mutex::default(),
            })
            .collect();
        Self {
            workers,
            policy,
            dropped: AtomicU64::new(0),
            pending: Arc::default(),
        }
    }

    /// Waits until every queued alert was delivered (or given up on), for
    /// at most `deadline`; returns how many were still pending then.
    pub(crate) async fn flush(&self, deadline: std::time::Duration) -> u64 {
        let (pending, idle) = &*self.pending;
        let wait = async {
            loop {
                let notified = idle.notified();
                if pending.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(deadline, wait).await;
        pending.load(Ordering::Acquire)
    }

    /// Whether any alerter is configured.
    pub(crate) fn has_alerters(&self) -> bool {
        !self.workers.is_empty()
    }

    /// Alerts that could not be queued because an alerter's queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues a reminder for every alerter whose policy says one is due for
    /// `probe`, which is still `status` (unhealthy) at `timestamp`.
    pub(crate) fn remind(&self, probe: &str, status: crate::model::Status, timestamp: crate::model::Timestamp) {
        let reminder = AlertRecord::new(probe, status, status, timestamp);
        for worker in self.workers.iter().filter(|w| w.reminder_due(probe)) {
            tracing::info!(alerter = worker.alerter.name(), probe, "still unhealthy: reminder");
            self.enqueue(worker, &reminder);
        }
    }

    /// Queues `alert` for every alerter whose policy admits it; never waits.
    pub(crate) fn dispatch(&self, alert: &AlertRecord) {
        for worker in &self.workers {
            match worker.admits(alert) {
                Admission::Queue => self.enqueue(worker, alert),
                Admission::Throttled => {
                    tracing::info!(
                        alerter = worker.alerter.name(),
                        probe = %alert.probe,
                        "notification held back by the alerter's minimum interval"
                    );
                }
                Admission::NotWanted => {}
            }
        }
    }

    fn enqueue(&self, worker: &Worker, alert: &AlertRecord) {
        let mut sender = worker.sender.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = sender.get_or_insert_with(|| self.start(Arc::clone(&worker.alerter)));
        self.pending.0.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = sender.try_send(alert.clone()) {
            self.done();
            self.dropped.fetch_add(1, Ordering::Relaxed);
            let reason = match e {
                mpsc::error::TrySendError::Full(_) => "its queue is full",
                mpsc::error::TrySendError::Closed(_) => "its worker stopped",
            };
            tracing::error!(
                alerter = worker.alerter.name(),
                probe = %alert.probe,
                "alert dropped: {reason}"
            );
        }
    }

    fn done(&self) {
        release(&self.pending);
    }

    fn start(&self, alerter: Arc<dyn DynAlerter>) -> mpsc::Sender<AlertRecord> {
        let (sender, mut queue) = mpsc::channel::<AlertRecord>(self.policy.queue.max(1));
        let policy = self.policy;
        let pending = Arc::clone(&self.pending);
        tokio::spawn(async move {
            while let Some(alert) = queue.recv().await {
                deliver(alerter.as_ref(), &alert, policy).await;
                release(&pending);
            }
        });
        sender
    }
}

/// Counts one alert as delivered or given up on, waking a flush at zero.
fn release(pending: &(AtomicU64, tokio::sync::Notify)) {
    if pending.0.fetch_sub(1, Ordering::AcqRel) == 1 {
        pending.1.notify_waiters();
    }
}

/// Sends one alert with the timeout and retries; logs the final outcome.
async fn deliver(alerter: &dyn DynAlerter, alert: &AlertRecord, policy: DispatchPolicy) {
    let mut backoff = policy.backoff;
    for attempt in 0..=policy.retries {
        let call = std::panic::AssertUnwindSafe(alerter.notify_boxed(alert)).catch_unwind();
        let error = match tokio::time::timeout(policy.timeout, call).await {
            Ok(Ok(Ok(()))) => {
                tracing::debug!(alerter = alerter.name(), probe = %alert.probe, attempt, "alert sent");
                return;
            }
            Ok(Ok(Err(e))) => e,
            Ok(Err(_)) => AlertError::permanent("the alerter panicked"),
            Err(_) => AlertError::transient(format!("timed out after {:?}", policy.timeout)),
        };
        if !error.is_transient() || attempt == policy.retries {
            tracing::error!(
                alerter = alerter.name(),
                probe = %alert.probe,
                attempts = attempt + 1,
                error = %error,
                "alert not sent"
            );
            return;
        }
        tracing::warn!(alerter = alerter.name(), probe = %alert.probe, error = %error, ?backoff, "alert failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
    }
}

#[cfg(feature = "alerts")]
mod client;
#[cfg(feature = "alerts")]
mod pagerduty;
#[cfg(feature = "alerts")]
mod slack;
#[cfg(feature = "alerts")]
mod teams;
#[cfg(feature = "alerts")]
mod webhook;

#[cfg(feature = "alerts")]
pub use pagerduty::PagerDutyAlerter;
#[cfg(feature = "alerts")]
pub use slack::SlackAlerter;
#[cfg(feature = "alerts")]
pub use teams::TeamsAlerter;
#[cfg(feature = "alerts")]
pub use webhook::WebhookAlerter;
