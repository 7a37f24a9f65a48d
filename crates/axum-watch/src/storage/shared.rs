//! What the shared backends have in common: the replica id every entry
//! carries, the options, the in-process mirror that answers while the store
//! is unreachable, and the bounded buffer of writes waiting for it.
//!
//! Nothing on a probe run or an endpoint waits on the store for longer than
//! the read timeout. `record` and `append_alert` write the mirror, hand the
//! write to the buffer and return; one writer task per store sends the
//! buffer, oldest first, one write at a time, each bounded by the operation
//! timeout. The first failed or unanswered call marks the store down: the
//! writer then pings it with backoff (100 ms doubling to 5 s), forgets the
//! connection after each failure, and flushes the buffer in order once it
//! answers. When the buffer is full the oldest write gives way; each loss is
//! counted and logged. A retried write carries the same sequence number and
//! is stored once. The buffer's lock is never held across a call.
//!
//! Reads (latest, history, alerts, fleet) first wait for this replica's own
//! writes handed over before them, then ask the store, all within the read
//! timeout; past it, or while the store is down, they answer from the
//! mirror, which holds this replica's own entries. Alert claims have the
//! same limit and fail (so the alert is sent) while the store is down.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::{History, MemoryStorage, ReplicaReport, Storage, StorageError, WriteBufferStats};
use crate::model::{AlertRecord, ProbeResult};

/// Implements [`Storage`] for a public store that wraps a [`Replicated`] in
/// its `inner` field: every method is the replicated core's.
macro_rules! delegate_storage {
    ($store:ty) => {
        impl $crate::storage::Storage for $store {
            async fn record(&self, result: &$crate::model::ProbeResult) -> Result<(), $crate::storage::StorageError> {
                self.inner.record(result).await
            }

            async fn record_all(
                &self,
                results: &[&$crate::model::ProbeResult],
            ) -> Result<(), $crate::storage::StorageError> {
                self.inner.record_all(results).await
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

            fn service(&self) -> Option<&str> {
                self.inner.service()
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

            fn write_buffer(&self) -> $crate::storage::WriteBufferStats {
                self.inner.write_buffer()
            }

            async fn flush(&self, deadline: std::time::Duration) -> Result<(), $crate::storage::StorageError> {
                self.inner.flush(deadline).await
            }
        }
    };
}
pub(super) use delegate_storage;

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
    /// The limit of one call of the writer to the store, connecting included.
    pub(crate) timeout: Duration,
    /// The limit of a read for an endpoint and of an alert claim.
    pub(crate) read_timeout: Duration,
}

impl Options {
    pub(crate) fn new(service: String) -> Self {
        Self {
            service,
            replica: super::default_replica_id(),
            history_size: MemoryStorage::DEFAULT_HISTORY_SIZE,
            result_ttl: MemoryStorage::DEFAULT_RESULT_TTL,
            max_alerts: MemoryStorage::DEFAULT_MAX_ALERTS,
            alert_ttl: MemoryStorage::DEFAULT_ALERT_TTL,
            stale_after: DEFAULT_STALE_AFTER,
            buffer: DEFAULT_BUFFER,
            timeout: DEFAULT_OPERATION_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
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
        if self.timeout.is_zero() || self.read_timeout.is_zero() {
            return Err(StorageError::new(
                "the store's operation and read timeouts must be longer than zero",
            ));
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
/// How long one write, ping or connection attempt may take.
pub(crate) const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a read for an endpoint or an alert claim may take.
pub(crate) const DEFAULT_READ_TIMEOUT: Duration = Duration::from_millis(250);

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

        /// Writes kept, in order, until the store has them (default 1000,
        /// at least 1); beyond that the oldest waiting write is dropped and
        /// counted in `health_storage_writes_dropped_total`.
        pub fn buffer(mut self, writes: usize) -> Self {
            self.options.buffer = writes;
            self
        }

        /// How long one call of the background writer may take, connecting
        /// included: a write, a ping or a connection attempt (default 2 s;
        /// not zero). A store that does not answer within it, because it is
        /// down or frozen (it accepts connections and never answers), is
        /// treated as unreachable: writes wait in the buffer, reads come
        /// from this replica's own entries and the writer retries with
        /// backoff. Probe runs and endpoints never wait for it.
        pub fn operation_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.options.timeout = timeout;
            self
        }

        /// The same as [`operation_timeout`](Self::operation_timeout).
        pub fn timeout(self, timeout: std::time::Duration) -> Self {
            self.operation_timeout(timeout)
        }

        /// How long a read for `history`, `alerts` and `status?scope=fleet`,
        /// and an alert claim, may take, waiting for this replica's own
        /// buffered writes included (default 250 ms; not zero). A read that
        /// takes longer is answered from this replica's own entries, a claim
        /// that takes longer sends the alert anyway, and the store counts as
        /// unreachable until the writer finds it answering again. Keep it
        /// above the store's usual read latency and below the kubelet's
        /// probe timeout.
        pub fn read_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.options.read_timeout = timeout;
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
    /// Writes one entry and prunes what fell out of the bounds. `seq` is
    /// the write's number, the same when it is retried: a write that timed
    /// out may still have reached the store, and writing it again must not
    /// store it twice.
    fn write(
        &self,
        seq: u64,
        op: &Op,
        options: &Options,
        now: i64,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
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
    /// Forgets the connection after a failed or unanswered call: the next
    /// call connects afresh instead of waiting on a peer that may be gone.
    fn reset(&self);
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

/// The write buffer: entries in order, each with its sequence number.
#[derive(Default)]
struct Queue {
    ops: VecDeque<(u64, Op)>,
    /// The sequence number of the last write handed to the buffer.
    last: u64,
    /// Whether the writer task runs.
    writing: bool,
}

impl Queue {
    /// Every write up to this one is written or dropped.
    fn settled(&self) -> u64 {
        self.ops.front().map_or(self.last, |(seq, _)| seq - 1)
    }
}

struct Core<B> {
    backend: B,
    options: Options,
    mirror: MemoryStorage,
    /// Locked for bookkeeping only, never across a call to the store.
    queue: Mutex<Queue>,
    /// [`Queue::settled`], for readers waiting for this replica's writes.
    settled: tokio::sync::watch::Sender<u64>,
    pending: AtomicU64,
    dropped: AtomicU64,
    /// Set by a failed or unanswered call, cleared by the writer once the
    /// store answers and the buffer is written.
    down: AtomicBool,
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

/// Clears [`Queue::writing`] when the writer task ends, also when its
/// runtime shuts down and drops it half-way.
struct Writing<'a, B> {
    core: &'a Core<B>,
    armed: bool,
}

impl<B> Drop for Writing<'_, B> {
    fn drop(&mut self) {
        if self.armed {
            self.core.lock().writing = false;
        }
    }
}

impl<B> Core<B> {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes the buffer's state; called with the queue locked.
    fn publish(&self, queue: &Queue) {
        self.pending.store(queue.ops.len() as u64, Ordering::Relaxed);
        self.settled.send_replace(queue.settled());
    }
}

/// The first pause between two attempts of the writer while the store is
/// unreachable; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl<B: Backend> Replicated<B> {
    pub(crate) fn new(backend: B, options: Options) -> Self {
        Self {
            core: Arc::new(Core {
                backend,
                mirror: options.mirror(),
                options,
                queue: Mutex::new(Queue::default()),
                settled: tokio::sync::watch::Sender::new(0),
                pending: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                down: AtomicBool::new(false),
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

    /// Calls the store, for at most `limit`.
    async fn call<T>(
        what: &str,
        limit: Duration,
        call: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result,
            Err(_) => Err(StorageError::new(format!("{what}: no answer within {limit:?}"))),
        }
    }

    /// Notes a failed or unanswered call: from now on reads are answered
    /// locally until the writer finds the store back.
    fn mark_down(&self, error: &StorageError) {
        let mut queue = self.core.lock();
        self.fail(&mut queue, error);
    }

    /// Called with the queue locked, so that the writer cannot be ending
    /// while a new one is needed.
    fn fail(&self, queue: &mut Queue, error: &StorageError) {
        if !self.core.down.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                service = %self.core.options.service,
                error = %error,
                "shared storage unreachable: answering from this replica, buffering writes"
            );
        }
        self.wake_writer(queue);
    }

    /// Starts the writer task unless it runs; called with the queue locked.
    fn wake_writer(&self, queue: &mut Queue) {
        if !queue.writing {
            queue.writing = true;
            let this = self.clone();
            tokio::spawn(async move { this.run_writer().await });
        }
    }

    /// Hands one write to the buffer and returns: the writer task sends it.
    fn write(&self, op: Op) {
        let capacity = self.core.options.buffer.max(1);
        let mut queue = self.core.lock();
        queue.last += 1;
        let seq = queue.last;
        if queue.ops.len() >= capacity {
            // The oldest write gives way, even while the writer is sending
            // it: should that succeed after all, it is stored and counted
            // as dropped, never the other way round.
            if queue.ops.pop_front().is_some() {
                let dropped = self.core.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    service = %self.core.options.service,
                    buffer = capacity,
                    dropped_total = dropped,
                    "shared storage write buffer full: the oldest waiting write was dropped"
                );
            }
        }
        queue.ops.push_back((seq, op));
        self.core.publish(&queue);
        self.wake_writer(&mut queue);
    }

    /// The writer task: sends the buffer to the store, oldest first, one
    /// write at a time, each bounded by the operation timeout. While the
    /// store is unreachable it pings it with backoff and resumes once it
    /// answers. It ends when the buffer is empty and the store answers.
    async fn run_writer(self) {
        let mut guard = Writing {
            core: &self.core,
            armed: true,
        };
        let limit = self.core.options.timeout;
        let mut backoff = FIRST_BACKOFF;
        let mut flushed = 0_usize;
        // Whether the store answered since it was last marked down.
        let mut answering = false;
        loop {
            if self.is_down() && !answering {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                if Self::call("ping", limit, self.core.backend.ping()).await.is_err() {
                    self.core.backend.reset();
                    continue;
                }
                answering = true;
            }
            let (seq, op) = {
                let mut queue = self.core.lock();
                let Some((seq, op)) = queue.ops.front().map(|(seq, op)| (*seq, op.clone())) else {
                    queue.writing = false;
                    guard.armed = false;
                    if self.core.down.swap(false, Ordering::AcqRel) {
                        tracing::info!(
                            service = %self.core.options.service,
                            flushed,
                            "shared storage reachable again: buffered writes flushed"
                        );
                    }
                    return;
                };
                (seq, op)
            };
            let result = Self::call(
                "write",
                limit,
                self.core.backend.write(seq, &op, &self.core.options, now_ms()),
            )
            .await;
            let mut queue = self.core.lock();
            match result {
                Ok(()) => {
                    if queue.ops.front().is_some_and(|(front, _)| *front == seq) {
                        queue.ops.pop_front();
                    }
                    if self.is_down() {
                        flushed += 1;
                    }
                    backoff = FIRST_BACKOFF;
                    self.core.publish(&queue);
                }
                Err(e) => {
                    answering = false;
                    self.fail(&mut queue, &e);
                    drop(queue);
                    self.core.backend.reset();
                }
            }
        }
    }

    /// Waits until the writes this replica handed over before now are
    /// written (or dropped), so that a read sees them.
    async fn settle(&self) {
        let target = self.core.lock().last;
        let mut settled = self.core.settled.subscribe();
        let _ = settled.wait_for(|s| *s >= target).await;
    }

    /// A read from the store, within the read timeout, or from the mirror
    /// while the store is down or does not answer in time.
    async fn read<T>(
        &self,
        what: &str,
        remote: impl Future<Output = Result<T, StorageError>>,
        local: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        if !self.is_down() {
            match self.bounded(what, remote).await {
                Ok(value) => return Ok(value),
                Err(e) => self.mark_down(&e),
            }
        }
        local.await
    }

    /// This replica's waiting writes, then `call`, within the read timeout.
    async fn bounded<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        Self::call(what, self.core.options.read_timeout, async {
            self.settle().await;
            call.await
        })
        .await
    }

    /// Waits, at most `deadline`, until every write handed over so far was
    /// written (or dropped for room).
    pub(crate) async fn flush(&self, deadline: Duration) -> Result<(), StorageError> {
        if tokio::time::timeout(deadline, self.settle()).await.is_ok() {
            return Ok(());
        }
        let pending = self.core.pending.load(Ordering::Relaxed);
        Err(StorageError::new(format!(
            "{pending} writes still waiting for the store after {deadline:?}"
        )))
    }

    pub(crate) fn write_buffer(&self) -> WriteBufferStats {
        WriteBufferStats::new(
            self.core.pending.load(Ordering::Relaxed),
            self.core.dropped.load(Ordering::Relaxed),
        )
    }
}

impl<B: Backend> Storage for Replicated<B> {
    async fn record(&self, result: &ProbeResult) -> Result<(), StorageError> {
        let result = result.clone().with_replica(self.core.options.replica.clone());
        self.core.mirror.record(&result).await?;
        self.write(Op::Record { at: now_ms(), result });
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
        self.write(Op::Alert { at: now_ms(), alert });
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

    fn service(&self) -> Option<&str> {
        Some(&self.core.options.service)
    }

    async fn fleet(&self) -> Result<Vec<ReplicaReport>, StorageError> {
        if self.is_down() {
            return Err(StorageError::new("shared storage unreachable"));
        }
        let now = now_ms();
        let since = since(now, self.core.options.result_ttl);
        let latest = match self
            .bounded("read the fleet", self.core.backend.latest(&self.core.options, since))
            .await
        {
            Ok(latest) => latest,
            Err(e) => {
                self.mark_down(&e);
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
        let claimed = Self::call(
            "claim an alert",
            self.core.options.read_timeout,
            self.core.backend.claim(&self.core.options, &key, window),
        )
        .await;
        if let Err(e) = &claimed {
            self.mark_down(e);
        }
        claimed
    }

    fn write_buffer(&self) -> WriteBufferStats {
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
        let id = crate::storage::default_replica_id();
        assert!(id.ends_with(&format!("-{}", std::process::id())), "{id}");
        assert!(!id.contains(char::is_whitespace));
    }

    #[test]
    fn claim_keys_name_the_probe_and_both_statuses() {
        let t = crate::model::Timestamp::now_in(&jiff::tz::TimeZone::UTC);
        let a = AlertRecord::new("db", Status::Healthy, Status::Unhealthy, t);
        assert_eq!(claim_key(&a), "db:healthy:unhealthy");
    }
}
