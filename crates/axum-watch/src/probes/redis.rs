//! [`RedisProbe`]: `PING`, then `INFO` for details, over the `redis` crate.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::AsyncConnectionConfig;
use redis::aio::ConnectionLike;
use tokio::time::Instant;

use super::timeout::Limit;
use super::{ConfigError, invalid_redis_url, redis_connect, redis_step};
use crate::model::Details;
use crate::probe::{Outcome, Probe, ProbeError};
use crate::redis_client::RedisTarget;
use crate::tls::TlsOptions;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks a Redis (or Valkey) server: `PING` must answer, then `INFO`
/// fills the details on a best-effort basis.
///
/// Built from a URL, the probe opens a fresh connection on every check (so a
/// check proves that a new client can connect and authenticate, and no idle
/// connection is held between checks) and drops it afterwards. Built from an
/// existing [`ConnectionManager`](redis::aio::ConnectionManager) or
/// [`MultiplexedConnection`](redis::aio::MultiplexedConnection), it checks
/// the connection your service already uses.
///
/// | detail | from `INFO` |
/// | --- | --- |
/// | `version` | `redis_version` |
/// | `uptime_seconds` | `uptime_in_seconds` |
/// | `used_memory_human` | `used_memory_human` |
/// | `connected_clients` | `connected_clients` |
/// | `total_keys` | keys summed over every database of the keyspace section |
///
/// The connect and every command share one budget, [`timeout`](Self::timeout)
/// (5 s by default). The URL's password never appears in `Debug`, details or
/// error text.
///
/// `rediss://` connects over TLS (rustls), as managed services (ElastiCache,
/// Azure Cache, Upstash, Memorystore) require: the certificate is checked
/// against the system's roots and the host name, and
/// [`tls_options`](Self::tls_options) adds a private CA, a client
/// certificate for mutual TLS, a server name or, for a test server, no
/// verification. Over TLS the details also carry `tls_version`,
/// `cert_not_after` and `cert_days_remaining`.
///
/// ```no_run
/// use axum_watch::HealthRegistry;
/// use axum_watch::probes::RedisProbe;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = RedisProbe::new("redis://:s3cret@127.0.0.1:6379/0")?;
/// assert!(!format!("{redis:?}").contains("s3cret"));
/// let registry = HealthRegistry::builder().add(redis).build()?;
/// # drop(registry);
/// # Ok(())
/// # }
/// ```
pub struct RedisProbe {
    source: Source,
    /// Where the probe connects, without the password.
    target: String,
    timeout: Duration,
}

type Exchange = Arc<dyn Fn(Limit) -> BoxFuture<'static, Result<Outcome, ProbeError>> + Send + Sync>;

enum Source {
    Url(Box<RedisTarget>),
    Connection(Exchange),
}

impl RedisProbe {
    /// A probe connecting to `url` (`redis://[user][:password@]host[:port][/db]`,
    /// `rediss://…` for TLS, `redis+unix:///path`) on every check.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `url` is not a Redis URL the `redis` crate
    /// accepts; the error does not repeat the URL's password.
    pub fn new(url: impl AsRef<str>) -> Result<Self, ConfigError> {
        let target = RedisTarget::parse(url.as_ref()).map_err(|e| invalid_redis_url("RedisProbe", &e))?;
        Ok(Self {
            target: target.describe(),
            source: Source::Url(Box::new(target)),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Whom to trust and who the probe is over TLS (see [`TlsOptions`]), for
    /// a `rediss://` URL; a plain `redis://` one ignores them.
    ///
    /// ```
    /// use axum_watch::probes::RedisProbe;
    /// use axum_watch::tls::TlsOptions;
    ///
    /// # fn main() -> Result<(), axum_watch::probes::ConfigError> {
    /// // A test server with a self-signed certificate.
    /// let probe = RedisProbe::new("rediss://:s3cret@127.0.0.1:6380/0")?
    ///     .tls_options(TlsOptions::new().danger_accept_invalid_certs(true));
    /// assert!(!format!("{probe:?}").contains("s3cret"));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn tls_options(mut self, options: TlsOptions) -> Self {
        if let Source::Url(target) = &mut self.source {
            target.set_tls_options(options);
        }
        self
    }

    /// A probe over a connection your service already holds, such as a
    /// [`ConnectionManager`](redis::aio::ConnectionManager) or a
    /// [`MultiplexedConnection`](redis::aio::MultiplexedConnection); each check
    /// works on a clone of it.
    ///
    /// ```no_run
    /// use axum_watch::probes::RedisProbe;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = redis::Client::open("redis://127.0.0.1:6379")?;
    /// let manager = client.get_connection_manager().await?;
    /// let probe = RedisProbe::from_connection(manager.clone());
    /// # drop(probe);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_connection<C>(connection: C) -> Self
    where
        C: ConnectionLike + Clone + Send + Sync + 'static,
    {
        let exchange: Exchange = Arc::new(move |limit| {
            let mut connection = connection.clone();
            Box::pin(async move { exchange(&mut connection, limit).await })
        });
        Self {
            source: Source::Connection(exchange),
            target: "existing connection".to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// How long the connect and the commands of one check may take together
    /// (default 5 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl fmt::Debug for RedisProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisProbe")
            .field("target", &self.target)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Probe for RedisProbe {
    fn name(&self) -> &str {
        "redis"
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        // The connect and the commands share one deadline.
        let limit = Limit::until(Instant::now() + self.timeout, self.timeout);
        match &self.source {
            Source::Connection(exchange) => exchange(limit).await,
            Source::Url(target) => {
                let config = AsyncConnectionConfig::new().set_response_timeout(Some(self.timeout));
                let (mut connection, peer) = redis_connect(limit, target, self.timeout, config).await?;
                let outcome = exchange(&mut connection, limit).await?;
                Ok(match peer {
                    Some(peer) => peer.add_to(outcome),
                    None => outcome,
                })
            }
        }
    }
}

/// `PING`, which must answer `PONG`, then `INFO` for the details.
async fn exchange<C: ConnectionLike + Send>(connection: &mut C, limit: Limit) -> Result<Outcome, ProbeError> {
    let pong: String = redis_step(limit, "PING", redis::cmd("PING").query_async(connection)).await?;
    if pong != "PONG" {
        return Err(ProbeError::with_kind(
            "RedisError",
            format!("unexpected reply to PING: {pong:?}"),
        ));
    }
    let info = redis_step(limit, "INFO", redis::cmd("INFO").query_async::<String>(connection)).await;
    let outcome = Outcome::healthy();
    Ok(match info {
        Ok(info) => outcome.details_from(info_details(&info)),
        Err(error) => {
            tracing::debug!(%error, "redis INFO failed; reporting without details");
            outcome
        }
    })
}

/// The documented details out of an `INFO` reply; fields the server does not
/// report are left out.
fn info_details(info: &str) -> Details {
    let mut details = Details::new();
    let field = |key: &str| {
        info.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k == key).then(|| v.trim())
        })
    };
    if let Some(version) = field("redis_version") {
        details.insert("version".into(), version.into());
    }
    if let Some(uptime) = field("uptime_in_seconds").and_then(|v| v.parse::<u64>().ok()) {
        details.insert("uptime_seconds".into(), uptime.into());
    }
    if let Some(memory) = field("used_memory_human") {
        details.insert("used_memory_human".into(), memory.into());
    }
    if let Some(clients) = field("connected_clients").and_then(|v| v.parse::<u64>().ok()) {
        details.insert("connected_clients".into(), clients.into());
    }
    // Keyspace lines look like `db0:keys=12,expires=0,avg_ttl=0`; an empty
    // keyspace has none, which is zero keys rather than unknown.
    let total_keys: u64 = info
        .lines()
        .filter_map(|line| line.strip_prefix("db")?.split_once(':'))
        .filter(|(index, _)| !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|(_, stats)| {
            stats
                .split(',')
                .find_map(|pair| pair.strip_prefix("keys="))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum();
    if info.contains("# Keyspace") {
        details.insert("total_keys".into(), total_keys.into());
    }
    details
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:1234\r\n\r\n# Clients\r\nconnected_clients:3\r\n\r\n# Memory\r\nused_memory:1000\r\nused_memory_human:1.02M\r\n\r\n# Keyspace\r\ndb0:keys=12,expires=1,avg_ttl=0\r\ndb3:keys=5,expires=0,avg_ttl=0\r\n";

    #[test]
    fn info_fields_become_details() {
        let details = info_details(INFO);
        assert_eq!(details["version"], "7.0.15");
        assert_eq!(details["uptime_seconds"], 1234);
        assert_eq!(details["used_memory_human"], "1.02M");
        assert_eq!(details["connected_clients"], 3);
        assert_eq!(details["total_keys"], 17);
        assert_eq!(details.len(), 5);
    }

    #[test]
    fn empty_keyspace_is_zero_keys_and_missing_fields_are_left_out() {
        let details = info_details("# Server\r\nredis_version:7.2.4\r\n# Keyspace\r\n");
        assert_eq!(details["total_keys"], 0);
        assert_eq!(details["version"], "7.2.4");
        assert!(!details.contains_key("uptime_seconds"));
        assert!(info_details("").is_empty());
    }

    #[test]
    fn debug_hides_the_password() {
        for url in [
            "redis://:s3cret@127.0.0.1:6379/2",
            "redis://app:s3cret@cache.internal/0",
            "redis+unix:///run/redis.sock?pass=s3cret",
        ] {
            let probe = RedisProbe::new(url).unwrap();
            let debug = format!("{probe:?}");
            assert!(!debug.contains("s3cret"), "{debug}");
            assert!(debug.contains("***"), "{debug}");
        }
        let probe = RedisProbe::new("redis://:s3cret@127.0.0.1:6379/2").unwrap();
        assert_eq!(probe.target, "redis://:***@127.0.0.1:6379/2");
        let probe = RedisProbe::new("redis://127.0.0.1").unwrap();
        assert_eq!(probe.target, "redis://127.0.0.1:6379/0");
    }

    #[test]
    fn a_bad_url_is_a_clear_error_without_the_password() {
        let error = RedisProbe::new("http://:s3cret@127.0.0.1").unwrap_err().to_string();
        assert!(error.contains("invalid redis URL"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
        let probe = RedisProbe::new("rediss://:s3cret@cache.example.com").unwrap();
        assert_eq!(probe.target, "rediss://:***@cache.example.com:6379/0");
    }
}
