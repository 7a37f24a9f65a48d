//! gRPC `Check` throughput: axum-watch's health service against a bare
//! tonic unary handler, in one run on one machine.
//!
//! This is not a test. Two tonic servers share one runtime with one worker
//! thread: the bare one answers every `Check` with a constant `SERVING`
//! (tonic-health's generated server, no lookup at all); axum-watch's
//! answers from a registry of 10 cheap probes with the default settings
//! (cache age 1 s, so a run per second under load). A load client on a
//! second one-thread runtime keeps `CONCURRENCY` calls in flight over
//! `CONNECTIONS` HTTP/2 connections for `SECS` seconds per round, the two
//! servers taking turns for `ROUNDS` rounds, and prints each round and the
//! median ratio.
//!
//! ```sh
//! cargo run --release -p axum-watch-examples --features grpc --example grpc_bench
//! SECS=5 ROUNDS=5 CONCURRENCY=64 CONNECTIONS=4 SERVICE=postgres cargo run --release ...
//! ```

mod bench;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum_watch::HealthRegistry;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// The baseline: a unary handler that answers at once.
struct Bare;

#[tonic::async_trait]
impl Health for Bare {
    async fn check(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    type WatchStream = tonic::codegen::BoxStream<HealthCheckResponse>;

    async fn watch(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this benchmark"))
    }
}

fn main() -> anyhow::Result<()> {
    let secs: u64 = bench::env_or("SECS", 5);
    let rounds: usize = bench::env_or("ROUNDS", 3);
    let concurrency: usize = bench::env_or("CONCURRENCY", 64);
    let connections: usize = bench::env_or("CONNECTIONS", 4);
    let service: String = bench::env_or("SERVICE", String::new());

    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let (bare, watched) = server.block_on(async {
        let registry = bench::add_typical(HealthRegistry::builder()).build()?;
        let bare = spawn_server(tonic::service::Routes::new(HealthServer::new(Bare))).await?;
        let watched = spawn_server(tonic::service::Routes::new(registry.grpc_service())).await?;
        anyhow::Ok((bare, watched))
    })?;

    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    client.block_on(async {
        println!(
            "gRPC Check {service:?}: {concurrency} calls in flight over {connections} connections, {secs} s per round"
        );
        let mut ratios = Vec::new();
        let mut rates = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            let b = load(bare, &service, concurrency, connections, Duration::from_secs(secs)).await?;
            let w = load(watched, &service, concurrency, connections, Duration::from_secs(secs)).await?;
            println!(
                "round {round}: bare tonic {b:>8.0} req/s   axum-watch {w:>8.0} req/s   {:>5.1} %",
                w / b * 100.0
            );
            ratios.push(w / b);
            rates.0.push(b);
            rates.1.push(w);
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "median: bare tonic {:.0} req/s, axum-watch {:.0} req/s, ratio {:.1} %",
            median(rates.0),
            median(rates.1),
            median(ratios) * 100.0
        );
        anyhow::Ok(())
    })?;
    drop(server);
    Ok(())
}

async fn spawn_server(routes: tonic::service::Routes) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming(incoming),
    );
    Ok(addr)
}

/// Requests per second `Check` sustained against `addr` (after a 1 s warm-up).
async fn load(
    addr: SocketAddr,
    service: &str,
    concurrency: usize,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let mut channels: Vec<Channel> = Vec::new();
    for _ in 0..connections {
        channels.push(Endpoint::from_shared(format!("http://{addr}"))?.connect().await?);
    }
    let done = Arc::new(AtomicU64::new(0));
    let warm_until = Instant::now() + Duration::from_secs(1);
    let end = warm_until + duration;
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let mut client = HealthClient::new(channels[i % connections].clone());
        let done = Arc::clone(&done);
        let service = service.to_owned();
        tasks.push(tokio::spawn(async move {
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let request = HealthCheckRequest {
                    service: service.clone(),
                };
                let answer = client.check(request).await;
                match answer {
                    Ok(a) if a.get_ref().status() == ServingStatus::Serving => {
                        if now >= warm_until {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    other => panic!("unexpected answer: {other:?}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    Ok(done.load(Ordering::Relaxed) as f64 / duration.as_secs_f64())
}
