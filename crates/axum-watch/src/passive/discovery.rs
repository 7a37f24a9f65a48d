//! [`RouteDiscovery`]: one layer over an application's router (or a nested
//! one) that gives every route its own [`RouteProbe`] the first time the
//! route is served, registered on the running registry.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use axum::extract::MatchedPath;
use http::header::UPGRADE;
use http::{Method, Request, StatusCode};
use tower_layer::Layer;

use super::layer::{Claim, PassiveService, Recorder};
use super::requests::standard_method;
use super::route::{RouteProbe, route_probe_name};
use super::stats::{Started, StatsConfig};
use crate::probe::{ProbeExt, ProbeHandle};
use crate::registry::{HealthRegistry, Registration};

/// Names a discovered route's probe from its method and template.
type NameFn = Arc<dyn Fn(&Method, &str) -> String + Send + Sync>;

/// A tower layer that gives every route of the router it wraps its own
/// passive [`RouteProbe`], made and registered on the running registry (with
/// [`HealthRegistry::add_probe`]'s rules and its cap) the first time the
/// route is served; see [`HealthRegistry::discover_routes`].
///
/// Apply it with [`Router::layer`](axum::Router::layer) after the routes
/// are declared, so that it runs once a request matched and sees the
/// route's template ([`MatchedPath`]); requests that match no route make no
/// probe. One probe is kept per method and template: `GET /users/{id}` is
/// named `route:GET:users.:id` (or what [`name_with`](Self::name_with)
/// says) and described by `GET /users/{id}`. WebSocket routes are
/// discovered like the others (their upgrades are counted, described
/// `… (WebSocket)` and tagged `websocket`).
///
/// Nothing is counted twice: a [`RouteProbe`] placed by hand on a route
/// records that route and no discovered probe is made for it; a discovery
/// layer on a nested router (its own tags, thresholds, criticality) takes
/// the routes it wraps before the application's. Routes under the
/// registry's prefix are never discovered, nor those matching an
/// [`exclude`](Self::exclude) pattern or outside [`methods`](Self::methods).
/// A probe refused (its name taken, the cap reached) is logged and counted
/// once, and its route is not watched.
///
/// ```
/// use axum::{Router, handler::Handler, routing::get};
/// use axum_watch::passive::{RouteProbe, StatsConfig};
/// use axum_watch::HealthRegistry;
/// use tower_service::Service;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let registry = HealthRegistry::builder().build().unwrap();
/// let checkout = RouteProbe::new("checkout");
/// registry.add_probe(checkout.clone()).unwrap();
///
/// let admin: Router = Router::new()
///     .route("/admin/stats", get(|| async { "{}" }))
///     // A router of its own: its tags, thresholds and criticality.
///     .layer(registry.discover_routes().with_tags(["admin"]).critical(false));
/// let mut app: Router = Router::new()
///     .route("/users/{id}", get(|| async { "{}" }))
///     .route("/checkout", get((|| async { "ok" }).layer(checkout)))
///     .route("/internal/debug", get(|| async { "" }))
///     .merge(admin)
///     .layer(
///         registry
///             .discover_routes()
///             .with_config(StatsConfig::default().max_error_rate(0.05))
///             .exclude("/internal/*"),
///     )
///     .merge(registry.router());
///
/// for path in ["/users/7", "/checkout", "/internal/debug", "/admin/stats"] {
///     let request = axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap();
///     app.call(request).await.unwrap();
/// }
/// assert_eq!(registry.probe_names(), ["checkout", "route:GET:users.:id", "route:GET:admin.stats"]);
/// # }
/// ```
#[derive(Clone)]
pub struct RouteDiscovery {
    inner: Arc<DiscoveryState>,
}

struct DiscoveryState {
    registry: HealthRegistry,
    options: Options,
    /// Template → what each method of it is.
    routes: ArcSwap<Table>,
    /// Serialises the rare insertion of a new route.
    insert: Mutex<()>,
}

type Table = HashMap<Box<str>, Vec<(Method, Route)>>;

/// A route as discovery left it.
#[derive(Clone)]
enum Route {
    /// Watched by its discovered probe.
    Watched(RouteProbe),
    /// Excluded, a method not included, or its probe refused.
    Skipped,
}

#[derive(Clone)]
struct Options {
    config: StatsConfig,
    min_error_status: u16,
    critical: bool,
    tags: Vec<String>,
    thresholds: Option<(u32, u32)>,
    exclude: Vec<String>,
    methods: Option<Vec<Method>>,
    name: Option<NameFn>,
}

impl fmt::Debug for RouteDiscovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.inner.options;
        f.debug_struct("RouteDiscovery")
            .field("critical", &o.critical)
            .field("tags", &o.tags)
            .field("exclude", &o.exclude)
            .field("methods", &o.methods)
            .field("routes", &self.inner.routes.load().len())
            .finish_non_exhaustive()
    }
}

impl RouteDiscovery {
    pub(crate) fn new(registry: HealthRegistry) -> Self {
        Self::build(
            registry,
            Options {
                config: StatsConfig::default(),
                min_error_status: 500,
                critical: true,
                tags: Vec::new(),
                thresholds: None,
                exclude: Vec::new(),
                methods: None,
                name: None,
            },
        )
    }

    fn build(registry: HealthRegistry, options: Options) -> Self {
        Self {
            inner: Arc::new(DiscoveryState {
                registry,
                options,
                routes: ArcSwap::from_pointee(HashMap::new()),
                insert: Mutex::new(()),
            }),
        }
    }

    /// The same layer with changed options (before it is applied: it
    /// starts with no route discovered).
    fn with(self, f: impl FnOnce(&mut Options)) -> Self {
        let mut options = self.inner.options.clone();
        f(&mut options);
        Self::build(self.inner.registry.clone(), options)
    }

    /// Statistics options of the discovered probes (window, error rate and
    /// latency thresholds; default [`StatsConfig::default`]).
    #[must_use]
    pub fn with_config(self, config: StatsConfig) -> Self {
        self.with(|o| o.config = config)
    }

    /// Responses with this status or above count as errors (default 500).
    #[must_use]
    pub fn min_error_status(self, status: u16) -> Self {
        self.with(|o| o.min_error_status = status)
    }

    /// Whether the discovered probes decide the overall status and
    /// readiness (default `true`, like [`HealthRegistryBuilder::add`](crate::HealthRegistryBuilder::add)).
    #[must_use]
    pub fn critical(self, critical: bool) -> Self {
        self.with(|o| o.critical = critical)
    }

    /// Tags added to every discovered probe.
    #[must_use]
    pub fn with_tags<I, T>(self, tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let tags: Vec<String> = tags.into_iter().map(Into::into).collect();
        self.with(|o| o.tags.extend(tags))
    }

    /// Failure and success thresholds of the discovered probes (see
    /// [`ProbeExt::with_thresholds`]); the registry's by default.
    #[must_use]
    pub fn thresholds(self, failures: u32, successes: u32) -> Self {
        self.with(|o| o.thresholds = Some((failures, successes)))
    }

    /// Leaves out the routes whose template matches `pattern`: `*` stands
    /// for any run of characters, `/` included, and `?` for one, so
    /// `/internal/*` leaves out everything under `/internal/` and `*/{id}`
    /// every route ending in an `{id}` parameter. Repeatable.
    #[must_use]
    pub fn exclude(self, pattern: impl Into<String>) -> Self {
        let pattern = pattern.into();
        self.with(|o| o.exclude.push(pattern))
    }

    /// Discovers only routes served with one of `methods` (default every
    /// method; a method outside the standard nine counts as `OTHER`).
    #[must_use]
    pub fn methods(self, methods: impl IntoIterator<Item = Method>) -> Self {
        let methods: Vec<Method> = methods.into_iter().map(|m| standard_method(&m)).collect();
        self.with(|o| o.methods = Some(methods))
    }

    /// Names the discovered probes with `name` from the method and the
    /// template (default `route:GET:users.:id` for `GET /users/{id}`). A
    /// name outside `[A-Za-z0-9_.:-]+`, or one already registered, is
    /// refused and counted.
    ///
    /// ```
    /// use axum_watch::HealthRegistry;
    ///
    /// let registry = HealthRegistry::builder().build().unwrap();
    /// // `GET /users/{id}` → `get.users.id`
    /// let discovery = registry.discover_routes().name_with(|method, template| {
    ///     let path = template.replace(['{', '}'], "").replace('/', ".");
    ///     format!("{}{path}", method.as_str().to_lowercase())
    /// });
    /// # drop(discovery);
    /// ```
    #[must_use]
    pub fn name_with(self, name: impl Fn(&Method, &str) -> String + Send + Sync + 'static) -> Self {
        let name: NameFn = Arc::new(name);
        self.with(|o| o.name = Some(name))
    }

    /// Hands the probe of `method` on `template` to `record`, making and
    /// registering it the first time; nothing when the route is not
    /// watched. A new probe records its first call before it is registered,
    /// so its first check counts it.
    fn route(&self, method: &Method, template: &str, websocket: bool, record: impl FnOnce(&RouteProbe)) {
        let lookup = |table: &Table| {
            table
                .get(template)
                .and_then(|methods| methods.iter().find(|(m, _)| m == method).map(|(_, r)| r.clone()))
        };
        if let Some(route) = lookup(&self.inner.routes.load()) {
            if let Route::Watched(probe) = route {
                record(&probe);
            }
            return;
        }
        let (route, registration) = {
            let guard = self.inner.insert.lock().unwrap_or_else(PoisonError::into_inner);
            let current = self.inner.routes.load_full();
            if let Some(route) = lookup(&current) {
                drop(guard);
                if let Route::Watched(probe) = route {
                    record(&probe);
                }
                return;
            }
            let (route, registration) = match self.probe(method, template, websocket) {
                Some((probe, registration)) => (Route::Watched(probe), Some(registration)),
                None => (Route::Skipped, None),
            };
            let mut table = (*current).clone();
            table
                .entry(template.into())
                .or_default()
                .push((method.clone(), route.clone()));
            self.inner.routes.store(Arc::new(table));
            (route, registration)
        };
        let (Route::Watched(probe), Some(registration)) = (route, registration) else {
            return;
        };
        record(&probe);
        if self.inner.registry.add_registration(registration).is_err() {
            // Refused (logged and counted once): the route stays unwatched.
            self.forget(method, template);
        }
    }

    /// Marks a route whose probe was refused as not watched.
    fn forget(&self, method: &Method, template: &str) {
        let _guard = self.inner.insert.lock().unwrap_or_else(PoisonError::into_inner);
        let mut table = (*self.inner.routes.load_full()).clone();
        if let Some(methods) = table.get_mut(template) {
            for (m, route) in methods {
                if m == method {
                    *route = Route::Skipped;
                }
            }
        }
        self.inner.routes.store(Arc::new(table));
    }

    /// A new probe for `method` on `template` and its registration, unless
    /// the route is left out.
    fn probe(&self, method: &Method, template: &str, websocket: bool) -> Option<(RouteProbe, Registration)> {
        let options = &self.inner.options;
        let prefix = self.inner.registry.prefix();
        let health = !prefix.is_empty()
            && template
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        if health
            || options.exclude.iter().any(|pattern| glob(pattern, template))
            || options
                .methods
                .as_ref()
                .is_some_and(|methods| !methods.contains(method))
        {
            return None;
        }
        let name = match &options.name {
            Some(name) => name(method, template),
            None => default_name(method, template),
        };
        let description = if websocket {
            format!("{method} {template} (WebSocket)")
        } else {
            format!("{method} {template}")
        };
        let probe = RouteProbe::build(name, Some(description), options.min_error_status, options.config);
        let handle = match options.thresholds {
            Some((failures, successes)) => ProbeHandle::from(probe.clone().with_thresholds(failures, successes)),
            None => ProbeHandle::from(probe.clone()),
        };
        let mut tags = options.tags.clone();
        if websocket && !tags.iter().any(|t| t == "websocket") {
            tags.push("websocket".to_owned());
        }
        Some((
            probe,
            Registration {
                probe: handle,
                critical: options.critical,
                extra_tags: tags,
            },
        ))
    }
}

/// `GET /users/{id}` → `route:GET:users.:id`; `GET /` → `route:GET:index`.
fn default_name(method: &Method, template: &str) -> String {
    let base = route_probe_name(template);
    let rest = base.strip_prefix("route:").unwrap_or(&base);
    format!("route:{method}:{rest}")
}

/// Whether `text` matches `pattern`, where `*` is any run of characters
/// and `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and where in the text it started matching.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl<S> Layer<S> for RouteDiscovery {
    type Service = PassiveService<S, RouteDiscovery>;

    fn layer(&self, inner: S) -> Self::Service {
        PassiveService::new(inner, self.clone())
    }
}

/// A request a discovery layer may record.
#[allow(unreachable_pub, reason = "named by the sealed `Recorder`'s associated type only")]
#[derive(Debug)]
pub struct Seen {
    discovery: RouteDiscovery,
    claim: Claim,
    method: Method,
    template: MatchedPath,
    websocket: bool,
}

impl Recorder for RouteDiscovery {
    type Call = Option<Seen>;

    fn begin<B>(&self, request: &mut Request<B>) -> Self::Call {
        let template = request.extensions().get::<MatchedPath>()?.clone();
        let claim = Claim::of(request)?;
        let websocket = request
            .headers()
            .get(UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        Some(Seen {
            discovery: self.clone(),
            claim,
            method: standard_method(request.method()),
            template,
            websocket,
        })
    }

    fn finish(call: &Self::Call, started: Started, status: StatusCode, panic: Option<&str>) {
        let Some(seen) = call else { return };
        // A hand-placed route probe, or a discovery layer inside this one,
        // records the request.
        if !seen.claim.take() {
            return;
        }
        seen.discovery
            .route(&seen.method, seen.template.as_str(), seen.websocket, |probe| {
                <RouteProbe as Recorder>::finish(probe, started, status, panic);
            });
    }
}

#[cfg(test)]
mod tests {
    use super::{default_name, glob};
    use http::Method;

    #[test]
    fn patterns_match_like_shell_globs() {
        let cases = [
            ("/internal/*", "/internal/debug", true),
            ("/internal/*", "/internal/a/b", true),
            ("/internal/*", "/internals", false),
            ("/internal*", "/internals", true),
            ("*/{id}", "/users/{id}", true),
            ("*/{id}", "/users/{id}/posts", false),
            ("/a?c", "/abc", true),
            ("/a?c", "/ac", false),
            ("*", "/", true),
            ("/exact", "/exact", true),
            ("/exact", "/exact/", false),
            ("**/x", "/a/b/x", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(glob(pattern, text), expected, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn names_follow_method_and_template() {
        assert_eq!(default_name(&Method::GET, "/users/{id}"), "route:GET:users.:id");
        assert_eq!(default_name(&Method::DELETE, "/"), "route:DELETE:index");
        assert_eq!(default_name(&Method::POST, "/files/{*rest}"), "route:POST:files.:rest");
    }
}
