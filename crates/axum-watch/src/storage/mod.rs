//! Where results and alerts are kept: the async [`Storage`] trait and the
//! bounded in-memory default, [`MemoryStorage`].
//!
//! The engine writes every result it produces and every transition it sees;
//! `/history` and `/alerts` read them back. A storage error is logged and
//! never fails a check or an endpoint.
//!
//! ```
//! use std::time::Duration;
//! use axum_watch::{HealthRegistry, MemoryStorage};
//!
//! let storage = MemoryStorage::builder()
//!     .history_size(20)
//!     .result_ttl(Duration::from_secs(3600))
//!     .build();
//! let registry = HealthRegistry::builder().storage(storage).build().unwrap();
//! # drop(registry);
//! ```

mod memory;

use std::fmt;
use std::future::Future;

use futures_util::future::BoxFuture;

pub use memory::{MemoryStorage, MemoryStorageBuilder};

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

    /// The latest result of every probe still within the result TTL.
    fn latest(&self) -> impl Future<Output = Result<Vec<ProbeResult>, StorageError>> + Send;

    /// The history of every probe, oldest first, within the result TTL; probes
    /// with nothing left are absent.
    fn history(&self) -> impl Future<Output = Result<History, StorageError>> + Send;

    /// Appends one alert record.
    fn append_alert(&self, alert: &AlertRecord) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// The alert log, oldest first, within the alert TTL.
    fn alerts(&self) -> impl Future<Output = Result<Vec<AlertRecord>, StorageError>> + Send;
}

/// The object-safe twin of [`Storage`].
pub(crate) trait DynStorage: Send + Sync + 'static {
    fn record<'a>(&'a self, result: &'a ProbeResult) -> BoxFuture<'a, Result<(), StorageError>>;
    fn latest(&self) -> BoxFuture<'_, Result<Vec<ProbeResult>, StorageError>>;
    fn history(&self) -> BoxFuture<'_, Result<History, StorageError>>;
    fn append_alert<'a>(&'a self, alert: &'a AlertRecord) -> BoxFuture<'a, Result<(), StorageError>>;
    fn alerts(&self) -> BoxFuture<'_, Result<Vec<AlertRecord>, StorageError>>;
}

impl<S: Storage> DynStorage for S {
    fn record<'a>(&'a self, result: &'a ProbeResult) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(Storage::record(self, result))
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
}

impl fmt::Debug for dyn DynStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Storage")
    }
}
