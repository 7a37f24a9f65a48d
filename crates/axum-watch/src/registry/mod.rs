//! The [`HealthRegistry`]: the probes, their configuration and state, and the
//! public API over them.

mod builder;
mod group;
mod runtime;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use builder::{BuildError, BuildErrorKind, HealthRegistryBuilder};
pub use group::ProbeGroup;
pub(crate) use group::Registration;
pub use runtime::{AddProbeError, AddProbeErrorKind};

use crate::engine::{Owner, Scheduling};
use crate::http::HttpConfig;
use crate::model::HealthReport;
use crate::model::{Lifecycle, MaintenanceStatus};

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
    engine: Arc<Owner>,
    http: Arc<HttpConfig>,
    drain: Drain,
    /// What probes added at runtime are resolved with.
    defaults: Arc<builder::Defaults>,
}

/// How a registry drains on shutdown.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Drain {
    /// How long `/ready` fails before the streams end.
    pub(crate) delay: Duration,
    /// How long queued alerts and store writes may take to go out.
    pub(crate) timeout: Duration,
}

impl Default for Drain {
    fn default() -> Self {
        Self {
            delay: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
        }
    }
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
    ///
    /// The report is the one every endpoint and stream reads, shared rather
    /// than copied (at 10,000 probes a copy took longer than the run's own
    /// bookkeeping); `Arc::unwrap_or_clone` gives an owned one to change.
    pub async fn run_all(&self) -> Arc<HealthReport> {
        Arc::clone(&self.engine.run_fresh().await.report)
    }

    /// The current report: the cached one while it is younger than the cache
    /// age, else a fresh run shared with concurrent callers. Shared, like
    /// [`run_all`](Self::run_all)'s.
    pub async fn report(&self) -> Arc<HealthReport> {
        Arc::clone(&self.engine.report().await.report)
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

    /// Every registered probe's configuration, in registration order, as
    /// `GET probes` lists it; runs nothing. See [`ProbeInfo`](crate::model::ProbeInfo).
    #[must_use]
    pub fn probes(&self) -> Vec<crate::model::ProbeInfo> {
        self.engine.probe_infos().0
    }

    /// The latest stored result of every probe that is still within the
    /// result TTL, as the storage backend holds them.
    ///
    /// # Errors
    ///
    /// The storage backend's error, when it cannot be read.
    pub async fn latest_results(&self) -> Result<Vec<crate::ProbeResult>, crate::storage::StorageError> {
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
    /// # use axum_watch::{HealthRegistry, model::Timestamp};
    /// let registry = HealthRegistry::builder().build().unwrap();
    /// let end = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2);
    /// registry.set_maintenance(Some(Timestamp::with_offset(end, jiff::tz::Offset::UTC)));
    /// assert!(registry.in_maintenance());
    /// registry.clear_maintenance();
    /// assert!(!registry.in_maintenance());
    /// ```
    pub fn set_maintenance(&self, until: Option<crate::model::Timestamp>) {
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
    /// | endpoint | answers |
    /// | --- | --- |
    /// | `GET live` | always 200 `{"status":"ok"}`; never runs probes |
    /// | `GET ready` | 200 healthy or degraded, 503 unhealthy; 503 `{"status":"starting"}` in the grace period, 200 `{"status":"maintenance"}` in maintenance |
    /// | `GET ready/<name>`, `GET status/<name>` | one probe's result, the code from its status |
    /// | `GET status` | the full report; 200 healthy, 207 otherwise |
    /// | `GET probes` | every probe's configuration, running none |
    /// | `GET history` | `{"probes":{name:[results, oldest first]}}` |
    /// | `GET alerts` | `{"alerts":[records, oldest first]}` |
    /// | `GET metrics` | Prometheus text 0.0.4 (OpenMetrics when `Accept` asks for it) |
    /// | `GET maintenance` | `{"active":bool,"until":timestamp\|null}`; `POST` `{"minutes":N}` or `{"until":"…"}` starts it, `DELETE` ends it |
    /// | `GET status/stream`, `GET ready/stream` | server-sent events: the report (or what `ready` says) at once, then on every poll |
    /// | `GET dashboard` | the live HTML dashboard (unless turned off or replaced) |
    /// | `GET startup` | 503 `starting` until [`set_started`](crate::HealthRegistry::set_started), then 200 `started` if every startup probe passes, else 503 with their report |
    ///
    /// `ready`, `status` and both streams take `?tag=a,b` (any tag matches),
    /// `?probe=a,b` and `?exclude=a,b`, combined by AND; `live` and `ready` take
    /// `?verbose` (the Kubernetes API server's text); `ready` and `status`
    /// answer `application/health+json` when `Accept` asks for it. The codes
    /// follow [`ready_code`](HealthRegistryBuilder::ready_code) and
    /// [`status_code`](HealthRegistryBuilder::status_code). With a storage
    /// several replicas share, `status?scope=fleet` answers with the latest report
    /// of every replica. A trailing slash reaches the same endpoint. `HEAD`
    /// works wherever `GET` does; other methods get 405 with an `Allow` header.
    ///
    /// Authentication, when configured, guards exactly these routes (a
    /// `route_layer`): the application's own routes and its fallback are never
    /// touched, whatever the merge order.
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
        self.engine.start_background();
        crate::http::router(&self.engine, &self.http)
    }

    /// The OpenAPI 3.1 description of the endpoints [`router`](Self::router)
    /// serves, as this registry is configured: every path under the prefix
    /// with its methods (`GET` and `HEAD`; `POST` and `DELETE` on
    /// `maintenance`), parameters, request body, and each code and body it
    /// can answer — the mapped status codes, `application/health+json`,
    /// `?verbose` text, the streams, the metrics text, 401 or 403 with the
    /// authentication and the endpoints it leaves open, the dashboard when
    /// it is served.
    ///
    /// Ready to merge into the application's own document: each operation
    /// carries its own security, the components are named `AxumWatch…` and
    /// the operations `axumWatch…`, tagged `health`.
    ///
    /// ```
    /// use axum::{Json, Router, routing::get};
    /// use axum_watch::HealthRegistry;
    /// use utoipa::openapi::{InfoBuilder, OpenApiBuilder};
    ///
    /// let registry = HealthRegistry::builder().prefix("/ops/health").build().unwrap();
    ///
    /// // The application's own document (from `#[derive(OpenApi)]`, or
    /// // utoipa-axum's `OpenApiRouter::split_for_parts`), with the health
    /// // endpoints merged in.
    /// let api = OpenApiBuilder::new()
    ///     .info(InfoBuilder::new().title("checkout").version("2.4.1").build())
    ///     .build()
    ///     .merge_from(registry.openapi());
    /// assert!(api.paths.paths.contains_key("/ops/health/ready"));
    ///
    /// let app: Router = Router::new()
    ///     .route("/openapi.json", get(Json(api)))
    ///     .merge(registry.router());
    /// # drop(app);
    /// ```
    #[cfg(feature = "openapi")]
    #[cfg_attr(docsrs, doc(cfg(feature = "openapi")))]
    #[must_use]
    pub fn openapi(&self) -> utoipa::openapi::OpenApi {
        crate::http::openapi::document(&self.engine, &self.http)
    }

    /// The standard gRPC health service (`grpc.health.v1.Health`: `Check`,
    /// `Watch`, `List`) over the same probes and runs as
    /// [`router`](Self::router), for tonic's server. Service `""` answers
    /// what `/ready` would, a probe's name that probe, `tag:<tag>` what
    /// `/ready?tag=<tag>` would; see [`crate::grpc`] for the naming and the
    /// lifecycle.
    ///
    /// ```no_run
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use axum_watch::{probe, HealthRegistry, Outcome};
    ///
    /// let registry = HealthRegistry::builder()
    ///     .add(probe::from_fn("db", || async { Ok(Outcome::healthy()) }))
    ///     .build()?;
    /// let http = tokio::net::TcpListener::bind("0.0.0.0:8000").await?;
    /// let app: axum::Router = axum::Router::new().merge(registry.router());
    /// let grpc = tonic::transport::Server::builder()
    ///     .add_service(registry.grpc_service())
    ///     .serve("0.0.0.0:50051".parse()?);
    /// let (http, grpc) = tokio::join!(axum::serve(http, app).into_future(), grpc);
    /// http?;
    /// grpc?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "grpc")]
    #[must_use]
    pub fn grpc_service(&self) -> crate::grpc::HealthService {
        self.engine.start_background();
        crate::grpc::HealthService::new(&self.engine)
    }

    /// Where the service is in its life: starting, serving, draining or stopped.
    #[must_use]
    pub fn lifecycle(&self) -> Lifecycle {
        self.engine.lifecycle()
    }

    /// The scheduling mode in force (never [`Scheduling::Auto`]: what it chose).
    #[must_use]
    pub fn scheduling(&self) -> Scheduling {
        self.engine.scheduling()
    }

    /// Drains the service for shutdown, then returns:
    ///
    /// 1. `/ready` (and `ready/stream`, and gRPC readiness) answers 503
    ///    `{"status":"draining"}` at once — no alert, no state-change
    ///    callback, no probe failure in metrics; `/live` stays 200;
    /// 2. after the [drain delay](HealthRegistryBuilder::drain_delay), so
    ///    that endpoints and load balancers notice, every stream ends
    ///    cleanly and the poll loop stops;
    /// 3. queued alerts and the store's buffered writes go out, within the
    ///    [drain timeout](HealthRegistryBuilder::drain_timeout).
    ///
    /// Calling it again while a drain is under way only waits again.
    pub async fn drain(&self) {
        self.engine.begin_draining();
        tokio::time::sleep(self.drain.delay).await;
        self.engine.stop(self.drain.timeout).await;
    }

    /// A future for [`axum::serve()`]'s `with_graceful_shutdown`: waits for
    /// `signal`, then [drains](Self::drain). With
    /// [`shutdown_signal`](crate::shutdown_signal) it answers SIGTERM (what
    /// Kubernetes sends) and Ctrl-C.
    ///
    /// ```no_run
    /// # #[tokio::main]
    /// # async fn main() -> std::io::Result<()> {
    /// use axum_watch::HealthRegistry;
    ///
    /// let registry = HealthRegistry::builder().build().unwrap();
    /// let app: axum::Router = axum::Router::new().merge(registry.router());
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:8000").await?;
    /// axum::serve(listener, app)
    ///     .with_graceful_shutdown(registry.drain_on(axum_watch::shutdown_signal()))
    ///     .await
    /// # }
    /// ```
    pub fn drain_on<F>(&self, signal: F) -> impl Future<Output = ()> + Send + 'static
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let registry = self.clone();
        async move {
            signal.await;
            tracing::info!("shutdown signal: draining");
            registry.drain().await;
        }
    }

    /// A collector to register in an application's `prometheus-client`
    /// registry: the same families `/metrics` serves, from the latest report.
    #[cfg(feature = "prometheus-client")]
    #[must_use]
    pub fn metrics_collector(&self) -> crate::MetricsCollector {
        crate::MetricsCollector::new(Arc::clone(&self.engine))
    }

    /// Registers the health figures as observable instruments on an
    /// OpenTelemetry `meter` (feature `opentelemetry`): gauges and counters
    /// whose callbacks read the latest report and the process counters when
    /// the SDK collects, never running a probe. Keep the returned handle:
    /// the callbacks report while it lives. See [`OpenTelemetryInstruments`](crate::OpenTelemetryInstruments)
    /// for the instruments and their names.
    ///
    /// ```
    /// # fn main() {
    /// let health = axum_watch::HealthRegistry::builder().build().unwrap();
    /// let meter = opentelemetry::global::meter("my-service");
    /// let _instruments = health.register_opentelemetry(&meter);
    /// # }
    /// ```
    #[cfg(feature = "opentelemetry")]
    #[must_use = "the instruments report only while the handle lives"]
    pub fn register_opentelemetry(&self, meter: &opentelemetry::metrics::Meter) -> crate::OpenTelemetryInstruments {
        crate::exporter::register_opentelemetry(Arc::clone(&self.engine), meter)
    }

    /// A reporter that writes the health figures into the `metrics` crate's
    /// recorder (feature `metrics`): spawn its [`run`](crate::MetricsReporter::run)
    /// to write them on every report and lifecycle change, or call
    /// [`record`](crate::MetricsReporter::record) to write them once. See
    /// [`MetricsReporter`](crate::MetricsReporter) for the names.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let health = axum_watch::HealthRegistry::builder().build().unwrap();
    /// tokio::spawn(health.metrics_reporter().run());
    /// # }
    /// ```
    #[cfg(feature = "metrics")]
    #[must_use]
    pub fn metrics_reporter(&self) -> crate::MetricsReporter {
        crate::MetricsReporter::new(Arc::clone(&self.engine))
    }
}

/// Resolves on the first SIGTERM (what Kubernetes sends before it stops a
/// pod) or Ctrl-C; for [`HealthRegistry::drain_on`].
///
/// Where a signal handler cannot be installed, that signal is never
/// awaited (logged), so the other still works.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
