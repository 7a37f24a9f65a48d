//! Alerting: the [`Alerter`] trait and the dispatcher that calls alerters
//! without ever delaying a check.
//!
//! Every transition is queued once per alerter (each alerter has its own
//! bounded queue and worker task, so a slow one delays no other). A worker
//! calls its alerter with a timeout and retries transient failures with
//! backoff. An alert whose retries run out is counted and kept, first in
//! line, and sent again after the redelivery interval (default 30 s), so a
//! receiver that comes back gets every alert, in order. A permanent error
//! (a 4xx) is counted and listed, not retried. When a queue is full its
//! oldest alert is dropped, logged and counted. `/metrics`
//! (`health_alert_deliveries_total`, `health_alert_queue`) and
//! `GET <prefix>/alerts/deliveries` ([`AlerterDeliveries`]) show it all.
//! During maintenance and draining nothing is sent; transitions are still
//! recorded.
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
    /// How long an alert whose retries ran out waits before it is sent again.
    pub(crate) redelivery: Duration,
}

impl Default for DispatchPolicy {
    fn default() -> Self {
        Self {
            queue: 256,
            timeout: Duration::from_secs(5),
            retries: 3,
            backoff: Duration::from_millis(500),
            redelivery: Duration::from_secs(30),
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

/// What happened to the alerts one alerter was given, as
/// `GET <prefix>/alerts/deliveries` and `/metrics` show it.
///
/// Every alert queued for an alerter ends up counted once as `sent`,
/// `rejected` or `dropped`, or is still `waiting`: nothing is lost without
/// being counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct AlerterDeliveries {
    /// The alerter's [`name`](Alerter::name).
    pub alerter: String,
    /// Alerts delivered, on the first round or on a redelivery.
    pub sent: u64,
    /// Of `sent`, those delivered only after a round of retries ran out.
    pub redelivered: u64,
    /// Rounds of retries that ran out; each left its alert waiting for
    /// redelivery.
    pub failed: u64,
    /// Alerts given up on because the alerter answered with a permanent
    /// error (a 4xx, say): retrying cannot help.
    pub rejected: u64,
    /// Alerts pushed out of a full queue, oldest first.
    pub dropped: u64,
    /// Alerts queued or waiting for redelivery now.
    pub waiting: u64,
    /// The alerts waiting after a failed round, then the latest rejected
    /// and dropped ones (at most 50 of those), oldest first.
    pub undelivered: Vec<Undelivered>,
}

/// One alert an alerter has not delivered, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Undelivered {
    /// The alert's [id](AlertRecord::id).
    pub id: String,
    /// The probe.
    pub probe: String,
    /// The status before the change.
    pub old_status: crate::model::Status,
    /// The status after the change.
    pub new_status: crate::model::Status,
    /// When the change was observed.
    pub timestamp: crate::model::Timestamp,
    /// Where the alert is.
    pub state: DeliveryState,
    /// Calls made so far.
    pub attempts: u32,
    /// The last error, redacted.
    pub error: String,
}

/// Where an undelivered alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DeliveryState {
    /// Its retries ran out; it is sent again after the redelivery interval,
    /// before any later alert.
    Waiting,
    /// The alerter refused it for good.
    Rejected,
    /// Pushed out of a full queue.
    Dropped,
}

/// Rejected and dropped alerts kept for `/alerts/deliveries`, per alerter.
const RECENT_UNDELIVERED: usize = 50;

struct Worker {
    alerter: Arc<dyn DynAlerter>,
    notify: NotifyPolicy,
    line: Arc<Line>,
    /// Whether the worker task was spawned (on the first alert, inside the
    /// application's runtime).
    spawned: std::sync::atomic::AtomicBool,
    /// When each probe's last notification was queued.
    last: Mutex<std::collections::HashMap<String, tokio::time::Instant>>,
}

/// One alerter's queue, its undelivered alerts and its counts, shared by
/// the dispatcher and the worker task.
#[derive(Default)]
struct Line {
    state: Mutex<LineState>,
    /// Wakes the worker: an alert was queued, a flush hurries redelivery,
    /// or the dispatcher is gone.
    wake: tokio::sync::Notify,
    sent: AtomicU64,
    redelivered: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    dropped: AtomicU64,
}

#[derive(Default)]
struct LineState {
    queue: std::collections::VecDeque<Queued>,
    /// Whether an alert is being delivered (out of the queue meanwhile).
    in_flight: bool,
    /// That alert, when it is a redelivery.
    redelivering: Option<Undelivered>,
    recent: std::collections::VecDeque<Undelivered>,
    /// Set when the dispatcher is dropped: the worker ends.
    closed: bool,
    /// Set by a flush: redeliver now instead of after the interval.
    hurry: bool,
}

/// An alert in a queue, with what its delivery went through so far.
struct Queued {
    alert: AlertRecord,
    attempts: u32,
    /// Rounds of retries that ran out.
    rounds: u32,
    error: Option<String>,
}

impl Queued {
    fn report(&self, state: DeliveryState) -> Undelivered {
        Undelivered {
            id: self.alert.id.clone(),
            probe: self.alert.probe.clone(),
            old_status: self.alert.old_status,
            new_status: self.alert.new_status,
            timestamp: self.alert.timestamp,
            state,
            attempts: self.attempts,
            error: self.error.clone().unwrap_or_default(),
        }
    }
}

impl Line {
    fn state(&self) -> std::sync::MutexGuard<'_, LineState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remember(state: &mut LineState, undelivered: Undelivered) {
        if state.recent.len() >= RECENT_UNDELIVERED {
            state.recent.pop_front();
        }
        state.recent.push_back(undelivered);
    }
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

    fn deliveries(&self) -> AlerterDeliveries {
        let line = &self.line;
        let state = line.state();
        let mut undelivered: Vec<Undelivered> = state.redelivering.iter().cloned().collect();
        undelivered.extend(
            state
                .queue
                .iter()
                .filter(|q| q.rounds > 0)
                .map(|q| q.report(DeliveryState::Waiting)),
        );
        undelivered.extend(state.recent.iter().cloned());
        let waiting = state.queue.len() + usize::from(state.in_flight);
        AlerterDeliveries {
            alerter: self.alerter.name().to_owned(),
            sent: line.sent.load(Ordering::Relaxed),
            redelivered: line.redelivered.load(Ordering::Relaxed),
            failed: line.failed.load(Ordering::Relaxed),
            rejected: line.rejected.load(Ordering::Relaxed),
            dropped: line.dropped.load(Ordering::Relaxed),
            waiting: u64::try_from(waiting).unwrap_or(u64::MAX),
            undelivered,
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

impl Drop for Dispatcher {
    fn drop(&mut self) {
        for worker in &self.workers {
            worker.line.state().closed = true;
            worker.line.wake.notify_one();
        }
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
                line: Arc::default(),
                spawned: std::sync::atomic::AtomicBool::new(false),
                last: Mutex::default(),
            })
            .collect();
        Self {
            workers,
            policy,
            pending: Arc::default(),
        }
    }

    /// Waits until every queued alert was delivered (or given up on), for
    /// at most `deadline`, redelivering waiting alerts at once; returns how
    /// many were still pending then.
    pub(crate) async fn flush(&self, deadline: std::time::Duration) -> u64 {
        for worker in &self.workers {
            worker.line.state().hurry = true;
            worker.line.wake.notify_one();
        }
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

    /// Alerts pushed out of a full queue, over every alerter.
    pub(crate) fn dropped(&self) -> u64 {
        self.workers
            .iter()
            .map(|w| w.line.dropped.load(Ordering::Relaxed))
            .sum()
    }

    /// What each alerter did with its alerts, in registration order.
    pub(crate) fn deliveries(&self) -> Vec<AlerterDeliveries> {
        self.workers.iter().map(Worker::deliveries).collect()
    }

    /// Queues a reminder for every alerter whose policy says one is due for
    /// `probe`, which is still unhealthy; `reminder` makes the record, once.
    pub(crate) fn remind(&self, probe: &str, reminder: impl FnOnce() -> AlertRecord) {
        let mut make = Some(reminder);
        let mut record: Option<AlertRecord> = None;
        for worker in self.workers.iter().filter(|w| w.reminder_due(probe)) {
            tracing::info!(alerter = worker.alerter.name(), probe, "still unhealthy: reminder");
            if record.is_none() {
                record = make.take().map(|make| make());
            }
            if let Some(record) = &record {
                self.enqueue(worker, record);
            }
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

    /// Queues `alert` for `worker`; a full queue drops its oldest alert
    /// (counted, logged and listed) to make room.
    fn enqueue(&self, worker: &Worker, alert: &AlertRecord) {
        if !worker.spawned.swap(true, Ordering::AcqRel) {
            self.start(worker);
        }
        self.pending.0.fetch_add(1, Ordering::AcqRel);
        let line = &worker.line;
        let mut state = line.state();
        if state.queue.len() >= self.policy.queue.max(1)
            && let Some(mut oldest) = state.queue.pop_front()
        {
            line.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                alerter = worker.alerter.name(),
                probe = %oldest.alert.probe,
                id = %oldest.alert.id,
                "alert dropped: the alerter's queue is full"
            );
            oldest
                .error
                .get_or_insert_with(|| "the alerter's queue was full".to_owned());
            Line::remember(&mut state, oldest.report(DeliveryState::Dropped));
            release(&self.pending);
        }
        state.queue.push_back(Queued {
            alert: alert.clone(),
            attempts: 0,
            rounds: 0,
            error: None,
        });
        drop(state);
        line.wake.notify_one();
    }

    fn start(&self, worker: &Worker) {
        let alerter = Arc::clone(&worker.alerter);
        let line = Arc::clone(&worker.line);
        let policy = self.policy;
        let pending = Arc::clone(&self.pending);
        tokio::spawn(async move {
            while let Some(mut next) = next_alert(&line).await {
                let (attempts, outcome) = deliver(alerter.as_ref(), &next.alert, policy).await;
                next.attempts = next.attempts.saturating_add(attempts);
                let redeliver = {
                    let mut state = line.state();
                    state.in_flight = false;
                    state.redelivering = None;
                    settle(&line, &mut state, next, outcome, alerter.name(), policy)
                };
                if redeliver {
                    wait_to_redeliver(&line, policy.redelivery).await;
                } else {
                    release(&pending);
                }
            }
        });
    }
}

/// Counts how the delivery of `next` ended; returns whether it waits for
/// redelivery (first in line again, so alerts for a probe never arrive out
/// of order) rather than being done with.
fn settle(
    line: &Line,
    state: &mut LineState,
    mut next: Queued,
    outcome: Result<(), AlertError>,
    alerter: &str,
    policy: DispatchPolicy,
) -> bool {
    let alert = &next.alert;
    match outcome {
        Ok(()) => {
            line.sent.fetch_add(1, Ordering::Relaxed);
            if next.rounds > 0 {
                line.redelivered.fetch_add(1, Ordering::Relaxed);
                tracing::info!(alerter, probe = %alert.probe, id = %alert.id, "alert redelivered");
            }
            false
        }
        Err(error) if error.is_transient() => {
            line.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                alerter,
                probe = %alert.probe,
                id = %alert.id,
                attempts = next.attempts,
                error = %error,
                redelivery = ?policy.redelivery,
                "alert not sent: kept for redelivery"
            );
            next.rounds += 1;
            next.error = Some(error.to_string());
            state.queue.push_front(next);
            true
        }
        Err(error) => {
            line.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::error!(alerter, probe = %alert.probe, id = %alert.id, error = %error, "alert refused by the alerter: not retried");
            next.error = Some(error.to_string());
            Line::remember(state, next.report(DeliveryState::Rejected));
            false
        }
    }
}

/// The next alert to deliver, marked as being sent; `None` once the
/// dispatcher is gone.
async fn next_alert(line: &Line) -> Option<Queued> {
    loop {
        let woken = line.wake.notified();
        {
            let mut state = line.state();
            if state.closed {
                return None;
            }
            if let Some(next) = state.queue.pop_front() {
                state.in_flight = true;
                state.redelivering = (next.rounds > 0).then(|| next.report(DeliveryState::Waiting));
                return Some(next);
            }
        }
        woken.await;
    }
}

/// Sleeps until the redelivery interval has passed, a flush hurries it or
/// the dispatcher is gone.
async fn wait_to_redeliver(line: &Line, interval: Duration) {
    let until = tokio::time::Instant::now() + interval;
    loop {
        let woken = line.wake.notified();
        {
            let mut state = line.state();
            if state.closed || std::mem::take(&mut state.hurry) {
                return;
            }
        }
        tokio::select! {
            () = tokio::time::sleep_until(until) => return,
            () = woken => {}
        }
    }
}

/// Counts one alert as delivered or given up on, waking a flush at zero.
fn release(pending: &(AtomicU64, tokio::sync::Notify)) {
    if pending.0.fetch_sub(1, Ordering::AcqRel) == 1 {
        pending.1.notify_waiters();
    }
}

/// Sends one alert with the timeout and retries; returns the calls made
/// and the last outcome.
async fn deliver(
    alerter: &dyn DynAlerter,
    alert: &AlertRecord,
    policy: DispatchPolicy,
) -> (u32, Result<(), AlertError>) {
    let mut backoff = policy.backoff;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let call = std::panic::AssertUnwindSafe(alerter.notify_boxed(alert)).catch_unwind();
        let error = match tokio::time::timeout(policy.timeout, call).await {
            Ok(Ok(Ok(()))) => {
                tracing::debug!(alerter = alerter.name(), probe = %alert.probe, attempt, "alert sent");
                return (attempt, Ok(()));
            }
            Ok(Ok(Err(e))) => e,
            Ok(Err(_)) => AlertError::permanent("the alerter panicked"),
            Err(_) => AlertError::transient(format!("timed out after {:?}", policy.timeout)),
        };
        if !error.is_transient() || attempt > policy.retries {
            return (attempt, Err(error));
        }
        tracing::warn!(alerter = alerter.name(), probe = %alert.probe, error = %error, ?backoff, "alert failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
    }
}

#[cfg(feature = "alerts")]
mod client;
#[cfg(feature = "alerts")]
mod facts;
#[cfg(feature = "alerts")]
mod opsgenie;
#[cfg(feature = "alerts")]
mod pagerduty;
#[cfg(feature = "alerts")]
mod slack;
#[cfg(feature = "alerts")]
mod teams;
#[cfg(feature = "alerts")]
mod webhook;

#[cfg(feature = "alerts")]
pub use opsgenie::OpsgenieAlerter;
#[cfg(feature = "alerts")]
pub use pagerduty::PagerDutyAlerter;
#[cfg(feature = "alerts")]
pub use slack::SlackAlerter;
#[cfg(feature = "alerts")]
pub use teams::TeamsAlerter;
#[cfg(feature = "alerts")]
pub use webhook::WebhookAlerter;
