//! The [`HealthRegistry`]: the probes, their configuration and state, and the
//! public API over them.

mod builder;
mod callbacks;
mod circuit;
pub(crate) mod engine;
mod group;
mod maintenance;
mod poll;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use jiff::tz::TimeZone;
use tokio::time::Instant;

pub use builder::{BuildError, HealthRegistryBuilder, MIN_POLL_INTERVAL};
pub use group::ProbeGroup;
pub use maintenance::MaintenanceStatus;

use callbacks::Callback;
use engine::{Entry, Flight, Snapshot};
use poll::Poller;
pub(crate) use poll::Subscription;

use crate::model::HealthReport;
use crate::storage::DynStorage;

/// The health system of one service: its probes, their results, history and
/// alerts, and the `/health/*` endpoints over them.
///
/// Cheap to clone; clones share everything.
///
/// ```
/// use std::time::Duration;
/// use axum_watch::{probe, HealthRegistry, Outcome, Status};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let registry = HealthRegistry::builder()
///     .add(probe::from_fn("db", || async { Ok(Outcome::healthy()) }))
///     .add_non_critical(probe::from_fn("cache", || async { Ok(Outcome::unhealthy("connection refused")) }))
///     .grace_period(Duration::from_secs(5))
///     .build()
///     .unwrap();
///
/// let report = registry.run_all().await;
/// assert_eq!(report.status, Status::Healthy); // the failing probe is not critical
/// assert_eq!(report.probe("cache").unwrap().error.as_deref(), Some("connection refused"));
///
/// // Serve it: merge the endpoints into the application's router.
/// let app: axum::Router = axum::Router::new().merge(registry.router());
/// # drop(app);
/// # }
/// ```
#[derive(Clone)]
pub struct HealthRegistry {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for HealthRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthRegistry")
            .field("prefix", &self.inner.config.prefix)
            .field("probes", &self.probe_names())
            .finish_non_exhaustive()
    }
}

/// Resolved registry-wide options.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) prefix: String,
    poll_interval: Option<Duration>,
    pub(crate) cache_age: Duration,
    pub(crate) grace_period: Duration,
    pub(crate) result_ttl: Duration,
    /// How long one replica's claim on a transition's alerts holds.
    pub(crate) alert_dedup_window: Duration,
    pub(crate) zone: TimeZone,
    pub(crate) zone_name: String,
    pub(crate) dashboard: crate::http::dashboard::Dashboard,
    pub(crate) allow_unauthenticated_maintenance: bool,
    pub(crate) auth: Option<Arc<crate::http::auth::Auth>>,
}

/// Shared state behind every clone of a registry and its router.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: Config,
    entries: Arc<[Arc<Entry>]>,
    startup: Arc<[Arc<Entry>]>,
    pub(crate) storage: Arc<dyn DynStorage>,
    callbacks: Arc<[Callback]>,
    snapshot: ArcSwapOption<Snapshot>,
    /// Every published report, for stream subscribers.
    pub(crate) reports: tokio::sync::watch::Sender<Option<Arc<Snapshot>>>,
    interval: tokio::sync::watch::Sender<Option<Duration>>,
    poller: Mutex<Poller>,
    /// Whether the poll loop runs: `poller.task.is_some()`, readable without a lock.
    polling: AtomicBool,
    flight: Mutex<Option<Flight>>,
    publishing: Mutex<()>,
    pub(crate) maintenance: maintenance::Maintenance,
    pub(crate) alerts: crate::alert::Dispatcher,
    started: AtomicBool,
    created: Instant,
}

impl Inner {
    fn new(
        config: Config,
        entries: Vec<Arc<Entry>>,
        startup: Vec<Arc<Entry>>,
        storage: Arc<dyn DynStorage>,
        callbacks: Vec<Callback>,
        alerts: crate::alert::Dispatcher,
    ) -> Self {
        let interval = tokio::sync::watch::Sender::new(config.poll_interval);
        Self {
            config,
            entries: entries.into(),
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
        }
    }

    pub(crate) fn entries(&self) -> Arc<[Arc<Entry>]> {
        Arc::clone(&self.entries)
    }

    pub(crate) fn in_grace_period(&self) -> bool {
        !self.config.grace_period.is_zero() && self.created.elapsed() < self.config.grace_period
    }

    pub(crate) fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    pub(crate) fn has_tag(&self, tag: &str) -> bool {
        self.entries.iter().any(|e| e.tags.iter().any(|t| t == tag))
    }
}

impl HealthRegistry {
    /// A builder with every default; see [`HealthRegistryBuilder`].
    pub fn builder() -> HealthRegistryBuilder {
        HealthRegistryBuilder::default()
    }

    /// Runs every probe now (joining a run already in flight) and returns
    /// the report. Checks never fail: errors, panics and timeouts become
    /// unhealthy results.
    pub async fn run_all(&self) -> HealthReport {
        self.inner.run_shared(engine::RunMode::Fresh).await.report.clone()
    }

    /// The current report: the cached one while it is younger than the cache
    /// age, else a fresh run shared with concurrent callers.
    pub async fn report(&self) -> HealthReport {
        self.inner.snapshot().await.report.clone()
    }

    /// Marks application startup as complete: `/startup` then answers from
    /// the startup probes instead of 503 `starting`.
    pub fn set_started(&self) {
        self.inner.started.store(true, Ordering::Release);
    }

    /// Whether [`set_started`](Self::set_started) was called.
    #[must_use]
    pub fn is_started(&self) -> bool {
        self.inner.is_started()
    }

    /// The names of the registered probes, in registration order.
    #[must_use]
    pub fn probe_names(&self) -> Vec<String> {
        self.inner.entries.iter().map(|e| e.name.clone()).collect()
    }

    /// The latest stored result of every probe that is still within the
    /// result TTL, as the storage backend holds them.
    ///
    /// # Errors
    ///
    /// The storage backend's error, when it cannot be read.
    pub async fn latest_results(&self) -> Result<Vec<crate::ProbeResult>, crate::StorageError> {
        self.inner.storage.latest().await
    }

    /// The path prefix of the endpoints.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.inner.config.prefix
    }

    /// The poll interval after clamping; `None` when probes run on demand only.
    #[must_use]
    pub fn poll_interval(&self) -> Option<Duration> {
        self.inner.poll_interval()
    }

    /// Starts maintenance mode, ending by itself at `until` (or never, with
    /// `None`; see [`clear_maintenance`](Self::clear_maintenance)). While it
    /// is on, `/ready` answers 200 `{"status":"maintenance"}` and alerters send
    /// nothing; transitions are still recorded. A new call replaces the window.
    ///
    /// ```
    /// # use axum_watch::{HealthRegistry, Timestamp};
    /// let registry = HealthRegistry::builder().build().unwrap();
    /// let end = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2);
    /// registry.set_maintenance(Some(Timestamp::with_offset(end, jiff::tz::Offset::UTC)));
    /// assert!(registry.in_maintenance());
    /// registry.clear_maintenance();
    /// assert!(!registry.in_maintenance());
    /// ```
    pub fn set_maintenance(&self, until: Option<crate::Timestamp>) {
        self.inner.maintenance.set(until);
    }

    /// Ends maintenance mode now.
    pub fn clear_maintenance(&self) {
        self.inner.maintenance.clear();
    }

    /// Whether maintenance mode is on (a window whose end passed is off).
    #[must_use]
    pub fn in_maintenance(&self) -> bool {
        self.inner.maintenance.is_active()
    }

    /// Maintenance mode as `GET maintenance` shows it.
    #[must_use]
    pub fn maintenance(&self) -> MaintenanceStatus {
        self.inner.maintenance.status()
    }

    /// How many stream clients are connected right now.
    #[must_use]
    pub fn stream_subscribers(&self) -> usize {
        self.inner.subscribers()
    }

    /// Changes the poll interval at runtime (under 1 s is raised to 1 s;
    /// `None` or zero polls on demand only). Connected stream subscribers
    /// get the new schedule at once.
    pub fn set_poll_interval(&self, interval: impl Into<Option<Duration>>) {
        let interval = interval
            .into()
            .filter(|d| !d.is_zero())
            .map(|d| d.max(MIN_POLL_INTERVAL));
        self.inner.set_poll_interval(interval);
    }
}
