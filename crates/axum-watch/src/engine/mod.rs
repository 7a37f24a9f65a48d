//! The engine: probes, runs, the circuit breaker, transitions, snapshots,
//! the poll loop, maintenance and startup — everything that decides, and
//! nothing that speaks a transport.
//!
//! The engine imports nothing of axum or the HTTP layer (a test in
//! `tests/layering.rs` fails otherwise). It offers a narrow read API —
//! [`Engine::report`], [`Engine::subscribe`], [`Engine::history`],
//! [`Engine::alerts`], [`Engine::fleet`], [`Engine::readiness_gate`] (with
//! [`Engine::gate_deadline`] and [`Engine::maintenance_changes`] for those
//! who watch it), maintenance and startup — that the faces (HTTP endpoints,
//! gRPC health, the metrics collector) read and format. Encoded forms of a report (JSON, server-sent
//! events, metrics text) are cached on its [`Snapshot`] by the face that
//! encodes them, once per snapshot.

mod callbacks;
mod changes;
mod circuit;
mod entry;
mod executor;
mod maintenance;
mod poll;
mod run;
mod threshold;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use jiff::tz::TimeZone;
use tokio::time::Instant;

pub(crate) use callbacks::Callback;
pub(crate) use changes::Refusal;
pub(crate) use circuit::CircuitPolicy;
pub(crate) use entry::Entry;
pub use executor::CheckRuntime;
pub(crate) use poll::Subscription;
pub(crate) use run::{Encoding, Snapshot};
pub(crate) use threshold::ThresholdPolicy;

/// Shutdown's phase as streams watch it.
pub(crate) type Phases = tokio::sync::watch::Receiver<Phase>;

use crate::alert::Dispatcher;
use crate::model::{AlertRecord, HealthReport, Lifecycle, MaintenanceStatus, ProbeInfo, ProbeResult, Timestamp};
use crate::storage::{DynStorage, History, ReplicaReport, WriteBufferStats};
use poll::Poller;
use run::Flight;

/// The shortest poll interval; shorter ones are raised to it.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The one place a poll interval is clamped: zero means "on demand only",
/// anything under [`MIN_POLL_INTERVAL`] is raised to it.
pub(crate) fn clamp_interval(interval: Option<Duration>) -> Option<Duration> {
    interval.filter(|d| !d.is_zero()).map(|d| d.max(MIN_POLL_INTERVAL))
}

/// The engine's resolved options.
#[derive(Debug)]
pub(crate) struct EngineConfig {
    pub(crate) poll_interval: Option<Duration>,
    pub(crate) cache_age: Duration,
    pub(crate) grace_period: Duration,
    pub(crate) result_ttl: Duration,
    /// How long one replica's claim on a transition's alerts holds.
    pub(crate) alert_dedup_window: Duration,
    pub(crate) zone: TimeZone,
    pub(crate) zone_name: String,
    pub(crate) check_runtime: CheckRuntime,
    /// Resolved: never `Auto`.
    pub(crate) scheduling: Scheduling,
    /// Who alert records say they come from.
    pub(crate) identity: Identity,
    /// How many probes added at runtime may be registered at once.
    pub(crate) max_runtime_probes: usize,
}

/// What every alert record carries about where it comes from.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) service: String,
    pub(crate) replica: String,
    pub(crate) dashboard_url: Option<String>,
}

/// Why readiness is decided before any probe runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Shutting down: not ready, whatever the probes say.
    Draining,
    /// Maintenance mode: ready, without running probes.
    Maintenance,
    /// Within the grace period: not ready yet.
    Starting,
}

/// When probes run, whoever asks; see
/// [`HealthRegistryBuilder::scheduling`](crate::HealthRegistryBuilder::scheduling).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheduling {
    /// [`Background`](Self::Background) when anything listens for
    /// transitions without a viewer — an alerter, a state-change callback
    /// or a storage shared by replicas — else [`WhileWatched`](Self::WhileWatched).
    #[default]
    Auto,
    /// Every probe runs on its interval from the start, watched or not:
    /// a dependency that fails at night is noticed, recorded and alerted on
    /// within one interval.
    Background,
    /// The poll loop runs while a stream subscriber is connected; otherwise
    /// requests run the probes on demand (sharing runs, within the cache age).
    WhileWatched,
    /// Probes run only when a request asks; streams send one event and end.
    OnRequest,
}

impl Scheduling {
    /// The mode as `/metrics` names it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Background => "background",
            Self::WhileWatched => "while_watched",
            Self::OnRequest => "on_request",
        }
    }
}

/// The phase a shutdown moves through; the rest of [`Lifecycle`] is derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    Draining,
    Stopped,
}

/// The engine as the application holds it: every registry clone, router,
/// gRPC service and exporter shares one. When the last lets go, polling
/// stops and the engine's own runtimes with it, dropping any run and check
/// still in flight: those hold the engine themselves and would otherwise go
/// on until their timeouts.
#[derive(Debug)]
pub(crate) struct Owner(Arc<Engine>);

impl Owner {
    pub(crate) fn new(engine: Arc<Engine>) -> Arc<Self> {
        Arc::new(Self(engine))
    }
}

impl std::ops::Deref for Owner {
    type Target = Arc<Engine>;

    fn deref(&self) -> &Arc<Engine> {
        &self.0
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.stop_polling();
        self.0.executor.shutdown();
    }
}

/// Shared state behind every clone of a registry and every face over it.
#[derive(Debug)]
pub(crate) struct Engine {
    config: EngineConfig,
    /// The registered probes: swapped whole when one is added or removed,
    /// so a run goes on with the list it started with.
    probes: ArcSwap<changes::ProbeList>,
    /// Serialises changes of the list, with what they check.
    changes: Mutex<changes::Changes>,
    /// Probes refused at runtime, by reason.
    refused: changes::Refused,
    /// Wakes the poll loop when the list changed.
    wake: Arc<tokio::sync::Notify>,
    startup: Arc<[Arc<Entry>]>,
    storage: Arc<dyn DynStorage>,
    callbacks: Arc<[Callback]>,
    snapshot: ArcSwapOption<Snapshot>,
    /// Every published report, for stream subscribers.
    reports: tokio::sync::watch::Sender<Option<Arc<Snapshot>>>,
    interval: tokio::sync::watch::Sender<Option<Duration>>,
    poller: Mutex<Poller>,
    /// Whether the poll loop runs: `poller.task.is_some()`, readable without a lock.
    polling: AtomicBool,
    flight: Mutex<Option<Flight>>,
    publishing: Mutex<()>,
    maintenance: maintenance::Maintenance,
    alerts: Dispatcher,
    executor: executor::Executor,
    phase: tokio::sync::watch::Sender<Phase>,
    started: AtomicBool,
    created: Instant,
    /// When the engine was made, in its zone: the start of every probe's
    /// first state.
    created_at: Timestamp,
    alert_ids: AlertIds,
}

/// Makes alert ids: the time in milliseconds, a sequence number and a
/// random salt per engine, in hexadecimal (26 characters), unique across
/// replicas and restarts.
#[derive(Debug)]
struct AlertIds {
    next: std::sync::atomic::AtomicU64,
    salt: u32,
}

impl AlertIds {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        #[allow(clippy::cast_possible_truncation)] // the low half is random enough
        let salt = hasher.finish() as u32;
        Self {
            next: std::sync::atomic::AtomicU64::new(0),
            salt,
        }
    }

    fn next(&self, at: Timestamp) -> String {
        let seq = self.next.fetch_add(1, Ordering::Relaxed) & 0xff_ffff;
        let millis = u64::try_from(at.instant().as_millisecond()).unwrap_or_default() & 0xffff_ffff_ffff;
        format!("{millis:012x}{seq:06x}{:08x}", self.salt)
    }
}

impl Engine {
    pub(crate) fn new(
        config: EngineConfig,
        entries: Vec<Arc<Entry>>,
        startup: Vec<Arc<Entry>>,
        storage: Arc<dyn DynStorage>,
        callbacks: Vec<Callback>,
        alerts: Dispatcher,
    ) -> Self {
        let interval = tokio::sync::watch::Sender::new(config.poll_interval);
        let executor = executor::Executor::new(config.check_runtime);
        let created_at = Timestamp::now_in(&config.zone);
        let changes = changes::Changes::new(&entries);
        Self {
            executor,
            phase: tokio::sync::watch::Sender::new(Phase::Running),
            config,
            probes: ArcSwap::from_pointee(changes::ProbeList::new(entries)),
            changes: Mutex::new(changes),
            refused: changes::Refused::default(),
            wake: Arc::default(),
            startup: startup.into(),
            storage,
            callbacks: callbacks.into(),
            snapshot: ArcSwapOption::empty(),
            reports: tokio::sync::watch::Sender::new(None),
            interval,
            poller: Mutex::new(Poller::default()),
            polling: AtomicBool::new(false),
            publishing: Mutex::new(()),
            maintenance: maintenance::Maintenance::default(),
            alerts,
            flight: Mutex::new(None),
            started: AtomicBool::new(false),
            created: Instant::now(),
            created_at,
            alert_ids: AlertIds::new(),
        }
    }

    /// The registered probes now, in registration order.
    pub(crate) fn entries(&self) -> Arc<[Arc<Entry>]> {
        Arc::clone(&self.probes.load().entries)
    }

    /// The names of the registered probes, in registration order.
    pub(crate) fn probe_names(&self) -> Vec<String> {
        self.entries().iter().map(|e| e.name.clone()).collect()
    }

    /// Every registered probe's configuration, in registration order, and
    /// the startup probes' after them; nothing runs.
    pub(crate) fn probe_infos(&self) -> (Vec<ProbeInfo>, Vec<ProbeInfo>) {
        let interval = self.poll_interval();
        (
            self.entries().iter().map(|e| e.info(interval)).collect(),
            // Startup probes run on request only, without a breaker.
            self.startup.iter().map(|e| e.info(None)).collect(),
        )
    }

    /// Whether a probe is called `name`.
    pub(crate) fn has_probe(&self, name: &str) -> bool {
        self.entries().iter().any(|e| e.name == name)
    }

    /// Whether any probe carries `tag`.
    pub(crate) fn has_tag(&self, tag: &str) -> bool {
        self.entries().iter().any(|e| e.tags.iter().any(|t| t == tag))
    }

    /// The zone timestamps are shown in, and its IANA name.
    pub(crate) fn zone(&self) -> (&TimeZone, &str) {
        (&self.config.zone, &self.config.zone_name)
    }

    /// The one place that decides whether readiness is answered before any
    /// probe runs: draining wins over maintenance, which wins over the grace
    /// period.
    pub(crate) fn readiness_gate(&self) -> Option<Gate> {
        if *self.phase.borrow() != Phase::Running {
            Some(Gate::Draining)
        } else if self.maintenance.is_active() {
            Some(Gate::Maintenance)
        } else if self.in_grace_period() {
            Some(Gate::Starting)
        } else {
            None
        }
    }

    /// Marks every change of maintenance mode from now on: with
    /// [`phases`](Self::phases) and [`gate_deadline`](Self::gate_deadline),
    /// what a watcher of readiness waits on besides new reports.
    // Read by the watching faces only (gRPC `Watch`).
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    pub(crate) fn maintenance_changes(&self) -> tokio::sync::watch::Receiver<()> {
        self.maintenance.changes()
    }

    /// The next instant at which [`readiness_gate`](Self::readiness_gate)
    /// changes by itself: the end of the grace period or of a maintenance
    /// window, whichever comes first.
    // Read by the watching faces only (gRPC `Watch`).
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    pub(crate) fn gate_deadline(&self) -> Option<Instant> {
        let grace = self.in_grace_period().then(|| self.created + self.config.grace_period);
        // A window that ended is closed lazily; its end is no longer ahead.
        let window = self.maintenance.deadline().filter(|end| *end > Instant::now());
        match (grace, window) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Where the service is in its life.
    pub(crate) fn lifecycle(&self) -> Lifecycle {
        match *self.phase.borrow() {
            Phase::Stopped => Lifecycle::Stopped,
            Phase::Draining => Lifecycle::Draining,
            Phase::Running if self.in_grace_period() => Lifecycle::Starting,
            Phase::Running => Lifecycle::Serving,
        }
    }

    /// The scheduling mode in force.
    pub(crate) fn scheduling(&self) -> Scheduling {
        self.config.scheduling
    }

    /// Shutdown's phase, for streams to end on.
    pub(crate) fn phases(&self) -> Phases {
        self.phase.subscribe()
    }

    /// Readiness fails from now on; nothing is recorded or alerted for it.
    pub(crate) fn begin_draining(&self) {
        let changed = self.phase.send_if_modified(|phase| {
            let was = *phase == Phase::Running;
            if was {
                *phase = Phase::Draining;
            }
            was
        });
        if changed {
            tracing::info!("draining: /ready now answers 503");
        }
    }

    /// Streams end and probes stop running; then waits, at most `deadline`,
    /// for queued alerts and buffered store writes to go out.
    pub(crate) async fn stop(&self, deadline: Duration) {
        self.begin_draining();
        self.phase.send_replace(Phase::Stopped);
        self.stop_polling();
        let started = Instant::now();
        let alerts = self.alerts.flush(deadline).await;
        let left = deadline.saturating_sub(started.elapsed());
        if let Err(e) = self.storage.flush(left).await {
            tracing::warn!(error = %e, "store writes were not all flushed before shutdown");
        }
        if alerts > 0 {
            tracing::warn!(alerts, "alerts still unsent at shutdown");
        }
        tracing::info!("drained: streams ended, probes stopped, queues flushed");
    }

    fn in_grace_period(&self) -> bool {
        !self.config.grace_period.is_zero() && self.created.elapsed() < self.config.grace_period
    }

    pub(crate) fn set_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    pub(crate) fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// The startup probes' report, or `None` before startup was marked complete.
    pub(crate) async fn startup_report(self: &Arc<Self>) -> Option<HealthReport> {
        if !self.is_started() {
            return None;
        }
        Some(self.run_startup_probes().await)
    }

    pub(crate) fn maintenance(&self) -> MaintenanceStatus {
        self.maintenance.status()
    }

    pub(crate) fn in_maintenance(&self) -> bool {
        self.maintenance.is_active()
    }

    pub(crate) fn set_maintenance(&self, until: Option<Timestamp>) {
        self.maintenance.set(until);
    }

    pub(crate) fn clear_maintenance(&self) {
        self.maintenance.clear();
    }

    /// Every probe's kept results, oldest first; none when the store cannot
    /// be read (logged).
    pub(crate) async fn history(&self) -> History {
        self.storage.history().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read history; answering with none");
            Vec::new()
        })
    }

    /// The alert log, oldest first; empty when the store cannot be read (logged).
    pub(crate) async fn alerts(&self) -> Vec<AlertRecord> {
        self.storage.alerts().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read the alert log; answering with none");
            Vec::new()
        })
    }

    /// The latest stored result of every probe still within the result TTL.
    pub(crate) async fn latest_results(&self) -> Result<Vec<ProbeResult>, crate::storage::StorageError> {
        self.storage.latest().await
    }

    /// Every replica's latest report from a shared store.
    pub(crate) async fn fleet(&self) -> Result<Vec<ReplicaReport>, crate::storage::StorageError> {
        self.storage.fleet().await
    }

    /// This replica's id, when the store is shared by several.
    pub(crate) fn replica(&self) -> Option<&str> {
        self.storage.replica()
    }

    /// The shared store's write buffer, for metrics.
    pub(crate) fn write_buffer(&self) -> WriteBufferStats {
        self.storage.write_buffer()
    }

    /// Alerts pushed out of a full alerter queue.
    pub(crate) fn alerts_dropped(&self) -> u64 {
        self.alerts.dropped()
    }

    /// What each alerter did with its alerts.
    pub(crate) fn deliveries(&self) -> Vec<crate::alert::AlerterDeliveries> {
        self.alerts.deliveries()
    }
}
