//! The demo service with gRPC health beside HTTP: the quickstart's probes
//! and its `POST /demo/toggle` (both in `demo/mod.rs`), the health
//! endpoints on `PORT` (default 8000) and the standard
//! `grpc.health.v1.Health` service on `GRPC_PORT` (default 50051), both
//! from one registry — one set of probes, one run.
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

mod demo;

use axum::Router;
use axum::routing::get;
use axum_watch::shutdown_signal;
use demo::{Demo, env_port};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    demo::init_logging();

    // The quickstart's probes and switch.
    let (demo, builder) = Demo::builder()?;
    let registry = builder.build()?;
    registry.set_started();

    let app = Router::new().route(
        "/",
        get(|| async { "axum-watch gRPC demo: see /health/status and grpc.health.v1.Health\n" }),
    );
    let app = demo.routes(app).merge(registry.router());

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
