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

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use serde::ser::SerializeMap;

use dashboard::Dashboard;

use crate::model::{AlertRecord, HealthReport, ProbeResult, Status};
use crate::registry::engine::Snapshot;
use crate::registry::{HealthRegistry, Inner};
use crate::storage::History;

type Shared = State<Arc<Inner>>;

impl HealthRegistry {
    /// The health endpoints under the registry's prefix, ready to
    /// [`merge`](axum::Router::merge) into the application's router:
    ///
    /// | endpoint | answers |
    /// | --- | --- |
    /// | `GET live` | always 200 `{"status":"ok"}`; never runs probes |
    /// | `GET ready` | 200 healthy or degraded, 503 unhealthy; 503 `{"status":"starting"}` in the grace period |
    /// | `GET status` | the full report; 200 healthy, 207 otherwise |
    /// | `GET history` | `{"probes":{name:[results, oldest first]}}` |
    /// | `GET alerts` | `{"alerts":[records, oldest first]}` |
    /// | `GET metrics` | Prometheus text 0.0.4 (OpenMetrics when `Accept` asks for it) |
    /// | `GET maintenance` | `{"active":bool,"until":timestamp|null}`; `POST` `{"minutes":N}` or `{"until":"…"}` starts it, `DELETE` ends it |
    /// | `GET status/stream`, `GET ready/stream` | server-sent events: the report (or what `ready` says) at once, then on every poll |
    /// | `GET dashboard` | the live HTML dashboard (unless turned off or replaced) |
    /// | `GET startup` | 503 `starting` until [`set_started`](Self::set_started), then 200 `started` if every startup probe passes, else 503 with their report |
    ///
    /// `ready` and `status` take `?tag=a,b` (any tag matches). With a storage
    /// several replicas share, `status?scope=fleet` answers with the latest
    /// report of every replica (see the README's "Shared storage across
    /// replicas"). `HEAD` works
    /// wherever `GET` does; other methods get 405 with an `Allow` header.
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
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let p = &self.inner.config.prefix;
        let router = Router::new()
            .route(&format!("{p}/live"), get(live))
            .route(&format!("{p}/ready"), get(ready))
            .route(&format!("{p}/status"), get(status))
            .route(&format!("{p}/history"), get(history))
            .route(&format!("{p}/alerts"), get(alerts))
            .route(&format!("{p}/startup"), get(startup))
            .route(&format!("{p}/metrics"), get(metrics::metrics))
            .route(
                &format!("{p}/maintenance"),
                get(maintenance::status)
                    .post(maintenance::start)
                    .delete(maintenance::end),
            )
            .route(&format!("{p}/status/stream"), get(sse::status_stream))
            .route(&format!("{p}/ready/stream"), get(sse::ready_stream))
            .with_state(Arc::clone(&self.inner));
        let page = format!("{p}/dashboard");
        let router = match &self.inner.config.dashboard {
            Dashboard::BuiltIn => router.route(
                &page,
                get(dashboard::built_in).with_state(Arc::new(dashboard::BuiltIn::new(
                    self.inner.storage.replica().is_some(),
                ))),
            ),
            Dashboard::Custom(render) => router.route(
                &page,
                get(dashboard::custom).with_state((Arc::clone(&self.inner), Arc::clone(render))),
            ),
            Dashboard::Disabled => router,
        };
        let router = router.method_not_allowed_fallback(method_not_allowed);
        match &self.inner.config.auth {
            Some(auth) => router.layer(axum::middleware::from_fn_with_state(
                auth::Guard {
                    auth: Arc::clone(auth),
                    prefix: Arc::from(p.as_str()),
                },
                auth::require,
            )),
            None => router,
        }
    }
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

async fn live() -> Response {
    json_bytes(StatusCode::OK, Bytes::from_static(br#"{"status":"ok"}"#))
}

async fn ready(State(inner): Shared, RawQuery(query): RawQuery) -> Response {
    if inner.maintenance.is_active() {
        return json_bytes(StatusCode::OK, Bytes::from_static(MAINTENANCE));
    }
    if inner.in_grace_period() {
        return json_bytes(StatusCode::SERVICE_UNAVAILABLE, Bytes::from_static(STARTING));
    }
    report_response(&inner, query.as_deref(), ready_code).await
}

async fn status(State(inner): Shared, RawQuery(query): RawQuery) -> Response {
    if let Some(scope) = query::scope(query.as_deref()) {
        return fleet::status(&inner, &scope, query.as_deref()).await;
    }
    report_response(&inner, query.as_deref(), status_code).await
}

/// The report, whole or filtered by `?tag=`, with the code `code_of` gives.
async fn report_response(inner: &Arc<Inner>, query: Option<&str>, code_of: fn(Status) -> StatusCode) -> Response {
    let tags = query::tags(query);
    if tags.is_empty() {
        let snapshot = inner.snapshot().await;
        return json_bytes(code_of(snapshot.report.status), snapshot.body.clone());
    }
    if let Some(refusal) = unknown_tags(inner, &tags) {
        return refusal;
    }
    let snapshot = inner.snapshot().await;
    let report = filtered(&snapshot, &tags);
    json(code_of(report.status), &report)
}

/// 404 naming the requested tags that no probe has, if any.
pub(crate) fn unknown_tags(inner: &Inner, tags: &[String]) -> Option<Response> {
    #[derive(Serialize)]
    struct UnknownTags<'a> {
        detail: String,
        unknown_tags: &'a [&'a str],
    }
    let unknown: Vec<&str> = tags.iter().map(String::as_str).filter(|t| !inner.has_tag(t)).collect();
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

async fn history(State(inner): Shared) -> Response {
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
    let history = inner.storage.history().await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "could not read history; answering with none");
        Vec::new()
    });
    json(
        StatusCode::OK,
        &Body {
            probes: Probes(history),
        },
    )
}

async fn alerts(State(inner): Shared) -> Response {
    #[derive(Serialize)]
    struct Body {
        alerts: Vec<AlertRecord>,
    }
    let alerts = inner.storage.alerts().await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "could not read the alert log; answering with none");
        Vec::new()
    });
    json(StatusCode::OK, &Body { alerts })
}

async fn startup(State(inner): Shared) -> Response {
    if !inner.is_started() {
        return json_bytes(StatusCode::SERVICE_UNAVAILABLE, Bytes::from_static(STARTING));
    }
    let report = inner.run_startup_probes().await;
    if report.probes.iter().all(ProbeResult::is_passing) {
        json_bytes(StatusCode::OK, Bytes::from_static(br#"{"status":"started"}"#))
    } else {
        json(StatusCode::SERVICE_UNAVAILABLE, &report)
    }
}

async fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}
