//! One registered probe: its resolved options, and one execution of it with
//! panic capture, circuit breaker and stamping (the run that awaits it
//! enforces its timeout).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;
use tracing::Instrument;

use super::circuit::{Circuit, CircuitPolicy};
use super::threshold::{Hysteresis, ThresholdPolicy};
use crate::model::{CircuitSettings, Details, ProbeInfo, ProbeKind, ProbeResult, Status, Timestamp};
use crate::probe::{ProbeHandle, panic_message};
use crate::redact::Redactor;

/// The error of a probe whose circuit is open and that has no recent result.
pub(crate) const SUSPENDED: &str = "circuit breaker open — probe temporarily suspended";

/// A registered probe with its resolved options and its state.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The probe's position in the current list of probes: a hint that
    /// readers check (the list changes when probes are added or removed at
    /// runtime), rewritten when an earlier probe is removed.
    index: AtomicUsize,
    /// Set when the probe is removed: a result of it that a run still
    /// brings in is dropped.
    retired: AtomicBool,
    probe: ProbeHandle,
    pub(crate) name: String,
    pub(crate) critical: bool,
    pub(crate) description: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) poll_interval: Option<Duration>,
    circuit: Option<CircuitPolicy>,
    thresholds: ThresholdPolicy,
    /// The registry's redaction rules, applied to every result as it is made.
    redactor: Arc<Redactor>,
    /// Whether the check runs on the application's runtime.
    on_caller: bool,
    /// Whether the probe reads traffic rather than calling out.
    passive: bool,
    state: Mutex<EntryState>,
    /// Set while a run or poll has this probe, from before its task starts
    /// until its result is in (or its time is up).
    running: AtomicBool,
    /// Since when the probe's check has been executing: set when its check
    /// starts, cleared when the check's future ends (returns, panics or is
    /// dropped). A check that blocks its thread outlives its timeout; while
    /// it does, no second copy is started.
    executing: Mutex<Option<Instant>>,
}

#[derive(Debug, Default)]
struct EntryState {
    circuit: Circuit,
    hysteresis: Hysteresis,
    last: Option<(Instant, ProbeResult)>,
    /// The reported status and when it began.
    last_status: Option<(Status, Timestamp)>,
    last_run: Option<Instant>,
}

/// A change of an entry's reported status.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Change {
    pub(crate) old: Status,
    /// When the old status began.
    pub(crate) since: Timestamp,
}

impl Entry {
    #[allow(clippy::too_many_arguments)] // the resolved options, each its own
    pub(crate) fn new(
        index: usize,
        probe: ProbeHandle,
        name: String,
        critical: bool,
        tags: Vec<String>,
        timeout: Option<Duration>,
        poll_interval: Option<Duration>,
        circuit: Option<CircuitPolicy>,
        thresholds: ThresholdPolicy,
        redactor: Arc<Redactor>,
    ) -> Self {
        let description = probe.0.description().map(str::to_owned);
        let options = probe.0.options();
        let (on_caller, passive) = (options.on_caller_runtime, options.passive);
        Self {
            index: AtomicUsize::new(index),
            retired: AtomicBool::new(false),
            probe,
            name,
            critical,
            description,
            tags,
            timeout,
            poll_interval,
            circuit,
            thresholds,
            redactor,
            on_caller,
            passive,
            state: Mutex::new(EntryState::default()),
            running: AtomicBool::new(false),
            executing: Mutex::new(None),
        }
    }

    /// The probe's position in the list of probes, as last set.
    pub(crate) fn index(&self) -> usize {
        self.index.load(Ordering::Relaxed)
    }

    pub(super) fn set_index(&self, index: usize) {
        self.index.store(index, Ordering::Relaxed);
    }

    /// Marks the probe removed.
    pub(super) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    /// Whether the probe was removed.
    pub(super) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
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

    /// Runs the check once with panic capture; never fails. While an
    /// earlier execution is still on its thread, reports that instead of
    /// starting another. The run that awaits it enforces the timeout.
    async fn call(&self) -> ProbeResult {
        let started = Instant::now();
        let stuck = {
            let mut executing = lock(&self.executing);
            match *executing {
                Some(since) => Some(since),
                None => {
                    *executing = Some(started);
                    None
                }
            }
        };
        if let Some(since) = stuck {
            let running = Duration::from_millis(u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX));
            let error = format!("still running after {running:?}: the previous check has not returned");
            tracing::warn!(probe = %self.name, ?running, "check still running: no second copy started");
            return self.result(Status::Unhealthy, 0.0, Some(error), None);
        }
        let _executing = Executing(&self.executing);
        let span = tracing::debug_span!("probe", probe = %self.name);
        // Made inside the guard: a check that panics before its first await
        // (or while making its future) is a panic too.
        let checked = AssertUnwindSafe(async { self.probe.0.check_boxed().await })
            .catch_unwind()
            .instrument(span)
            .await;
        let elapsed = started.elapsed();
        let (status, error, details, latency) = match checked {
            Ok(Ok(outcome)) => outcome.into_parts(),
            Ok(Err(error)) => (Status::Unhealthy, Some(error.to_string()), Details::new(), None),
            Err(panic) => (
                Status::Unhealthy,
                Some(format!("panicked: {}", panic_message(panic.as_ref()))),
                Details::new(),
                None,
            ),
        };
        // The one place a result's text is redacted: everything after it —
        // the log line below, the store, every endpoint, stream, alert and
        // `Debug` — sees the redacted result, made once.
        let error = error.map(|e| self.redactor.redact_owned(e));
        let mut details = details;
        self.redactor.redact_details(&mut details);
        let latency_ms = crate::model::round(latency.unwrap_or(elapsed).as_secs_f64() * 1000.0, 2);
        tracing::debug!(probe = %self.name, %status, latency_ms, error = error.as_deref(), "probe ran");
        // A probe that said nothing more has no details at all.
        self.result(status, latency_ms, error, (!details.is_empty()).then_some(details))
    }

    /// Executes this probe once for a run: a real call, or, while its
    /// circuit is open, its last result (or a "suspended" one). What it
    /// returns counts once [`finish`](Self::finish)ed, which the run does
    /// for the result it keeps.
    pub(super) async fn execute(&self, result_ttl: Duration) -> Ran {
        self.state().last_run = Some(Instant::now());
        if let Some(copy) = self.suspended(result_ttl) {
            return Ran::Copy(copy);
        }
        Ran::Checked(self.call().await)
    }

    /// The result of an execution, counted in the breaker and thresholds
    /// when it is a real one.
    pub(super) fn finish(&self, ran: Ran) -> ProbeResult {
        match ran {
            Ran::Copy(copy) => copy,
            Ran::Checked(result) => self.settle(result),
        }
    }

    /// Whether the check must run on the application's runtime.
    pub(super) fn on_caller(&self) -> bool {
        self.on_caller
    }

    /// While the circuit is open: a copy of the result that opened it (or a
    /// "suspended" one once that is older than the result TTL).
    fn suspended(&self, result_ttl: Duration) -> Option<ProbeResult> {
        self.circuit?;
        let now = Instant::now();
        let state = self.state();
        if !state.circuit.is_open(now) {
            return None;
        }
        let circuit = state.circuit.state(now);
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
        copy.circuit = Some(circuit);
        Some(copy)
    }

    /// The result of a check that never reported back: the run gave up
    /// waiting for it (`error` says why), counted like any failure.
    pub(super) fn unfinished(&self, error: String, waited: Duration) -> ProbeResult {
        let latency_ms = crate::model::round(waited.as_secs_f64() * 1000.0, 2);
        tracing::warn!(probe = %self.name, error = %error, "check did not report back");
        self.settle(self.result(Status::Unhealthy, latency_ms, Some(error), None))
    }

    /// Counts a real result in the circuit breaker and the thresholds.
    fn settle(&self, mut result: ProbeResult) -> ProbeResult {
        let now = Instant::now();
        let mut state = self.state();
        if let Some(policy) = self.circuit {
            state.circuit.record(result.is_passing(), policy, now);
            result.circuit = Some(state.circuit.state(now));
        }
        self.report_as(&mut state, &mut result);
        if let Some(policy) = self.circuit
            && state.circuit.is_open(now)
        {
            tracing::warn!(
                probe = %self.name,
                consecutive_failures = state.circuit.consecutive_failures(),
                cooldown = ?policy.cooldown,
                "circuit breaker opened: probe suspended"
            );
            // Only an open circuit reads the last result, and the one it
            // reads is the result that opened it: no copy is kept otherwise.
            state.last = Some((now, result.clone()));
        }
        result
    }

    /// Gives a real result the status its thresholds let it report (the
    /// breaker has counted the observed one already).
    fn report_as(&self, state: &mut EntryState, result: &mut ProbeResult) {
        let (reported, pending) = state.hysteresis.apply(result.status, self.thresholds);
        if let Some(pending) = pending {
            tracing::debug!(
                probe = %self.name,
                observed = %pending.observed,
                consecutive = pending.consecutive,
                needed = pending.needed,
                "status change pending its threshold"
            );
        }
        result.status = reported;
        result.pending = pending;
    }

    /// This probe's resolved configuration; `registry_interval` is the
    /// registry's poll interval now, which a probe without its own follows.
    pub(crate) fn info(&self, registry_interval: Option<Duration>) -> ProbeInfo {
        ProbeInfo {
            name: self.name.clone(),
            kind: if self.passive {
                ProbeKind::Passive
            } else {
                ProbeKind::Active
            },
            critical: self.critical,
            description: self.description.clone(),
            tags: self.tags.clone(),
            timeout: self.timeout,
            poll_interval: self.poll_interval.or(registry_interval),
            circuit_breaker: self.circuit.map(|c| CircuitSettings::new(c.threshold, c.cooldown)),
            failure_threshold: self.thresholds.failures,
            success_threshold: self.thresholds.successes,
        }
    }

    /// When this probe is next due in the poll loop: never when it has no
    /// interval of its own and the registry polls on demand only.
    pub(crate) fn next_due(&self, registry_interval: Option<Duration>) -> Option<Instant> {
        let interval = self.poll_interval.or(registry_interval)?;
        Some(self.state().last_run.map_or_else(Instant::now, |at| at + interval))
    }

    /// Flags the probe as taken by a run or poll, before its task starts.
    pub(crate) fn mark_running(&self) {
        self.running.store(true, Ordering::Release);
    }

    /// Clears the mark once the probe's result is in.
    pub(super) fn clear_running(&self) {
        self.running.store(false, Ordering::Release);
    }

    /// Whether a run or poll of this probe is under way (until its result
    /// is in). A check that blocks its thread past its timeout is not: its
    /// run reported it timed out, and the next run executes the probe
    /// again, which reports it still running.
    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Remembers `status`, observed `at`, and reports a change from the
    /// previous one. The first status seeds the state: healthy or degraded
    /// is no change; unhealthy is a change from healthy since `started`, so
    /// a service that starts with a dependency down is alerted on.
    pub(super) fn observe(&self, status: Status, at: Timestamp, started: Timestamp) -> Option<Change> {
        let mut state = self.state();
        match state.last_status {
            Some((old, _)) if old == status => None,
            Some((old, since)) => {
                state.last_status = Some((status, at));
                Some(Change { old, since })
            }
            None => {
                state.last_status = Some((status, at));
                (status == Status::Unhealthy).then_some(Change {
                    old: Status::Healthy,
                    since: started,
                })
            }
        }
    }

    /// Since when the reported status has held.
    pub(super) fn status_since(&self) -> Option<Timestamp> {
        self.state().last_status.map(|(_, since)| since)
    }
}

/// What one execution produced, before the breaker and thresholds count it.
pub(super) enum Ran {
    /// The circuit is open: a copy of the last result, not counted again.
    Copy(ProbeResult),
    /// A check's own result, or that an earlier check is still running.
    Checked(ProbeResult),
}

/// Clears an entry's executing mark when the check's future ends, however
/// it ends.
struct Executing<'a>(&'a Mutex<Option<Instant>>);

impl Drop for Executing<'_> {
    fn drop(&mut self) {
        *lock(self.0) = None;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections are single assignments: a poisoned lock still
    // holds a consistent value.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
