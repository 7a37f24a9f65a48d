//! The scenario both exporter tests drive: a registry with one figure of
//! every kind in play — a critical probe whose breaker opens, a degraded
//! non-critical one, a passive probe that first sees no traffic, an alerter
//! that rejects its first alert, and a shared store with a write buffer —
//! taken from all healthy through one transition to drained.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum_watch::options::Scheduling;
use axum_watch::passive::{PassiveProbe, StatsConfig};
use axum_watch::storage::{History, MemoryStorage, ReplicaReport, StorageError, WriteBufferStats};
use axum_watch::{AlertRecord, HealthRegistry, HealthReport, ProbeResult, Status, Storage};

use crate::common::{Recorder, Switch, get};

/// A memory store that says it is shared by replicas, with a write buffer
/// that holds 3 writes and has lost 7.
pub struct SharedStore(MemoryStorage);

impl Storage for SharedStore {
    async fn record(&self, result: &ProbeResult) -> Result<(), StorageError> {
        self.0.record(result).await
    }

    async fn latest(&self) -> Result<Vec<ProbeResult>, StorageError> {
        self.0.latest().await
    }

    async fn history(&self) -> Result<History, StorageError> {
        self.0.history().await
    }

    async fn append_alert(&self, alert: &AlertRecord) -> Result<(), StorageError> {
        self.0.append_alert(alert).await
    }

    async fn alerts(&self) -> Result<Vec<AlertRecord>, StorageError> {
        self.0.alerts().await
    }

    fn replica(&self) -> Option<&str> {
        Some("pod-a")
    }

    async fn fleet(&self) -> Result<Vec<ReplicaReport>, StorageError> {
        Ok(Vec::new())
    }

    fn write_buffer(&self) -> WriteBufferStats {
        WriteBufferStats::new(3, 7)
    }
}

pub struct Scenario {
    pub registry: HealthRegistry,
    pub db: Switch,
    pub cache: Switch,
    pub queue: PassiveProbe,
    pub pager: Recorder,
}

impl Scenario {
    pub fn new() -> Self {
        let db = Switch::new("db", Status::Healthy);
        let cache = Switch::new("cache", Status::Healthy);
        let queue = PassiveProbe::new("queue").with_config(StatsConfig::default().min_calls(1));
        // Its first alert is refused for good (rejected), the next one sent.
        let pager = Recorder {
            failures: 1,
            transient: false,
            ..Recorder::default()
        };
        let registry = HealthRegistry::builder()
            .add(db.clone())
            .add_non_critical(cache.clone())
            .add_non_critical(queue.clone())
            .circuit_threshold(2)
            .cache_age(Duration::ZERO)
            .scheduling(Scheduling::OnRequest)
            .storage(SharedStore(MemoryStorage::default()))
            .alerter(pager.clone())
            .drain_delay(Duration::ZERO)
            .build()
            .unwrap();
        Self {
            registry,
            db,
            cache,
            queue,
            pager,
        }
    }

    /// The first report: everything healthy, the passive probe without traffic.
    pub async fn healthy(&self) -> Arc<HealthReport> {
        let report = self.registry.run_all().await;
        assert_eq!(report.status, Status::Healthy);
        report
    }

    /// `db` fails twice (its breaker opens), `cache` degrades, `queue` sees
    /// a call; waits until the pager has had both alerts. The last report.
    pub async fn transition(&self) -> Arc<HealthReport> {
        self.db.set(Status::Unhealthy);
        self.cache.set(Status::Degraded);
        self.queue.watch(async { Ok::<_, std::io::Error>(()) }).await.unwrap();
        self.registry.run_all().await;
        let report = self.registry.run_all().await;
        assert_eq!(report.status, Status::Unhealthy);
        let db = report.probe("db").unwrap().circuit.unwrap();
        assert!(db.open && db.consecutive_failures == 2 && db.trips_total == 1, "{db:?}");
        // The registry's own account of the pager: one rejected, one sent.
        let started = Instant::now();
        loop {
            let body = get(&self.registry, "/health/alerts/deliveries").await.json();
            let pager = &body["alerters"][0];
            if pager["sent"] == 1 && pager["rejected"] == 1 && pager["waiting"] == 0 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the alerts never went out: {body}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(self.pager.calls(), 2);
        report
    }
}

/// Which point of the scenario a test reads the figures at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Healthy,
    Transitioned,
}

/// The probe figures every exporter must show at `stage`, by Prometheus
/// family: `(family, probe, critical, value in the exported unit)`.
/// Latency is the one measured figure: it is read off `report`.
pub fn probe_figures(stage: Stage, report: &HealthReport) -> Vec<(&'static str, &'static str, bool, f64)> {
    // healthy, degraded, circuit open, consecutive failures, trips, no data
    let rows: [(&str, bool, [f64; 6]); 3] = match stage {
        Stage::Healthy => [
            ("db", true, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            ("cache", false, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            ("queue", false, [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]),
        ],
        Stage::Transitioned => [
            ("db", true, [0.0, 0.0, 1.0, 2.0, 1.0, 0.0]),
            ("cache", false, [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
            ("queue", false, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        ],
    };
    let mut out = Vec::new();
    for (probe, critical, [healthy, degraded, open, failures, trips, no_data]) in rows {
        let latency = report.probe(probe).unwrap().latency_ms / 1000.0;
        out.extend([
            ("probe_healthy", probe, critical, healthy),
            ("probe_degraded", probe, critical, degraded),
            ("probe_latency_ms", probe, critical, latency),
            ("probe_circuit_open", probe, critical, open),
            ("probe_circuit_consecutive_failures", probe, critical, failures),
            ("probe_circuit_trips_total", probe, critical, trips),
            ("probe_no_data", probe, critical, no_data),
        ]);
    }
    out
}

/// What the pager did by `stage`: sent, redelivered, failed, rejected,
/// dropped; then the alerts waiting.
pub fn deliveries(stage: Stage) -> ([(&'static str, u64); 5], u64) {
    let (sent, rejected) = match stage {
        Stage::Healthy => (0, 0),
        Stage::Transitioned => (1, 1),
    };
    (
        [
            ("sent", sent),
            ("redelivered", 0),
            ("failed", 0),
            ("rejected", rejected),
            ("dropped", 0),
        ],
        0,
    )
}
