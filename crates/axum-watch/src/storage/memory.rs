//! The default storage: bounded, in-process, gone on restart.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::{History, Storage, StorageError};
use crate::model::{AlertRecord, ProbeResult};

/// In-memory storage bounded by count and age.
///
/// History keeps at most `history_size` results per probe (oldest dropped
/// first) and hides results older than `result_ttl`; the alert log keeps at
/// most `max_alerts` records and hides those older than `alert_ttl`. A TTL of
/// zero keeps entries until the count bound evicts them. Ages use tokio's
/// clock, so paused-time tests can move them.
///
/// ```
/// use std::time::Duration;
/// use axum_watch::storage::MemoryStorage;
///
/// let storage = MemoryStorage::builder()
///     .history_size(10)
///     .max_alerts(50)
///     .alert_ttl(Duration::from_secs(24 * 3600))
///     .build();
/// # drop(storage);
/// ```
#[derive(Debug)]
pub struct MemoryStorage {
    limits: Limits,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    history_size: usize,
    result_ttl: Duration,
    max_alerts: usize,
    alert_ttl: Duration,
}

#[derive(Debug, Default)]
struct State {
    /// Each probe's history, in the order the names were first recorded.
    probes: Vec<Kept>,
    /// Where each name's history is in `probes`: recording is O(1) whatever
    /// the number of probes.
    positions: HashMap<String, usize>,
    alerts: VecDeque<(Instant, AlertRecord)>,
}

/// One probe's history. Every result of a probe has the same name, and
/// almost always the same description and tags: those are kept once, here,
/// and the results kept without them (a result whose description or tags
/// differ keeps its own), so recording copies only what changes.
#[derive(Debug)]
struct Kept {
    name: String,
    description: Option<String>,
    tags: Vec<String>,
    /// When each result was recorded, the result, and whether it keeps its
    /// own description and tags.
    results: VecDeque<(Instant, ProbeResult, bool)>,
}

impl Kept {
    fn new(first: &ProbeResult) -> Self {
        Self {
            name: first.name.clone(),
            description: first.description.clone(),
            tags: first.tags.clone(),
            results: VecDeque::new(),
        }
    }

    /// Keeps `result`, reusing the oldest result's allocations once the
    /// history is full.
    fn push(&mut self, result: &ProbeResult, at: Instant, limit: usize) {
        let own = result.description != self.description || result.tags != self.tags;
        let mut slot = None;
        while self.results.len() >= limit {
            slot = self.results.pop_front();
        }
        let kept = match slot {
            Some((_, mut old, _)) => {
                copy_into(&mut old, result, own);
                old
            }
            None => {
                let mut kept = ProbeResult::new(String::new(), result.status);
                copy_into(&mut kept, result, own);
                kept
            }
        };
        self.results.push_back((at, kept, own));
    }

    /// A kept result as it was recorded.
    fn full(&self, kept: &ProbeResult, own: bool) -> ProbeResult {
        let mut result = kept.clone();
        result.name.clone_from(&self.name);
        if !own {
            result.description.clone_from(&self.description);
            result.tags.clone_from(&self.tags);
        }
        result
    }

    fn drop_older(&mut self, ttl: Duration, now: Instant) {
        while self.results.front().is_some_and(|(at, _, _)| !fresh(*at, ttl, now)) {
            self.results.pop_front();
        }
    }
}

/// Copies `from` into `into` (reusing its allocations), without the name,
/// and without the description and tags unless `own`.
fn copy_into(into: &mut ProbeResult, from: &ProbeResult, own: bool) {
    let ProbeResult {
        name: _,
        status,
        critical,
        latency_ms,
        error,
        description,
        tags,
        details,
        circuit,
        pending,
        checked_at,
        replica,
    } = from;
    into.status = *status;
    into.critical = *critical;
    into.latency_ms = *latency_ms;
    into.error.clone_from(error);
    if own {
        into.description.clone_from(description);
        into.tags.clone_from(tags);
    } else {
        into.description = None;
        into.tags.clear();
    }
    into.details.clone_from(details);
    into.circuit.clone_from(circuit);
    into.pending.clone_from(pending);
    into.checked_at.clone_from(checked_at);
    into.replica.clone_from(replica);
}

/// Builds a [`MemoryStorage`]; every limit has the registry's default.
#[derive(Debug, Clone)]
#[must_use]
pub struct MemoryStorageBuilder {
    limits: Limits,
}

impl MemoryStorageBuilder {
    /// Results kept per probe (default 120, at least 1).
    pub fn history_size(mut self, size: usize) -> Self {
        self.limits.history_size = size.max(1);
        self
    }

    /// How long results stay visible (default 2 h; zero = until evicted).
    pub fn result_ttl(mut self, ttl: Duration) -> Self {
        self.limits.result_ttl = ttl;
        self
    }

    /// Alert records kept in all (default 120, at least 1).
    pub fn max_alerts(mut self, max: usize) -> Self {
        self.limits.max_alerts = max.max(1);
        self
    }

    /// How long alert records stay visible (default 72 h; zero = until evicted).
    pub fn alert_ttl(mut self, ttl: Duration) -> Self {
        self.limits.alert_ttl = ttl;
        self
    }

    /// The storage.
    #[must_use]
    pub fn build(self) -> MemoryStorage {
        MemoryStorage {
            limits: self.limits,
            state: Mutex::new(State::default()),
        }
    }
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl MemoryStorage {
    /// Default limits: 120 results per probe for 2 h, 120 alerts for 72 h.
    pub const DEFAULT_HISTORY_SIZE: usize = 120;
    /// The default result TTL.
    pub const DEFAULT_RESULT_TTL: Duration = Duration::from_secs(7200);
    /// The default alert cap.
    pub const DEFAULT_MAX_ALERTS: usize = 120;
    /// The default alert TTL.
    pub const DEFAULT_ALERT_TTL: Duration = Duration::from_secs(259_200);

    /// A builder with the default limits.
    pub fn builder() -> MemoryStorageBuilder {
        MemoryStorageBuilder {
            limits: Limits {
                history_size: Self::DEFAULT_HISTORY_SIZE,
                result_ttl: Self::DEFAULT_RESULT_TTL,
                max_alerts: Self::DEFAULT_MAX_ALERTS,
                alert_ttl: Self::DEFAULT_ALERT_TTL,
            },
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the queues half-updated
        // in a way that matters: every critical section is a push or a pop.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn fresh(at: Instant, ttl: Duration, now: Instant) -> bool {
    ttl.is_zero() || now.saturating_duration_since(at) < ttl
}

impl Storage for MemoryStorage {
    async fn record(&self, result: &ProbeResult) -> Result<(), StorageError> {
        self.record_all(&[result]).await
    }

    async fn record_all(&self, results: &[&ProbeResult]) -> Result<(), StorageError> {
        let now = Instant::now();
        let mut state = self.state();
        let state = &mut *state;
        // Runs list their results in the order this store first saw them:
        // the one after the last is tried before the map.
        let mut next = 0;
        for &result in results {
            let hinted = state.probes.get(next).is_some_and(|kept| kept.name == result.name);
            let index = if hinted {
                next
            } else if let Some(&i) = state.positions.get(result.name.as_str()) {
                i
            } else {
                let i = state.probes.len();
                state.positions.insert(result.name.clone(), i);
                state.probes.push(Kept::new(result));
                i
            };
            state.probes[index].push(result, now, self.limits.history_size);
            next = index + 1;
        }
        Ok(())
    }

    async fn latest(&self) -> Result<Vec<ProbeResult>, StorageError> {
        let now = Instant::now();
        let state = self.state();
        Ok(state
            .probes
            .iter()
            .filter_map(|kept| {
                let (at, result, own) = kept.results.back()?;
                fresh(*at, self.limits.result_ttl, now).then(|| kept.full(result, *own))
            })
            .collect())
    }

    async fn history(&self) -> Result<History, StorageError> {
        let now = Instant::now();
        let ttl = self.limits.result_ttl;
        let mut state = self.state();
        let mut out = Vec::with_capacity(state.probes.len());
        for kept in &mut state.probes {
            kept.drop_older(ttl, now);
            if !kept.results.is_empty() {
                let results = kept.results.iter().map(|(_, r, own)| kept.full(r, *own)).collect();
                out.push((kept.name.clone(), results));
            }
        }
        Ok(out)
    }

    async fn append_alert(&self, alert: &AlertRecord) -> Result<(), StorageError> {
        let now = Instant::now();
        let mut state = self.state();
        while state.alerts.len() >= self.limits.max_alerts {
            state.alerts.pop_front();
        }
        state.alerts.push_back((now, alert.clone()));
        Ok(())
    }

    async fn alerts(&self) -> Result<Vec<AlertRecord>, StorageError> {
        let now = Instant::now();
        let ttl = self.limits.alert_ttl;
        let mut state = self.state();
        while state.alerts.front().is_some_and(|(at, _)| !fresh(*at, ttl, now)) {
            state.alerts.pop_front();
        }
        Ok(state.alerts.iter().map(|(_, a)| a.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Status, Timestamp};

    fn result(name: &str, status: Status) -> ProbeResult {
        ProbeResult::new(name, status)
    }

    fn alert(probe: &str) -> AlertRecord {
        let t = Timestamp::now_in(&jiff::tz::TimeZone::UTC);
        AlertRecord::new(probe, Status::Healthy, Status::Unhealthy, t)
    }

    #[tokio::test(start_paused = true)]
    async fn history_is_capped_per_probe_oldest_first() {
        let s = MemoryStorage::builder().history_size(3).build();
        for status in [Status::Healthy, Status::Degraded, Status::Unhealthy, Status::Healthy] {
            s.record(&result("a", status)).await.unwrap();
        }
        s.record(&result("b", Status::Healthy)).await.unwrap();
        let h = s.history().await.unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].0, "a");
        let statuses: Vec<_> = h[0].1.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [Status::Degraded, Status::Unhealthy, Status::Healthy]);
        assert_eq!(h[1].1.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn kept_results_read_back_whole_whatever_their_tags() {
        let s = MemoryStorage::builder().history_size(2).build();
        let tagged = |status, tags: &[&str], error: Option<&str>| {
            let mut r = result("db", status);
            r.description = Some("primary".into());
            r.tags = tags.iter().map(|t| (*t).to_owned()).collect();
            r.error = error.map(str::to_owned);
            r
        };
        let first = tagged(Status::Healthy, &["core"], None);
        let odd = tagged(Status::Degraded, &["core", "canary"], Some("slow"));
        let third = tagged(Status::Unhealthy, &["core"], Some("down"));
        let fourth = tagged(Status::Healthy, &[], None);
        s.record_all(&[&first, &odd]).await.unwrap();
        assert_eq!(history_of(&s, "db").await, [first.clone(), odd.clone()]);
        // Full: the oldest gives its place (and its allocations) to the next.
        s.record(&third).await.unwrap();
        assert_eq!(history_of(&s, "db").await, [odd.clone(), third.clone()]);
        s.record(&fourth).await.unwrap();
        assert_eq!(history_of(&s, "db").await, [third, fourth.clone()]);
        assert_eq!(s.latest().await.unwrap(), [fourth]);
    }

    async fn history_of(s: &MemoryStorage, name: &str) -> Vec<ProbeResult> {
        let history = s.history().await.unwrap();
        history
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .unwrap_or_default()
    }

    #[tokio::test(start_paused = true)]
    async fn results_expire_after_ttl() {
        let s = MemoryStorage::builder().result_ttl(Duration::from_secs(10)).build();
        s.record(&result("old", Status::Healthy)).await.unwrap();
        tokio::time::advance(Duration::from_secs(6)).await;
        s.record(&result("new", Status::Healthy)).await.unwrap();
        s.record(&result("old", Status::Degraded)).await.unwrap();
        tokio::time::advance(Duration::from_secs(5)).await;
        let h = s.history().await.unwrap();
        assert_eq!(
            h.iter().map(|(n, v)| (n.as_str(), v.len())).collect::<Vec<_>>(),
            [("old", 1), ("new", 1)]
        );
        assert_eq!(s.latest().await.unwrap().len(), 2);
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(s.history().await.unwrap().is_empty());
        assert!(s.latest().await.unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn zero_ttl_keeps_until_evicted() {
        let s = MemoryStorage::builder()
            .result_ttl(Duration::ZERO)
            .alert_ttl(Duration::ZERO)
            .build();
        s.record(&result("a", Status::Healthy)).await.unwrap();
        s.append_alert(&alert("a")).await.unwrap();
        tokio::time::advance(Duration::from_secs(365 * 24 * 3600)).await;
        assert_eq!(s.history().await.unwrap().len(), 1);
        assert_eq!(s.alerts().await.unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn alerts_are_capped_and_expire() {
        let s = MemoryStorage::builder()
            .max_alerts(2)
            .alert_ttl(Duration::from_secs(60))
            .build();
        for p in ["a", "b", "c"] {
            s.append_alert(&alert(p)).await.unwrap();
            tokio::time::advance(Duration::from_secs(20)).await;
        }
        let probes: Vec<_> = s.alerts().await.unwrap().into_iter().map(|a| a.probe).collect();
        assert_eq!(probes, ["b", "c"]);
        tokio::time::advance(Duration::from_secs(25)).await;
        let probes: Vec<_> = s.alerts().await.unwrap().into_iter().map(|a| a.probe).collect();
        assert_eq!(probes, ["c"]);
    }

    #[tokio::test(start_paused = true)]
    async fn many_names_keep_their_own_histories_in_first_recorded_order() {
        let s = MemoryStorage::builder().history_size(2).build();
        // Recorded out of order, three times each: every result lands in its
        // own name's history, and names stay in first-recorded order.
        let order: Vec<usize> = (0..3_000).map(|i| (i * 7919) % 3_000).collect();
        let statuses = [Status::Healthy, Status::Degraded, Status::Unhealthy];
        for status in statuses {
            for &i in &order {
                s.record(&result(&format!("p{i}"), status)).await.unwrap();
            }
        }
        let h = s.history().await.unwrap();
        assert_eq!(h.len(), 3_000);
        for ((name, results), &i) in h.iter().zip(&order) {
            assert_eq!(*name, format!("p{i}"));
            assert!(results.iter().all(|r| r.name == *name));
            let kept: Vec<_> = results.iter().map(|r| r.status).collect();
            assert_eq!(kept, [Status::Degraded, Status::Unhealthy], "{name}");
        }
        let latest = s.latest().await.unwrap();
        assert_eq!(latest.len(), 3_000);
        assert!(latest.iter().all(|r| r.status == Status::Unhealthy));
    }

    #[test]
    fn limits_have_a_floor_of_one() {
        let s = MemoryStorage::builder().history_size(0).max_alerts(0).build();
        assert_eq!(s.limits.history_size, 1);
        assert_eq!(s.limits.max_alerts, 1);
    }
}
