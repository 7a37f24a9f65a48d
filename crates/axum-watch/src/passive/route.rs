//! [`RouteProbe`]: a tower layer that watches one axum route, and
//! [`WatchedRouter`], which gives every route of a router its own.

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::routing::MethodRouter;
use http::{Request, StatusCode};
use tower_layer::Layer;

use super::Core;
use super::layer::{Claim, PassiveService, Recorder};
use super::stats::{Call, REQUESTS, Started, Stats, StatsConfig};
use crate::probe::Outcome;
use crate::registry::ProbeGroup;

/// Watches the requests of one axum route: handler time, status codes,
/// throughput and errors.
///
/// Apply it as a layer on the handler (`get(handler.layer(probe.clone()))`,
/// the cheapest: axum boxes the route once), on the route
/// (`get(handler).layer(probe.clone())`) or with `route_layer` on a router,
/// and register a clone. A response with a status
/// of at least [`min_error_status`](Self::min_error_status) (default 500) is an
/// error; a panicking handler is recorded as a 500 and the panic resumed
/// (pair with tower-http's `CatchPanicLayer` to answer such requests with a
/// 500). A request whose client went away before the handler finished is not
/// recorded.
///
/// ```
/// use axum::{Router, handler::Handler, routing::get};
/// use axum_watch::passive::{RouteProbe, StatsConfig};
/// use axum_watch::HealthRegistry;
///
/// let users = RouteProbe::new("users-api")
///     .with_config(StatsConfig::default().max_error_rate(0.05))
///     .min_error_status(500);
/// let list_users = || async { "[]" };
/// let app: Router = Router::new().route("/users", get(list_users.layer(users.clone())));
/// let registry = HealthRegistry::builder().add(users).build().unwrap();
/// let app = app.merge(registry.router());
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct RouteProbe {
    inner: Arc<RouteState>,
}

struct RouteState {
    core: Core,
    min_error_status: u16,
}

impl fmt::Debug for RouteProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner
            .core
            .debug(f, "RouteProbe")
            .field("min_error_status", &self.inner.min_error_status)
            .finish()
    }
}

impl RouteProbe {
    /// A route probe named `name` with the default [`StatsConfig`].
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self::build(name.into(), None, 500, StatsConfig::default())
    }

    pub(super) fn build(name: String, description: Option<String>, min_error_status: u16, config: StatsConfig) -> Self {
        Self {
            inner: Arc::new(RouteState {
                core: Core::new(name, description, config),
                min_error_status,
            }),
        }
    }

    fn rebuild(self, f: impl FnOnce(&mut (String, Option<String>, u16, StatsConfig))) -> Self {
        let RouteState { core, min_error_status } = &*self.inner;
        let mut parts = (
            core.name.clone(),
            core.description.clone(),
            *min_error_status,
            *core.stats.config(),
        );
        f(&mut parts);
        Self::build(parts.0, parts.1, parts.2, parts.3)
    }

    /// The same probe with other statistics options (before it is shared:
    /// it starts fresh statistics).
    #[must_use]
    pub fn with_config(self, config: StatsConfig) -> Self {
        self.rebuild(|parts| parts.3 = config)
    }

    /// The same probe with a description (before it is shared).
    #[must_use]
    pub fn with_description(self, description: impl Into<String>) -> Self {
        let description = description.into();
        self.rebuild(|parts| parts.1 = Some(description))
    }

    /// Responses with this status or above count as errors (default 500;
    /// 400 counts client errors too). Set before the probe is shared.
    #[must_use]
    pub fn min_error_status(self, status: u16) -> Self {
        self.rebuild(|parts| parts.2 = status)
    }
}

/// Records one response (or panic) into `stats`.
pub(crate) fn record_response(stats: &Stats, call: Call, panic: Option<&str>) {
    stats.record(call);
    if let Some(message) = panic {
        stats.note_error(Some("panic"), format_args!("panic: {message}"));
    } else if let (true, Some(code)) = (call.error, call.status) {
        stats.note_status(code);
    }
}

/// A response that ends now, timed by `stats`: an error when its status is at
/// least `min_error_status`.
pub(crate) fn response_call(stats: &Stats, min_error_status: u16, started: Started, status: StatusCode) -> Call {
    let code = status.as_u16();
    stats.ended(started, code >= min_error_status, Some(code))
}

impl RouteProbe {
    fn core(&self) -> &Core {
        &self.inner.core
    }

    fn outcome(&self) -> Outcome {
        self.inner.core.outcome(REQUESTS)
    }
}

passive_probe!(RouteProbe);

impl<S> Layer<S> for RouteProbe {
    type Service = PassiveService<S, RouteProbe>;

    fn layer(&self, inner: S) -> Self::Service {
        PassiveService::new(inner, self.clone())
    }
}

impl Recorder for RouteProbe {
    type Call = RouteProbe;

    fn begin<B>(&self, request: &mut Request<B>) -> Self::Call {
        Claim::hand_placed(request);
        self.clone()
    }

    fn finish(probe: &Self::Call, started: Started, status: StatusCode, panic: Option<&str>) {
        let stats = &probe.inner.core.stats;
        let call = response_call(stats, probe.inner.min_error_status, started, status);
        record_response(stats, call, panic);
    }
}

/// Builds an axum [`Router`] whose every route has its own [`RouteProbe`],
/// named after its path template (`/users/{id}` → `route:users.:id`, `/` →
/// `route:index`) and described by it.
///
/// Declare routes on it as on a `Router`, then take the router and a
/// [`ProbeGroup`] of the probes with [`into_parts`](Self::into_parts).
///
/// ```
/// use axum::routing::get;
/// use axum_watch::passive::WatchedRouter;
/// use axum_watch::HealthRegistry;
///
/// let (app, probes) = WatchedRouter::new()
///     .route("/users", get(|| async { "[]" }))
///     .route("/users/{id}", get(|| async { "{}" }).delete(|| async { "" }))
///     .into_parts();
/// let registry = HealthRegistry::builder().include(probes).build().unwrap();
/// assert_eq!(registry.probe_names(), ["route:users", "route:users.:id"]);
/// let app: axum::Router = app.merge(registry.router());
/// # let _ = app;
/// ```
#[must_use]
pub struct WatchedRouter<S = ()> {
    router: Router<S>,
    probes: Vec<(String, RouteProbe)>,
    config: StatsConfig,
    min_error_status: u16,
}

impl<S> fmt::Debug for WatchedRouter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchedRouter")
            .field("routes", &self.probes.iter().map(|(path, _)| path).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<S: Clone + Send + Sync + 'static> Default for WatchedRouter<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone + Send + Sync + 'static> WatchedRouter<S> {
    /// An empty router; probes get the default [`StatsConfig`].
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            probes: Vec::new(),
            config: StatsConfig::default(),
            min_error_status: 500,
        }
    }

    /// Statistics options for the probes of routes added after this call.
    pub fn with_config(mut self, config: StatsConfig) -> Self {
        self.config = config;
        self
    }

    /// Error status threshold for the probes of routes added after this call
    /// (default 500).
    pub fn min_error_status(mut self, status: u16) -> Self {
        self.min_error_status = status;
        self
    }

    /// Adds a route, watched by the probe of its path (several calls with the
    /// same path share one probe, as they share one route).
    ///
    /// # Panics
    ///
    /// Where [`Router::route`] panics: an invalid path or overlapping methods.
    pub fn route(mut self, path: &str, method_router: MethodRouter<S>) -> Self {
        let probe = match self.probes.iter().find(|(p, _)| p == path) {
            Some((_, probe)) => probe.clone(),
            None => {
                let probe = RouteProbe::build(
                    route_probe_name(path),
                    Some(path.to_owned()),
                    self.min_error_status,
                    self.config,
                );
                self.probes.push((path.to_owned(), probe.clone()));
                probe
            }
        };
        self.router = self.router.route(path, method_router.layer(probe));
        self
    }

    /// The route probes, in the order their paths were added.
    pub fn probes(&self) -> impl Iterator<Item = &RouteProbe> {
        self.probes.iter().map(|(_, probe)| probe)
    }

    /// The router and a group of its probes, to [`include`](crate::HealthRegistryBuilder::include).
    pub fn into_parts(self) -> (Router<S>, ProbeGroup) {
        let group = self
            .probes
            .into_iter()
            .fold(ProbeGroup::new(), |group, (_, probe)| group.add(probe));
        (self.router, group)
    }
}

/// `/users/{id}/posts` → `route:users.:id.posts`; `/` → `route:index`.
pub(super) fn route_probe_name(path: &str) -> String {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|segment| {
            let param = segment.starts_with('{') && segment.ends_with('}');
            let cleaned: String = segment
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                .collect();
            if param { format!(":{cleaned}") } else { cleaned }
        })
        .collect();
    if segments.is_empty() {
        "route:index".to_owned()
    } else {
        format!("route:{}", segments.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::route_probe_name;

    #[test]
    fn probe_names_follow_the_template() {
        assert_eq!(route_probe_name("/"), "route:index");
        assert_eq!(route_probe_name("/users"), "route:users");
        assert_eq!(route_probe_name("/users/{id}/posts"), "route:users.:id.posts");
        assert_eq!(route_probe_name("/files/{*rest}"), "route:files.:rest");
    }
}
