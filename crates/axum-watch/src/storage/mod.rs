//! Where results and alerts are kept: the async [`Storage`] trait, the
//! bounded in-memory default, [`MemoryStorage`], and the backends several
//! replicas share, `RedisStorage` (feature `redis-storage`) and
//! `PostgresStorage` (feature `postgres-storage`).
//!
//! The engine writes every result it produces and every transition it sees;
//! `/history` and `/alerts` read them back. A storage error is logged and
//! never fails a check or an endpoint.
//!
//! # Shared stores never hold up a probe run or an endpoint
//!
//! `RedisStorage` and `PostgresStorage` keep an in-process mirror of this
//! replica's entries and an ordered, bounded write buffer:
//!
//! - `record` and `append_alert` write the mirror, hand the write to the
//!   buffer and return without touching the network. One background task
//!   per store sends the buffer in order, each call (a write, a ping, a
//!   connection attempt) bounded by `operation_timeout` (default 2 s, the
//!   same for both stores). When the buffer (`buffer`, default 1000) is
//!   full, the oldest write gives way and is counted in
//!   `health_storage_writes_dropped_total`.
//! - Reads for `latest`, `history`, `alerts` and the fleet view, and alert
//!   claims, are bounded by `read_timeout` (default 250 ms): a read first
//!   waits for this replica's own buffered writes (so it sees them), then
//!   asks the store; past the limit it answers from the mirror, and a claim
//!   fails, which sends the alert anyway.
//! - A failed or unanswered call, including one to a store that accepts
//!   connections and never answers (a server stopped with `SIGSTOP`), marks
//!   the store unreachable: reads answer from the mirror at once, and the
//!   background task pings the store with backoff (100 ms doubling to 5 s),
//!   connecting afresh each time, and flushes the buffer in order once it
//!   answers. A write sent again after a timeout is stored once.
//!
//! ```
//! use std::time::Duration;
//! use axum_watch::{HealthRegistry, storage::MemoryStorage};
//!
//! let storage = MemoryStorage::builder()
//!     .history_size(20)
//!     .result_ttl(Duration::from_secs(3600))
//!     .build();
//! let registry = HealthRegistry::builder().storage(storage).build().unwrap();
//! # drop(registry);
//! ```

mod memory;
#[cfg(feature = "postgres-storage")]
mod postgres;
#[cfg(feature = "redis-storage")]
mod redis;
#[cfg(any(feature = "redis-storage", feature = "postgres-storage"))]
mod shared;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures_util::future::BoxFuture;

pub use memory::{MemoryStorage, MemoryStorageBuilder};
#[cfg(feature = "postgres-storage")]
pub use postgres::{PostgresStorage, PostgresStorageBuilder};
#[cfg(feature = "redis-storage")]
pub use redis::{RedisStorage, RedisStorageBuilder};

use crate::model::{AlertRecord, ProbeResult};

/// Results per probe name, in the order the names were first recorded.
pub type History = Vec<(String, Vec<ProbeResult>)>;

/// A failure of a storage backend.
#[derive(Debug, thiserror::Error)]
#[error("storage error: {message}")]
pub struct StorageError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StorageError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: crate::redact(&message.into()).into_owned(),
            source: None,
        }
    }

    /// An error caused by `source`.
    pub fn with_source(message: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            source: Some(Box::new(source)),
            ..Self::new(message)
        }
    }
}

/// A place to keep the latest result per probe, the history of results and
/// the alert log.
///
/// Implement it with plain `async fn`s. Backends bound what they keep (by
/// count and age) themselves.
pub trait Storage: Send + Sync + 'static {
    /// Records one result: it becomes the probe's latest and joins its history.
    fn record(&self, result: &ProbeResult) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Records the results of one run, in order, as [`record`](Self::record)
    /// would one by one; the registry calls this once per run. The default
    /// calls `record` for each, going on past a failure, and returns the
    /// first error (saying how many failed); a store that writes a batch
    /// more cheaply (one lock, one round trip) overrides it.
    fn record_all(&self, results: &[&ProbeResult]) -> impl Future<Output = Result<(), StorageError>> + Send {
        async move {
            let mut failed = 0_usize;
            let mut first = None;
            for result in results {
                if let Err(e) = self.record(result).await {
                    failed += 1;
                    first.get_or_insert(e);
                }
            }
            match first {
                None => Ok(()),
                Some(e) if failed == 1 => Err(e),
                Some(e) => Err(StorageError::with_source(
                    format!("{failed} of {} results not stored", results.len()),
                    e,
                )),
            }
        }
    }

    /// The latest result of every probe still within the result TTL.
    fn latest(&self) -> impl Future<Output = Result<Vec<ProbeResult>, StorageError>> + Send;

    /// The history of every probe, oldest first, within the result TTL; probes
    /// with nothing left are absent.
    fn history(&self) -> impl Future<Output = Result<History, StorageError>> + Send;

    /// Appends one alert record.
    fn append_alert(&self, alert: &AlertRecord) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// The alert log, oldest first, within the alert TTL.
    fn alerts(&self) -> impl Future<Output = Result<Vec<AlertRecord>, StorageError>> + Send;

    /// The id of this replica when several replicas share the store, which
    /// then labels every entry with the replica that wrote it; `None` (the
    /// default) for a store only this process sees.
    ///
    /// A shared store turns on the fleet view (`status?scope=fleet`) and
    /// alert de-duplication.
    fn replica(&self) -> Option<&str> {
        None
    }

    /// The service whose entries the store keeps, when it is shared (alert
    /// records then carry it, unless
    /// [`service_name`](crate::HealthRegistryBuilder::service_name) says
    /// otherwise); `None` by default.
    fn service(&self) -> Option<&str> {
        None
    }

    /// The latest results of every replica that reported within the result
    /// TTL, one entry per replica. Only shared stores have a fleet; the
    /// default is empty.
    fn fleet(&self) -> impl Future<Output = Result<Vec<ReplicaReport>, StorageError>> + Send {
        async { Ok(Vec::new()) }
    }

    /// Claims, for `window`, the right to send the alerts of `alert`'s
    /// transition (same probe, same old and new status): `true` when this
    /// replica is the claimant, `false` when another replica claimed it
    /// within the window. The default claims everything.
    fn claim_alert(
        &self,
        alert: &AlertRecord,
        window: Duration,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send {
        let _ = (alert, window);
        async { Ok(true) }
    }

    /// Writes waiting for an unreachable store, and those that did not fit
    /// the buffer. Stores that never buffer report zeros.
    fn write_buffer(&self) -> WriteBufferStats {
        WriteBufferStats::default()
    }

    /// Waits, at most `deadline`, until every write handed over so far has
    /// reached the store; called once when the registry drains. A store
    /// that writes synchronously has nothing to flush (the default).
    ///
    /// # Errors
    ///
    /// When writes were still waiting at the deadline.
    fn flush(&self, deadline: Duration) -> impl Future<Output = Result<(), StorageError>> + Send {
        let _ = deadline;
        async { Ok(()) }
    }
}

/// One replica's latest results, as a shared store holds them.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReplicaReport {
    /// The replica's id.
    pub replica: String,
    /// When the replica last wrote a result.
    pub reported_at: jiff::Timestamp,
    /// Whether that was longer ago than the store's staleness limit: the
    /// replica has probably stopped.
    pub stale: bool,
    /// The latest result of each of its probes, by probe name.
    pub probes: Vec<ProbeResult>,
}

impl ReplicaReport {
    /// The report of `replica`, last heard from at `reported_at`.
    #[must_use]
    pub fn new(
        replica: impl Into<String>,
        reported_at: jiff::Timestamp,
        stale: bool,
        probes: Vec<ProbeResult>,
    ) -> Self {
        Self {
            replica: replica.into(),
            reported_at,
            stale,
            probes,
        }
    }
}

/// The state of a store's write buffer, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteBufferStats {
    /// Writes waiting for the store to come back.
    pub pending: u64,
    /// Writes lost because the buffer was full, since the process started.
    pub dropped: u64,
}

impl WriteBufferStats {
    /// A buffer state with `pending` waiting and `dropped` lost writes.
    #[must_use]
    pub fn new(pending: u64, dropped: u64) -> Self {
        Self { pending, dropped }
    }
}

/// The old name of [`WriteBufferStats`].
#[deprecated(since = "0.2.0", note = "renamed to `WriteBufferStats`")]
pub type WriteBuffer = WriteBufferStats;

/// The object-safe twin of [`Storage`].
pub(crate) trait DynStorage: Send + Sync + 'static {
    fn record_all<'a>(&'a self, results: &'a [&'a ProbeResult]) -> BoxFuture<'a, Result<(), StorageError>>;
    fn latest(&self) -> BoxFuture<'_, Result<Vec<ProbeResult>, StorageError>>;
    fn history(&self) -> BoxFuture<'_, Result<History, StorageError>>;
    fn append_alert<'a>(&'a self, alert: &'a AlertRecord) -> BoxFuture<'a, Result<(), StorageError>>;
    fn alerts(&self) -> BoxFuture<'_, Result<Vec<AlertRecord>, StorageError>>;
    fn replica(&self) -> Option<&str>;
    fn service(&self) -> Option<&str>;
    fn fleet(&self) -> BoxFuture<'_, Result<Vec<ReplicaReport>, StorageError>>;
    fn claim_alert<'a>(&'a self, alert: &'a AlertRecord, window: Duration)
    -> BoxFuture<'a, Result<bool, StorageError>>;
    fn write_buffer(&self) -> WriteBufferStats;
    fn flush(&self, deadline: Duration) -> BoxFuture<'_, Result<(), StorageError>>;
}

impl<S: Storage> DynStorage for S {
    fn record_all<'a>(&'a self, results: &'a [&'a ProbeResult]) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(Storage::record_all(self, results))
    }

    fn latest(&self) -> BoxFuture<'_, Result<Vec<ProbeResult>, StorageError>> {
        Box::pin(Storage::latest(self))
    }

    fn history(&self) -> BoxFuture<'_, Result<History, StorageError>> {
        Box::pin(Storage::history(self))
    }

    fn append_alert<'a>(&'a self, alert: &'a AlertRecord) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(Storage::append_alert(self, alert))
    }

    fn alerts(&self) -> BoxFuture<'_, Result<Vec<AlertRecord>, StorageError>> {
        Box::pin(Storage::alerts(self))
    }

    fn replica(&self) -> Option<&str> {
        Storage::replica(self)
    }

    fn service(&self) -> Option<&str> {
        Storage::service(self)
    }

    fn fleet(&self) -> BoxFuture<'_, Result<Vec<ReplicaReport>, StorageError>> {
        Box::pin(Storage::fleet(self))
    }

    fn claim_alert<'a>(
        &'a self,
        alert: &'a AlertRecord,
        window: Duration,
    ) -> BoxFuture<'a, Result<bool, StorageError>> {
        Box::pin(Storage::claim_alert(self, alert, window))
    }

    fn write_buffer(&self) -> WriteBufferStats {
        Storage::write_buffer(self)
    }

    fn flush(&self, deadline: Duration) -> BoxFuture<'_, Result<(), StorageError>> {
        Box::pin(Storage::flush(self, deadline))
    }
}

/// The id a replica gets unless one is configured: `<hostname>-<pid>`.
pub(crate) fn default_replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .or_else(|| std::env::var("COMPUTERNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}-{}", std::process::id())
}

impl fmt::Debug for dyn DynStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Storage")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use std::sync::Mutex;

    /// A store that fails to record the probes whose name starts with "bad".
    #[derive(Default)]
    struct Picky(Mutex<Vec<String>>);

    impl Storage for Picky {
        async fn record(&self, result: &ProbeResult) -> Result<(), StorageError> {
            if result.name.starts_with("bad") {
                return Err(StorageError::new(format!("refused {}", result.name)));
            }
            self.0.lock().unwrap().push(result.name.clone());
            Ok(())
        }
        async fn latest(&self) -> Result<Vec<ProbeResult>, StorageError> {
            Ok(Vec::new())
        }
        async fn history(&self) -> Result<History, StorageError> {
            Ok(Vec::new())
        }
        async fn append_alert(&self, _: &AlertRecord) -> Result<(), StorageError> {
            Ok(())
        }
        async fn alerts(&self) -> Result<Vec<AlertRecord>, StorageError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn record_all_by_default_records_each_past_a_failure_and_says_how_many_failed() {
        let results: Vec<ProbeResult> = ["a", "bad-1", "b", "bad-2", "c"]
            .iter()
            .map(|n| ProbeResult::new(*n, Status::Healthy))
            .collect();
        let refs: Vec<&ProbeResult> = results.iter().collect();
        let store = Picky::default();
        let error = Storage::record_all(&store, &refs).await.unwrap_err();
        assert_eq!(*store.0.lock().unwrap(), ["a", "b", "c"]);
        assert_eq!(error.to_string(), "storage error: 2 of 5 results not stored");
        let source = std::error::Error::source(&error).unwrap().to_string();
        assert_eq!(source, "storage error: refused bad-1");
        // One failure is that failure's own error.
        let one = Storage::record_all(&store, &refs[..2]).await.unwrap_err();
        assert_eq!(one.to_string(), "storage error: refused bad-1");
        assert!(Storage::record_all(&store, &[]).await.is_ok());
    }
}
