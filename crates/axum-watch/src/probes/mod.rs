//! Built-in active probes: they reach out to a dependency on each check.
//!
//! The probes that need no client library are always available; each one
//! that does sits behind its own cargo feature (see the README's table).
//! Every probe keeps credentials out of its `details`, its error text, its
//! logs and its `Debug` output.

use std::time::Duration;

mod config;
pub use config::{ConfigError, ConfigErrorKind};

/// A duration in milliseconds with microsecond precision, as probe details
/// show timings (`connect_ms`, `lag_ms`, `response_ms`).
pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

#[cfg(any(
    feature = "postgres",
    feature = "mysql",
    feature = "sqlx",
    feature = "redis",
    feature = "smtp",
    feature = "celery"
))]
mod timeout;

/// Runs one Redis step of a check within `limit`: a failure reads
/// `RedisError: PING failed: …`, a timeout `Timeout: redis PING: timed out
/// after 2s`, both redacted.
#[cfg(any(feature = "redis", feature = "celery"))]
pub(crate) async fn redis_step<T>(
    limit: impl Into<timeout::Limit>,
    step: &str,
    future: impl std::future::Future<Output = Result<T, ::redis::RedisError>>,
) -> Result<T, crate::ProbeError> {
    let failed = |error: ::redis::RedisError| {
        crate::ProbeError::with_kind(
            "RedisError",
            format!("{step} failed: {}", crate::redact(&error.to_string())),
        )
    };
    timeout::within(limit, &format!("redis {step}"), async { future.await.map_err(failed) }).await
}

/// A Redis URL that `probe` cannot use, as the `redis` crate said.
#[cfg(any(feature = "redis", feature = "celery"))]
pub(crate) fn invalid_redis_url(probe: &'static str, error: &::redis::RedisError) -> ConfigError {
    ConfigError::because(ConfigErrorKind::InvalidUrl, probe, "url", "invalid redis URL", error)
}

/// A Redis connection that could not be made, as a check's error:
/// `TlsError: connect failed: …` for the handshake, `RedisError: connect
/// failed: …` otherwise, a timeout as `Timeout: redis connect: …`.
#[cfg(any(feature = "redis", feature = "celery"))]
pub(crate) async fn redis_connect(
    limit: timeout::Limit,
    target: &crate::redis_client::RedisTarget,
    connect_timeout: Duration,
    config: ::redis::AsyncConnectionConfig,
) -> Result<(::redis::aio::MultiplexedConnection, Option<crate::tls::PeerTls>), crate::ProbeError> {
    timeout::within(limit, "redis connect", async {
        target.connect(connect_timeout, config).await.map_err(|error| {
            let kind = if error.tls { "TlsError" } else { "RedisError" };
            crate::ProbeError::with_kind(kind, format!("connect failed: {error}"))
        })
    })
    .await
}

// --- host probes (no client library) ---
mod disk;
mod noop;
mod runtime;
mod tcp;
mod threshold;
pub use disk::{DiskSpaceProbe, SpaceThreshold};

/// The old name of [`SpaceThreshold`].
#[deprecated(since = "0.2.0", note = "renamed to `SpaceThreshold`")]
pub type Threshold = SpaceThreshold;
pub use noop::NoOpProbe;
pub use runtime::RuntimeProbe;
pub use tcp::TcpProbe;
pub use threshold::ThresholdProbe;

// --- http ---
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "http")]
pub use http::{HttpProbe, HttpProbeBuilder};
/// The error [`HttpProbe`] constructors returned before every probe
/// constructor returned a [`ConfigError`].
#[cfg(feature = "http")]
#[deprecated(note = "use `probes::ConfigError`, which every probe constructor returns")]
pub type HttpProbeError = ConfigError;

// --- sql: postgres, mysql, sqlx ---
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlx"))]
mod sql;
#[cfg(feature = "sqlx")]
mod sqlx;
#[cfg(feature = "mysql")]
pub use mysql::MySqlProbe;
#[cfg(feature = "postgres")]
pub use postgres::PostgresProbe;
/// The error SQL probe constructors returned before every probe constructor
/// returned a [`ConfigError`].
#[cfg(any(feature = "postgres", feature = "mysql"))]
#[deprecated(note = "use `probes::ConfigError`, which every probe constructor returns")]
pub type InvalidConnectionString = ConfigError;
#[cfg(feature = "sqlx")]
pub use sqlx::SqlxProbe;

// --- caches and mail: redis, memcached, smtp ---
#[cfg(feature = "memcached")]
mod memcached;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "smtp")]
mod smtp;
#[cfg(feature = "memcached")]
pub use self::memcached::MemcachedProbe;
#[cfg(feature = "redis")]
pub use self::redis::RedisProbe;
/// The error [`RedisProbe::new`] returned before every probe constructor
/// returned a [`ConfigError`].
#[cfg(feature = "redis")]
#[deprecated(note = "use `probes::ConfigError`, which every probe constructor returns")]
pub type RedisUrlError = ConfigError;
#[cfg(feature = "smtp")]
pub use self::smtp::{SmtpProbe, SmtpTls};

// --- messaging: rabbitmq, kafka, mongo, celery ---
#[cfg(any(feature = "rabbitmq", feature = "celery"))]
mod amqp;
#[cfg(feature = "rabbitmq")]
mod rabbitmq;
#[cfg(feature = "rabbitmq")]
pub use rabbitmq::RabbitMqProbe;
#[cfg(feature = "celery")]
mod celery;
#[cfg(feature = "celery")]
pub use celery::CeleryProbe;
#[cfg(feature = "kafka")]
mod kafka;
#[cfg(feature = "kafka")]
pub use kafka::{KafkaProbe, PartitionRule, SaslMechanism};
#[cfg(feature = "mongo")]
mod mongo;
#[cfg(feature = "mongo")]
pub use mongo::MongoProbe;
