//! What the SQL probes share: error text that says what was being done,
//! redacted before it leaves the probe.

use std::future::Future;
use std::time::Duration;

use crate::ProbeError;

/// How long a SQL probe waits for a connection unless told otherwise.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection string a SQL probe could not parse.
///
/// Its text says which driver refused it and why, and never shows the
/// password:
///
/// ```
/// # #[cfg(feature = "postgres")]
/// # fn main() {
/// let err = axum_watch::probes::PostgresProbe::new("postgres://app:s3cret@db:port/x").unwrap_err();
/// assert_eq!(err.to_string(), "invalid PostgreSQL connection string: invalid value for option `port`");
/// # }
/// # #[cfg(not(feature = "postgres"))]
/// # fn main() {}
/// ```
#[cfg(any(feature = "postgres", feature = "mysql"))]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {driver} connection string: {reason}")]
pub struct InvalidConnectionString {
    driver: &'static str,
    reason: String,
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl InvalidConnectionString {
    pub(crate) fn new(driver: &'static str, error: impl Into<ProbeError>) -> Self {
        let error = error.into();
        // tokio-postgres says "invalid connection string: <why>": keep the why.
        let message = error.message();
        let reason = message.strip_prefix("invalid connection string: ").unwrap_or(message);
        Self {
            driver,
            reason: crate::redact(reason).into_owned(),
        }
    }
}

/// `error` as a [`ProbeError`] whose message starts with what was being done;
/// the type name is kept and the text redacted.
pub(crate) fn failed(doing: &str, error: impl Into<ProbeError>) -> ProbeError {
    let error = error.into();
    let message = crate::redact(&format!("{doing}: {}", error.message())).into_owned();
    match error.kind() {
        Some(kind) => ProbeError::with_kind(kind, message),
        None => ProbeError::msg(message),
    }
}

/// Adds `key` when the value could be read; a missing one is left out
/// rather than shown as `null`.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn put<V>(outcome: crate::Outcome, key: &str, value: Option<V>) -> crate::Outcome
where
    V: Into<serde_json::Value>,
{
    match value {
        Some(value) => outcome.detail(key, value),
        None => outcome,
    }
}

/// Runs `future` for at most `limit`; a timeout becomes an error that says
/// what was being done.
pub(crate) async fn within<T, E>(
    limit: Duration,
    doing: &str,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, ProbeError>
where
    E: Into<ProbeError>,
{
    match tokio::time::timeout(limit, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(failed(doing, error)),
        Err(_) => Err(ProbeError::with_kind(
            "Timeout",
            crate::redact(&format!("{doing}: timed out after {limit:?}")).into_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{Duration, ProbeError, failed, within};

    #[test]
    fn failures_say_what_was_done_and_hide_passwords() {
        let err = failed(
            "connecting to postgres://app:s3cret@db/x",
            std::io::Error::other("refused"),
        );
        assert_eq!(
            err.to_string(),
            "io::Error: connecting to postgres://app:***@db/x: refused"
        );
        let plain = failed("pinging", ProbeError::msg("password=hunter2 rejected"));
        assert_eq!(plain.to_string(), "pinging: password=*** rejected");
    }

    #[tokio::test(start_paused = true)]
    async fn slow_work_times_out_with_a_clear_message() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, ProbeError>(())
        };
        let err = within(Duration::from_secs(2), "connecting to db:5432", slow)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "Timeout: connecting to db:5432: timed out after 2s");
    }
}
