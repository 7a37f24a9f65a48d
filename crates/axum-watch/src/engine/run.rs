//! Runs and reports: the single-flight report cache every face reads,
//! recording results and transitions, publishing snapshots, startup probes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::{Engine, Entry, MIN_POLL_INTERVAL};
use crate::model::{AlertRecord, HealthReport, ProbeResult, Status, Timestamp};

/// How many encoded forms a face may cache on one snapshot.
const ENCODINGS: usize = 4;

/// A finished run: the report, when it was taken, and the encoded forms the
/// faces made of it, each made once for every reader.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// Shared with every caller of `run_all` and `report`: no reader copies
    /// the results.
    pub(crate) report: Arc<HealthReport>,
    pub(crate) taken: Instant,
    /// The version of the list of probes the report has a result for every
    /// probe of; 0 when one has none yet.
    generation: u64,
    encoded: [OnceLock<Bytes>; ENCODINGS],
}

/// The results of one run's probes, a slot each, filled by their tasks.
struct Collector {
    slots: Vec<Mutex<Slot>>,
    remaining: AtomicUsize,
    /// Woken once, when the last slot is filled.
    done: Notify,
}

/// One probe's place in a run.
#[allow(clippy::large_enum_variant)] // in place: boxing would cost an allocation per probe
enum Slot {
    /// No result yet; the probe's task, once started.
    Waiting(Option<AbortHandle>),
    Filled(ProbeResult),
    /// Handed to the run: whatever comes later is too late.
    Taken,
}

impl Collector {
    fn new(len: usize) -> Self {
        Self {
            slots: (0..len).map(|_| Mutex::new(Slot::Waiting(None))).collect(),
            remaining: AtomicUsize::new(len),
            done: Notify::new(),
        }
    }

    fn slot(&self, slot: usize) -> MutexGuard<'_, Slot> {
        // A slot's critical section is one assignment: never poisoned midway.
        self.slots[slot].lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_waiting(&self, slot: usize) -> bool {
        matches!(*self.slot(slot), Slot::Waiting(_))
    }

    /// Remembers the task of `slot`, or stops it when the run no longer
    /// waits for it.
    fn started(&self, slot: usize, task: AbortHandle) {
        match &mut *self.slot(slot) {
            Slot::Waiting(handle) => *handle = Some(task),
            Slot::Filled(_) | Slot::Taken => task.abort(),
        }
    }

    /// Fills `slot` with the result `make` gives, made only while the slot
    /// waits for one (so a result is counted in the breaker once, whoever
    /// fills it); `None` when it was filled already, else the slot's task
    /// (once started), which the filler may stop.
    fn fill(&self, slot: usize, make: impl FnOnce() -> ProbeResult) -> Option<Option<AbortHandle>> {
        let task = {
            let mut slot = self.slot(slot);
            let Slot::Waiting(task) = &mut *slot else {
                return None;
            };
            let task = task.take();
            *slot = Slot::Filled(make());
            task
        };
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
        Some(task)
    }

    /// [`fill`](Self::fill) for `entry`'s slot, which stops counting as
    /// running once its result is in.
    fn fill_for(&self, slot: usize, entry: &Entry, make: impl FnOnce() -> ProbeResult) -> Option<Option<AbortHandle>> {
        let filled = self.fill(slot, make);
        if filled.is_some() {
            entry.clear_running();
        }
        filled
    }

    /// The result in `slot`; called once all are in.
    fn take(&self, slot: usize) -> Option<ProbeResult> {
        match std::mem::replace(&mut *self.slot(slot), Slot::Taken) {
            Slot::Filled(result) => Some(result),
            Slot::Waiting(_) | Slot::Taken => None,
        }
    }
}

/// Held by an entry's task until its result is in: a task that is dropped
/// first (its runtime shut down, or the run stopped waiting) still fills
/// its slot, so the run never waits for it forever.
struct Unfilled {
    collector: Arc<Collector>,
    entry: Arc<Entry>,
    slot: usize,
    started: Instant,
}

impl Drop for Unfilled {
    fn drop(&mut self) {
        let (entry, started) = (&self.entry, self.started);
        self.collector.fill_for(self.slot, entry, || {
            entry.unfinished("check was cancelled".to_owned(), started.elapsed())
        });
    }
}

/// A slot for one encoded form of a snapshot; each face owns its slots.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encoding(pub(crate) usize);

impl Snapshot {
    pub(crate) fn new(report: HealthReport) -> Self {
        Self::at(report, Instant::now(), 0)
    }

    fn at(report: HealthReport, taken: Instant, generation: u64) -> Self {
        Self {
            report: Arc::new(report),
            taken,
            generation,
            encoded: Default::default(),
        }
    }

    /// The bytes `encode` makes of this report, made on the first call for
    /// `slot` and shared by every later one.
    pub(crate) fn encoded(&self, slot: Encoding, encode: impl FnOnce(&HealthReport) -> Bytes) -> Bytes {
        self.encoded[slot.0 % ENCODINGS]
            .get_or_init(|| encode(&self.report))
            .clone()
    }
}

/// The run in flight, which every reader that arrives meanwhile joins.
#[derive(Clone)]
pub(crate) struct Flight {
    run: Shared<BoxFuture<'static, Arc<Snapshot>>>,
    mode: RunMode,
}

impl std::fmt::Debug for Flight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flight")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// What a run is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunMode {
    /// A reader that accepts a report within the cache age.
    Cached,
    /// A reader that wants every probe run now.
    Fresh,
    /// Probes were added: run those without a result, keep the others'.
    Missing,
}

/// Clears the in-flight run when the run ends, however it ends.
struct FlightGuard(Arc<Engine>);

impl Drop for FlightGuard {
    fn drop(&mut self) {
        *self.0.flight() = None;
    }
}

impl Engine {
    /// The current report: while the poll loop keeps it fresh, its latest
    /// (at most one interval old); else the cached one while it is younger
    /// than the cache age; else a fresh one from the run in flight or a new run.
    pub(crate) async fn report(self: &Arc<Self>) -> Arc<Snapshot> {
        if let Some(snapshot) = self.polled() {
            if self.is_current(&snapshot) {
                return snapshot;
            }
            return self.run_shared(RunMode::Missing).await;
        }
        self.first_report().await
    }

    /// The report a new stream starts with: at most the cache age old,
    /// whatever the poll loop holds, so the first event is never stale.
    pub(crate) async fn first_report(self: &Arc<Self>) -> Arc<Snapshot> {
        if let Some(snapshot) = self.cached() {
            if self.is_current(&snapshot) {
                return snapshot;
            }
            return self.run_shared(RunMode::Missing).await;
        }
        self.run_shared(RunMode::Cached).await
    }

    /// Runs the probes that have no result yet (added at runtime), joining
    /// a run in flight.
    pub(super) async fn run_missing(self: &Arc<Self>) -> Arc<Snapshot> {
        self.run_shared(RunMode::Missing).await
    }

    /// Whether `snapshot` has a result of every probe registered now.
    fn is_current(&self, snapshot: &Snapshot) -> bool {
        snapshot.generation == self.generation()
    }

    /// The poll loop's latest report, while it runs and the report is no
    /// older than one interval (plus the time a run may take).
    fn polled(&self) -> Option<Arc<Snapshot>> {
        if !self.is_polling() {
            return None;
        }
        let interval = self.poll_interval()?;
        let snapshot = self.latest()?;
        (snapshot.taken.elapsed() <= interval + MIN_POLL_INTERVAL).then_some(snapshot)
    }

    /// Runs every probe now, joining a run already in flight.
    pub(crate) async fn run_fresh(self: &Arc<Self>) -> Arc<Snapshot> {
        self.run_shared(RunMode::Fresh).await
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

    /// Joins the run in flight or starts one. A run that began before
    /// probes were added misses them: then the probes without a result run
    /// (joined in turn). A reader that joined a run of new probes only,
    /// which keeps the others' results as they were, looks again at what
    /// it wanted. At most three runs are awaited.
    async fn run_shared(self: &Arc<Self>, mode: RunMode) -> Arc<Snapshot> {
        let mut mode = mode;
        let mut attempts = 0;
        loop {
            let (flight, joined) = {
                let mut slot = self.flight();
                let ready = match mode {
                    RunMode::Cached => self.cached(),
                    RunMode::Missing => self.latest(),
                    RunMode::Fresh => None,
                };
                if let Some(snapshot) = ready {
                    if self.is_current(&snapshot) {
                        return snapshot;
                    }
                    // Fresh enough, but probes were added since.
                    mode = RunMode::Missing;
                }
                match &*slot {
                    Some(flight) => (flight.run.clone(), flight.mode),
                    None => {
                        let flight = self.start_flight(mode);
                        let run = flight.run.clone();
                        *slot = Some(flight);
                        (run, mode)
                    }
                }
            };
            let snapshot = flight.await;
            attempts += 1;
            if attempts == 3 {
                return snapshot;
            }
            if joined == RunMode::Missing && mode != RunMode::Missing {
                continue;
            }
            if self.is_current(&snapshot) {
                return snapshot;
            }
            mode = RunMode::Missing;
        }
    }

    fn start_flight(self: &Arc<Self>, mode: RunMode) -> Flight {
        let inner = Arc::clone(self);
        // On the runs' own thread when checks have a runtime of their own:
        // the caller's worker only waits.
        let task = self.executor.spawn_run(async move {
            let _guard = FlightGuard(Arc::clone(&inner));
            inner.run_probes(mode).await
        });
        let inner = Arc::clone(self);
        let run = async move {
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
        Flight { run, mode }
    }

    fn flight(&self) -> MutexGuard<'_, Option<Flight>> {
        self.flight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn empty_report(&self) -> HealthReport {
        HealthReport::new(Vec::new(), None, Some(self.config.zone_name.clone()))
    }

    /// Runs every probe concurrently, except one the poll loop is checking
    /// right now, which keeps its latest result; then records and publishes.
    /// For [`RunMode::Missing`], only the probes without a result.
    async fn run_probes(self: &Arc<Self>, mode: RunMode) -> Arc<Snapshot> {
        let previous = self.latest();
        let entries = self.entries();
        let due: Vec<Arc<Entry>> = match (&previous, mode) {
            (Some(previous), RunMode::Missing) => {
                let mut lookup = Lookup::new(&previous.report.probes);
                entries
                    .iter()
                    .filter(|entry| !entry.is_running() && lookup.find(entry).is_none())
                    .cloned()
                    .collect()
            }
            _ => entries
                .iter()
                .filter(|entry| previous.is_none() || !entry.is_running())
                .cloned()
                .collect(),
        };
        if mode == RunMode::Missing
            && due.is_empty()
            && let Some(previous) = previous
        {
            return previous;
        }
        let fresh = self.execute_all(due).await;
        self.record(fresh, mode == RunMode::Missing).await
    }

    /// Runs the probes the poll loop found due together, concurrently, and
    /// publishes their results as one report: one event per poll.
    pub(crate) async fn poll_due(self: &Arc<Self>, due: Vec<Arc<Entry>>) {
        let fresh = self.execute_all(due).await;
        self.record(fresh, false).await;
    }

    /// Executes every entry of `due` in a task of its own on the check
    /// runtime (breaker and thresholds included) and returns the results in
    /// the order of `due`.
    ///
    /// The tasks fill a slot each and the last one wakes the run once, so a
    /// run costs its thread one wake-up however many probes it has, and the
    /// per-probe work is spread over the check threads. The run enforces
    /// every timeout itself, one timer for each distinct deadline rather
    /// than one per probe: at a probe's deadline it fills the probe's slot
    /// with a timeout and stops its task. That holds for a task whose check
    /// blocks its thread too, which could not time itself out.
    async fn execute_all(self: &Arc<Self>, due: Vec<Arc<Entry>>) -> Vec<(Arc<Entry>, ProbeResult)> {
        if due.is_empty() {
            return Vec::new();
        }
        for entry in &due {
            entry.mark_running();
        }
        self.executor.remember_caller();
        let ttl = self.config.result_ttl;
        let collector = Arc::new(Collector::new(due.len()));
        let started = Instant::now();
        // One task starts the others from a check thread, where spawning is
        // a push on that thread's own queue: no lock and no wake-up per probe.
        {
            let engine = Arc::clone(self);
            let collector = Arc::clone(&collector);
            let due = due.clone();
            self.executor.spawn(false, async move {
                for (slot, entry) in due.into_iter().enumerate() {
                    if !collector.is_waiting(slot) {
                        continue;
                    }
                    let on_caller = entry.on_caller();
                    let unfilled = Unfilled {
                        collector: Arc::clone(&collector),
                        entry,
                        slot,
                        started,
                    };
                    let execution = async move {
                        let ran = unfilled.entry.execute(ttl).await;
                        let entry = &unfilled.entry;
                        unfilled.collector.fill_for(unfilled.slot, entry, || entry.finish(ran));
                    };
                    let task = if on_caller {
                        engine.executor.spawn(true, execution)
                    } else {
                        tokio::spawn(execution)
                    };
                    collector.started(slot, task.abort_handle());
                }
            });
        }
        // When each entry's time is up, soonest first.
        let mut deadlines: Vec<(Instant, usize)> = due
            .iter()
            .enumerate()
            .filter_map(|(slot, entry)| Some((started + entry.timeout?, slot)))
            .collect();
        deadlines.sort_unstable_by_key(|&(at, _)| at);
        let mut deadlines = deadlines.into_iter().peekable();
        loop {
            let finished = collector.done.notified();
            if collector.remaining.load(Ordering::Acquire) == 0 {
                break;
            }
            let Some(&(at, _)) = deadlines.peek() else {
                finished.await;
                continue;
            };
            tokio::select! {
                () = finished => {}
                () = tokio::time::sleep_until(at) => {
                    let now = Instant::now();
                    while let Some((_, slot)) = deadlines.next_if(|&(at, _)| at <= now) {
                        let entry = &due[slot];
                        let limit = entry.timeout.unwrap_or_default();
                        let timed_out = || entry.unfinished(format!("timed out after {limit:?}"), now - started);
                        // A check that blocks its thread keeps its task until
                        // it returns: the next run reports it still running.
                        if let Some(Some(task)) = collector.fill_for(slot, entry, timed_out) {
                            task.abort();
                        }
                    }
                }
            }
        }
        due.into_iter()
            .enumerate()
            .filter_map(|(slot, entry)| Some((entry, collector.take(slot)?)))
            .collect()
    }

    /// Stores fresh results and their transitions, merges them into the
    /// latest report and publishes it; with `keep_taken`, the snapshot is as
    /// old as the latest (only new probes ran).
    async fn record(self: &Arc<Self>, mut fresh: Vec<(Arc<Entry>, ProbeResult)>, keep_taken: bool) -> Arc<Snapshot> {
        // A probe removed while it ran is neither stored nor alerted on.
        fresh.retain(|(entry, _)| !entry.is_retired());
        let checked_at = Timestamp::now_in(&self.config.zone);
        for (_, result) in &mut fresh {
            // A circuit-open copy keeps the time of the result it copies.
            result.checked_at.get_or_insert(checked_at);
        }
        let results: Vec<&ProbeResult> = fresh.iter().map(|(_, result)| result).collect();
        if let Err(e) = self.storage.record_all(&results).await {
            tracing::warn!(results = results.len(), error = %e, "could not store the run's results");
        }
        let mut transitions = Vec::new();
        for (entry, result) in &fresh {
            match entry.observe(result.status, checked_at, self.created_at) {
                Some(change) => {
                    transitions.push(self.alert_record(entry, result, change.old, change.since, checked_at));
                }
                None if result.status == Status::Unhealthy && self.sends_alerts() => {
                    let since = entry.status_since().unwrap_or(self.created_at);
                    self.alerts.remind(&entry.name, || {
                        self.alert_record(entry, result, result.status, since, checked_at)
                    });
                }
                None => {}
            }
        }
        for alert in &transitions {
            self.transition(alert).await;
        }
        self.publish(fresh, keep_taken)
    }

    /// The latest report again, without the probes removed since: at once,
    /// so that no reader or stream shows a removed probe.
    pub(super) fn republish(&self) {
        if self.latest().is_some() {
            self.publish(Vec::new(), true);
        }
    }

    /// Merges `fresh` into the latest report, by the current list of
    /// probes, and publishes it.
    fn publish(&self, fresh: Vec<(Arc<Entry>, ProbeResult)>, keep_taken: bool) -> Arc<Snapshot> {
        // Merges are serialised so that two finishing probes never drop each
        // other's result; the critical section does no I/O.
        let _publishing = self.publishing.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = self.latest();
        let list = self.probes.load_full();
        let entries = &list.entries;
        let mut slots: Vec<Option<ProbeResult>> = vec![None; entries.len()];
        for (entry, result) in fresh {
            // The entry's index is a hint: the list may have changed since
            // the run began, and a removed probe has no place any more.
            let at = entry.index();
            let place = if entries.get(at).is_some_and(|e| Arc::ptr_eq(e, &entry)) {
                Some(at)
            } else {
                entries.iter().position(|e| Arc::ptr_eq(e, &entry))
            };
            if let Some(slot) = place.and_then(|at| slots.get_mut(at)) {
                *slot = Some(result);
            }
        }
        let mut lookup = previous.as_deref().map(|p| Lookup::new(&p.report.probes));
        let results: Vec<ProbeResult> = entries
            .iter()
            .zip(slots)
            .filter_map(|(entry, fresh)| fresh.or_else(|| lookup.as_mut()?.find(entry).cloned()))
            .collect();
        let generation = if results.len() == entries.len() {
            list.generation
        } else {
            0
        };
        // Stamped under the lock, so published reports never go back in time.
        let published_at = Timestamp::now_in(&self.config.zone);
        let taken = match &previous {
            Some(previous) if keep_taken => previous.taken,
            _ => Instant::now(),
        };
        let report = HealthReport::new(results, Some(published_at), Some(self.config.zone_name.clone()));
        let snapshot = Arc::new(Snapshot::at(report, taken, generation));
        self.snapshot.store(Some(Arc::clone(&snapshot)));
        self.reports.send_replace(Some(Arc::clone(&snapshot)));
        snapshot
    }

    /// The record of `entry` going from `old` (held since `since`) to
    /// `result`'s status at `at`, with everything on-call needs.
    fn alert_record(
        &self,
        entry: &Entry,
        result: &ProbeResult,
        old: Status,
        since: Timestamp,
        at: Timestamp,
    ) -> AlertRecord {
        let identity = &self.config.identity;
        let mut alert = AlertRecord::new(entry.name.clone(), old, result.status, at);
        alert.id = self.alert_ids.next(at);
        alert.replica = Some(identity.replica.clone());
        alert.service = Some(identity.service.clone());
        alert.critical = entry.critical;
        alert.tags.clone_from(&entry.tags);
        alert.error = result.error.as_deref().map(|e| crate::redact(e).into_owned());
        alert.since = Some(since);
        let lasted = at.instant().duration_since(since.instant());
        alert.duration_ms = Some(u64::try_from(lasted.as_millis()).unwrap_or_default());
        alert.dashboard_url.clone_from(&identity.dashboard_url);
        alert
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
        if !self.sends_alerts() {
            tracing::info!(probe = %alert.probe, "maintenance or draining: alerters not called");
        } else if self.claim(alert).await {
            self.alerts.dispatch(alert);
        }
    }

    /// Whether alerters are called at all now: not in maintenance, not while
    /// draining (both still record).
    fn sends_alerts(&self) -> bool {
        !self.maintenance.is_active() && self.readiness_gate() != Some(super::Gate::Draining)
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
    pub(super) async fn run_startup_probes(self: &Arc<Self>) -> HealthReport {
        let fresh = self.execute_all(self.startup.to_vec()).await;
        let now = Timestamp::now_in(&self.config.zone);
        let results = fresh
            .into_iter()
            .map(|(_, mut result)| {
                result.checked_at = Some(now);
                result
            })
            .collect();
        HealthReport::new(results, Some(now), Some(self.config.zone_name.clone()))
    }
}

/// Finds a probe's result in a report: at the probe's own position first
/// (reports list probes in the list's order), else by name, through a map
/// made on the first miss so that a merge stays linear when the list
/// shifted.
struct Lookup<'a> {
    probes: &'a [ProbeResult],
    by_name: Option<std::collections::HashMap<&'a str, usize>>,
}

impl<'a> Lookup<'a> {
    fn new(probes: &'a [ProbeResult]) -> Self {
        Self { probes, by_name: None }
    }

    fn find(&mut self, entry: &Entry) -> Option<&'a ProbeResult> {
        let probes = self.probes;
        if let Some(p) = probes.get(entry.index())
            && p.name == entry.name
        {
            return Some(p);
        }
        let by_name = self
            .by_name
            .get_or_insert_with(|| probes.iter().enumerate().map(|(i, p)| (p.name.as_str(), i)).collect());
        by_name.get(entry.name.as_str()).map(|&i| &probes[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_filled_once_and_a_late_result_is_never_made() {
        let collector = Collector::new(2);
        assert_eq!(
            collector
                .fill(0, || ProbeResult::new("a", Status::Unhealthy))
                .map(|t| t.is_none()),
            Some(true)
        );
        // The run's timeout and the task's own result race: the second
        // filler's result is not even made (so nothing counts it twice).
        assert!(
            collector
                .fill(0, || panic!("a filled slot made a second result"))
                .is_none()
        );
        assert_eq!(collector.remaining.load(Ordering::Acquire), 1);
        collector.fill(1, || ProbeResult::new("b", Status::Healthy));
        assert_eq!(collector.remaining.load(Ordering::Acquire), 0);
        assert_eq!(collector.take(0).map(|r| r.status), Some(Status::Unhealthy));
        assert!(collector.take(0).is_none(), "taken once");
        collector.fill(1, || panic!("a taken slot made a result"));
    }

    #[tokio::test]
    async fn the_filler_gets_the_task_of_the_slot_to_stop() {
        let collector = Collector::new(1);
        let task = tokio::spawn(std::future::pending::<()>());
        collector.started(0, task.abort_handle());
        let handle = collector.fill(0, || ProbeResult::new("a", Status::Unhealthy));
        handle.flatten().expect("the waiting slot's task").abort();
        assert!(task.await.unwrap_err().is_cancelled());
    }
}
