//! [`RequestMetrics`]: app-wide request statistics, as a layer and a probe.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use axum::extract::MatchedPath;
use http::{Method, Request, StatusCode};
use serde_json::{Map, Value};
use tower_layer::Layer;

use super::Core;
use super::layer::{PassiveService, Recorder};
use super::route::{record_response, response_call};
use super::stats::{REQUESTS, Started, Stats, StatsConfig, ms};
use crate::model::round;
use crate::probe::Outcome;

/// The template under which requests that matched no route are counted.
const UNMATCHED: &str = "(unmatched)";

/// Request statistics over the whole app: one layer records every request,
/// and the same value is the probe that reports them.
///
/// With [`per_route`](Self::per_route) on (the default) it also keeps
/// statistics per method and matched path template (`GET /users/{id}`, never
/// the raw path; requests that matched no route count under
/// `(unmatched)`, methods outside the standard nine under `OTHER`). At most
/// [`max_routes`](Self::max_routes) keys are tracked (default 100); requests
/// beyond them still count in the totals and in `untracked_requests`, so
/// memory stays bounded whatever the traffic.
///
/// Apply it with [`Router::layer`](axum::Router::layer), which runs it after
/// routing so the matched template is known. The window defaults to 200
/// requests.
///
/// ```
/// use axum::{Router, routing::get};
/// use axum_watch::passive::{RequestMetrics, StatsConfig};
/// use axum_watch::HealthRegistry;
///
/// let metrics = RequestMetrics::new().with_config(StatsConfig::default().window_size(500).max_error_rate(0.05));
/// let registry = HealthRegistry::builder().add(metrics.clone()).build().unwrap();
/// let app: Router = Router::new()
///     .route("/users/{id}", get(|| async { "{}" }))
///     .layer(metrics)
///     .merge(registry.router());
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct RequestMetrics {
    inner: Arc<RequestsState>,
}

struct RequestsState {
    /// The name, and the statistics of every request.
    core: Core,
    min_error_status: u16,
    per_route: bool,
    max_routes: usize,
    routes: ArcSwap<RouteTable>,
    /// Serialises the rare insertion of a new route key.
    insert: Mutex<()>,
    untracked: AtomicU64,
}

/// Route template → statistics per method.
type RouteTable = HashMap<Box<str>, Vec<(Method, Arc<Stats>)>>;

impl fmt::Debug for RequestMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner
            .core
            .debug(f, "RequestMetrics")
            .field("per_route", &self.inner.per_route)
            .field("max_routes", &self.inner.max_routes)
            .finish_non_exhaustive()
    }
}

impl Default for RequestMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestMetrics {
    /// A probe named `request_metrics` with per-route statistics, a window
    /// of 200 requests and the other [`StatsConfig`] defaults.
    #[must_use]
    pub fn new() -> Self {
        Self::build(
            "request_metrics".to_owned(),
            StatsConfig::default().window_size(200),
            500,
            true,
            100,
        )
    }

    fn build(name: String, config: StatsConfig, min_error_status: u16, per_route: bool, max_routes: usize) -> Self {
        Self {
            inner: Arc::new(RequestsState {
                core: Core::new(name, None, config),
                min_error_status,
                per_route,
                max_routes,
                routes: ArcSwap::from_pointee(HashMap::new()),
                insert: Mutex::new(()),
                untracked: AtomicU64::new(0),
            }),
        }
    }

    fn rebuild(self, f: impl FnOnce(&mut (String, StatsConfig, u16, bool, usize))) -> Self {
        let i = &self.inner;
        let mut parts = (
            i.core.name.clone(),
            *i.core.stats.config(),
            i.min_error_status,
            i.per_route,
            i.max_routes,
        );
        f(&mut parts);
        Self::build(parts.0, parts.1, parts.2, parts.3, parts.4)
    }

    /// Another probe name (set these options before the value is shared:
    /// each starts fresh statistics).
    #[must_use]
    pub fn with_name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.rebuild(|p| p.0 = name)
    }

    /// Statistics options, for the totals and for each route.
    #[must_use]
    pub fn with_config(self, config: StatsConfig) -> Self {
        self.rebuild(|p| p.1 = config)
    }

    /// Responses with this status or above count as errors (default 500).
    #[must_use]
    pub fn min_error_status(self, status: u16) -> Self {
        self.rebuild(|p| p.2 = status)
    }

    /// Whether to keep statistics per route (default on).
    #[must_use]
    pub fn per_route(self, enabled: bool) -> Self {
        self.rebuild(|p| p.3 = enabled)
    }

    /// The most route keys tracked (default 100).
    #[must_use]
    pub fn max_routes(self, routes: usize) -> Self {
        self.rebuild(|p| p.4 = routes)
    }

    /// The statistics of `method` on `template`, created on first use while
    /// there is room.
    fn route_stats(&self, method: &Method, template: &str) -> Option<Arc<Stats>> {
        let method = standard_method(method);
        let lookup = |table: &RouteTable| {
            table
                .get(template)
                .and_then(|methods| methods.iter().find(|(m, _)| *m == method).map(|(_, s)| Arc::clone(s)))
        };
        if let Some(stats) = lookup(&self.inner.routes.load()) {
            return Some(stats);
        }
        // A new key: rare, so a copy-on-write insert under a mutex is fine.
        let _guard = self
            .inner
            .insert
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.inner.routes.load_full();
        if let Some(stats) = lookup(&current) {
            return Some(stats);
        }
        let tracked: usize = current.values().map(Vec::len).sum();
        if tracked >= self.inner.max_routes {
            return None;
        }
        let stats = Arc::new(Stats::new(*self.inner.core.stats.config()));
        let mut table = (*current).clone();
        table
            .entry(template.into())
            .or_default()
            .push((method, Arc::clone(&stats)));
        self.inner.routes.store(Arc::new(table));
        Some(stats)
    }

    fn record(
        &self,
        route: Option<&(Method, Option<MatchedPath>)>,
        start: Started,
        status: StatusCode,
        panic: Option<&str>,
    ) {
        // One clock reading for the totals and the route.
        let total = &self.inner.core.stats;
        let call = response_call(total, self.inner.min_error_status, start, status);
        record_response(total, call, panic);
        if let Some((method, matched)) = route {
            let template = matched.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
            match self.route_stats(method, template) {
                Some(stats) => record_response(&stats, call, panic),
                None => {
                    self.inner.untracked.fetch_add(1, Relaxed);
                }
            }
        }
    }

    fn routes_detail(&self) -> Map<String, Value> {
        let table = self.inner.routes.load();
        let mut keys: Vec<(&str, &Method, &Arc<Stats>)> = table
            .iter()
            .flat_map(|(template, methods)| methods.iter().map(move |(m, s)| (&**template, m, s)))
            .collect();
        keys.sort_by(|a, b| (a.0, a.1.as_str()).cmp(&(b.0, b.1.as_str())));
        keys.into_iter()
            .map(|(template, method, stats)| {
                let s = stats.snapshot();
                let mut route = Map::new();
                route.insert("request_count".into(), s.calls.into());
                route.insert("error_count".into(), s.errors.into());
                route.insert("error_rate".into(), round(s.error_rate(), 4).into());
                route.insert("last_status_code".into(), s.last_status.into());
                route.insert("avg_rtt_ms".into(), s.ema_ms.map_or(Value::Null, ms));
                for (key, value) in ["p50_rtt_ms", "p95_rtt_ms", "p99_rtt_ms"]
                    .into_iter()
                    .zip(s.percentiles)
                {
                    route.insert(key.into(), value.map_or(Value::Null, ms));
                }
                (format!("{method} {template}"), route.into())
            })
            .collect()
    }
}

/// The nine standard methods as they are; any other as `OTHER`, so a client
/// cannot create keys at will.
pub(super) fn standard_method(method: &Method) -> Method {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    if STANDARD.contains(method) {
        method.clone()
    } else {
        Method::from_bytes(b"OTHER").unwrap_or(Method::GET)
    }
}

impl RequestMetrics {
    fn core(&self) -> &Core {
        &self.inner.core
    }

    fn outcome(&self) -> Outcome {
        let outcome = self.inner.core.outcome(REQUESTS);
        if !self.inner.per_route {
            return outcome;
        }
        let outcome = outcome.detail("routes", self.routes_detail());
        let untracked = self.inner.untracked.load(Relaxed);
        if untracked > 0 {
            outcome.detail("untracked_requests", untracked)
        } else {
            outcome
        }
    }
}

passive_probe!(RequestMetrics);

impl<S> Layer<S> for RequestMetrics {
    type Service = PassiveService<S, RequestMetrics>;

    fn layer(&self, inner: S) -> Self::Service {
        PassiveService::new(inner, self.clone())
    }
}

impl Recorder for RequestMetrics {
    /// The metrics, and the method and matched template when routes are kept.
    type Call = (RequestMetrics, Option<(Method, Option<MatchedPath>)>);

    fn begin<B>(&self, request: &mut Request<B>) -> Self::Call {
        let route = self.inner.per_route.then(|| {
            (
                request.method().clone(),
                request.extensions().get::<MatchedPath>().cloned(),
            )
        });
        (self.clone(), route)
    }

    fn finish((metrics, route): &Self::Call, start: Started, status: StatusCode, panic: Option<&str>) {
        metrics.record(route.as_ref(), start, status, panic);
    }
}
