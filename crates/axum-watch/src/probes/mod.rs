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
pub use kafka::KafkaProbe;
#[cfg(feature = "mongo")]
mod mongo;
#[cfg(feature = "mongo")]
pub use mongo::MongoProbe;
