//! [`ThresholdProbe`]: degrade or fail any probe on values in its details.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::model::{Details, Status};
use crate::probe::{Outcome, Probe, ProbeError, ProbeOptions};

type Predicate = Box<dyn Fn(&Details) -> bool + Send + Sync>;

/// Wraps a probe and turns its result degraded or unhealthy from the values
/// it already reports in `details`, without changing the probe itself.
///
/// The rules, in order:
/// - an unhealthy inner result (or an error) passes through unchanged;
///   neither predicate is called;
/// - `fail_if(details)` true → unhealthy, error `fail_if condition met`;
/// - else `warn_if(details)` true → degraded, error `warn_if condition met`;
/// - else the inner result is kept as it is (a degraded one stays degraded).
///
/// A predicate that panics counts as false (and is logged at WARN). The
/// details and latency of the inner result are always kept. The wrapper
/// keeps the inner probe's name, description, tags and options; rename it
/// with [`ProbeExt::with_name`](crate::ProbeExt::with_name).
///
/// ```
/// use axum_watch::probes::{DiskSpaceProbe, ThresholdProbe};
/// use axum_watch::{Probe, ProbeExt};
///
/// let disk = ThresholdProbe::new(DiskSpaceProbe::new("/"))
///     .warn_if(|d| d["used_bytes"].as_u64().unwrap_or(0) > 500 << 30)
///     .fail_if(|d| d["free_percent"].as_f64().is_some_and(|p| p < 1.0))
///     .with_name("root-disk");
/// assert_eq!(disk.name(), "root-disk");
/// ```
pub struct ThresholdProbe<P> {
    inner: P,
    warn_if: Option<Predicate>,
    fail_if: Option<Predicate>,
}

impl<P: fmt::Debug> fmt::Debug for ThresholdProbe<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThresholdProbe")
            .field("inner", &self.inner)
            .field("warn_if", &self.warn_if.is_some())
            .field("fail_if", &self.fail_if.is_some())
            .finish()
    }
}

impl<P: Probe> ThresholdProbe<P> {
    /// Wraps `inner` with no predicates yet (its result passes through).
    #[must_use]
    pub fn new(inner: P) -> Self {
        Self {
            inner,
            warn_if: None,
            fail_if: None,
        }
    }

    /// Degraded when `predicate` returns true for the inner details.
    #[must_use]
    pub fn warn_if<F>(mut self, predicate: F) -> Self
    where
        F: Fn(&Details) -> bool + Send + Sync + 'static,
    {
        self.warn_if = Some(Box::new(predicate));
        self
    }

    /// Unhealthy when `predicate` returns true for the inner details.
    #[must_use]
    pub fn fail_if<F>(mut self, predicate: F) -> Self
    where
        F: Fn(&Details) -> bool + Send + Sync + 'static,
    {
        self.fail_if = Some(Box::new(predicate));
        self
    }

    /// The wrapped probe.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    fn holds(&self, which: &str, predicate: Option<&Predicate>, details: &Details) -> bool {
        let Some(predicate) = predicate else {
            return false;
        };
        match catch_unwind(AssertUnwindSafe(|| predicate(details))) {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    probe = self.inner.name(),
                    "{which} predicate panicked; treated as false"
                );
                false
            }
        }
    }
}

impl<P: Probe> Probe for ThresholdProbe<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn description(&self) -> Option<&str> {
        self.inner.description()
    }

    fn tags(&self) -> Vec<String> {
        self.inner.tags()
    }

    fn options(&self) -> ProbeOptions {
        self.inner.options()
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        let outcome = self.inner.check().await?;
        if outcome.status() == Status::Unhealthy {
            return Ok(outcome);
        }
        let (status, error) = if self.holds("fail_if", self.fail_if.as_ref(), outcome.details()) {
            (Status::Unhealthy, "fail_if condition met")
        } else if self.holds("warn_if", self.warn_if.as_ref(), outcome.details()) {
            (Status::Degraded, "warn_if condition met")
        } else {
            return Ok(outcome);
        };
        let (_, _, details, latency) = outcome.into_parts();
        let promoted = Outcome::new(status).error_text(error).details_from(details);
        Ok(match latency {
            Some(latency) => promoted.latency(latency),
            None => promoted,
        })
    }
}
