//! The latency a shared storage adds to a probe run, against the memory
//! storage, measured in one process in interleaved rounds.
//!
//! ```sh
//! cargo run --release -p axum-watch-examples --features redis-storage,postgres-storage --example storage_bench
//! ```
//!
//! Each round times `HealthRegistry::run_all` on a registry with one probe
//! that answers at once, for every store in turn: `steady` runs keep the
//! status (one result written), `transition` runs flip it (a result, an alert
//! record and, with an alerter configured, an alert claim). Settings:
//! `REDIS_URL`, `POSTGRES_URL`, `ROUNDS` (10), `RUNS` (200 per round and store).
//!
//! With `MODE=frozen` it measures instead what a frozen store (one that
//! accepts connections and never answers, like a Redis stopped with
//! `SIGSTOP`) does to readiness: `REQUESTS` (200) uncached `GET /health/ready`
//! per store, through the router, against a registry of three probes that
//! answer at once, one every `INTERVAL_MS` (100, as a kubelet spreads its
//! probes out), the store's timeout `STORE_TIMEOUT_MS` (1000); it prints the
//! p50, p99 and maximum latency per store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum_watch::{
    AlertRecord, Alerter, HealthRegistry, Outcome, Probe, ProbeError, Storage,
    alert::AlertError,
    storage::{MemoryStorage, PostgresStorage, RedisStorage},
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

/// A TCP listener on loopback that accepts connections and never answers.
async fn silent_listener() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr
}

#[derive(Clone)]
struct Instant0(&'static str);

impl Probe for Instant0 {
    fn name(&self) -> &str {
        self.0
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        Ok(Outcome::healthy())
    }
}

async fn frozen_ready(name: &str, storage: impl Storage, requests: usize, interval: Duration) {
    use tower::ServiceExt;
    let registry = HealthRegistry::builder()
        .add(Instant0("db"))
        .add(Instant0("cache"))
        .add(Instant0("queue"))
        .poll_interval(None)
        .cache_age(Duration::ZERO)
        .circuit_breaker(false)
        .storage(storage)
        .build()
        .unwrap();
    let app: axum::Router = registry.router();
    let mut samples = Vec::with_capacity(requests);
    for _ in 0..requests {
        let request = axum::http::Request::builder()
            .uri("/health/ready")
            .body(axum::body::Body::empty())
            .unwrap();
        let start = Instant::now();
        let response = app.clone().oneshot(request).await.unwrap();
        let _ = http_body_util::BodyExt::collect(response.into_body()).await.unwrap();
        samples.push(start.elapsed());
        tokio::time::sleep(interval).await;
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| {name} | {requests} | {:.2} | {:.2} | {:.2} |",
        ms(samples[samples.len() / 2]),
        ms(samples[(samples.len() - 1) * 99 / 100]),
        ms(samples[samples.len() - 1]),
    );
}

async fn frozen() {
    let requests: usize = std::env::var("REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let timeout = Duration::from_millis(
        std::env::var("STORE_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000),
    );
    let interval = Duration::from_millis(
        std::env::var("INTERVAL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100),
    );
    let addr = silent_listener().await;
    let service = format!("bench-{}", std::process::id());
    println!(
        "uncached GET /health/ready with a frozen store at {addr}, store timeout {timeout:?}, one request every {interval:?}; milliseconds"
    );
    println!("| store | requests | p50 | p99 | max |");
    println!("| --- | --- | --- | --- | --- |");
    frozen_ready("memory (reference)", MemoryStorage::default(), requests, interval).await;
    let redis = RedisStorage::builder(format!("redis://{addr}"), &service)
        .replica("bench")
        .timeout(timeout)
        .build()
        .unwrap();
    frozen_ready("redis, frozen", redis, requests, interval).await;
    let postgres = PostgresStorage::builder(format!("postgres://postgres@{addr}/test"), &service)
        .replica("bench")
        .timeout(timeout)
        .build()
        .unwrap();
    frozen_ready("postgres, frozen", postgres, requests, interval).await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::var("MODE").is_ok_and(|m| m == "frozen") {
        frozen().await;
        return;
    }
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
