//! Running probes: timeouts, panic capture, the circuit breaker, stamping,
//! transitions, and the single-flight report cache every endpoint reads.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared, join_all};
use serde_json::Value;
use tokio::time::Instant;
use tracing::Instrument;

use super::Inner;
use super::circuit::{Circuit, CircuitPolicy};
use crate::model::{AlertRecord, Details, HealthReport, ProbeResult, Status, Timestamp};
use crate::probe::ProbeHandle;

/// The error of a probe whose circuit is open and that has no recent result.
pub(crate) const SUSPENDED: &str = "circuit breaker open — probe temporarily suspended";

/// A registered probe with its resolved options and its state.
#[derive(Debug)]
pub(crate) struct Entry {
    probe: ProbeHandle,
    pub(crate) name: String,
    pub(crate) critical: bool,
    pub(crate) description: Option<String>,
    pub(crate) tags: Vec<String>,
    timeout: Option<Duration>,
    pub(crate) poll_interval: Option<Duration>,
    circuit: Option<CircuitPolicy>,
    state: Mutex<EntryState>,
    running: AtomicBool,
}

#[derive(Debug, Default)]
struct EntryState {
    circuit: Circuit,
    last: Option<(Instant, ProbeResult)>,
    last_status: Option<Status>,
    last_run: Option<Instant>,
}

impl Entry {
    pub(crate) fn new(
        probe: ProbeHandle,
        name: String,
        critical: bool,
        tags: Vec<String>,
        timeout: Option<Duration>,
        poll_interval: Option<Duration>,
        circuit: Option<CircuitPolicy>,
    ) -> Self {
        let description = probe.0.description().map(str::to_owned);
        Self {
            probe,
            name,
            critical,
            description,
            tags,
            timeout,
            poll_interval,
            circuit,
            state: Mutex::new(EntryState::default()),
            running: AtomicBool::new(false),
        }
    }

    fn state(&self) -> MutexGuard<'_, EntryState> {
        // Every critical section is a handful of assignments with no panic
        // path, so a poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn result(&self, status: Status, latency_ms: f64, error: Option<String>, details: Option<Details>) -> ProbeResult {
        let mut result = ProbeResult::new(self.name.clone(), status).with_critical(self.critical);
        result.latency_ms = latency_ms;
        result.error = error;
        result.description.clone_from(&self.description);
        result.tags.clone_from(&self.tags);
        result.details = details;
        result
    }

    /// Runs the check once with the timeout and panic capture; never fails.
    async fn call(&self) -> ProbeResult {
        let probe = self.probe.clone();
        let span = tracing::debug_span!("probe", probe = %self.name);
        let started = Instant::now();
        let mut task = tokio::spawn(async move { probe.0.check_boxed().await }.instrument(span));
        let joined = match self.timeout {
            Some(limit) => match tokio::time::timeout(limit, &mut task).await {
                Ok(joined) => Ok(joined),
                Err(_) => {
                    task.abort();
                    Err(limit)
                }
            },
            None => Ok((&mut task).await),
        };
        let elapsed = started.elapsed();
        let (status, error, details, latency) = match joined {
            Ok(Ok(Ok(outcome))) => outcome.into_parts(),
            Ok(Ok(Err(error))) => (Status::Unhealthy, Some(error.to_string()), Details::new(), None),
            Ok(Err(join)) => {
                let error = if join.is_panic() {
                    format!("panicked: {}", panic_message(join.into_panic().as_ref()))
                } else {
                    "check was cancelled".to_owned()
                };
                (Status::Unhealthy, Some(error), Details::new(), None)
            }
            Err(limit) => (
                Status::Unhealthy,
                Some(format!("timed out after {limit:?}")),
                Details::new(),
                None,
            ),
        };
        let error = error.map(|e| crate::redact(&e).into_owned());
        let latency_ms = crate::model::round(latency.unwrap_or(elapsed).as_secs_f64() * 1000.0, 2);
        tracing::debug!(probe = %self.name, %status, latency_ms, error = error.as_deref(), "probe ran");
        self.result(status, latency_ms, error, Some(details))
    }

    /// Produces this probe's result for a run: a real call, or, while its
    /// circuit is open, its last result (or a "suspended" one).
    pub(crate) async fn execute(&self, result_ttl: Duration) -> ProbeResult {
        self.mark_running();
        let _running = Running(&self.running);
        self.state().last_run = Some(Instant::now());
        let Some(policy) = self.circuit else {
            let mut result = self.call().await;
            if result.details.as_ref().is_some_and(serde_json::Map::is_empty) {
                result.details = None;
            }
            self.state().last = Some((Instant::now(), result.clone()));
            return result;
        };
        let now = Instant::now();
        {
            let state = self.state();
            if state.circuit.is_open(now) {
                let block = state.circuit.block(now);
                let fresh = state
                    .last
                    .as_ref()
                    .filter(|(at, _)| result_ttl.is_zero() || now.saturating_duration_since(*at) < result_ttl);
                let mut copy = match fresh {
                    Some((_, last)) => {
                        let mut copy = last.clone();
                        copy.critical = self.critical;
                        copy
                    }
                    None => self.result(Status::Unhealthy, 0.0, Some(SUSPENDED.to_owned()), None),
                };
                set_circuit_block(&mut copy, block);
                return copy;
            }
        }
        let mut result = self.call().await;
        let now = Instant::now();
        let mut state = self.state();
        state.circuit.record(result.is_passing(), policy, now);
        set_circuit_block(&mut result, state.circuit.block(now));
        if state.circuit.is_open(now) {
            tracing::warn!(
                probe = %self.name,
                consecutive_failures = state.circuit.consecutive_failures(),
                cooldown = ?policy.cooldown,
                "circuit breaker opened: probe suspended"
            );
        }
        state.last = Some((now, result.clone()));
        result
    }

    /// When this probe is next due in the poll loop: never when it has no
    /// interval of its own and the registry polls on demand only.
    pub(crate) fn next_due(&self, registry_interval: Option<Duration>) -> Option<Instant> {
        let interval = self.poll_interval.or(registry_interval)?;
        Some(self.state().last_run.map_or_else(Instant::now, |at| at + interval))
    }

    /// Flags a check as under way before its task starts.
    pub(crate) fn mark_running(&self) {
        self.running.store(true, Ordering::Release);
    }

    /// Whether a check of this probe is under way.
    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Remembers `status` and reports a change from the previous one; the
    /// first status seeds the state and is no change.
    fn observe(&self, status: Status) -> Option<Status> {
        let mut state = self.state();
        let previous = state.last_status.replace(status);
        previous.filter(|old| *old != status)
    }
}

/// Clears an entry's running flag however its execution ends.
struct Running<'a>(&'a AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn set_circuit_block(result: &mut ProbeResult, block: Value) {
    let details = result.details.get_or_insert_with(Details::new);
    details.shift_remove("circuit_breaker");
    details.insert("circuit_breaker".to_owned(), block);
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

/// A finished run: the report and its JSON, serialised once for every reader.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) report: HealthReport,
    pub(crate) body: Bytes,
    /// `data: <body>` framed as one server-sent event.
    pub(crate) event: Bytes,
    pub(crate) taken: Instant,
}

impl Snapshot {
    fn new(report: HealthReport) -> Self {
        let body = Bytes::from(serde_json::to_vec(&report).unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not serialise a health report");
            br#"{"status":"unhealthy","checked_at":null,"timezone":null,"probes":[]}"#.to_vec()
        }));
        let event = crate::http::sse::frame(&body);
        Self {
            report,
            body,
            event,
            taken: Instant::now(),
        }
    }
}

pub(crate) type Flight = Shared<BoxFuture<'static, Arc<Snapshot>>>;

/// What a run is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunMode {
    /// A reader that accepts a report within the cache age.
    Cached,
    /// A reader that wants every probe run now.
    Fresh,
}

/// Clears the in-flight run when the run ends, however it ends.
struct FlightGuard(Arc<Inner>);

impl Drop for FlightGuard {
    fn drop(&mut self) {
        *self.0.flight() = None;
    }
}

impl Inner {
    /// The latest report if it is younger than the cache age, else a fresh
    /// one from the run in flight or a new run.
    ///
    /// While the poll loop runs every probe, its latest report is served as is.
    pub(crate) async fn snapshot(self: &Arc<Self>) -> Arc<Snapshot> {
        if self.is_polling()
            && self.poll_interval().is_some()
            && let Some(snapshot) = self.latest()
        {
            return snapshot;
        }
        if let Some(snapshot) = self.cached() {
            return snapshot;
        }
        self.run_shared(RunMode::Cached).await
    }

    /// The latest report, however old, without running anything.
    pub(crate) fn latest(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.load_full()
    }

    fn cached(&self) -> Option<Arc<Snapshot>> {
        let snapshot = self.latest()?;
        let age = self.config.cache_age;
        (!age.is_zero() && snapshot.taken.elapsed() < age).then_some(snapshot)
    }

    /// Joins the run in flight or starts one.
    pub(crate) async fn run_shared(self: &Arc<Self>, mode: RunMode) -> Arc<Snapshot> {
        let flight = {
            let mut slot = self.flight();
            if mode == RunMode::Cached
                && let Some(snapshot) = self.cached()
            {
                return snapshot;
            }
            match &*slot {
                Some(flight) => flight.clone(),
                None => {
                    let inner = Arc::clone(self);
                    let task = tokio::spawn(async move {
                        let _guard = FlightGuard(Arc::clone(&inner));
                        inner.run_probes().await
                    });
                    let inner = Arc::clone(self);
                    let flight = async move {
                        match task.await {
                            Ok(snapshot) => snapshot,
                            Err(e) => {
                                tracing::error!(error = %e, "probe run failed");
                                inner
                                    .snapshot
                                    .load_full()
                                    .unwrap_or_else(|| Arc::new(Snapshot::new(inner.empty_report())))
                            }
                        }
                    }
                    .boxed()
                    .shared();
                    *slot = Some(flight.clone());
                    flight
                }
            }
        };
        flight.await
    }

    fn flight(&self) -> MutexGuard<'_, Option<Flight>> {
        self.flight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn empty_report(&self) -> HealthReport {
        HealthReport::new(Vec::new(), None, Some(self.config.zone_name.clone()))
    }

    /// Runs every probe concurrently, except one the poll loop is checking
    /// right now, which keeps its latest result; then records and publishes.
    async fn run_probes(self: &Arc<Self>) -> Arc<Snapshot> {
        let entries = self.entries();
        let ttl = self.config.result_ttl;
        let previous = self.latest();
        let results = join_all(entries.iter().map(|entry| {
            let kept = previous
                .as_ref()
                .filter(|_| entry.is_running())
                .and_then(|s| s.report.probe(&entry.name).cloned());
            async move {
                match kept {
                    Some(_) => None,
                    None => Some((Arc::clone(entry), entry.execute(ttl).await)),
                }
            }
        }))
        .await;
        self.record(results.into_iter().flatten().collect()).await
    }

    /// Runs the probes the poll loop found due together, concurrently, and
    /// publishes their results as one report: one event per poll.
    pub(crate) async fn poll_due(self: &Arc<Self>, due: Vec<Arc<Entry>>) {
        let ttl = self.config.result_ttl;
        let results = join_all(due.iter().map(|entry| entry.execute(ttl))).await;
        self.record(due.into_iter().zip(results).collect()).await;
    }

    /// Stores fresh results and their transitions, merges them into the
    /// latest report and publishes it.
    async fn record(self: &Arc<Self>, fresh: Vec<(Arc<Entry>, ProbeResult)>) -> Arc<Snapshot> {
        let checked_at = Timestamp::now_in(&self.config.zone);
        let mut transitions = Vec::new();
        for (entry, result) in &fresh {
            if let Err(e) = self.storage.record(result).await {
                tracing::warn!(probe = %entry.name, error = %e, "could not store a probe result");
            }
            if let Some(old) = entry.observe(result.status) {
                transitions.push(AlertRecord::new(entry.name.clone(), old, result.status, checked_at));
            }
        }
        for alert in &transitions {
            self.transition(alert).await;
        }
        // Merges are serialised so that two finishing probes never drop each
        // other's result; the critical section does no I/O.
        let _publishing = self.publishing.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = self.latest();
        let results = self
            .entries()
            .iter()
            .filter_map(|entry| {
                fresh
                    .iter()
                    .find(|(e, _)| Arc::ptr_eq(e, entry))
                    .map(|(_, r)| r.clone())
                    .or_else(|| previous.as_ref()?.report.probe(&entry.name).cloned())
            })
            .collect();
        // Stamped under the lock, so published reports never go back in time.
        let published_at = Timestamp::now_in(&self.config.zone);
        let report = HealthReport::new(results, Some(published_at), Some(self.config.zone_name.clone()));
        let snapshot = Arc::new(Snapshot::new(report));
        self.snapshot.store(Some(Arc::clone(&snapshot)));
        self.reports.send_replace(Some(Arc::clone(&snapshot)));
        snapshot
    }

    async fn transition(&self, alert: &AlertRecord) {
        if alert.new_status > alert.old_status {
            tracing::warn!(probe = %alert.probe, from = %alert.old_status, to = %alert.new_status, "probe state changed");
        } else {
            tracing::info!(probe = %alert.probe, from = %alert.old_status, to = %alert.new_status, "probe recovered");
        }
        if let Err(e) = self.storage.append_alert(alert).await {
            tracing::warn!(probe = %alert.probe, error = %e, "could not store an alert record");
        }
        for callback in self.callbacks.iter() {
            callback.invoke(alert);
        }
        if self.maintenance.is_active() {
            tracing::info!(probe = %alert.probe, "maintenance: alerters not called");
        } else if self.claim(alert).await {
            self.alerts.dispatch(alert);
        }
    }

    /// Whether this replica sends `alert`: always, unless a shared store
    /// says another replica claimed the same transition within the window.
    async fn claim(&self, alert: &AlertRecord) -> bool {
        let window = self.config.alert_dedup_window;
        if window.is_zero() || !self.alerts.has_alerters() || self.storage.replica().is_none() {
            return true;
        }
        match self.storage.claim_alert(alert, window).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::info!(probe = %alert.probe, "another replica sends the alerts of this transition");
                false
            }
            Err(e) => {
                tracing::warn!(probe = %alert.probe, error = %e, "could not claim an alert: sending it anyway");
                true
            }
        }
    }

    /// Runs the startup probes (timeouts and panic capture, no breaker).
    pub(crate) async fn run_startup_probes(&self) -> HealthReport {
        let ttl = self.config.result_ttl;
        let results = join_all(self.startup.iter().map(|e| e.execute(ttl))).await;
        HealthReport::new(
            results,
            Some(Timestamp::now_in(&self.config.zone)),
            Some(self.config.zone_name.clone()),
        )
    }
}
