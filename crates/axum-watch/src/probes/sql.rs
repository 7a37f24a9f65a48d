//! What the SQL probes share: where the connection comes from, how it is
//! opened or borrowed, and error text that says what was being done,
//! redacted before it leaves the probe.

#[cfg(any(feature = "postgres", feature = "mysql"))]
use std::fmt;
use std::future::Future;
use std::time::Duration;

use super::timeout::within;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use super::{ConfigError, ConfigErrorKind};
use crate::ProbeError;

/// How long a SQL probe waits for a connection unless told otherwise.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection string `probe` could not parse, as a [`ConfigError`] that
/// says which driver refused it and why, and never shows the password:
///
/// ```
/// # #[cfg(feature = "postgres")]
/// # fn main() {
/// let err = axum_watch::probes::PostgresProbe::new("postgres://app:s3cret@db:port/x").unwrap_err();
/// assert_eq!(err.to_string(), "invalid PostgreSQL connection string: invalid value for option `port`");
/// assert_eq!(err.kind(), axum_watch::probes::ConfigErrorKind::InvalidUrl);
/// # }
/// # #[cfg(not(feature = "postgres"))]
/// # fn main() {}
/// ```
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn invalid_connection_string<E>(
    probe: &'static str,
    driver: &str,
    error: crate::tls::UrlError<E>,
) -> ConfigError
where
    E: std::error::Error + 'static,
{
    let error = match error {
        crate::tls::UrlError::Driver(error) => error,
        crate::tls::UrlError::Tls(why) => {
            return ConfigError::new(
                ConfigErrorKind::InvalidOption,
                probe,
                "url",
                format!("invalid {driver} connection string: {why}"),
            );
        }
    };
    let chain = crate::probe::error_chain(&error);
    // tokio-postgres says "invalid connection string: <why>": keep the why.
    let reason = chain.strip_prefix("invalid connection string: ").unwrap_or(&chain);
    let kind = if reason.contains("Unsupported connection URL scheme") {
        ConfigErrorKind::UnsupportedScheme
    } else {
        ConfigErrorKind::InvalidUrl
    };
    ConfigError::new(
        kind,
        probe,
        "url",
        format!("invalid {driver} connection string: {reason}"),
    )
    .with_source(&error)
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

/// The value of a metadata query, or `None` (logged at debug) when it
/// failed: once `SELECT 1` answered, such a query only leaves its fields out.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn best_effort<T>(probe: &str, result: Result<T, ProbeError>) -> Option<T> {
    result
        .inspect_err(|error| tracing::debug!(%error, "{probe} probe: metadata unavailable"))
        .ok()
}

/// Runs one step of a SQL check within `limit`; its error, or its
/// timeout, says what was being done.
pub(crate) async fn step<T, E>(
    limit: Duration,
    doing: &str,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, ProbeError>
where
    E: Into<ProbeError>,
{
    within(limit, doing, async {
        future.await.map_err(|error| failed(doing, error))
    })
    .await
}

/// Where a SQL probe gets its connection: a new one per check from the
/// driver's `options`, to `target`, or one from the application's pool.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) enum Source<C, P> {
    /// A new connection per check.
    Direct {
        /// The driver's connection options (with the password).
        options: Box<C>,
        /// `host:port/database`: where it points, without credentials.
        target: String,
    },
    /// A connection borrowed from the application's pool.
    Pool(P),
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl<C, P> Source<C, P> {
    /// A source that connects afresh with `options`.
    pub(crate) fn direct(options: C, target: String) -> Self {
        Self::Direct {
            options: Box::new(options),
            target,
        }
    }

    /// The `Debug` output of a probe over this source: the target only, as
    /// the driver's options would show more than a reader needs (MySQL's
    /// even the password).
    pub(crate) fn debug(&self, probe: &str, connect_timeout: Duration, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match self {
            Self::Direct { target, .. } => target.as_str(),
            Self::Pool(_) => "pool",
        };
        f.debug_struct(probe)
            .field("target", &target)
            .field("connect_timeout", &connect_timeout)
            .finish()
    }
}

/// What a SQL step that opens a new connection to `target` is doing.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn connecting(target: &str) -> String {
    format!("connecting to {target}")
}

/// What a SQL step that borrows a pool's connection is doing.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) const CHECKOUT: &str = "getting a connection from the pool";

/// A pool's figures, as details of a check through it.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) struct PoolFigures {
    /// Connections open.
    pub(crate) size: usize,
    /// Connections open and idle.
    pub(crate) available: usize,
    /// The most the pool opens.
    pub(crate) max_size: usize,
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl PoolFigures {
    /// `outcome` with `pool_size`, `pool_available` and `pool_max_size`.
    pub(crate) fn add_to(self, outcome: crate::Outcome) -> crate::Outcome {
        outcome
            .detail("pool_size", self.size)
            .detail("pool_available", self.available)
            .detail("pool_max_size", self.max_size)
    }
}

#[cfg(test)]
mod tests {
    use super::{Duration, ProbeError, failed, step};

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
        let err = step(Duration::from_secs(2), "connecting to db:5432", slow)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "Timeout: connecting to db:5432: timed out after 2s");
        let failing = async { Err::<(), _>(std::io::Error::other("refused")) };
        let err = step(Duration::from_secs(2), "pinging", failing).await.unwrap_err();
        assert_eq!(err.to_string(), "io::Error: pinging: refused");
    }
}
