//! The one timeout every step of an active probe goes through, so that all
//! of them say `timed out after …` as the engine does.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::ProbeError;

/// How long a step of a check may take: until a deadline, reported as the
/// budget the deadline was set from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit {
    deadline: Instant,
    budget: Duration,
}

impl Limit {
    /// Until `deadline`, which was set `budget` after the check began: the
    /// steps of one check share it.
    pub(crate) fn until(deadline: Instant, budget: Duration) -> Self {
        Self { deadline, budget }
    }

    /// Until `deadline`, reported as the time left to it now (rounded up to
    /// whole milliseconds).
    #[cfg(feature = "celery")]
    pub(crate) fn by(deadline: Instant) -> Self {
        let left = deadline.saturating_duration_since(Instant::now());
        let millis = u64::try_from(left.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
        Self::until(deadline, Duration::from_millis(millis))
    }
}

impl From<Duration> for Limit {
    /// `budget` from now.
    fn from(budget: Duration) -> Self {
        Self::until(Instant::now() + budget, budget)
    }
}

/// Runs `future` within `limit`. When time runs out the error is a
/// `Timeout` saying what was being done, in the engine's words:
/// `connecting to db:5432: timed out after 2s` (redacted); the future's own
/// error is returned as it is.
pub(crate) async fn within<T, E>(
    limit: impl Into<Limit>,
    doing: &str,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, ProbeError>
where
    E: Into<ProbeError>,
{
    let limit = limit.into();
    match tokio::time::timeout_at(limit.deadline, future).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(ProbeError::with_kind(
            "Timeout",
            crate::redact(&format!("{doing}: timed out after {:?}", limit.budget)).into_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{Duration, Instant, Limit, ProbeError, within};

    #[tokio::test(start_paused = true)]
    async fn a_slow_step_times_out_in_the_engines_words() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, ProbeError>(())
        };
        let err = within(Duration::from_secs(2), "connecting to db:5432", slow)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "Timeout: connecting to db:5432: timed out after 2s");
    }

    #[tokio::test(start_paused = true)]
    async fn steps_share_a_deadline_and_report_its_budget() {
        let limit = Limit::until(Instant::now() + Duration::from_millis(500), Duration::from_millis(500));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let err = within(limit, "redis PING", std::future::pending::<Result<(), ProbeError>>())
            .await
            .unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        assert_eq!(err.to_string(), "Timeout: redis PING: timed out after 500ms");
    }

    #[cfg(feature = "celery")]
    #[tokio::test(start_paused = true)]
    async fn a_bare_deadline_reports_the_time_left_in_whole_milliseconds() {
        let err = within(
            Limit::by(Instant::now() + Duration::from_micros(1500)),
            "BRPOP",
            std::future::pending::<Result<(), ProbeError>>(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "Timeout: BRPOP: timed out after 2ms");
    }

    #[tokio::test]
    async fn the_steps_own_error_passes_through() {
        let failing = async { Err::<(), _>(ProbeError::with_kind("SmtpError", "EHLO rejected")) };
        let err = within(Duration::from_secs(1), "EHLO", failing).await.unwrap_err();
        assert_eq!(err.to_string(), "SmtpError: EHLO rejected");
    }
}
