//! The demo service: probes that need no external server (custom ones, the
//! built-in runtime and disk probes, and passive request metrics over the
//! whole app), the health endpoints under `/health`, and a switch to break a
//! dependency.
//!
//! ```sh
//! cargo run --example quickstart          # PORT=8000 by default
//! curl -s localhost:8000/health/status
//! curl -s -X POST localhost:8000/demo/toggle   # break / repair "payments"
//! POLL_INTERVAL_SECS=5 cargo run --example quickstart   # poll (and push to streams) every 5 s
//! ```
//!
//! `DRAIN_DELAY_SECS` (default 5) is how long `/ready` answers 503
//! `draining` after SIGTERM or Ctrl-C before streams end and the server stops.
//!
//! `POLL_INTERVAL_SECS` sets the registry's poll interval, which drives the
//! `/health/status/stream` and `/health/ready/stream` events; unset keeps the
//! registry default (60 s), `0` polls on demand only.
//!
//! The demo serves connections itself with hyper's HTTP/1 builder and
//! hyper-util rather than `axum::serve`, set up for many idle streams (see
//! "Many idle streams" in the README): every connection shares the one
//! router, and `HTTP1_MAX_BUF_SIZE` (bytes, at least 8192) caps hyper's
//! read buffer. `SERVE=axum` serves with `axum::serve` instead, for
//! comparison.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::{get, post};
use axum_watch::passive::RequestMetrics;
use axum_watch::probes::{DiskSpaceProbe, RuntimeProbe, SpaceThreshold};
use axum_watch::{HealthRegistry, Outcome, ProbeError, ProbeExt, probe, shutdown_signal};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();

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
    if let Ok(secs) = std::env::var("DRAIN_DELAY_SECS") {
        let secs: u64 = secs
            .trim()
            .parse()
            .with_context(|| format!("DRAIN_DELAY_SECS={secs:?}"))?;
        builder = builder.drain_delay(Duration::from_secs(secs));
    }
    if let Ok(secs) = std::env::var("POLL_INTERVAL_SECS") {
        let secs: u64 = secs
            .trim()
            .parse()
            .with_context(|| format!("POLL_INTERVAL_SECS={secs:?}"))?;
        builder = builder.poll_interval(Duration::from_secs(secs));
    }

    // Passive: every request to the app, per route template.
    let requests = RequestMetrics::new();

    let registry = builder
        // Critical: the process itself and its scratch directory.
        .add(probe::from_fn("app", || async { Ok(Outcome::healthy().detail("version", env!("CARGO_PKG_VERSION"))) }).with_tags(["core"]))
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
        .add(DiskSpaceProbe::new(std::env::temp_dir()).warn_below(SpaceThreshold::Percent(10.0)).fail_below(SpaceThreshold::Percent(2.0)))
        // Not critical: its failure shows in reports but keeps /ready at 200.
        .add_non_critical(requests.clone())
        .add_non_critical(payments.with_tags(["external"]).with_circuit_breaker(3, Duration::from_secs(30)))
        .on_state_change(|change| tracing::info!(probe = %change.probe, from = %change.old_status, to = %change.new_status, "callback saw a change"))
        .build()?;
    registry.set_started();

    let app = Router::new()
        .route("/", get(|| async { "axum-watch demo: see /health/status\n" }))
        .route(
            "/demo/toggle",
            post(move || async move {
                let was_up = payments_up.fetch_xor(true, Ordering::Relaxed);
                if was_up {
                    "payments is now failing\n"
                } else {
                    "payments is now healthy\n"
                }
            }),
        )
        .layer(requests)
        .merge(registry.router());

    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8000);
    // A deep accept queue absorbs reconnect storms of stream clients.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))?;
    let listener = socket.listen(4096)?;
    tracing::info!("listening on http://{}/health/status", listener.local_addr()?);
    // On SIGTERM or Ctrl-C: /ready fails at once, streams end after the
    // drain delay, queued alerts go out, then the server stops.
    let drained = registry.drain_on(shutdown_signal());
    if std::env::var("SERVE").is_ok_and(|s| s == "axum") {
        axum::serve(listener, app).with_graceful_shutdown(drained).await?;
    } else {
        let max_buf_size = match std::env::var("HTTP1_MAX_BUF_SIZE") {
            Ok(size) => Some(
                size.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n >= 8192)
                    .with_context(|| format!("HTTP1_MAX_BUF_SIZE={size:?}: a number of bytes, at least 8192"))?,
            ),
            Err(_) => None,
        };
        serve(listener, app, max_buf_size, drained).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Serves `app` until `shutdown` resolves, then gives open connections 5 s
/// to finish.
///
/// What `axum::serve` does, set up for many idle connections: each
/// connection shares the router (`axum::serve` rebuilds its route table for
/// every connection, about 6 KB with this one), and `max_buf_size` caps
/// hyper's read buffer.
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    max_buf_size: Option<usize>,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    if let Some(size) = max_buf_size {
        builder.max_buf_size(size);
    }
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open 5 s after shutdown: closing them");
    }
}
