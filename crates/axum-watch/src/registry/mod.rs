//! The [`HealthRegistry`]: the probes, their configuration and state, and the
//! public API over them.

mod builder;
mod group;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use builder::{BuildError, BuildErrorKind, HealthRegistryBuilder};
pub use group::ProbeGroup;

use crate::engine::{Engine, MaintenanceStatus};
use crate::http::HttpConfig;
use crate::model::HealthReport;

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
    engine: Arc<Engine>,
    http: Arc<HttpConfig>,
}

impl fmt::Debug for HealthRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthRegistry")
            .field("prefix", &self.http.prefix)
            .field("probes", &self.probe_names())
            .finish_non_exhaustive()
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
        self.engine.run_fresh().await.report.clone()
    }

    /// The current report: the cached one while it is younger than the cache
    /// age, else a fresh run shared with concurrent callers.
    pub async fn report(&self) -> HealthReport {
        self.engine.report().await.report.clone()
    }

    /// Marks application startup as complete: `/startup` then answers from
    /// the startup probes instead of 503 `starting`.
    pub fn set_started(&self) {
        self.engine.set_started();
    }

    /// Whether [`set_started`](Self::set_started) was called.
    #[must_use]
    pub fn is_started(&self) -> bool {
        self.engine.is_started()
    }

    /// The names of the registered probes, in registration order.
    #[must_use]
    pub fn probe_names(&self) -> Vec<String> {
        self.engine.probe_names()
    }

    /// The latest stored result of every probe that is still within the
    /// result TTL, as the storage backend holds them.
    ///
    /// # Errors
    ///
    /// The storage backend's error, when it cannot be read.
    pub async fn latest_results(&self) -> Result<Vec<crate::ProbeResult>, crate::StorageError> {
        self.engine.latest_results().await
    }

    /// The path prefix of the endpoints.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.http.prefix
    }

    /// The poll interval after clamping; `None` when probes run on demand only.
    #[must_use]
    pub fn poll_interval(&self) -> Option<Duration> {
        self.engine.poll_interval()
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
        self.engine.set_maintenance(until);
    }

    /// Ends maintenance mode now.
    pub fn clear_maintenance(&self) {
        self.engine.clear_maintenance();
    }

    /// Whether maintenance mode is on (a window whose end passed is off).
    #[must_use]
    pub fn in_maintenance(&self) -> bool {
        self.engine.in_maintenance()
    }

    /// Maintenance mode as `GET maintenance` shows it.
    #[must_use]
    pub fn maintenance(&self) -> MaintenanceStatus {
        self.engine.maintenance()
    }

    /// How many stream clients are connected right now.
    #[must_use]
    pub fn stream_subscribers(&self) -> usize {
        self.engine.subscribers()
    }

    /// Changes the poll interval at runtime (under 1 s is raised to 1 s;
    /// `None` or zero polls on demand only). Connected stream subscribers
    /// get the new schedule at once.
    pub fn set_poll_interval(&self, interval: impl Into<Option<Duration>>) {
        self.engine.set_poll_interval(interval.into());
    }

    /// The health endpoints under the registry's prefix, ready to
    /// [`merge`](axum::Router::merge) into the application's router.
    ///
    #[doc = include_str!("../docs/endpoints.md")]
    ///
    /// ```
    /// use axum_watch::HealthRegistry;
    ///
    /// let registry = HealthRegistry::builder().prefix("/ops/health").build().unwrap();
    /// let app: axum::Router = axum::Router::new()
    ///     .route("/", axum::routing::get(|| async { "hello" }))
    ///     .merge(registry.router());
    /// # drop(app);
    /// ```
    pub fn router<S>(&self) -> axum::Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        crate::http::router(&self.engine, &self.http)
    }

    /// A collector to register in an application's `prometheus-client`
    /// registry: the same families `/metrics` serves, from the latest report.
    #[cfg(feature = "prometheus-client")]
    #[must_use]
    pub fn metrics_collector(&self) -> crate::MetricsCollector {
        crate::MetricsCollector::new(Arc::clone(&self.engine))
    }
}
