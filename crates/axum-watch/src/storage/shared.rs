//! What the shared backends have in common: the replica id every entry
//! carries, the options, the in-process mirror that answers while the store
//! is unreachable, and the bounded buffer of writes waiting for it.
//!
//! Writes are strictly ordered per replica: while the store answers, a write
//! goes straight to it; from its first failure on, writes queue behind each
//! other and a single task flushes them, oldest first, once the store is
//! back. When the queue is full the oldest waiting write gives way; each loss
//! is counted and logged. Reads go to the store unless it is known to be
//! down, and fall back to the mirror, which holds this replica's own entries.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::{History, MemoryStorage, ReplicaReport, Storage, StorageError, WriteBuffer};
use crate::model::{AlertRecord, ProbeResult};

/// Implements [`Storage`] for a public store that wraps a [`Replicated`] in
/// its `inner` field: every method is the replicated core's.
macro_rules! delegate_storage {
    ($store:ty) => {
        impl $crate::storage::Storage for $store {
            async fn record(&self, result: &$crate::model::ProbeResult) -> Result<(), $crate::storage::StorageError> {
                self.inner.record(result).await
            }

            async fn latest(&self) -> Result<Vec<$crate::model::ProbeResult>, $crate::storage::StorageError> {
                self.inner.latest().await
            }

            async fn history(&self) -> Result<$crate::storage::History, $crate::storage::StorageError> {
                self.inner.history().await
            }

            async fn append_alert(
                &self,
                alert: &$crate::model::AlertRecord,
            ) -> Result<(), $crate::storage::StorageError> {
                self.inner.append_alert(alert).await
            }

            async fn alerts(&self) -> Result<Vec<$crate::model::AlertRecord>, $crate::storage::StorageError> {
                self.inner.alerts().await
            }

            fn replica(&self) -> Option<&str> {
                self.inner.replica()
            }

            async fn fleet(&self) -> Result<Vec<$crate::storage::ReplicaReport>, $crate::storage::StorageError> {
                self.inner.fleet().await
            }

            async fn claim_alert(
                &self,
                alert: &$crate::model::AlertRecord,
                window: std::time::Duration,
            ) -> Result<bool, $crate::storage::StorageError> {
                self.inner.claim_alert(alert, window).await
            }

            fn write_buffer(&self) -> $crate::storage::WriteBuffer {
                self.inner.write_buffer()
            }
        }
    };
}
pub(super) use delegate_storage;

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

/// Options every shared backend takes.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) service: String,
    pub(crate) replica: String,
    pub(crate) history_size: usize,
    pub(crate) result_ttl: Duration,
    pub(crate) max_alerts: usize,
    pub(crate) alert_ttl: Duration,
    pub(crate) stale_after: Duration,
    pub(crate) buffer: usize,
    pub(crate) timeout: Duration,
}

impl Options {
    pub(crate) fn new(service: String) -> Self {
        Self {
            service,
            replica: default_replica_id(),
            history_size: MemoryStorage::DEFAULT_HISTORY_SIZE,
            result_ttl: MemoryStorage::DEFAULT_RESULT_TTL,
            max_alerts: MemoryStorage::DEFAULT_MAX_ALERTS,
            alert_ttl: MemoryStorage::DEFAULT_ALERT_TTL,
            stale_after: DEFAULT_STALE_AFTER,
            buffer: DEFAULT_BUFFER,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Refuses what a shared store cannot honour.
    pub(crate) fn validate(&self) -> Result<(), StorageError> {
        let service_ok = !self.service.is_empty()
            && self.service.len() <= 100
            && self
                .service
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !service_ok {
            return Err(StorageError::new(format!(
                "invalid service name {:?}: names must match [A-Za-z0-9_.-]{{1,100}}",
                self.service
            )));
        }
        let replica_ok = !self.replica.is_empty()
            && self.replica.len() <= 200
            && !self.replica.chars().any(|c| c.is_whitespace() || c.is_control());
        if !replica_ok {
            return Err(StorageError::new(format!(
                "invalid replica id {:?}: use 1 to 200 characters without spaces",
                self.replica
            )));
        }
        if self.result_ttl.is_zero() || self.alert_ttl.is_zero() {
            return Err(StorageError::new(
                "a shared store needs non-zero result and alert TTLs, so that what replicas leave behind expires",
            ));
        }
        if self.timeout.is_zero() {
            return Err(StorageError::new("the store timeout must be longer than zero"));
        }
        Ok(())
    }

    pub(crate) fn mirror(&self) -> MemoryStorage {
        MemoryStorage::builder()
            .history_size(self.history_size)
            .result_ttl(self.result_ttl)
            .max_alerts(self.max_alerts)
            .alert_ttl(self.alert_ttl)
            .build()
    }
}

/// A replica that has not written for this long is shown as stale.
pub(crate) const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(180);
/// Writes kept while the store is unreachable.
pub(crate) const DEFAULT_BUFFER: usize = 1000;
/// How long one call to the store may take.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Generates the setters both shared builders take (each builder has an
/// `options: Options` field).
macro_rules! shared_setters {
    () => {
        /// The id this replica labels its entries with (default
        /// `<hostname>-<pid>`); 1 to 200 characters without spaces.
        pub fn replica(mut self, id: impl Into<String>) -> Self {
            self.options.replica = id.into();
            self
        }

        /// Results kept per probe, across every replica (default 120, at least 1).
        pub fn history_size(mut self, size: usize) -> Self {
            self.options.history_size = size.max(1);
            self
        }

        /// How long results stay in history and a replica's latest results
        /// stay in the fleet view (default 2 h; must not be zero).
        pub fn result_ttl(mut self, ttl: std::time::Duration) -> Self {
            self.options.result_ttl = ttl;
            self
        }

        /// Alert records kept per service, across every replica (default 120, at least 1).
        pub fn max_alerts(mut self, max: usize) -> Self {
            self.options.max_alerts = max.max(1);
            self
        }

        /// How long alert records are kept (default 72 h; must not be zero).
        pub fn alert_ttl(mut self, ttl: std::time::Duration) -> Self {
            self.options.alert_ttl = ttl;
            self
        }

        /// A replica whose last result is older than this is marked stale in
        /// the fleet view (default 180 s, three default poll intervals).
        pub fn stale_after(mut self, age: std::time::Duration) -> Self {
            self.options.stale_after = age;
            self
        }

        /// Writes kept, in order, while the store is unreachable (default
        /// 1000); beyond that the oldest waiting write is dropped and counted.
        pub fn buffer(mut self, writes: usize) -> Self {
            self.options.buffer = writes;
            self
        }

        /// How long one call to the store may take, connecting included
        /// (default 2 s).
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.options.timeout = timeout;
            self
        }
    };
}
pub(crate) use shared_setters;

/// One write, as the buffer keeps it: stamped with the replica and the
/// wall-clock time (milliseconds since the epoch) it happened at.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Record { at: i64, result: ProbeResult },
    Alert { at: i64, alert: AlertRecord },
}

/// A latest result with the time it was written.
pub(crate) type Latest = Vec<(i64, ProbeResult)>;

/// The store-specific half of a shared backend: raw reads and writes.
pub(crate) trait Backend: Send + Sync + 'static {
    /// Writes one entry and prunes what fell out of the bounds.
    fn write(&self, op: &Op, options: &Options, now: i64) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Every replica's latest result per probe written since `since`.
    fn latest(&self, options: &Options, since: i64) -> impl Future<Output = Result<Latest, StorageError>> + Send;
    /// The history of every probe since `since`, each oldest first.
    fn history(&self, options: &Options, since: i64) -> impl Future<Output = Result<History, StorageError>> + Send;
    /// The alert log since `since`, oldest first.
    fn alerts(
        &self,
        options: &Options,
        since: i64,
    ) -> impl Future<Output = Result<Vec<AlertRecord>, StorageError>> + Send;
    /// Claims `key` for `window` unless another replica holds it.
    fn claim(
        &self,
        options: &Options,
        key: &str,
        window: Duration,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;
    /// Whether the store answers at all.
    fn ping(&self) -> impl Future<Output = Result<(), StorageError>> + Send;
}

pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn since(now: i64, ttl: Duration) -> i64 {
    now.saturating_sub(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

/// The key a transition is claimed under: the probe and both statuses.
pub(crate) fn claim_key(alert: &AlertRecord) -> String {
    format!("{}:{}:{}", alert.probe, alert.old_status, alert.new_status)
}

/// A shared backend with its mirror and write buffer; cheap to clone.
pub(crate) struct Replicated<B> {
    core: Arc<Core<B>>,
}

impl<B> Clone for Replicated<B> {
    fn clone(&self) -> Self {
        Self {
            core: Arc::clone(&self.core),
        }
    }
}

struct Core<B> {
    backend: B,
    options: Options,
    mirror: MemoryStorage,
    queue: tokio::sync::Mutex<VecDeque<Op>>,
    pending: AtomicU64,
    dropped: AtomicU64,
    /// Set by the first failure, cleared once the buffer is flushed.
    down: AtomicBool,
    /// Whether the flushing task runs; changed only under the queue lock.
    flushing: AtomicBool,
}

impl<B> fmt::Debug for Replicated<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replicated")
            .field("options", &self.core.options)
            .field("pending", &self.core.pending.load(Ordering::Relaxed))
            .field("dropped", &self.core.dropped.load(Ordering::Relaxed))
            .field("down", &self.core.down.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Replicated<B> {
    pub(crate) fn new(backend: B, options: Options) -> Self {
        Self {
            core: Arc::new(Core {
                backend,
                mirror: options.mirror(),
                options,
                queue: tokio::sync::Mutex::new(VecDeque::new()),
                pending: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                down: AtomicBool::new(false),
                flushing: AtomicBool::new(false),
            }),
        }
    }

    pub(crate) fn options(&self) -> &Options {
        &self.core.options
    }

    pub(crate) fn backend(&self) -> &B {
        &self.core.backend
    }

    fn is_down(&self) -> bool {
        self.core.down.load(Ordering::Acquire)
    }

    /// Calls the store with the timeout.
    async fn call<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        match tokio::time::timeout(self.core.options.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(StorageError::new(format!(
                "{what}: no answer within {:?}",
                self.core.options.timeout
            ))),
        }
    }

    /// Notes a failed call: from now on writes are buffered and reads
    /// answered locally until the flusher finds the store back.
    async fn mark_down(&self, error: &StorageError) {
        let queue = self.core.queue.lock().await;
        self.fail(&queue, error);
    }

    /// Called with the queue locked, so that the flusher cannot be ending
    /// while a new one is needed.
    fn fail(&self, _locked: &VecDeque<Op>, error: &StorageError) {
        if !self.core.down.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                service = %self.core.options.service,
                error = %error,
                "shared storage unreachable: answering from this replica, buffering writes"
            );
        }
        if !self.core.flushing.swap(true, Ordering::AcqRel) {
            let this = self.clone();
            tokio::spawn(async move { this.flush().await });
        }
    }

    async fn write(&self, op: Op) {
        let mut queue = self.core.queue.lock().await;
        if queue.is_empty() && !self.is_down() {
            let result = self
                .call("write", self.core.backend.write(&op, &self.core.options, now_ms()))
                .await;
            match result {
                Ok(()) => return,
                Err(e) => self.fail(&queue, &e),
            }
        }
        if queue.len() >= self.core.options.buffer {
            let lost = if self.core.options.buffer == 0 {
                Some(op.clone())
            } else {
                queue.pop_front()
            };
            if lost.is_some() {
                let dropped = self.core.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    service = %self.core.options.service,
                    buffer = self.core.options.buffer,
                    dropped_total = dropped,
                    "shared storage write buffer full: the oldest waiting write was dropped"
                );
            }
        }
        if self.core.options.buffer > 0 {
            queue.push_back(op);
        }
        self.core.pending.store(queue.len() as u64, Ordering::Relaxed);
    }

    /// Retries the store with backoff until the buffer is written, in
    /// order, and the store answers.
    async fn flush(&self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            let mut queue = self.core.queue.lock().await;
            let mut failed = false;
            if queue.is_empty() {
                failed = self.call("ping", self.core.backend.ping()).await.is_err();
            }
            let mut flushed = 0_usize;
            while let Some(op) = queue.front() {
                let result = self
                    .call("write", self.core.backend.write(op, &self.core.options, now_ms()))
                    .await;
                if result.is_err() {
                    failed = true;
                    break;
                }
                queue.pop_front();
                flushed += 1;
                self.core.pending.store(queue.len() as u64, Ordering::Relaxed);
            }
            if !failed {
                self.core.down.store(false, Ordering::Release);
                self.core.flushing.store(false, Ordering::Release);
                tracing::info!(
                    service = %self.core.options.service,
                    flushed,
                    "shared storage reachable again: buffered writes flushed"
                );
                return;
            }
        }
    }

    /// A read from the store, or from the mirror while the store is down.
    async fn read<T>(
        &self,
        what: &str,
        remote: impl Future<Output = Result<T, StorageError>>,
        local: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        if !self.is_down() {
            match self.call(what, remote).await {
                Ok(value) => return Ok(value),
                Err(e) => self.mark_down(&e).await,
            }
        }
        local.await
    }

    pub(crate) fn write_buffer(&self) -> WriteBuffer {
        WriteBuffer::new(
            self.core.pending.load(Ordering::Relaxed),
            self.core.dropped.load(Ordering::Relaxed),
        )
    }
}

impl<B: Backend> Storage for Replicated<B> {
    async fn record(&self, result: &ProbeResult) -> Result<(), StorageError> {
        let result = result.clone().with_replica(self.core.options.replica.clone());
        self.core.mirror.record(&result).await?;
        self.write(Op::Record { at: now_ms(), result }).await;
        Ok(())
    }

    async fn latest(&self) -> Result<Vec<ProbeResult>, StorageError> {
        let since = since(now_ms(), self.core.options.result_ttl);
        let remote = async {
            let latest = self.core.backend.latest(&self.core.options, since).await?;
            Ok(latest.into_iter().map(|(_, r)| r).collect())
        };
        self.read("read latest results", remote, self.core.mirror.latest())
            .await
    }

    async fn history(&self) -> Result<History, StorageError> {
        let since = since(now_ms(), self.core.options.result_ttl);
        let remote = self.core.backend.history(&self.core.options, since);
        self.read("read history", remote, self.core.mirror.history()).await
    }

    async fn append_alert(&self, alert: &AlertRecord) -> Result<(), StorageError> {
        let alert = alert.clone().with_replica(self.core.options.replica.clone());
        self.core.mirror.append_alert(&alert).await?;
        self.write(Op::Alert { at: now_ms(), alert }).await;
        Ok(())
    }

    async fn alerts(&self) -> Result<Vec<AlertRecord>, StorageError> {
        let since = since(now_ms(), self.core.options.alert_ttl);
        let remote = self.core.backend.alerts(&self.core.options, since);
        self.read("read alerts", remote, self.core.mirror.alerts()).await
    }

    fn replica(&self) -> Option<&str> {
        Some(&self.core.options.replica)
    }

    async fn fleet(&self) -> Result<Vec<ReplicaReport>, StorageError> {
        if self.is_down() {
            return Err(StorageError::new("shared storage unreachable"));
        }
        let now = now_ms();
        let since = since(now, self.core.options.result_ttl);
        let latest = match self
            .call("read the fleet", self.core.backend.latest(&self.core.options, since))
            .await
        {
            Ok(latest) => latest,
            Err(e) => {
                self.mark_down(&e).await;
                return Err(e);
            }
        };
        Ok(group_fleet(latest, now, self.core.options.stale_after))
    }

    async fn claim_alert(&self, alert: &AlertRecord, window: Duration) -> Result<bool, StorageError> {
        if self.is_down() {
            return Err(StorageError::new("shared storage unreachable"));
        }
        let key = claim_key(alert);
        let claimed = self
            .call(
                "claim an alert",
                self.core.backend.claim(&self.core.options, &key, window),
            )
            .await;
        if let Err(e) = &claimed {
            self.mark_down(e).await;
        }
        claimed
    }

    fn write_buffer(&self) -> WriteBuffer {
        Replicated::write_buffer(self)
    }
}

/// Groups latest results by replica, probes by name, replicas by id.
fn group_fleet(latest: Latest, now: i64, stale_after: Duration) -> Vec<ReplicaReport> {
    /// A replica's last write and its latest result per probe.
    type Seen = (i64, BTreeMap<String, (i64, ProbeResult)>);
    let mut by_replica: BTreeMap<String, Seen> = BTreeMap::new();
    for (at, result) in latest {
        let Some(replica) = result.replica.clone() else {
            continue;
        };
        let (last, probes) = by_replica.entry(replica).or_insert((at, BTreeMap::new()));
        *last = (*last).max(at);
        match probes.get(&result.name) {
            Some((seen, _)) if *seen > at => {}
            _ => {
                probes.insert(result.name.clone(), (at, result));
            }
        }
    }
    let stale_ms = i64::try_from(stale_after.as_millis()).unwrap_or(i64::MAX);
    by_replica
        .into_iter()
        .map(|(replica, (last, probes))| {
            let reported_at = jiff::Timestamp::from_millisecond(last).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            let stale = now.saturating_sub(last) > stale_ms;
            ReplicaReport::new(
                replica,
                reported_at,
                stale,
                probes.into_values().map(|(_, r)| r).collect(),
            )
        })
        .collect()
}

/// What a stored entry looks like: the JSON of the result or record.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|e| StorageError::with_source("could not encode an entry", e))
}

/// Parses a stored entry; a malformed one (written by a different version,
/// or by hand) is skipped with a warning rather than failing the read.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    match serde_json::from_str(text) {
        Ok(value) => Some(value),
        Err(e) => {
            tracing::warn!(error = %e, "skipping a malformed entry in the shared storage");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn at(name: &str, replica: &str) -> ProbeResult {
        ProbeResult::new(name, Status::Healthy).with_replica(replica)
    }

    #[test]
    fn fleet_groups_by_replica_and_marks_stale_ones() {
        let latest = vec![
            (1_000, at("db", "b")),
            (9_000, at("db", "a")),
            (8_000, at("cache", "a")),
            (500, at("cache", "b")),
        ];
        let fleet = group_fleet(latest, 10_000, Duration::from_secs(5));
        assert_eq!(fleet.len(), 2);
        assert_eq!(fleet[0].replica, "a");
        assert!(!fleet[0].stale);
        assert_eq!(fleet[0].reported_at.as_millisecond(), 9_000);
        let names: Vec<_> = fleet[0].probes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["cache", "db"]);
        assert_eq!(fleet[1].replica, "b");
        assert!(fleet[1].stale);
    }

    #[test]
    fn options_are_validated() {
        let mut o = Options::new("checkout".into());
        assert!(o.validate().is_ok());
        o.service = "has space".into();
        assert!(o.validate().unwrap_err().to_string().contains("invalid service name"));
        o.service = "a:b".into();
        assert!(o.validate().is_err());
        o.service = "ok".into();
        o.replica = "pod a".into();
        assert!(o.validate().unwrap_err().to_string().contains("invalid replica id"));
        o.replica = "pod-a".into();
        o.result_ttl = Duration::ZERO;
        assert!(o.validate().unwrap_err().to_string().contains("non-zero"));
    }

    #[test]
    fn the_default_replica_id_ends_with_the_pid() {
        let id = default_replica_id();
        assert!(id.ends_with(&format!("-{}", std::process::id())), "{id}");
        assert!(!id.contains(char::is_whitespace));
    }

    #[test]
    fn claim_keys_name_the_probe_and_both_statuses() {
        let t = crate::Timestamp::now_in(&jiff::tz::TimeZone::UTC);
        let a = AlertRecord::new("db", Status::Healthy, Status::Unhealthy, t);
        assert_eq!(claim_key(&a), "db:healthy:unhealthy");
    }
}
