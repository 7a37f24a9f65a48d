//! The demo service with gRPC health beside HTTP: the quickstart's probes
//! and its `POST /demo/toggle`, the health endpoints on `PORT` (default
//! 8000) and the standard `grpc.health.v1.Health` service on `GRPC_PORT`
//! (default 50051), both from one registry — one set of probes, one run.
//!
//! ```sh
//! cargo run -p axum-watch-examples --features grpc --example grpc_health
//! grpcurl -plaintext localhost:50051 grpc.health.v1.Health/Check                      # ""
//! grpcurl -plaintext -d '{"service":"payments"}' localhost:50051 grpc.health.v1.Health/Watch
//! curl -s -X POST localhost:8000/demo/toggle       # break / repair "payments"
//! ```
//!
//! gRPC services: `""` (readiness, as `/health/ready`), each probe by name
//! (`app`, `scratch-dir`, `runtime`, `disk:…`, `requests`, `payments`) and
//! each tag as `tag:<tag>` (`tag:core`, `tag:disk`, `tag:external`).
//!
//! `POLL_INTERVAL_SECS` (default 60) sets how often probes run while a
//! `Watch` call or a stream is open; `DRAIN_DELAY_SECS` (default 5) how long
//! readiness answers `NOT_SERVING` / 503 after SIGTERM before both servers
//! stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::{get, post};
use axum_watch::passive::RequestMetrics;
use axum_watch::probes::{DiskSpaceProbe, RuntimeProbe, SpaceThreshold};
use axum_watch::{HealthRegistry, Outcome, ProbeError, ProbeExt, probe, shutdown_signal};

fn env_secs(name: &str) -> anyhow::Result<Option<Duration>> {
    match std::env::var(name) {
        Ok(secs) => {
            let secs: u64 = secs.trim().parse().with_context(|| format!("{name}={secs:?}"))?;
            Ok(Some(Duration::from_secs(secs)))
        }
        Err(_) => Ok(None),
    }
}

fn env_port(name: &str, default: u16) -> anyhow::Result<u16> {
    match std::env::var(name) {
        Ok(port) => port.trim().parse().with_context(|| format!("{name}={port:?}")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();

    // The quickstart's switchable dependency.
    let payments_up = Arc::new(AtomicBool::new(true));
    let payments = {
        let up = Arc::clone(&payments_up);
        probe::from_fn("payments", move || {
            let up = up.load(Ordering::Relaxed);
            async move {
                if up {
                    Ok(Outcome::healthy().detail("provider", "demo-pay"))
                } else {
                    Err(ProbeError::msg(
                        "connection refused: https://demo:hunter2@pay.invalid/v1",
                    ))
                }
            }
        })
    };

    let mut builder = HealthRegistry::builder();
    if let Some(delay) = env_secs("DRAIN_DELAY_SECS")? {
        builder = builder.drain_delay(delay);
    }
    if let Some(interval) = env_secs("POLL_INTERVAL_SECS")? {
        builder = builder.poll_interval(interval);
    }
    let requests = RequestMetrics::new();
    // The quickstart's probes: critical ones for the process and its
    // scratch directory, non-critical ones for traffic and payments.
    let registry = builder
        .add(
            probe::from_fn("app", || async {
                Ok(Outcome::healthy().detail("version", env!("CARGO_PKG_VERSION")))
            })
            .with_tags(["core"]),
        )
        .add(
            probe::from_fn("scratch-dir", || async {
                let dir = std::env::temp_dir();
                let path = dir.join(format!("axum-watch-demo-{}", std::process::id()));
                tokio::fs::write(&path, b"ok").await?;
                tokio::fs::remove_file(&path).await?;
                Ok(Outcome::healthy().detail("path", dir.display().to_string()))
            })
            .with_description("temporary directory is writable")
            .with_tags(["core", "disk"])
            .with_timeout(Duration::from_secs(2)),
        )
        .add(RuntimeProbe::new())
        .add(
            DiskSpaceProbe::new(std::env::temp_dir())
                .warn_below(SpaceThreshold::Percent(10.0))
                .fail_below(SpaceThreshold::Percent(2.0)),
        )
        .add_non_critical(requests.clone())
        .add_non_critical(
            payments
                .with_tags(["external"])
                .with_circuit_breaker(3, Duration::from_secs(30)),
        )
        .build()?;
    registry.set_started();

    let app = Router::new()
        .route(
            "/",
            get(|| async { "axum-watch gRPC demo: see /health/status and grpc.health.v1.Health\n" }),
        )
        .route(
            "/demo/toggle",
            post(move || async move {
                if payments_up.fetch_xor(true, Ordering::Relaxed) {
                    "payments is now failing\n"
                } else {
                    "payments is now healthy\n"
                }
            }),
        )
        .layer(requests)
        .merge(registry.router());

    let http_addr = std::net::SocketAddr::from(([127, 0, 0, 1], env_port("PORT", 8000)?));
    let grpc_addr = std::net::SocketAddr::from(([127, 0, 0, 1], env_port("GRPC_PORT", 50051)?));
    let listener = tokio::net::TcpListener::bind(http_addr).await?;
    let grpc_listener = tokio::net::TcpListener::bind(grpc_addr).await?;
    tracing::info!("HTTP health on http://{http_addr}/health/status, gRPC health on {grpc_addr}");

    // One drain for both: on SIGTERM or Ctrl-C, readiness fails on both
    // faces at once; after the drain delay, streams and Watch calls end
    // and both servers stop.
    let (drained_tx, drained) = tokio::sync::watch::channel(false);
    tokio::spawn({
        let drain = registry.drain_on(shutdown_signal());
        async move {
            drain.await;
            drained_tx.send_replace(true);
        }
    });
    let stopped = |mut drained: tokio::sync::watch::Receiver<bool>| async move {
        let _ = drained.wait_for(|done| *done).await;
    };
    let incoming = tonic::transport::server::TcpIncoming::from(grpc_listener).with_nodelay(Some(true));
    let grpc = tonic::transport::Server::builder()
        .add_service(registry.grpc_service())
        .serve_with_incoming_shutdown(incoming, stopped(drained.clone()));
    let http = axum::serve(listener, app).with_graceful_shutdown(stopped(drained));
    let (http, grpc) = tokio::join!(http.into_future(), grpc);
    http?;
    grpc?;
    tracing::info!("stopped");
    Ok(())
}
