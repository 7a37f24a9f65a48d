//! Passive probes: they make no calls of their own and report on the real
//! traffic they observe.
//!
//! - [`PassiveProbe`] times any call you wrap with [`watch`](PassiveProbe::watch)
//!   (async) or [`watch_blocking`](PassiveProbe::watch_blocking) (sync); its
//!   named constructors ([`PassiveProbe::postgres`], [`PassiveProbe::redis`],
//!   [`PassiveProbe::http`], …) are the same probe under the spec's names.
//! - [`RouteProbe`] is a tower layer for one axum route; [`WatchedRouter`]
//!   gives every route of a router its own route probe, and
//!   [`RouteDiscovery`] (from [`HealthRegistry::discover_routes`](crate::HealthRegistry::discover_routes))
//!   does so as one layer over an existing router, registering each route's
//!   probe the first time the route is served.
//! - [`RequestMetrics`] is a layer and probe over the whole app, with
//!   per-route statistics keyed by method and path template.
//! - `WebSocketProbe` (feature `websocket`) counts connections and messages
//!   of an axum WebSocket handler.
//!
//! All of them record into the same lock-free statistics core and share
//! [`StatsConfig`]: the health decision uses the error rate over the recent
//! window once [`min_calls`](StatsConfig::min_calls) calls have been seen, so
//! one early failure cannot condemn a probe, and a fresh outage is not hidden
//! by a long healthy history. The window holds only calls that ended within
//! the [`window_span`](StatsConfig::window_span): with none, a probe reports
//! no recent traffic (healthy, `"traffic": "none"` in its details), so a pod
//! taken out of service after a burst of errors becomes ready again once
//! the burst ages out. Their circuit breaker is off by default: a
//! passive check only reads counters.

/// `Probe` for a passive probe type with a `core()` (its [`Core`]) and an
/// `outcome()` (what a check reports): no circuit breaker, and a check that
/// only reads the counters.
macro_rules! passive_probe {
    ($probe:ty) => {
        impl $crate::probe::Probe for $probe {
            fn name(&self) -> &str {
                &self.core().name
            }

            fn description(&self) -> Option<&str> {
                self.core().description.as_deref()
            }

            fn options(&self) -> $crate::probe::ProbeOptions {
                $crate::passive::passive_options(self.core().stats.config())
            }

            async fn check(&self) -> Result<$crate::probe::Outcome, $crate::probe::ProbeError> {
                Ok(self.outcome())
            }
        }
    };
}

mod discovery;
mod layer;
mod requests;
mod route;
mod stats;
#[cfg(feature = "websocket")]
mod websocket;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;

use futures_util::FutureExt;

use crate::probe::{Outcome, ProbeOptions, panic_message};

pub use discovery::RouteDiscovery;
pub use layer::{PassiveFuture, PassiveService};
pub use requests::RequestMetrics;
pub use route::{RouteProbe, WatchedRouter};
pub use stats::StatsConfig;
use stats::{CALLS, Labels, Started, Stats, start};
#[cfg(feature = "websocket")]
pub use websocket::{ConnectionOutcome, WatchedSocket, WebSocketProbe};

/// Times the calls it wraps and reports their error rate and latency.
///
/// A call is an error when it returns `Err` or panics (the panic is recorded
/// and then resumed, so your code behaves as before). A call whose future is
/// dropped before it finishes is not recorded. The probe is cheap to clone:
/// keep one clone where the calls are made and register another.
///
/// ```
/// use axum_watch::passive::{PassiveProbe, StatsConfig};
/// use axum_watch::{HealthRegistry, Status};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let db = PassiveProbe::postgres().with_config(StatsConfig::default().max_error_rate(0.05));
/// let registry = HealthRegistry::builder().add(db.clone()).build().unwrap();
///
/// // Wrap the calls your code already makes.
/// let row: Result<u32, std::io::Error> = db.watch(async { Ok(42) }).await;
/// assert_eq!(row.unwrap(), 42);
/// let parsed = db.watch_blocking(|| "7".parse::<u8>());
/// assert_eq!(parsed, Ok(7));
///
/// let report = registry.run_all().await;
/// let result = report.probe("postgresql").unwrap();
/// assert_eq!(result.status, Status::Healthy);
/// assert_eq!(result.details.as_ref().unwrap()["call_count"], 2);
/// # }
/// ```
#[derive(Clone)]
pub struct PassiveProbe {
    inner: Arc<Core>,
}

/// What every passive probe holds: its name, description and statistics.
struct Core {
    name: String,
    description: Option<String>,
    stats: Stats,
}

impl Core {
    fn new(name: String, description: Option<String>, config: StatsConfig) -> Self {
        Self {
            name,
            description,
            stats: Stats::new(config),
        }
    }

    /// The `Debug` output of probe type `probe`, with its name and
    /// statistics; the caller adds its own fields.
    fn debug<'a, 'b>(&self, f: &'a mut fmt::Formatter<'b>, probe: &str) -> fmt::DebugStruct<'a, 'b> {
        let mut out = f.debug_struct(probe);
        out.field("name", &self.name).field("stats", &self.stats);
        out
    }

    /// The outcome of the statistics, in the words of `labels`.
    fn outcome(&self, labels: Labels) -> Outcome {
        self.stats.snapshot().outcome(self.stats.config(), labels)
    }
}

impl fmt::Debug for PassiveProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.debug(f, "PassiveProbe").finish()
    }
}

impl PassiveProbe {
    /// A probe named `name` with the default [`StatsConfig`].
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self::build(name.into(), None, StatsConfig::default())
    }

    fn build(name: String, description: Option<String>, config: StatsConfig) -> Self {
        Self {
            inner: Arc::new(Core::new(name, description, config)),
        }
    }

    fn named(name: &str, description: &str) -> Self {
        Self::build(name.to_owned(), Some(description.to_owned()), StatsConfig::default())
    }

    /// Outgoing HTTP calls (name `http`).
    #[must_use]
    pub fn http() -> Self {
        Self::named("http", "outgoing HTTP calls")
    }

    /// Outgoing mail (name `smtp`).
    #[must_use]
    pub fn smtp() -> Self {
        Self::named("smtp", "outgoing SMTP calls")
    }

    /// PostgreSQL queries (name `postgresql`).
    #[must_use]
    pub fn postgres() -> Self {
        Self::named("postgresql", "PostgreSQL queries")
    }

    /// MySQL / MariaDB queries (name `mysql`).
    #[must_use]
    pub fn mysql() -> Self {
        Self::named("mysql", "MySQL queries")
    }

    /// Redis commands (name `redis`).
    #[must_use]
    pub fn redis() -> Self {
        Self::named("redis", "Redis commands")
    }

    /// MongoDB operations (name `mongodb`).
    #[must_use]
    pub fn mongo() -> Self {
        Self::named("mongodb", "MongoDB operations")
    }

    /// Queries through an sqlx pool, of any driver (name `sqlx`).
    #[must_use]
    pub fn sqlx() -> Self {
        Self::named("sqlx", "sqlx queries")
    }

    /// The same probe with another name (only before it is shared: it starts
    /// fresh statistics).
    #[must_use]
    pub fn with_name(self, name: impl Into<String>) -> Self {
        Self::build(name.into(), self.inner.description.clone(), *self.inner.stats.config())
    }

    /// The same probe with other statistics options (only before it is
    /// shared: it starts fresh statistics).
    #[must_use]
    pub fn with_config(self, config: StatsConfig) -> Self {
        Self::build(self.inner.name.clone(), self.inner.description.clone(), config)
    }

    /// Runs `call`, timing it and recording whether it failed.
    ///
    /// # Errors
    ///
    /// Returns exactly what `call` returns.
    pub async fn watch<F, T, E>(&self, call: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        let started = start();
        let result = AssertUnwindSafe(call).catch_unwind().await;
        self.finish(started, result)
    }

    /// Runs the blocking `call`, timing it and recording whether it failed.
    ///
    /// # Errors
    ///
    /// Returns exactly what `call` returns.
    pub fn watch_blocking<F, T, E>(&self, call: F) -> Result<T, E>
    where
        F: FnOnce() -> Result<T, E>,
        E: fmt::Display,
    {
        let started = start();
        let result = catch_unwind(AssertUnwindSafe(call));
        self.finish(started, result)
    }

    fn finish<T, E: fmt::Display>(&self, started: Started, result: std::thread::Result<Result<T, E>>) -> Result<T, E> {
        let stats = &self.inner.stats;
        let call = |error| stats.finish(started, error, None);
        match result {
            Ok(Ok(value)) => {
                call(false);
                Ok(value)
            }
            Ok(Err(error)) => {
                call(true);
                let kind = std::any::type_name::<E>();
                stats.note_error(
                    Some(kind),
                    format_args!("{}: {error}", crate::probe::short_type_name(kind)),
                );
                Err(error)
            }
            Err(panic) => {
                call(true);
                record_panic(stats, panic.as_ref());
                resume_unwind(panic)
            }
        }
    }

    /// Counts a cache hit (`cache_hits` in details).
    pub fn record_cache_hit(&self) {
        self.inner.stats.record_cache_hit();
    }

    /// Counts a cache miss (`cache_misses` in details).
    pub fn record_cache_miss(&self) {
        self.inner.stats.record_cache_miss();
    }
}

/// Notes a panic as an error of type `panic` with its message.
fn record_panic(stats: &Stats, panic: &(dyn Any + Send)) {
    stats.note_error(Some("panic"), format_args!("panic: {}", panic_message(panic)));
}

/// A passive check only reads counters: no timeout pressure, and no circuit
/// breaker (it would freeze the report after traffic recovered). Settings
/// that cannot work are passed on for the registry builder to refuse.
pub(crate) fn passive_options(config: &StatsConfig) -> ProbeOptions {
    ProbeOptions {
        circuit_breaker: Some(false),
        passive: true,
        invalid: config.validate().err(),
        ..ProbeOptions::default()
    }
}

impl PassiveProbe {
    fn core(&self) -> &Core {
        &self.inner
    }

    fn outcome(&self) -> Outcome {
        self.inner.outcome(CALLS)
    }
}

passive_probe!(PassiveProbe);
