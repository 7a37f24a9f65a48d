//! What the demo examples (`quickstart`, `grpc_health`) share: their
//! logging, their settings from the environment, their probes, and the switch that breaks
//! the `payments` dependency. Included with `mod demo;`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::post;
use axum_watch::passive::RequestMetrics;
use axum_watch::probes::{DiskSpaceProbe, RuntimeProbe, SpaceThreshold};
use axum_watch::{HealthRegistry, HealthRegistryBuilder, Outcome, ProbeError, ProbeExt, probe};

/// Log lines on stderr, filtered by `RUST_LOG` (`info` when unset).
pub(crate) fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
}

/// `name`'s value in whole seconds; `None` when it is unset.
pub(crate) fn env_secs(name: &str) -> anyhow::Result<Option<Duration>> {
    match std::env::var(name) {
        Ok(secs) => {
            let secs: u64 = secs.trim().parse().with_context(|| format!("{name}={secs:?}"))?;
            Ok(Some(Duration::from_secs(secs)))
        }
        Err(_) => Ok(None),
    }
}

/// `name`'s value as a port; `default` when it is unset.
pub(crate) fn env_port(name: &str, default: u16) -> anyhow::Result<u16> {
    match std::env::var(name) {
        Ok(port) => port.trim().parse().with_context(|| format!("{name}={port:?}")),
        Err(_) => Ok(default),
    }
}

/// What the demo's routes need of its probes: the `payments` switch and
/// the request metrics.
pub(crate) struct Demo {
    payments_up: Arc<AtomicBool>,
    requests: RequestMetrics,
}

impl Demo {
    /// A registry builder with the demo's probes, its drain delay
    /// (`DRAIN_DELAY_SECS`) and its poll interval (`POLL_INTERVAL_SECS`);
    /// unset, each keeps the registry's default.
    pub(crate) fn builder() -> anyhow::Result<(Self, HealthRegistryBuilder)> {
        let mut builder = HealthRegistry::builder();
        if let Some(delay) = env_secs("DRAIN_DELAY_SECS")? {
            builder = builder.drain_delay(delay);
        }
        if let Some(interval) = env_secs("POLL_INTERVAL_SECS")? {
            builder = builder.poll_interval(interval);
        }

        // A dependency that `POST /demo/toggle` breaks and repairs.
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
        // Passive: every request to the demo's own routes, per route template.
        let requests = RequestMetrics::new();

        let builder = builder
            // Critical: the process itself and its scratch directory.
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
            // Not critical: a failure shows in reports but keeps /ready at 200.
            .add_non_critical(requests.clone())
            .add_non_critical(
                payments
                    .with_tags(["external"])
                    .with_circuit_breaker(3, Duration::from_secs(30)),
            );
        Ok((Self { payments_up, requests }, builder))
    }

    /// `app`'s routes and `POST /demo/toggle` (which breaks or repairs
    /// `payments`), all of them under the request metrics.
    pub(crate) fn routes(self, app: Router) -> Router {
        let payments_up = self.payments_up;
        app.route(
            "/demo/toggle",
            post(move || async move {
                if payments_up.fetch_xor(true, Ordering::Relaxed) {
                    "payments is now failing\n"
                } else {
                    "payments is now healthy\n"
                }
            }),
        )
        .layer(self.requests)
    }
}
