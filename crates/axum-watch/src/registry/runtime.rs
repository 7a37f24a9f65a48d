//! Probes added to and removed from a built registry: the public face of
//! the engine's list changes, with its typed error.

use super::HealthRegistry;
use super::group::Registration;
use crate::engine::Refusal;
use crate::probe::ProbeHandle;

/// Why [`HealthRegistry::add_probe`] refused a probe: a
/// [`kind`](Self::kind) to match on and a message that names the probe.
///
/// Every refusal is also logged (WARN) and counted in `/metrics` as
/// `health_probes_refused_total{reason=…}`.
///
/// ```
/// use axum_watch::{probe, AddProbeErrorKind, HealthRegistry, Outcome};
///
/// let registry = HealthRegistry::builder()
///     .add(probe::from_fn("db", || async { Ok(Outcome::healthy()) }))
///     .build()
///     .unwrap();
/// let err = registry.add_probe(probe::from_fn("db", || async { Ok(Outcome::healthy()) })).unwrap_err();
/// assert_eq!(err.kind(), AddProbeErrorKind::DuplicateProbeName);
/// assert_eq!(err.to_string(), "a probe named \"db\" is registered already");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AddProbeError {
    kind: AddProbeErrorKind,
    message: String,
}

/// The cause of an [`AddProbeError`]; new kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddProbeErrorKind {
    /// A probe name outside `[A-Za-z0-9_.:-]+`.
    InvalidProbeName,
    /// Another registered probe has this name.
    DuplicateProbeName,
    /// An option of the probe outside its range (a zero threshold, for example).
    InvalidOption,
    /// As many probes as [`max_runtime_probes`](crate::HealthRegistryBuilder::max_runtime_probes)
    /// allows were added at runtime already.
    LimitReached,
}

impl AddProbeError {
    /// What was wrong with the probe.
    #[must_use]
    pub fn kind(&self) -> AddProbeErrorKind {
        self.kind
    }
}

impl HealthRegistry {
    /// Registers a critical probe on the running registry, after every
    /// other probe. It is checked at once in the background (on a runtime;
    /// outside one, by the next request), and from then on the report,
    /// `/status`, `/metrics`, both streams, the dashboard's data, `/probes`
    /// and the exporters include it; a reader that arrives before its first
    /// result joins that check. The registry's defaults (timeout, circuit
    /// breaker, thresholds, redaction) apply as to the builder's probes.
    ///
    /// # Errors
    ///
    /// An invalid name or option, a name that is registered already, or
    /// the cap of [`max_runtime_probes`](crate::HealthRegistryBuilder::max_runtime_probes);
    /// each refusal is logged and counted.
    ///
    /// ```
    /// use axum_watch::{probe, HealthRegistry, Outcome};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let registry = HealthRegistry::builder().build().unwrap();
    /// registry.add_probe(probe::from_fn("tenant-42", || async { Ok(Outcome::healthy()) })).unwrap();
    /// assert_eq!(registry.probe_names(), ["tenant-42"]);
    /// assert!(registry.report().await.probe("tenant-42").is_some());
    ///
    /// assert!(registry.remove_probe("tenant-42"));
    /// assert!(registry.report().await.probe("tenant-42").is_none());
    /// # }
    /// ```
    pub fn add_probe(&self, probe: impl Into<ProbeHandle>) -> Result<(), AddProbeError> {
        self.add_registration(Registration {
            probe: probe.into(),
            critical: true,
            extra_tags: Vec::new(),
        })
    }

    /// Like [`add_probe`](Self::add_probe) for a probe that is reported but
    /// never changes the overall status.
    ///
    /// # Errors
    ///
    /// As [`add_probe`](Self::add_probe).
    ///
    /// ```
    /// use axum_watch::{probe, HealthRegistry, Outcome};
    ///
    /// let registry = HealthRegistry::builder().build().unwrap();
    /// registry
    ///     .add_probe_non_critical(probe::from_fn("cache", || async { Ok(Outcome::unhealthy("down")) }))
    ///     .unwrap();
    /// assert!(!registry.probes()[0].critical);
    /// ```
    pub fn add_probe_non_critical(&self, probe: impl Into<ProbeHandle>) -> Result<(), AddProbeError> {
        self.add_registration(Registration {
            probe: probe.into(),
            critical: false,
            extra_tags: Vec::new(),
        })
    }

    /// Removes the probe called `name`, whether the builder or
    /// [`add_probe`](Self::add_probe) registered it; `false` when there is
    /// none. The latest report is published again without it at once
    /// (streams get an event), and a result of it that a run still brings
    /// in is dropped. Its history stays in the storage until it ages out.
    /// A probe added at runtime that is removed makes room under
    /// [`max_runtime_probes`](crate::HealthRegistryBuilder::max_runtime_probes).
    ///
    /// ```
    /// use axum_watch::{probe, HealthRegistry, Outcome};
    ///
    /// let registry = HealthRegistry::builder()
    ///     .add(probe::from_fn("legacy-db", || async { Ok(Outcome::healthy()) }))
    ///     .build()
    ///     .unwrap();
    /// assert!(registry.remove_probe("legacy-db"));
    /// assert!(!registry.remove_probe("legacy-db"));
    /// assert!(registry.probe_names().is_empty());
    /// ```
    #[allow(
        clippy::must_use_candidate,
        reason = "like `HashSet::remove`: the removal is the point, the answer optional"
    )]
    pub fn remove_probe(&self, name: &str) -> bool {
        self.engine.remove(name)
    }

    /// How many probes added at runtime are registered now (what
    /// [`max_runtime_probes`](crate::HealthRegistryBuilder::max_runtime_probes) bounds).
    #[must_use]
    pub fn runtime_probes(&self) -> usize {
        self.engine.runtime_probes()
    }

    /// A layer that gives every route of the router it wraps its own
    /// passive [`RouteProbe`](crate::passive::RouteProbe), registered on
    /// this registry the first time the route is served (fastapi-watch's
    /// `discover_routes`; applied to a nested router, its `watch_router`).
    /// Discovered probes count under
    /// [`max_runtime_probes`](crate::HealthRegistryBuilder::max_runtime_probes).
    /// See [`RouteDiscovery`](crate::passive::RouteDiscovery) for the
    /// options, the names and the precedence of hand-placed probes.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use axum_watch::HealthRegistry;
    ///
    /// let registry = HealthRegistry::builder().build().unwrap();
    /// let app: Router = Router::new()
    ///     .route("/users/{id}", get(|| async { "{}" }))
    ///     .route("/metrics/internal", get(|| async { "" }))
    ///     .layer(registry.discover_routes().exclude("/metrics/*").with_tags(["api"]))
    ///     .merge(registry.router());
    /// # drop(app);
    /// ```
    #[must_use]
    pub fn discover_routes(&self) -> crate::passive::RouteDiscovery {
        crate::passive::RouteDiscovery::new(self.clone())
    }

    pub(crate) fn add_registration(&self, registration: Registration) -> Result<(), AddProbeError> {
        let name = registration.probe.name().to_owned();
        let entry = match self.defaults.resolve(0, registration, true) {
            Ok(entry) => entry,
            Err(error) => {
                self.engine.refuse(&name, Refusal::Invalid);
                let kind = if error.kind() == super::BuildErrorKind::InvalidProbeName {
                    AddProbeErrorKind::InvalidProbeName
                } else {
                    AddProbeErrorKind::InvalidOption
                };
                return Err(AddProbeError {
                    kind,
                    message: error.to_string(),
                });
            }
        };
        self.engine.insert(entry).map_err(|refusal| match refusal {
            Refusal::Duplicate => AddProbeError {
                kind: AddProbeErrorKind::DuplicateProbeName,
                message: format!("a probe named {name:?} is registered already"),
            },
            Refusal::Limit => AddProbeError {
                kind: AddProbeErrorKind::LimitReached,
                message: format!("probe {name:?} refused: the cap of probes added at runtime is reached"),
            },
            Refusal::Invalid => AddProbeError {
                kind: AddProbeErrorKind::InvalidOption,
                message: format!("probe {name:?} is invalid"),
            },
        })
    }
}
