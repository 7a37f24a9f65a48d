#![doc = include_str!("docs/crate.md")]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[path = "docs/guide.rs"]
pub mod guide;

/// The README's examples, run as doctests: compiled only under
/// `cargo test --doc`, so the published package does not need the README
/// at this path.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

pub mod alert;
mod engine;
#[cfg(any(feature = "prometheus-client", feature = "opentelemetry", feature = "metrics"))]
mod exporter;
#[cfg(feature = "grpc")]
pub mod grpc;
mod http;
pub mod model;
pub mod passive;
pub mod probe;
pub mod probes;
mod redact;
#[cfg(any(feature = "redis", feature = "redis-storage", feature = "celery"))]
mod redis_client;
mod registry;
pub mod storage;
#[cfg(feature = "_tls")]
pub mod tls;

pub use alert::Alerter;
#[cfg(feature = "prometheus-client")]
pub use exporter::MetricsCollector;
#[cfg(feature = "metrics")]
pub use exporter::MetricsReporter;
#[cfg(feature = "opentelemetry")]
pub use exporter::OpenTelemetryInstruments;
pub use model::{AlertRecord, HealthReport, ProbeResult, Status};
pub use probe::{Outcome, Probe, ProbeError, ProbeExt};
pub use redact::redact;
pub use registry::{
    AddProbeError, AddProbeErrorKind, BuildError, BuildErrorKind, HealthRegistry, HealthRegistryBuilder, ProbeGroup,
    shutdown_signal,
};
pub use storage::Storage;

/// The types the builder's options take: where checks run, when they run,
/// which endpoints stay open, what a custom authentication check or a
/// custom dashboard is given, what health+json answers say of the service.
pub mod options {
    pub use crate::engine::{CheckRuntime, MIN_POLL_INTERVAL, Scheduling};
    pub use crate::http::auth::{AuthRequest, OpenEndpoint};
    pub use crate::http::dashboard::DashboardContext;
    pub use crate::http::health_json::ServiceInfo;
}
