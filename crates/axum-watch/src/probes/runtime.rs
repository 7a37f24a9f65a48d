//! [`RuntimeProbe`]: scheduling lag of the tokio runtime, the analogue of an
//! event-loop lag probe.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, RuntimeFlavor};

use crate::model::Status;
use crate::probe::{Outcome, Probe, ProbeError};

const DEFAULT_WARN_MS: f64 = 5.0;
const DEFAULT_FAIL_MS: f64 = 20.0;
/// Rounds of samples. The check only starts once the thread is free, so its
/// first sample tends to fall in a gap between two blocking stretches; the
/// later ones span a few milliseconds and land in the next stretch.
const SAMPLES: usize = 3;
/// tokio's timer fires on whole-millisecond ticks: a zero sleep on an idle
/// runtime takes up to this long.
const TIMER_RESOLUTION: Duration = Duration::from_millis(1);

/// Returns pending once after waking its own task. A task woken while it
/// runs is queued behind the tasks already waiting on its worker (unlike
/// `yield_now`, which defers the wake-up until the worker is idle and then
/// resumes the last yielder first).
#[derive(Default)]
struct YieldBehindQueued {
    yielded: bool,
}

impl Future for YieldBehindQueued {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Measures how late the tokio runtime gets back to a task that is ready to
/// run: a blocked runtime (CPU-bound work or blocking calls inside async
/// code) shows up as lag.
///
/// The check takes three rounds of two samples (a few milliseconds in all
/// on an idle runtime) and reports the largest:
/// - it wakes itself and yields, which puts it behind every task already
///   queued on its worker, and times how late it is polled again (precise
///   to microseconds; [`yield_now`](tokio::task::yield_now) is not used
///   because tokio resumes the most recently yielded task first, ahead of
///   tasks that yielded before it);
/// - it sleeps for zero time and times how late the timer wakes it, less
///   the timer's 1 ms resolution, which catches a task that holds the thread
///   between yields of its own.
///
/// On an idle runtime the lag is a fraction of a millisecond. On a
/// multi-thread runtime it is the lag of the worker the check runs on (the
/// registry spawns each check as its own task); `global_queue_depth` shows
/// a backlog across all workers.
///
/// Lag at or above `warn_ms` (default 5) is degraded, at or above `fail_ms`
/// (default 20) unhealthy. Default name `runtime`. Details: `lag_ms`,
/// `warn_ms`, `fail_ms`, `flavor` (`current_thread` or `multi_thread`),
/// `workers`, `alive_tasks` and `global_queue_depth` (from the runtime's
/// stable metrics). Thresholds that are negative, not finite, or with
/// `warn_ms` above `fail_ms` make the check unhealthy with a clear error.
///
/// ```
/// use axum_watch::{probes::RuntimeProbe, Probe, Status};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let probe = RuntimeProbe::new().warn_ms(10.0).fail_ms(50.0);
/// let outcome = probe.check().await.unwrap();
/// let details = outcome.details();
/// assert_eq!(details["warn_ms"], 10.0);
/// assert_eq!(details["workers"], 1);
/// assert!(details["lag_ms"].as_f64().unwrap() >= 0.0);
/// # let _ = Status::Healthy;
/// # }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RuntimeProbe {
    warn_ms: f64,
    fail_ms: f64,
}

impl Default for RuntimeProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl RuntimeProbe {
    /// The probe with its default thresholds (5 ms and 20 ms).
    #[must_use]
    pub const fn new() -> Self {
        Self {
            warn_ms: DEFAULT_WARN_MS,
            fail_ms: DEFAULT_FAIL_MS,
        }
    }

    /// Lag in milliseconds from which the probe is degraded (default 5).
    #[must_use]
    pub const fn warn_ms(mut self, ms: f64) -> Self {
        self.warn_ms = ms;
        self
    }

    /// Lag in milliseconds from which the probe is unhealthy (default 20).
    #[must_use]
    pub const fn fail_ms(mut self, ms: f64) -> Self {
        self.fail_ms = ms;
        self
    }

    fn validate(&self) -> Result<(), ProbeError> {
        for (option, value) in [("warn_ms", self.warn_ms), ("fail_ms", self.fail_ms)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(ProbeError::msg(format!(
                    "invalid RuntimeProbe option {option}: it must be a finite, non-negative number of milliseconds, got {value}"
                )));
            }
        }
        if self.warn_ms > self.fail_ms {
            return Err(ProbeError::msg(format!(
                "invalid RuntimeProbe options: warn_ms ({}) is above fail_ms ({})",
                self.warn_ms, self.fail_ms
            )));
        }
        Ok(())
    }
}

impl Probe for RuntimeProbe {
    fn name(&self) -> &str {
        "runtime"
    }

    /// It measures the application's runtime, so it runs there.
    fn options(&self) -> crate::probe::ProbeOptions {
        crate::probe::ProbeOptions {
            on_caller_runtime: true,
            ..crate::probe::ProbeOptions::default()
        }
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        self.validate()?;
        let handle = Handle::try_current().map_err(|e| ProbeError::msg(format!("no tokio runtime: {e}")))?;

        let mut lag = Duration::ZERO;
        for _ in 0..SAMPLES {
            let yielded = Instant::now();
            YieldBehindQueued::default().await;
            lag = lag.max(yielded.elapsed());
            let slept = Instant::now();
            tokio::time::sleep(Duration::ZERO).await;
            lag = lag.max(slept.elapsed().saturating_sub(TIMER_RESOLUTION));
        }
        let lag_ms = super::millis(lag);

        let (status, error) = if lag_ms >= self.fail_ms {
            (
                Status::Unhealthy,
                Some(format!("runtime lag {lag_ms} ms is at or above {} ms", self.fail_ms)),
            )
        } else if lag_ms >= self.warn_ms {
            (
                Status::Degraded,
                Some(format!("runtime lag {lag_ms} ms is at or above {} ms", self.warn_ms)),
            )
        } else {
            (Status::Healthy, None)
        };
        let mut outcome = Outcome::new(status);
        if let Some(error) = error {
            outcome = outcome.error_text(error);
        }

        let metrics = handle.metrics();
        let flavor = match handle.runtime_flavor() {
            RuntimeFlavor::CurrentThread => "current_thread",
            RuntimeFlavor::MultiThread => "multi_thread",
            _ => "other",
        };
        Ok(outcome
            .detail("lag_ms", lag_ms)
            .detail("warn_ms", self.warn_ms)
            .detail("fail_ms", self.fail_ms)
            .detail("flavor", flavor)
            .detail("workers", metrics.num_workers())
            .detail("alive_tasks", metrics.num_alive_tasks())
            .detail("global_queue_depth", metrics.global_queue_depth()))
    }
}
