//! The `/health/*` endpoints as an [`axum::Router`].
//!
//! Handlers only read and format: the engine decides statuses, this module
//! maps them to HTTP codes in exactly one place ([`Codes`], configurable on
//! the builder, and [`gate_body`]).

pub(crate) mod auth;
pub(crate) mod dashboard;
mod fleet;
pub(crate) mod health_json;
mod kube;
mod maintenance;
pub(crate) mod metrics;
#[cfg(feature = "openapi")]
pub(crate) mod openapi;
mod probes;
mod query;
pub(crate) mod routes;
pub(crate) mod sse;

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, get, on};
use axum::{Extension, Router};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde::Serialize;
use serde::ser::SerializeMap;

use auth::{Auth, Authenticated, OpenEndpoint, StatusOnly};
use dashboard::Dashboard;
use query::Filter;
use routes::{Op, ROUTES, Slash, Verb};

use crate::engine::{Encoding, Engine, Gate, Owner, Snapshot};
use crate::model::Lifecycle;
use crate::model::{AlertRecord, HealthReport, ProbeResult, Status};
use crate::storage::History;

/// The HTTP face's own options, beside the engine's.
#[derive(Debug)]
pub(crate) struct HttpConfig {
    pub(crate) prefix: String,
    pub(crate) dashboard: Dashboard,
    pub(crate) allow_unauthenticated_maintenance: bool,
    pub(crate) auth: Option<Arc<Auth>>,
    pub(crate) codes: Codes,
    pub(crate) service: health_json::Service,
}

/// The endpoints whose HTTP code follows the report's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `ready` and `ready/<name>`.
    Ready,
    /// `status` and `status/<name>`.
    Status,
}

/// The one place a status becomes an HTTP code on `ready` and `status`:
/// by default `ready` is 200 unless unhealthy (503) and `status` 200 only
/// when healthy (207 otherwise); each can be changed on the builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Codes {
    ready: [StatusCode; 3],
    status: [StatusCode; 3],
}

impl Default for Codes {
    fn default() -> Self {
        Self {
            ready: [StatusCode::OK, StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE],
            status: [StatusCode::OK, StatusCode::MULTI_STATUS, StatusCode::MULTI_STATUS],
        }
    }
}

const fn slot(status: Status) -> usize {
    match status {
        Status::Healthy => 0,
        Status::Degraded => 1,
        Status::Unhealthy => 2,
    }
}

impl Codes {
    /// Answers `code` on `endpoint` when the report is `status`.
    pub(crate) fn set(&mut self, endpoint: Endpoint, status: Status, code: StatusCode) {
        match endpoint {
            Endpoint::Ready => self.ready[slot(status)] = code,
            Endpoint::Status => self.status[slot(status)] = code,
        }
    }

    /// The code `endpoint` answers for `status`.
    pub(crate) fn of(&self, endpoint: Endpoint, status: Status) -> StatusCode {
        match endpoint {
            Endpoint::Ready => self.ready[slot(status)],
            Endpoint::Status => self.status[slot(status)],
        }
    }
}

/// What every handler reads: the engine and the HTTP options.
#[derive(Debug, Clone)]
pub(crate) struct Face {
    engine: Arc<Owner>,
    config: Arc<HttpConfig>,
    /// The last `/metrics` body of each format.
    scrapes: Arc<metrics::Scrapes>,
}

type Shared = State<Face>;

/// The slot of a snapshot's JSON body.
const JSON: Encoding = Encoding(0);

/// A snapshot's report as JSON, encoded once per snapshot.
pub(crate) fn report_json(snapshot: &Snapshot) -> Bytes {
    snapshot.encoded(JSON, |report| {
        Bytes::from(serde_json::to_vec(report).unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not serialise a health report");
            br#"{"status":"unhealthy","checked_at":null,"timezone":null,"probes":[],"failing":[]}"#.to_vec()
        }))
    })
}

/// The health endpoints of [`ROUTES`] under `config.prefix`, each guarded
/// by the authentication layer when one is configured.
///
/// The layer is a `route_layer`: it wraps these routes only, never a
/// fallback, so merging this router leaves the application's own routes
/// and its 404s alone.
pub(crate) fn router<S>(engine: &Arc<Owner>, config: &Arc<HttpConfig>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let face = Face {
        engine: Arc::clone(engine),
        config: Arc::clone(config),
        scrapes: Arc::default(),
    };
    let open = |endpoint: OpenEndpoint| config.auth.as_ref().is_some_and(|a| a.open.contains(&endpoint));
    let guard = |open: bool| {
        config
            .auth
            .as_ref()
            .map(|auth| axum::middleware::from_fn_with_state(auth::Guard::new(Arc::clone(auth), open), auth::require))
    };
    let mut closed = Router::new();
    let mut opened = Router::new();
    for route in ROUTES.iter().filter(|r| r.served(config)) {
        let path = format!("{}/{}", config.prefix, route.path);
        let handler = route.ops.iter().fold(MethodRouter::new(), |handler, &(verb, op)| {
            handler.merge(serve(&face, verb, op))
        });
        match guard(true) {
            // The built-in page under API-key auth: a browser cannot send
            // the key when it loads a page, so the page (which holds no
            // data) loads without it and asks for the key, which it sends
            // in its header with every request for data.
            Some(_) if page_needs_no_key(config, route.ops) => {
                opened = with_slash(opened, &path, route.slash, handler);
            }
            Some(layer) if route.open.is_some_and(open) => {
                opened = with_slash(opened, &path, route.slash, handler.route_layer(layer));
            }
            _ => closed = with_slash(closed, &path, route.slash, handler),
        }
    }
    let router = match guard(false) {
        Some(layer) => closed.route_layer(layer),
        None => closed,
    }
    .merge(opened);
    router.method_not_allowed_fallback(method_not_allowed).with_state(face)
}

/// Whether `ops` are the built-in dashboard page's under API-key auth,
/// served without the key.
fn page_needs_no_key(config: &HttpConfig, ops: &[(Verb, Op)]) -> bool {
    matches!(config.dashboard, Dashboard::BuiltIn)
        && ops.iter().all(|&(_, op)| matches!(op, Op::Dashboard))
        && config.auth.as_deref().and_then(auth::Auth::key_header).is_some()
}

/// The handler of `op`, answering `verb` (and `HEAD` with `GET`).
fn serve(face: &Face, verb: Verb, op: Op) -> MethodRouter<Face> {
    let filter = match verb {
        Verb::Get => MethodFilter::GET,
        Verb::Post => MethodFilter::POST,
        Verb::Delete => MethodFilter::DELETE,
    };
    match op {
        Op::Live => on(filter, live),
        Op::Ready => on(filter, ready),
        Op::ReadyProbe => on(filter, kube::ready_probe),
        Op::ReadyStream => on(filter, sse::ready_stream),
        Op::Status => on(filter, status),
        Op::StatusProbe => on(filter, kube::status_probe),
        Op::StatusStream => on(filter, sse::status_stream),
        Op::Startup => on(filter, startup),
        Op::Probes => on(filter, probes::list),
        Op::History => on(filter, history),
        Op::Alerts => on(filter, alerts),
        Op::Deliveries => on(filter, deliveries),
        Op::Metrics => on(filter, metrics::metrics),
        Op::MaintenanceStatus => on(filter, maintenance::status),
        Op::MaintenanceStart => on(filter, maintenance::start),
        Op::MaintenanceEnd => on(filter, maintenance::end),
        Op::Dashboard => match &face.config.dashboard {
            Dashboard::BuiltIn => on(filter, dashboard::built_in).with_state(Arc::new(dashboard::BuiltIn::new(
                face.engine.replica().is_some(),
                face.config.auth.as_deref().and_then(auth::Auth::key_header),
            ))),
            Dashboard::Custom(render) => on(filter, dashboard::custom).with_state((face.clone(), Arc::clone(render))),
            // Not served: `Route::served` leaves the page out.
            Dashboard::Disabled => MethodRouter::new(),
        },
    }
}

/// `handler` at `path`, and `path/` as `slash` says: a trailing slash,
/// easy to write in a probe's configuration, reaches the same endpoint (or,
/// for a page whose links are relative, a redirect to it). Only the health
/// routes get the second path; the application's own are left as they are.
fn with_slash<S>(router: Router<S>, path: &str, slash: Slash, handler: MethodRouter<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let slashed = format!("{path}/");
    match slash {
        Slash::Same => router.route(&slashed, handler.clone()),
        Slash::Redirect => router.route(&slashed, get(without_slash)),
    }
    .route(path, handler)
}

/// 308 to the same path without its trailing slash, the query kept.
async fn without_slash(uri: Uri) -> Response {
    let path = uri.path().trim_end_matches('/');
    let target = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(location) = HeaderValue::from_str(&target) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

pub(crate) fn json_bytes(code: StatusCode, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `value` as JSON bytes; an error object when it cannot be serialised.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Bytes {
    serde_json::to_vec(value).map_or_else(
        |e| {
            tracing::error!(error = %e, "could not serialise a response");
            Bytes::from_static(br#"{"detail":"could not serialise the response"}"#)
        },
        Bytes::from,
    )
}

pub(crate) fn json<T: Serialize>(code: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_bytes(code, Bytes::from(body)),
        Err(e) => {
            tracing::error!(error = %e, "could not serialise a response");
            json_bytes(
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::from_static(br#"{"detail":"could not serialise the response"}"#),
            )
        }
    }
}

pub(crate) fn error(code: StatusCode, detail: impl Into<String>) -> Response {
    #[derive(Serialize)]
    struct Detail {
        detail: String,
    }
    json(code, &Detail { detail: detail.into() })
}

pub(crate) const MAINTENANCE: &[u8] = br#"{"status":"maintenance"}"#;
pub(crate) const STARTING: &[u8] = br#"{"status":"starting"}"#;
pub(crate) const DRAINING: &[u8] = br#"{"status":"draining"}"#;

/// `body` (a JSON object) with the lifecycle state added while the service
/// is draining or stopped, so `/status` and its stream say so.
pub(crate) fn with_lifecycle(body: Bytes, lifecycle: Lifecycle) -> Bytes {
    if !matches!(lifecycle, Lifecycle::Draining | Lifecycle::Stopped) || !body.ends_with(b"}") {
        return body;
    }
    let mut out = Vec::with_capacity(body.len() + 24);
    out.extend_from_slice(&body[..body.len() - 1]);
    out.extend_from_slice(b",\"lifecycle\":\"");
    out.extend_from_slice(lifecycle.as_str().as_bytes());
    out.extend_from_slice(b"\"}");
    Bytes::from(out)
}

/// The fixed body readiness answers with when a gate decides it.
pub(crate) fn gate_body(gate: Gate) -> (StatusCode, &'static [u8]) {
    match gate {
        Gate::Draining => (StatusCode::SERVICE_UNAVAILABLE, DRAINING),
        Gate::Maintenance => (StatusCode::OK, MAINTENANCE),
        Gate::Starting => (StatusCode::SERVICE_UNAVAILABLE, STARTING),
    }
}

/// `{"status": …}` alone, for a caller an open endpoint does not know.
fn status_only(code: StatusCode, status: &str) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        status: &'a str,
    }
    json(code, &Body { status })
}

type Reduced = Option<Extension<StatusOnly>>;
type Authed = Option<Extension<Authenticated>>;

async fn live(RawQuery(query): RawQuery) -> Response {
    if query::verbose(query.as_deref()) {
        return kube::live_verbose(&Filter::parse(query.as_deref()));
    }
    json_bytes(StatusCode::OK, Bytes::from_static(br#"{"status":"ok"}"#))
}

async fn ready(
    State(face): Shared,
    reduced: Reduced,
    authed: Authed,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.as_deref();
    if query::verbose(query) {
        return kube::ready_verbose(&face, &Filter::parse(query), authed.is_some()).await;
    }
    let health = health_json::wanted(&headers);
    if let Some(gate) = face.engine.readiness_gate() {
        if health {
            return health_json::gate(&face, gate, reduced.is_some());
        }
        let (code, body) = gate_body(gate);
        return json_bytes(code, Bytes::from_static(body));
    }
    report_response(&face, query, Endpoint::Ready, reduced.is_some(), health).await
}

async fn status(State(face): Shared, reduced: Reduced, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let health = health_json::wanted(&headers);
    if let Some(scope) = query::scope(query.as_deref()) {
        return fleet::status(&face, &scope, query.as_deref(), reduced.is_some(), health).await;
    }
    report_response(&face, query.as_deref(), Endpoint::Status, reduced.is_some(), health).await
}

/// The report, whole or filtered by `?tag=`, `?probe=` and `?exclude=`,
/// with the code `endpoint` answers for its status (in
/// `application/health+json` when `health`); only its status when `reduced`.
async fn report_response(
    face: &Face,
    query: Option<&str>,
    endpoint: Endpoint,
    reduced: bool,
    health: bool,
) -> Response {
    let filter = Filter::parse(query);
    if let Some(refusal) = unknown(&face.engine, &filter) {
        return refusal;
    }
    let snapshot = face.engine.report().await;
    let lifecycle = face.engine.lifecycle();
    if health {
        let report = if filter.is_empty() {
            Cow::Borrowed(&*snapshot.report)
        } else {
            Cow::Owned(filtered(&snapshot, &filter))
        };
        return health_json::report(face, &report, reduced);
    }
    let codes = &face.config.codes;
    if filter.is_empty() {
        let code = codes.of(endpoint, snapshot.report.status);
        if reduced {
            return status_only(code, snapshot.report.status.as_str());
        }
        return json_bytes(code, with_lifecycle(report_json(&snapshot), lifecycle));
    }
    let report = filtered(&snapshot, &filter);
    let code = codes.of(endpoint, report.status);
    if reduced {
        return status_only(code, report.status.as_str());
    }
    json_bytes(code, with_lifecycle(to_json(&report), lifecycle))
}

/// 404 naming the requested probes and tags that do not exist, if any
/// (`?exclude=` names are not checked: excluding what is not there is no
/// error, as on the Kubernetes API server).
fn unknown(engine: &Engine, filter: &Filter) -> Option<Response> {
    let probes: Vec<&str> = filter
        .probes
        .iter()
        .map(String::as_str)
        .filter(|p| !engine.has_probe(p))
        .collect();
    let tags: Vec<&str> = filter
        .tags
        .iter()
        .map(String::as_str)
        .filter(|t| !engine.has_tag(t))
        .collect();
    (!probes.is_empty() || !tags.is_empty()).then(|| not_found(&probes, &tags))
}

/// The one shape of every "no such probe or tag" answer:
/// `{"error", "unknown_probes", "unknown_tags", "detail"}`, 404.
pub(crate) fn not_found(probes: &[&str], tags: &[&str]) -> Response {
    #[derive(Serialize)]
    struct Unknown<'a> {
        error: &'static str,
        unknown_probes: &'a [&'a str],
        unknown_tags: &'a [&'a str],
        detail: String,
    }
    let quoted = |names: &[&str]| names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
    let mut detail = Vec::new();
    if !probes.is_empty() {
        detail.push(format!("no probe is named {}", quoted(probes)));
    }
    if !tags.is_empty() {
        detail.push(format!("no probe has the tag {}", quoted(tags)));
    }
    let error = match (probes.is_empty(), tags.is_empty()) {
        (false, true) => "unknown probe",
        (true, false) => "unknown tag",
        _ => "unknown probe and tag",
    };
    json(
        StatusCode::NOT_FOUND,
        &Unknown {
            error,
            unknown_probes: probes,
            unknown_tags: tags,
            detail: detail.join("; "),
        },
    )
}

fn filtered(snapshot: &Snapshot, filter: &Filter) -> HealthReport {
    let probes: Vec<ProbeResult> = snapshot
        .report
        .probes
        .iter()
        .filter(|p| filter.keeps(p))
        .cloned()
        .collect();
    HealthReport::new(probes, snapshot.report.checked_at, snapshot.report.timezone.clone())
}

async fn history(State(face): Shared) -> Response {
    struct Probes(History);
    impl Serialize for Probes {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(self.0.len()))?;
            for (name, results) in &self.0 {
                map.serialize_entry(name, results)?;
            }
            map.end()
        }
    }
    #[derive(Serialize)]
    struct Body {
        probes: Probes,
    }
    let history = face.engine.history().await;
    json(
        StatusCode::OK,
        &Body {
            probes: Probes(history),
        },
    )
}

async fn alerts(State(face): Shared) -> Response {
    #[derive(Serialize)]
    struct Body {
        alerts: Vec<AlertRecord>,
    }
    let alerts = face.engine.alerts().await;
    json(StatusCode::OK, &Body { alerts })
}

async fn deliveries(State(face): Shared) -> Response {
    #[derive(Serialize)]
    struct Body {
        alerters: Vec<crate::alert::AlerterDeliveries>,
    }
    json(
        StatusCode::OK,
        &Body {
            alerters: face.engine.deliveries(),
        },
    )
}

async fn startup(State(face): Shared, reduced: Reduced) -> Response {
    let Some(report) = face.engine.startup_report().await else {
        return json_bytes(StatusCode::SERVICE_UNAVAILABLE, Bytes::from_static(STARTING));
    };
    if report.probes.iter().all(ProbeResult::is_passing) {
        json_bytes(StatusCode::OK, Bytes::from_static(br#"{"status":"started"}"#))
    } else if reduced.is_some() {
        status_only(StatusCode::SERVICE_UNAVAILABLE, report.status.as_str())
    } else {
        json(StatusCode::SERVICE_UNAVAILABLE, &report)
    }
}

async fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}
