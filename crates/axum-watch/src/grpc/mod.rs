//! gRPC health checking: the standard `grpc.health.v1.Health` service
//! (`Check`, `Watch` and `List`) over the same engine as the HTTP endpoints —
//! the same probes, the same runs, the same lifecycle.
//!
//! Like the HTTP face, this module only reads and formats: the engine
//! decides statuses and the readiness gate, `serving` maps them to a
//! serving status in exactly one place. Reflection details (probe details,
//! errors, latencies) stay out of gRPC: it carries the status alone.
//!
//! # Service names
//!
//! | service | answers |
//! | --- | --- |
//! | `""` | overall readiness, as `GET ready`: `SERVING` when healthy or degraded |
//! | a probe's name | that probe's own status (critical or not): `NOT_SERVING` when it is unhealthy |
//! | `tag:<tag>` | `GET ready?tag=<tag>`: the critical probes with the tag decide |
//! | anything else | `Check` fails with `NOT_FOUND`; `Watch` sends `SERVICE_UNKNOWN` and stays open |
//!
//! The readiness gate comes first for every name, as it does for `ready`:
//! `NOT_SERVING` during the grace period and while draining, `SERVING` in
//! maintenance. A probe name wins over a tag of the same spelling.
//!
//! ```no_run
//! use axum_watch::{probe, HealthRegistry, Outcome, ProbeExt};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = HealthRegistry::builder()
//!     .add(probe::from_fn("db", || async { Ok(Outcome::healthy()) }).with_tags(["storage"]))
//!     .build()?;
//! // Services "", "db" and "tag:storage"; the HTTP endpoints read the same runs.
//! tonic::transport::Server::builder()
//!     .add_service(registry.grpc_service())
//!     .serve("0.0.0.0:50051".parse()?)
//!     .await?;
//! # Ok(())
//! # }
//! ```

mod pb;
mod watch;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::service::interceptor::{InterceptedService, Interceptor};
use tonic_prost::ProstCodec;

use crate::engine::{Engine, Gate, Owner};
use crate::model::{HealthReport, Status};
use pb::{HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse, ServingStatus};

/// The prefix that names a tag rather than a probe.
const TAG: &str = "tag:";

/// The `grpc.health.v1.Health` service of a registry, for tonic's server:
/// `Server::builder().add_service(registry.grpc_service())`; see
/// [`HealthRegistry::grpc_service`](crate::HealthRegistry::grpc_service).
///
/// Cheap to clone; every clone reads the same engine.
///
/// ```
/// use axum_watch::HealthRegistry;
/// use tonic::server::NamedService;
/// use tonic::{Request, Status};
///
/// let registry = HealthRegistry::builder().build().unwrap();
/// // The same credentials as the HTTP endpoints, checked on gRPC metadata.
/// let guarded = registry.grpc_service().with_interceptor(|request: Request<()>| {
///     match request.metadata().get("x-api-key") {
///         Some(key) if key == "s3cret" => Ok(request),
///         _ => Err(Status::unauthenticated("missing or wrong x-api-key")),
///     }
/// });
/// fn named<S: NamedService>(_: &S) -> &'static str { S::NAME }
/// assert_eq!(named(&guarded), "grpc.health.v1.Health");
/// ```
#[derive(Clone)]
pub struct HealthService {
    engine: Arc<Owner>,
}

impl fmt::Debug for HealthService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthService")
            .field("probes", &self.engine.probe_names())
            .finish_non_exhaustive()
    }
}

impl HealthService {
    pub(crate) fn new(engine: &Arc<Owner>) -> Self {
        Self {
            engine: Arc::clone(engine),
        }
    }

    /// The service behind `interceptor`, which sees every call's metadata
    /// first and may refuse it (say, with `Status::unauthenticated`): the
    /// hook for guarding health checks with the application's credentials.
    #[must_use]
    pub fn with_interceptor<F: Interceptor>(self, interceptor: F) -> InterceptedService<Self, F> {
        InterceptedService::new(self, interceptor)
    }
}

impl NamedService for HealthService {
    const NAME: &'static str = "grpc.health.v1.Health";
}

impl<B> tower_service::Service<http::Request<B>> for HealthService
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let engine = Arc::clone(&self.engine);
        match request.uri().path() {
            "/grpc.health.v1.Health/Check" => Box::pin(async move {
                let codec = ProstCodec::<HealthCheckResponse, HealthCheckRequest>::default();
                Ok(Grpc::new(codec).unary(CheckCall(engine), request).await)
            }),
            "/grpc.health.v1.Health/Watch" => Box::pin(async move {
                let codec = ProstCodec::<HealthCheckResponse, HealthCheckRequest>::default();
                Ok(Grpc::new(codec)
                    .server_streaming(watch::WatchCall(engine), request)
                    .await)
            }),
            "/grpc.health.v1.Health/List" => Box::pin(async move {
                let codec = ProstCodec::<HealthListResponse, HealthListRequest>::default();
                Ok(Grpc::new(codec).unary(ListCall(engine), request).await)
            }),
            _ => Box::pin(async { Ok(tonic::Status::unimplemented("").into_http()) }),
        }
    }
}

/// What a service name stands for; the name itself says which probe or tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Overall,
    Probe,
    Tag,
}

/// What `service` names, if anything.
fn resolve(engine: &Engine, service: &str) -> Option<Target> {
    if service.is_empty() {
        return Some(Target::Overall);
    }
    if engine.entries().iter().any(|e| e.name == service) {
        return Some(Target::Probe);
    }
    let tag = service.strip_prefix(TAG)?;
    engine.has_tag(tag).then_some(Target::Tag)
}

/// The one place a serving status is decided from a gate.
fn gated(gate: Gate) -> ServingStatus {
    match gate {
        Gate::Draining | Gate::Starting => ServingStatus::NotServing,
        Gate::Maintenance => ServingStatus::Serving,
    }
}

/// The one place a serving status is decided from a report: only an
/// unhealthy status does not serve, as only an unhealthy one is unready.
fn serving(report: &HealthReport, target: Target, service: &str) -> ServingStatus {
    let status = match target {
        Target::Overall => Some(report.status),
        Target::Probe => report.probe(service).map(|p| p.status),
        Target::Tag => {
            let tag = service.strip_prefix(TAG).unwrap_or(service);
            Some(Status::overall(
                report.probes.iter().filter(|p| p.tags.iter().any(|t| t == tag)),
            ))
        }
    };
    match status {
        None => ServingStatus::Unknown,
        Some(Status::Unhealthy) => ServingStatus::NotServing,
        Some(Status::Healthy | Status::Degraded) => ServingStatus::Serving,
    }
}

/// `service`'s status now: from the gate when one is closed (no probe
/// runs), else from the current report.
async fn check(engine: &Arc<Owner>, service: &str) -> Result<ServingStatus, tonic::Status> {
    let Some(target) = resolve(engine, service) else {
        return Err(tonic::Status::not_found("unknown service"));
    };
    if let Some(gate) = engine.readiness_gate() {
        return Ok(gated(gate));
    }
    let snapshot = engine.report().await;
    Ok(serving(&snapshot.report, target, service))
}

/// Every service's status from one report: `""`, each probe, each tag.
async fn list(engine: &Arc<Owner>) -> HealthListResponse {
    let gate = engine.readiness_gate();
    let snapshot = match gate {
        Some(_) => None,
        None => Some(engine.report().await),
    };
    let status = |target: Target, service: &str| match (gate, &snapshot) {
        (Some(gate), _) => gated(gate),
        (None, Some(snapshot)) => serving(&snapshot.report, target, service),
        (None, None) => ServingStatus::Unknown,
    };
    let entries = engine.entries();
    let mut statuses = HashMap::with_capacity(entries.len() * 2 + 1);
    statuses.insert(String::new(), HealthCheckResponse::of(status(Target::Overall, "")));
    for entry in entries.iter() {
        for tag in &entry.tags {
            if let Entry::Vacant(slot) = statuses.entry(format!("{TAG}{tag}")) {
                let answer = HealthCheckResponse::of(status(Target::Tag, slot.key()));
                slot.insert(answer);
            }
        }
    }
    // Inserted last: a probe name wins over a tag of the same spelling.
    for entry in entries.iter() {
        let answer = HealthCheckResponse::of(status(Target::Probe, &entry.name));
        statuses.insert(entry.name.clone(), answer);
    }
    HealthListResponse { statuses }
}

struct CheckCall(Arc<Owner>);

impl UnaryService<HealthCheckRequest> for CheckCall {
    type Response = HealthCheckResponse;
    type Future = BoxFuture<'static, Result<tonic::Response<HealthCheckResponse>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<HealthCheckRequest>) -> Self::Future {
        let engine = Arc::clone(&self.0);
        Box::pin(async move {
            let service = request.into_inner().service;
            let status = check(&engine, &service).await?;
            Ok(tonic::Response::new(HealthCheckResponse::of(status)))
        })
    }
}

struct ListCall(Arc<Owner>);

impl UnaryService<HealthListRequest> for ListCall {
    type Response = HealthListResponse;
    type Future = BoxFuture<'static, Result<tonic::Response<HealthListResponse>, tonic::Status>>;

    fn call(&mut self, _request: tonic::Request<HealthListRequest>) -> Self::Future {
        let engine = Arc::clone(&self.0);
        Box::pin(async move { Ok(tonic::Response::new(list(&engine).await)) })
    }
}
