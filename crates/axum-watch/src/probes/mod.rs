//! Built-in active probes: they reach out to a dependency on each check.
//!
//! The probes that need no client library are always available; each one
//! that does sits behind its own cargo feature (see the README's table).
//! Every probe keeps credentials out of its `details`, its error text, its
//! logs and its `Debug` output.

// --- host probes (no client library) ---

// --- http ---

// --- sql: postgres, mysql, sqlx ---

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
pub use self::redis::{RedisProbe, RedisUrlError};
#[cfg(feature = "smtp")]
pub use self::smtp::{SmtpProbe, SmtpTls};

// --- messaging: rabbitmq, kafka, mongo, celery ---
