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
//! cargo run --example quickstart --features openapi    # also serves /openapi.json
//! curl -s localhost:8000/openapi.json
//! ```
//!
//! With the `openapi` feature, `/openapi.json` is the demo's own OpenAPI
//! document with `HealthRegistry::openapi()`'s merged in.
//!
//! The probes and the switch are in `demo/mod.rs`, shared with
//! `grpc_health`.
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

mod demo;

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use axum_watch::shutdown_signal;
use demo::{Demo, env_port};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    demo::init_logging();

    let (demo, builder) = Demo::builder()?;
    let registry = builder
        .on_state_change(|change| tracing::info!(probe = %change.probe, from = %change.old_status, to = %change.new_status, "callback saw a change"))
        .build()?;
    registry.set_started();

    let app = Router::new().route("/", get(|| async { "axum-watch demo: see /health/status\n" }));
    // The demo's own document with the health endpoints' merged in.
    #[cfg(feature = "openapi")]
    let app = app.route("/openapi.json", get(axum::Json(openapi::document(&registry))));
    let app = demo.routes(app).merge(registry.router());

    let port = env_port("PORT", 8000)?;
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

/// The demo's OpenAPI document (feature `openapi`): its own routes, and the
/// health endpoints' document merged in.
#[cfg(feature = "openapi")]
mod openapi {
    use axum_watch::HealthRegistry;
    use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, PathItem, PathsBuilder};
    use utoipa::openapi::schema::{Object, Type};
    use utoipa::openapi::{Content, InfoBuilder, OpenApi, OpenApiBuilder, ResponseBuilder};

    /// An operation that answers 200 with a body of `media`.
    fn operation(id: &str, summary: &str, media: &str, schema: Object) -> Operation {
        OperationBuilder::new()
            .operation_id(Some(id))
            .summary(Some(summary))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("OK")
                    .content(media, Content::new(Some(schema))),
            )
            .build()
    }

    pub(crate) fn document(registry: &HealthRegistry) -> OpenApi {
        let text = || Object::with_type(Type::String);
        OpenApiBuilder::new()
            .info(
                InfoBuilder::new()
                    .title("axum-watch demo")
                    .version(env!("CARGO_PKG_VERSION"))
                    .build(),
            )
            .paths(
                PathsBuilder::new()
                    .path(
                        "/",
                        PathItem::new(
                            HttpMethod::Get,
                            operation("demoIndex", "Where to look", "text/plain", text()),
                        ),
                    )
                    .path(
                        "/demo/toggle",
                        PathItem::new(
                            HttpMethod::Post,
                            operation(
                                "demoToggle",
                                "Breaks or repairs the `payments` dependency",
                                "text/plain",
                                text(),
                            ),
                        ),
                    )
                    .path(
                        "/openapi.json",
                        PathItem::new(
                            HttpMethod::Get,
                            operation(
                                "demoOpenApi",
                                "This document",
                                "application/json",
                                Object::with_type(Type::Object),
                            ),
                        ),
                    ),
            )
            .build()
            .merge_from(registry.openapi())
    }
}
