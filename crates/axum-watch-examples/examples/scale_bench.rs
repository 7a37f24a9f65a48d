//! Probe-count scaling benchmark: how registration, a run, and the latency
//! of other requests grow with the number of probes.
//!
//! This is not a test; `scripts/bench-scale` builds it, runs both modes and
//! drives `loadbench` with `wrk` for the `/status` and `/metrics` figures.
//!
//! ```sh
//! cargo build --release -p axum-watch-examples --example scale_bench
//! target/release/examples/scale_bench runs      # registration and run wall time per probe count
//! target/release/examples/scale_bench latency   # /status and /live latency while runs happen
//! ```
//!
//! **`runs`**: for each probe count in `PROBES` (default `1,10,100,1000,10000`)
//! it builds a registry of that many probes (timed: registration plus
//! `build()`), then times `HealthRegistry::run_all` `RUNS` times (default 10,
//! after 2 untimed) with probes that answer at once ("cheap", two details
//! each) and with probes that sleep `SLEEP_MS` (default 50) first. Every
//! setting is the default except the circuit breaker, which stays on, and
//! the check runtime (the default: two threads of the registry's own). The
//! runtime that calls `run_all` has `WORKERS` threads (default 1), like a
//! small server. It prints one `SCALE` line per count and the ratio of the
//! cheap run at the largest count to the one at a tenth of it.
//!
//! **`latency`**: for each probe count in `LATENCY_PROBES` (default
//! `10,1000`), `ROUNDS` times (default 3, the counts interleaved) it serves
//! the health router on 127.0.0.1 from a runtime with `WORKERS` threads
//! (default 1) and cheap probes with every setting at its default (cache
//! age 1 s: a run starts once a second while requests come). A client on a
//! runtime of its own sends `GET /health/status` and `GET /health/live`,
//! each `RATE` times a second (default 200) for `SECS` seconds (default 10),
//! at fixed times (open loop: a request's latency counts from when it was
//! due, so a stalled server shows as the wait it causes), on keep-alive
//! connections. It prints p50 / p99 / max per endpoint and count, and the
//! ratio of each p99 at the largest count to the one at the smallest.

mod bench;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::Router;
use axum_watch::HealthRegistry;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

fn counts(name: &str, default: &str) -> anyhow::Result<Vec<usize>> {
    let text = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    text.split(',')
        .map(|n| {
            n.trim()
                .parse()
                .with_context(|| format!("{name}: {n:?} is not a count"))
        })
        .collect()
}

/// A registry of `n` probes; each sleeps `sleep` first when it is not zero.
fn registry(n: usize, sleep: Duration) -> anyhow::Result<HealthRegistry> {
    Ok(bench::add_numbered(HealthRegistry::builder(), n, sleep).build()?)
}

fn runtime(workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()?)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `q` quantile (nearest rank) of sorted `values`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// Times `runs` calls of `run_all` after two untimed ones: (median, min) in ms.
async fn time_runs(registry: &HealthRegistry, runs: usize) -> (f64, f64) {
    for _ in 0..2 {
        registry.run_all().await;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let report = registry.run_all().await;
        times.push(ms(started.elapsed()));
        assert!(!report.probes.is_empty() || registry.probe_names().is_empty());
    }
    let times = sorted(times);
    (quantile(&times, 0.5), times[0])
}

fn runs_mode() -> anyhow::Result<()> {
    let probes = counts("PROBES", "1,10,100,1000,10000")?;
    let runs: usize = bench::env_or("RUNS", 10_usize).max(1);
    let sleep = Duration::from_millis(bench::env_or("SLEEP_MS", 50_u64));
    let workers: usize = bench::env_or("WORKERS", 1_usize);
    let rt = runtime(workers)?;
    println!(
        "scale_bench runs: {runs} timed runs per count (median, min), caller runtime {workers} worker(s), \
         checks on the default check runtime; slow probes sleep {} ms",
        sleep.as_millis()
    );
    println!(
        "{:>8} {:>10} {:>12} {:>12} {:>12} {:>12}",
        "probes", "build ms", "cheap med", "cheap min", "slow med", "slow min"
    );
    let mut cheap_by_count = Vec::new();
    for &n in &probes {
        let started = Instant::now();
        let cheap = registry(n, Duration::ZERO)?;
        let build = ms(started.elapsed());
        let (cheap_med, cheap_min) = rt.block_on(time_runs(&cheap, runs));
        drop(cheap);
        let slow = registry(n, sleep)?;
        let (slow_med, slow_min) = rt.block_on(time_runs(&slow, runs));
        drop(slow);
        println!("{n:>8} {build:>10.2} {cheap_med:>12.2} {cheap_min:>12.2} {slow_med:>12.2} {slow_min:>12.2}");
        println!(
            "SCALE probes={n} build_ms={build:.3} cheap_ms={cheap_med:.3} cheap_min_ms={cheap_min:.3} \
             slow_ms={slow_med:.3} slow_min_ms={slow_min:.3}"
        );
        cheap_by_count.push((n, cheap_med));
    }
    for &(n, t) in &cheap_by_count {
        if let Some(&(_, tenth)) = cheap_by_count.iter().find(|(m, _)| m * 10 == n) {
            println!(
                "ratio: cheap run at {n} probes / at {} = {:.2} (linear: 10)",
                n / 10,
                t / tenth
            );
        }
    }
    Ok(())
}

/// One `GET` on a keep-alive connection: the response's status, its body
/// read to its `content-length`.
async fn get(stream: &mut TcpStream, path: &str, buf: &mut Vec<u8>) -> anyhow::Result<u16> {
    let request = format!("GET {path} HTTP/1.1\r\nhost: bench\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    buf.clear();
    let mut chunk = [0_u8; 16 * 1024];
    let (head_end, status, length) = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end])?;
            let status: u16 = head.get(9..12).context("no status")?.parse()?;
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .context("no content-length")?;
            break (end + 4, status, length);
        }
    };
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed mid-body");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

/// Sends `GET path` `rate` times a second for `secs`, each at its due time
/// on an idle keep-alive connection (a new one when none is idle); returns
/// every latency in ms, counted from the due time.
async fn drive(addr: std::net::SocketAddr, path: &'static str, rate: u32, secs: u64) -> anyhow::Result<Vec<f64>> {
    let idle: Arc<Mutex<VecDeque<TcpStream>>> = Arc::default();
    let period = Duration::from_secs(1) / rate.max(1);
    let total = u64::from(rate) * secs;
    let start = tokio::time::Instant::now() + Duration::from_millis(10);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + period * u32::try_from(i)?;
        tokio::time::sleep_until(due).await;
        let idle = Arc::clone(&idle);
        tasks.spawn(async move {
            let conn = idle.lock().map(|mut q| q.pop_front()).unwrap_or_default();
            let mut conn = match conn {
                Some(conn) => conn,
                None => {
                    let stream = TcpStream::connect(addr).await?;
                    stream.set_nodelay(true)?;
                    stream
                }
            };
            let mut buf = Vec::new();
            let status = get(&mut conn, path, &mut buf).await?;
            let latency = ms(due.elapsed());
            if status != 200 && status != 207 {
                bail!("{path} answered {status}");
            }
            if let Ok(mut q) = idle.lock() {
                q.push_back(conn);
            }
            anyhow::Ok(latency)
        });
    }
    let mut latencies = Vec::with_capacity(usize::try_from(total)?);
    while let Some(done) = tasks.join_next().await {
        latencies.push(done??);
    }
    Ok(latencies)
}

fn latency_mode() -> anyhow::Result<()> {
    let probes = counts("LATENCY_PROBES", "10,1000")?;
    let rounds: usize = bench::env_or("ROUNDS", 3_usize).max(1);
    let rate: u32 = bench::env_or("RATE", 200_u32).max(1);
    let secs: u64 = bench::env_or("SECS", 10_u64).max(1);
    let workers: usize = bench::env_or("WORKERS", 1_usize);
    println!(
        "scale_bench latency: server runtime {workers} worker(s), default settings (cache age 1 s), \
         client on its own thread; /health/status and /health/live at {rate}/s each for {secs} s, open loop; \
         {rounds} round(s)"
    );
    let client = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // p99s per count and endpoint, over the rounds.
    let mut p99s: Vec<(usize, &str, Vec<f64>)> = Vec::new();
    for round in 1..=rounds {
        for &n in &probes {
            let server = runtime(workers)?;
            let listener = server.block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))?;
            let addr = listener.local_addr()?;
            let app: Router = server.block_on(async { registry(n, Duration::ZERO) })?.router();
            server.spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    eprintln!("server error: {e}");
                }
            });
            let (status, live) = client.block_on(async {
                // Warm up: one run and both encodings before the clock starts.
                let mut warm = TcpStream::connect(addr).await?;
                let mut buf = Vec::new();
                get(&mut warm, "/health/status", &mut buf).await?;
                get(&mut warm, "/health/live", &mut buf).await?;
                tokio::try_join!(
                    drive(addr, "/health/status", rate, secs),
                    drive(addr, "/health/live", rate, secs)
                )
            })?;
            for (path, values) in [("/health/status", status), ("/health/live", live)] {
                let values = sorted(values);
                let (p50, p99, max) = (
                    quantile(&values, 0.5),
                    quantile(&values, 0.99),
                    values.last().copied().unwrap_or(f64::NAN),
                );
                println!(
                    "LATENCY round={round} probes={n} path={path} requests={} p50_ms={p50:.3} p99_ms={p99:.3} max_ms={max:.3}",
                    values.len()
                );
                match p99s.iter_mut().find(|(m, p, _)| *m == n && *p == path) {
                    Some((_, _, list)) => list.push(p99),
                    None => p99s.push((n, path, vec![p99])),
                }
            }
            server.shutdown_background();
        }
    }
    let (Some(&small), Some(&large)) = (probes.first(), probes.last()) else {
        return Ok(());
    };
    for path in ["/health/status", "/health/live"] {
        let median = |n: usize| {
            p99s.iter()
                .find(|(m, p, _)| *m == n && *p == path)
                .map(|(_, _, v)| quantile(&sorted(v.clone()), 0.5))
        };
        if let (Some(a), Some(b)) = (median(small), median(large)) {
            println!(
                "ratio: {path} p99 at {large} probes / at {small} = {b:.3} / {a:.3} ms = {:.2} (median over rounds)",
                b / a
            );
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    match std::env::args().nth(1).as_deref() {
        Some("runs") | None => runs_mode(),
        Some("latency") => latency_mode(),
        Some(other) => bail!("unknown mode {other:?}: runs or latency"),
    }
}
