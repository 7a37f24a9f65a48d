//! The latency a shared storage adds to a probe run, against the memory
//! storage, measured in one process in interleaved rounds.
//!
//! ```sh
//! cargo run --release -p axum-watch --features redis-storage,postgres-storage --example storage_bench
//! ```
//!
//! Each round times `HealthRegistry::run_all` on a registry with one probe
//! that answers at once, for every store in turn: `steady` runs keep the
//! status (one result written), `transition` runs flip it (a result, an alert
//! record and, with an alerter configured, an alert claim). Settings:
//! `REDIS_URL`, `POSTGRES_URL`, `ROUNDS` (10), `RUNS` (200 per round and store).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum_watch::{
    AlertError, AlertRecord, Alerter, HealthRegistry, MemoryStorage, Outcome, PostgresStorage, Probe, ProbeError,
    RedisStorage, Storage,
};

#[derive(Clone, Default)]
struct Flip(Arc<AtomicBool>);

impl Probe for Flip {
    fn name(&self) -> &str {
        "db"
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        Ok(if self.0.load(Ordering::Relaxed) {
            Outcome::unhealthy("down")
        } else {
            Outcome::healthy()
        })
    }
}

struct Quiet;

impl Alerter for Quiet {
    fn name(&self) -> &str {
        "quiet"
    }

    async fn notify(&self, _alert: &AlertRecord) -> Result<(), AlertError> {
        Ok(())
    }
}

struct Subject {
    name: &'static str,
    registry: HealthRegistry,
    probe: Flip,
    steady: Vec<Duration>,
    transition: Vec<Duration>,
}

fn subject(name: &'static str, storage: impl Storage) -> Subject {
    let probe = Flip::default();
    let registry = HealthRegistry::builder()
        .add(probe.clone())
        .poll_interval(None)
        .circuit_breaker(false)
        .alerter(Quiet)
        // Every flip is a new claim: the window is shorter than a run.
        .alert_dedup_window(Duration::from_millis(1))
        .storage(storage)
        .build()
        .unwrap();
    Subject {
        name,
        registry,
        probe,
        steady: Vec::new(),
        transition: Vec::new(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn summary(samples: &mut [Duration]) -> (f64, f64, f64) {
    samples.sort();
    (
        percentile(samples, 0.5),
        percentile(samples, 0.9),
        percentile(samples, 0.99),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let postgres_url =
        std::env::var("POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let runs: usize = std::env::var("RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let service = format!("bench-{}", std::process::id());

    let mut subjects = vec![
        subject("memory", MemoryStorage::default()),
        subject(
            "redis",
            RedisStorage::builder(&redis_url, &service)
                .replica("bench")
                .build()
                .unwrap(),
        ),
        subject(
            "postgres",
            PostgresStorage::builder(&postgres_url, &service)
                .replica("bench")
                .build()
                .unwrap(),
        ),
    ];

    // Warm-up: connections, prepared statements, the schema.
    for s in &subjects {
        for _ in 0..50 {
            s.registry.run_all().await;
        }
    }
    for round in 0..rounds {
        // Interleaved, starting with a different store each round.
        for k in 0..subjects.len() {
            let s = &mut subjects[(round + k) % 3];
            s.probe.0.store(false, Ordering::Relaxed);
            s.registry.run_all().await;
            for _ in 0..runs {
                let start = Instant::now();
                s.registry.run_all().await;
                s.steady.push(start.elapsed());
            }
            for _ in 0..runs {
                s.probe.0.fetch_xor(true, Ordering::Relaxed);
                let start = Instant::now();
                s.registry.run_all().await;
                s.transition.push(start.elapsed());
            }
        }
    }

    let memory = (
        summary(&mut subjects[0].steady.clone()),
        summary(&mut subjects[0].transition.clone()),
    );
    println!(
        "{rounds} rounds x {runs} runs per store and kind; microseconds per run_all (median / p90 / p99), added = median minus memory's"
    );
    println!("| store | steady run | added | transition run | added |");
    println!("| --- | --- | --- | --- | --- |");
    for s in &mut subjects {
        let steady = summary(&mut s.steady);
        let transition = summary(&mut s.transition);
        println!(
            "| {} | {:.0} / {:.0} / {:.0} | {:+.0} | {:.0} / {:.0} / {:.0} | {:+.0} |",
            s.name,
            steady.0,
            steady.1,
            steady.2,
            steady.0 - memory.0.0,
            transition.0,
            transition.1,
            transition.2,
            transition.0 - memory.1.0,
        );
    }
}
