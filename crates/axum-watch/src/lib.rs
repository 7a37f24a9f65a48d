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
#[cfg(feature = "prometheus-client")]
mod exporter;
mod http;
pub mod model;
pub mod passive;
pub mod probe;
pub mod probes;
mod redact;
mod registry;
pub mod storage;

pub use alert::{AlertError, Alerter};
#[cfg(feature = "alerts")]
pub use alert::{PagerDutyAlerter, SlackAlerter, TeamsAlerter, WebhookAlerter};
pub use engine::{CheckRuntime, Lifecycle, MIN_POLL_INTERVAL, MaintenanceStatus, Scheduling};
#[cfg(feature = "prometheus-client")]
pub use exporter::MetricsCollector;
pub use http::auth::{AuthRequest, OpenEndpoint};
pub use http::dashboard::DashboardContext;
pub use model::{AlertRecord, HealthReport, ProbeResult, Status, Timestamp};
pub use probe::{Outcome, Probe, ProbeError, ProbeExt, ProbeHandle, ProbeOptions, Timeout};
pub use redact::redact;
pub use registry::{BuildError, BuildErrorKind, HealthRegistry, HealthRegistryBuilder, ProbeGroup, shutdown_signal};
pub use storage::{MemoryStorage, ReplicaReport, Storage, StorageError, WriteBuffer};
#[cfg(feature = "postgres-storage")]
pub use storage::{PostgresStorage, PostgresStorageBuilder};
#[cfg(feature = "redis-storage")]
pub use storage::{RedisStorage, RedisStorageBuilder};
