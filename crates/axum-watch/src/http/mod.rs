//! The `/health/*` endpoints as an [`axum::Router`].
//!
//! Handlers only read and format: the engine decides statuses, this module
//! maps them to HTTP codes in exactly one place ([`ready_code`],
//! [`status_code`]).

pub(crate) mod auth;
pub(crate) mod dashboard;
mod fleet;
mod maintenance;
pub(crate) mod metrics;
mod query;
pub(crate) mod sse;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use serde::ser::SerializeMap;

use auth::{Auth, OpenEndpoint, StatusOnly};
use dashboard::Dashboard;

use crate::engine::{Encoding, Engine, Gate, Snapshot};
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
}

/// What every handler reads: the engine and the HTTP options.
#[derive(Debug, Clone)]
pub(crate) struct Face {
    engine: Arc<Engine>,
    config: Arc<HttpConfig>,
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

/// The health endpoints under `config.prefix`, each guarded by the
/// authentication layer when one is configured.
///
/// The layer is a `route_layer`: it wraps these routes only, never a
/// fallback, so merging this router leaves the application's own routes
/// and its 404s alone.
pub(crate) fn router<S>(engine: &Arc<Engine>, config: &Arc<HttpConfig>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let face = Face {
        engine: Arc::clone(engine),
        config: Arc::clone(config),
    };
    let p = &config.prefix;
    let open = |endpoint: OpenEndpoint| config.auth.as_ref().is_some_and(|a| a.open.contains(&endpoint));
    // Routes whose answer can be reduced to a status, and may be left open.
    let openable = [
        (OpenEndpoint::Live, "live", get(live)),
        (OpenEndpoint::Ready, "ready", get(ready)),
        (OpenEndpoint::Status, "status", get(status)),
        (OpenEndpoint::Startup, "startup", get(startup)),
    ];
    let guard = |open: bool| {
        config
            .auth
            .as_ref()
            .map(|auth| axum::middleware::from_fn_with_state(auth::Guard::new(Arc::clone(auth), open), auth::require))
    };
    let mut closed = Router::new()
        .route(&format!("{p}/history"), get(history))
        .route(&format!("{p}/alerts"), get(alerts))
        .route(&format!("{p}/alerts/deliveries"), get(deliveries))
        .route(&format!("{p}/metrics"), get(metrics::metrics))
        .route(
            &format!("{p}/maintenance"),
            get(maintenance::status)
                .post(maintenance::start)
                .delete(maintenance::end),
        )
        .route(&format!("{p}/status/stream"), get(sse::status_stream))
        .route(&format!("{p}/ready/stream"), get(sse::ready_stream));
    let mut opened = Router::new();
    for (endpoint, path, handler) in openable {
        let path = format!("{p}/{path}");
        match guard(true) {
            Some(layer) if open(endpoint) => opened = opened.route(&path, handler.route_layer(layer)),
            _ => closed = closed.route(&path, handler),
        }
    }
    let page = format!("{p}/dashboard");
    closed = match &config.dashboard {
        Dashboard::BuiltIn => closed.route(
            &page,
            get(dashboard::built_in).with_state(Arc::new(dashboard::BuiltIn::new(engine.replica().is_some()))),
        ),
        Dashboard::Custom(render) => closed.route(
            &page,
            get(dashboard::custom).with_state((face.clone(), Arc::clone(render))),
        ),
        Dashboard::Disabled => closed,
    };
    let router = match guard(false) {
        Some(layer) => closed.route_layer(layer),
        None => closed,
    }
    .merge(opened);
    router.method_not_allowed_fallback(method_not_allowed).with_state(face)
}

/// `/ready`'s code: only an unhealthy service is unready.
pub(crate) fn ready_code(status: Status) -> StatusCode {
    match status {
        Status::Healthy | Status::Degraded => StatusCode::OK,
        Status::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// `/status`'s code: anything short of healthy is a multi-status.
pub(crate) fn status_code(status: Status) -> StatusCode {
    match status {
        Status::Healthy => StatusCode::OK,
        Status::Degraded | Status::Unhealthy => StatusCode::MULTI_STATUS,
    }
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

async fn live() -> Response {
    json_bytes(StatusCode::OK, Bytes::from_static(br#"{"status":"ok"}"#))
}

async fn ready(State(face): Shared, reduced: Reduced, RawQuery(query): RawQuery) -> Response {
    if let Some(gate) = face.engine.readiness_gate() {
        let (code, body) = gate_body(gate);
        return json_bytes(code, Bytes::from_static(body));
    }
    report_response(&face, query.as_deref(), ready_code, reduced.is_some()).await
}

async fn status(State(face): Shared, reduced: Reduced, RawQuery(query): RawQuery) -> Response {
    if let Some(scope) = query::scope(query.as_deref()) {
        return fleet::status(&face, &scope, query.as_deref(), reduced.is_some()).await;
    }
    report_response(&face, query.as_deref(), status_code, reduced.is_some()).await
}

/// The report, whole or filtered by `?tag=`, with the code `code_of` gives;
/// only its status when `reduced`.
async fn report_response(
    face: &Face,
    query: Option<&str>,
    code_of: fn(Status) -> StatusCode,
    reduced: bool,
) -> Response {
    let tags = query::tags(query);
    if let Some(refusal) = unknown_tags(&face.engine, &tags) {
        return refusal;
    }
    let snapshot = face.engine.report().await;
    let lifecycle = face.engine.lifecycle();
    if tags.is_empty() {
        let code = code_of(snapshot.report.status);
        if reduced {
            return status_only(code, snapshot.report.status.as_str());
        }
        return json_bytes(code, with_lifecycle(report_json(&snapshot), lifecycle));
    }
    let report = filtered(&snapshot, &tags);
    let code = code_of(report.status);
    if reduced {
        return status_only(code, report.status.as_str());
    }
    json_bytes(code, with_lifecycle(to_json(&report), lifecycle))
}

/// 404 naming the requested tags that no probe has, if any.
pub(crate) fn unknown_tags(engine: &Engine, tags: &[String]) -> Option<Response> {
    #[derive(Serialize)]
    struct UnknownTags<'a> {
        detail: String,
        unknown_tags: &'a [&'a str],
    }
    let unknown: Vec<&str> = tags.iter().map(String::as_str).filter(|t| !engine.has_tag(t)).collect();
    if unknown.is_empty() {
        return None;
    }
    let names: Vec<String> = unknown.iter().map(|t| format!("{t:?}")).collect();
    let detail = format!("no probe has the tag {}", names.join(", "));
    Some(json(
        StatusCode::NOT_FOUND,
        &UnknownTags {
            detail,
            unknown_tags: &unknown,
        },
    ))
}

fn filtered(snapshot: &Snapshot, tags: &[String]) -> HealthReport {
    let probes: Vec<ProbeResult> = snapshot
        .report
        .probes
        .iter()
        .filter(|p| p.tags.iter().any(|t| tags.contains(t)))
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
