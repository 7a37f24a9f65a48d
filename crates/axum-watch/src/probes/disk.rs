//! [`DiskSpaceProbe`]: free space on the file system holding a path.

use std::fmt;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::model::Status;
use crate::probe::{Outcome, Probe, ProbeError};

/// A free-space limit, in bytes or in percent of the file system's size.
///
/// ```
/// use axum_watch::probes::SpaceThreshold;
///
/// let gib = SpaceThreshold::Bytes(1 << 30);
/// let tenth = SpaceThreshold::Percent(10.0);
/// assert_ne!(gib, tenth);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SpaceThreshold {
    /// Fewer free bytes than this.
    Bytes(u64),
    /// Less free space than this share of the total, from 0 to 100.
    Percent(f64),
}

impl SpaceThreshold {
    /// Whether `free` bytes, `free_percent` of the total, are below the limit.
    fn is_crossed(self, free: u64, free_percent: f64) -> bool {
        match self {
            Self::Bytes(limit) => free < limit,
            Self::Percent(limit) => free_percent < limit,
        }
    }

    fn validate(self, option: &str) -> Result<(), ProbeError> {
        match self {
            Self::Percent(p) if !(p.is_finite() && (0.0..=100.0).contains(&p)) => Err(ProbeError::msg(format!(
                "invalid DiskSpaceProbe option {option}: a percentage must be between 0 and 100, got {p}"
            ))),
            _ => Ok(()),
        }
    }

    fn to_json(self) -> Value {
        match self {
            Self::Bytes(b) => json!({ "bytes": b }),
            Self::Percent(p) => json!({ "percent": p }),
        }
    }
}

impl fmt::Display for SpaceThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "{b} bytes"),
            Self::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// Reports the free space of the file system that holds a path.
///
/// `free` is the space available to the service's (unprivileged) user, as
/// `df` shows it. With [`warn_below`](Self::warn_below) set, less free space
/// is degraded; with [`fail_below`](Self::fail_below), unhealthy (the stricter
/// verdict wins). Without thresholds the probe is healthy whenever the path
/// can be examined. The `statvfs` call runs on tokio's blocking pool.
///
/// Default name `disk` (probe names cannot hold `/`; rename further disks
/// with [`ProbeExt::with_name`](crate::ProbeExt::with_name)). Details: `path`, `total_bytes`, `free_bytes`,
/// `used_bytes`, `free_percent`, plus `warn_below` / `fail_below`
/// (`{"bytes": n}` or `{"percent": p}`) when set. A path that does not exist
/// or a percentage outside 0–100 makes the check unhealthy with a clear error.
///
/// ```
/// use axum_watch::probes::{DiskSpaceProbe, SpaceThreshold};
/// use axum_watch::{Probe, Status};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let probe = DiskSpaceProbe::new("/")
///     .warn_below(SpaceThreshold::Percent(10.0))
///     .fail_below(SpaceThreshold::Bytes(512 * 1024 * 1024));
/// assert_eq!(probe.name(), "disk");
/// let outcome = probe.check().await.unwrap();
/// assert!(outcome.details()["total_bytes"].as_u64().unwrap() > 0);
/// # let _ = Status::Healthy;
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DiskSpaceProbe {
    path: PathBuf,
    warn_below: Option<SpaceThreshold>,
    fail_below: Option<SpaceThreshold>,
}

impl DiskSpaceProbe {
    /// A probe of the file system holding `path`.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            warn_below: None,
            fail_below: None,
        }
    }

    /// Degraded when free space is below `threshold`.
    #[must_use]
    pub fn warn_below(mut self, threshold: SpaceThreshold) -> Self {
        self.warn_below = Some(threshold);
        self
    }

    /// Unhealthy when free space is below `threshold`.
    #[must_use]
    pub fn fail_below(mut self, threshold: SpaceThreshold) -> Self {
        self.fail_below = Some(threshold);
        self
    }
}

impl Probe for DiskSpaceProbe {
    fn name(&self) -> &str {
        "disk"
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        if let Some(t) = self.warn_below {
            t.validate("warn_below")?;
        }
        if let Some(t) = self.fail_below {
            t.validate("fail_below")?;
        }
        let path = self.path.clone();
        let stats = tokio::task::spawn_blocking(move || fs4::statvfs(path))
            .await
            .map_err(|e| ProbeError::msg(format!("disk statistics could not be read: {e}")))?
            .map_err(|e| ProbeError::msg(format!("disk statistics of {} failed: {e}", self.path.display())))?;

        let total = stats.total_space();
        let free = stats.available_space();
        let used = total.saturating_sub(stats.free_space());
        // Thresholds compare the exact share; details show two decimals.
        #[allow(clippy::cast_precision_loss)] // a percentage needs no more than f64's 52 bits
        let exact_percent = if total == 0 {
            0.0
        } else {
            free as f64 / total as f64 * 100.0
        };
        let free_percent = crate::model::round(exact_percent, 2);

        let (status, crossed) = if let Some(t) = self.fail_below.filter(|t| t.is_crossed(free, exact_percent)) {
            (Status::Unhealthy, Some(("failure", t)))
        } else if let Some(t) = self.warn_below.filter(|t| t.is_crossed(free, exact_percent)) {
            (Status::Degraded, Some(("warning", t)))
        } else {
            (Status::Healthy, None)
        };
        let mut outcome = Outcome::new(status);
        if let Some((level, t)) = crossed {
            outcome = outcome.error_text(format!(
                "free space {free} bytes ({free_percent}%) is below the {level} threshold of {t}"
            ));
        }
        outcome = outcome
            .detail("path", self.path.display().to_string())
            .detail("total_bytes", total)
            .detail("free_bytes", free)
            .detail("used_bytes", used)
            .detail("free_percent", free_percent);
        if let Some(t) = self.warn_below {
            outcome = outcome.detail("warn_below", t.to_json());
        }
        if let Some(t) = self.fail_below {
            outcome = outcome.detail("fail_below", t.to_json());
        }
        Ok(outcome)
    }
}
