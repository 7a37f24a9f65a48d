//! [`NoOpProbe`]: a placeholder that is always healthy.

use crate::probe::{Outcome, Probe, ProbeError};

/// A probe that is always healthy: a placeholder while real probes are being
/// written, or a way to give `/ready` something to report.
///
/// Its name is `noop`; give it another with
/// [`ProbeExt::with_name`](crate::ProbeExt::with_name).
///
/// ```
/// use axum_watch::{probes::NoOpProbe, HealthRegistry, ProbeExt, Status};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let registry = HealthRegistry::builder()
///     .add(NoOpProbe::new())
///     .add(NoOpProbe::new().with_name("placeholder"))
///     .build()
///     .unwrap();
/// let report = registry.run_all().await;
/// assert_eq!(report.status, Status::Healthy);
/// assert_eq!(report.probes[1].name, "placeholder");
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct NoOpProbe;

impl NoOpProbe {
    /// The probe, named `noop`.
    #[must_use]
    pub const fn new() -> Self {
        Self
    }
}

impl Probe for NoOpProbe {
    fn name(&self) -> &str {
        "noop"
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        Ok(Outcome::healthy())
    }
}
