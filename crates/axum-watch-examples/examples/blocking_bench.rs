//! Blocking-probe benchmark: latency of `/health/live` and `/health/ready`
//! while one probe blocks its thread.
//!
//! This is not a test. The server is a registry with one async probe that
//! calls `std::thread::sleep` for 30 s (probe timeout 2 s) and three probes
//! that answer at once, `cache_age(Duration::ZERO)` (every `/health/ready`
//! asks for a run), served on 127.0.0.1 by a multi-threaded tokio runtime
//! with 2 worker threads. The client runs in the same process on a runtime of
//! its own (its own thread), so a stalled server cannot stall it: it sends
//! `GET /health/ready` every 200 ms and `GET /health/live` every 50 ms for
//! 15 s, each request on a fresh TCP connection (`Connection: close`, as a
//! kubelet probe does) in its own task, with a 5 s client timeout covering
//! connect, send and the whole response. It then prints, per endpoint, the
//! requests sent, their status codes, the timeouts and the p50, p99 and max
//! latency; a timed-out request counts as 5 s in the percentiles.
//!
//! ```sh
//! cargo build --release --example blocking_bench
//! target/release/examples/blocking_bench
//! DURATION_SECS=15 WORKERS=2 SLEEP_SECS=30 target/release/examples/blocking_bench   # defaults
//! ```

mod bench;

use std::time::{Duration, Instant};

use axum_watch::{HealthRegistry, Outcome, ProbeExt, probe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Client timeout per request (connect, send, whole response).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The blocking probe's timeout.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

fn registry(sleep: Duration) -> anyhow::Result<HealthRegistry> {
    let blocking = probe::from_fn("blocking", move || async move {
        // A probe that blocks its thread (a synchronous client call inside an
        // async probe), the mistake this benchmark is about.
        std::thread::sleep(sleep);
        Ok(Outcome::healthy())
    })
    .with_timeout(PROBE_TIMEOUT);
    let mut builder = HealthRegistry::builder().cache_age(Duration::ZERO).add(blocking);
    for name in ["fast-1", "fast-2", "fast-3"] {
        builder = builder.add(probe::from_fn(name, || async { Ok(Outcome::healthy()) }));
    }
    Ok(builder.build()?)
}

/// One request's result: latency and status code, `None` on a timeout,
/// `Some(0)` on a connection or protocol error.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// When the request was sent, from the start of the run.
    sent: Duration,
    latency: Duration,
    status: Option<u16>,
}

async fn get(addr: std::net::SocketAddr, path: &'static str, run_start: Instant) -> Sample {
    let start = Instant::now();
    let sent = start - run_start;
    let request = async {
        let mut stream = TcpStream::connect(addr).await?;
        let head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await?;
        let mut body = Vec::with_capacity(4096);
        stream.read_to_end(&mut body).await?;
        let status = std::str::from_utf8(&body)
            .ok()
            .and_then(|text| text.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        Ok::<u16, std::io::Error>(status)
    };
    match tokio::time::timeout(CLIENT_TIMEOUT, request).await {
        Ok(Ok(status)) => Sample {
            sent,
            latency: start.elapsed(),
            status: Some(status),
        },
        Ok(Err(_)) => Sample {
            sent,
            latency: start.elapsed(),
            status: Some(0),
        },
        Err(_) => Sample {
            sent,
            latency: CLIENT_TIMEOUT,
            status: None,
        },
    }
}

/// Sends `GET path` every `every` for `duration`, each request in its own
/// task, and returns every request's sample once all have finished.
async fn drive(
    addr: std::net::SocketAddr,
    path: &'static str,
    every: Duration,
    duration: Duration,
    run_start: Instant,
) -> Vec<Sample> {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = tokio::time::Instant::now() + duration;
    let mut tasks = Vec::new();
    loop {
        let tick = ticks.tick().await;
        if tick >= end {
            break;
        }
        tasks.push(tokio::spawn(get(addr, path, run_start)));
    }
    let mut samples = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Ok(sample) = task.await {
            samples.push(sample);
        }
    }
    samples
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(path: &str, samples: &[Sample]) {
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    latencies.sort();
    let count = |code: u16| samples.iter().filter(|s| s.status == Some(code)).count();
    let timeouts = samples.iter().filter(|s| s.status.is_none()).count();
    let over_100ms = latencies.iter().filter(|l| **l > Duration::from_millis(100)).count();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{path:<15} sent {:>4}  200 {:>4}  503 {:>4}  errors {:>3}  timeouts {:>3}  >100ms {:>4}  \
         p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
        samples.len(),
        count(200),
        count(503),
        count(0),
        timeouts,
        over_100ms,
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    // The five slowest, with when they were sent, to tell one stall from many.
    let mut slowest: Vec<&Sample> = samples.iter().collect();
    slowest.sort_by_key(|s| std::cmp::Reverse(s.latency));
    let shown: Vec<String> = slowest
        .iter()
        .take(5)
        .map(|s| format!("{:.0} ms at t={:.2} s", ms(s.latency), s.sent.as_secs_f64()))
        .collect();
    println!("{:<15} slowest: {}", "", shown.join(", "));
}

fn main() -> anyhow::Result<()> {
    let workers: usize = bench::env_or("WORKERS", 2_usize).max(1);
    let duration = Duration::from_secs(bench::env_or("DURATION_SECS", 15_u64));
    let sleep = Duration::from_secs(bench::env_or("SLEEP_SECS", 30_u64));

    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    let listener = server.block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))?;
    let addr = listener.local_addr()?;
    let app = server.block_on(async { registry(sleep) })?.router::<()>();
    server.spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("server error: {e}");
        }
    });

    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    println!(
        "blocking_bench: {addr}, {workers} server worker(s), probe sleeps {} s (timeout {} s), \
         client {} s, fresh connection per request, client timeout {} s",
        sleep.as_secs(),
        PROBE_TIMEOUT.as_secs(),
        duration.as_secs(),
        CLIENT_TIMEOUT.as_secs()
    );
    let (ready, live) = client.block_on(async {
        // The server answers before the load starts.
        let warm = get(addr, "/health/live", Instant::now()).await;
        if warm.status != Some(200) {
            eprintln!("warning: /health/live answered {:?} before the run", warm.status);
        }
        let run_start = Instant::now();
        tokio::join!(
            drive(addr, "/health/ready", Duration::from_millis(200), duration, run_start),
            drive(addr, "/health/live", Duration::from_millis(50), duration, run_start),
        )
    });
    report("/health/live", &live);
    report("/health/ready", &ready);
    // The blocked threads sleep on; leave without waiting for them.
    std::process::exit(0)
}
