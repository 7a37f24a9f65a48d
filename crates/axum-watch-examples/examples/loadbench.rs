//! Load-benchmark server: the health endpoints with 10 cheap probes next to a
//! bare axum handler, so a load generator can compare their throughput in
//! one run.
//!
//! This is not a test; `scripts/bench-load` builds it, drives it with `wrk`
//! and prints the requests per second of every endpoint against `/bare`.
//!
//! | endpoint | what it does |
//! | --- | --- |
//! | `GET /bare` | a plain handler: `Json(json!({"status":"ok"}))`, built per request |
//! | `GET /watched` | the same handler with a `RouteProbe` layered on it (passive probe) |
//! | `GET /health/live` | the registry's liveness answer (never runs probes) |
//! | `GET /health/ready` | readiness from the cached report (default cache age 1 s) |
//! | `GET /health/status` | the full report (same cache) |
//! | `GET /health/metrics` | the Prometheus text (same cache) |
//! | `GET /sized/{n}` | a plain handler answering `n` bytes of static text: the control for an endpoint whose body is `n` bytes long |
//!
//! Registry settings are the defaults (cache age 1 s, poll interval 60 s,
//! timeout 10 s, circuit breaker on); the 10 probes answer healthy at once,
//! with a detail or two, 6 critical and 4 not. `PROBES=N` registers `N`
//! probes of the same kind instead (`probe-00000`…, two of three critical),
//! for the probe-count scaling figures of `scripts/bench-scale`.
//!
//! ```sh
//! cargo build --release --example loadbench
//! PORT=8090 WORKERS=1 target/release/examples/loadbench &   # defaults shown
//! wrk -t1 -c32 -d5s http://127.0.0.1:8090/health/ready
//! ./scripts/bench-load                                        # the whole comparison
//! ```
//!
//! `WORKERS` sets the tokio worker threads (default 1, so that on a small
//! machine the server and the load generator each keep a core).

mod bench;

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Path;
use axum::handler::Handler;
use axum::http::{HeaderName, header};
use axum::routing::get;
use axum::{Json, Router};
use axum_watch::HealthRegistry;
use axum_watch::passive::RouteProbe;
use serde_json::{Value, json};

/// The bare handler: a small JSON body built per request, like a typical
/// axum handler does.
async fn bare() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Static text for `/sized/{n}`: what a handler answering a body of a
/// given size costs, whatever builds the body.
static FILLER: [u8; 1 << 20] = [b'#'; 1 << 20];

async fn sized(Path(n): Path<usize>) -> ([(HeaderName, &'static str); 1], Bytes) {
    let body = Bytes::from_static(&FILLER[..n.min(FILLER.len())]);
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body)
}

fn registry(watched: RouteProbe) -> anyhow::Result<HealthRegistry> {
    let builder = HealthRegistry::builder().add(watched);
    let builder = match std::env::var("PROBES")
        .ok()
        .and_then(|n| n.trim().parse::<usize>().ok())
    {
        Some(count) => bench::add_numbered(builder, count, Duration::ZERO),
        None => bench::add_typical(builder),
    };
    Ok(builder.build()?)
}

async fn serve(port: u16) -> anyhow::Result<()> {
    let watched = RouteProbe::new("watched");
    let registry = registry(watched.clone())?;
    let app = Router::new()
        .route("/bare", get(bare))
        .route("/watched", get(bare.layer(watched)))
        .route("/sized/{n}", get(sized))
        .merge(registry.router());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        probes = registry.probe_names().len(),
        "loadbench listening: /bare /watched /health/live /health/ready /health/status"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let port: u16 = bench::env_or("PORT", 8090);
    let workers: usize = bench::env_or("WORKERS", 1_usize).max(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?
        .block_on(serve(port))
}
