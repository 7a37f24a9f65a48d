//! The service the dashboard's browser test (`scripts/browser-test`) drives:
//! a few probes with tags and details, one of them not critical, one whose
//! text is hostile HTML, and a critical `db` probe whose health a `POST`
//! switches. An alerter (`pager`) takes the alerts of critical probes and
//! rejects the others, so the page's alert log shows both delivery states.
//!
//! `AUTH=basic` protects the endpoints with Basic authentication
//! (`ops` / `s3cret`), `AUTH=api-key` with the key `k3y-for-tests` in
//! `X-API-Key`, `AUTH=custom` with a check of its own that lets in the
//! requests carrying the session cookie `dash_session=s3ss10n-for-tests`;
//! the fixture's own `POST` route stays open. `TIMEZONE` sets the
//! registry's zone (`UTC` by default).
//!
//! ```sh
//! cargo run --example dashboard_fixture          # PORT=8099 by default
//! open http://127.0.0.1:8099/health/dashboard
//! curl -s -X POST localhost:8099/fixture/db/unhealthy   # or healthy, degraded
//! curl -s -X POST -H 'content-type: application/json' -d '{"minutes":5}' localhost:8099/health/maintenance
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum_watch::alert::AlertError;
use axum_watch::{
    AlertRecord, Alerter, HealthRegistry, HealthRegistryBuilder, Outcome, ProbeError, ProbeExt, Status, probe,
};

/// Text that would run script if the dashboard ever parsed data as HTML.
const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// `db`'s status as the fixture routes set it.
#[derive(Clone, Default)]
struct Db(Arc<AtomicU8>);

impl Db {
    fn get(&self) -> Status {
        match self.0.load(Ordering::SeqCst) {
            0 => Status::Healthy,
            1 => Status::Degraded,
            _ => Status::Unhealthy,
        }
    }

    fn set(&self, status: Status) {
        let value = match status {
            Status::Healthy => 0,
            Status::Degraded => 1,
            Status::Unhealthy => 2,
        };
        self.0.store(value, Ordering::SeqCst);
    }
}

/// Delivers the alerts of critical probes and refuses the rest for good,
/// as a pager scoped to one team would.
struct Pager;

impl Alerter for Pager {
    fn name(&self) -> &str {
        "pager"
    }

    async fn notify(&self, alert: &AlertRecord) -> Result<(), AlertError> {
        if alert.critical {
            Ok(())
        } else {
            Err(AlertError::permanent(
                "403 from the pager: this service pages for critical probes only",
            ))
        }
    }
}

/// The authentication `AUTH` names.
fn with_auth(builder: HealthRegistryBuilder) -> anyhow::Result<HealthRegistryBuilder> {
    Ok(match std::env::var("AUTH").unwrap_or_default().as_str() {
        "" | "none" => builder,
        "basic" => builder.basic_auth("ops", "s3cret"),
        "api-key" => builder.api_key("k3y-for-tests"),
        "custom" => builder.auth_fn(|request| has_session(&request.headers)),
        other => anyhow::bail!("AUTH={other:?}: expected none, basic, api-key or custom"),
    })
}

/// Whether a `Cookie` header carries the session `AUTH=custom` accepts, as
/// a login page of the application would have set it.
fn has_session(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|pair| pair.trim() == SESSION)
}

/// The cookie `AUTH=custom` accepts.
const SESSION: &str = "dash_session=s3ss10n-for-tests";

/// A latency that wanders a little from call to call, so sparklines have a shape.
fn jitter(calls: &AtomicU64, base_us: u64, spread_us: u64) -> Duration {
    let n = calls.fetch_add(1, Ordering::Relaxed);
    let wobble = (n.wrapping_mul(7919).wrapping_add(n * n * 31)) % (spread_us + 1);
    Duration::from_micros(base_us + wobble)
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

fn registry(db: &Db) -> anyhow::Result<HealthRegistry> {
    let db_probe = {
        let db = db.clone();
        let calls = Arc::new(AtomicU64::new(0));
        probe::from_fn("db", move || {
            let status = db.get();
            let latency = jitter(&calls, 900, 900);
            async move {
                let outcome = match status {
                    Status::Healthy => Outcome::healthy().detail("pool_size", 10).detail("pool_idle", 7),
                    Status::Degraded => Outcome::degraded()
                        .error_text("pool nearly exhausted: 9 of 10 connections busy")
                        .detail("pool_size", 10)
                        .detail("pool_idle", 1),
                    Status::Unhealthy => {
                        return Err(ProbeError::with_kind(
                            "io::Error",
                            "connection refused: postgres://app:***@db.internal:5432/app",
                        ));
                    }
                };
                Ok(outcome
                    .detail("last_rtt_ms", millis(latency))
                    .detail(
                        "replication",
                        serde_json::json!({"role": "primary", "lag_ms": 1.5, "replicas": 2}),
                    )
                    .latency(latency))
            }
        })
        .with_description("primary PostgreSQL database")
        .with_tags(["core", "storage"])
        .with_circuit_breaker(3, Duration::from_secs(10))
    };

    let queue = {
        let calls = Arc::new(AtomicU64::new(0));
        probe::from_fn("queue", move || {
            let latency = jitter(&calls, 300, 400);
            async move {
                Ok(Outcome::healthy()
                    .detail("depth", 42)
                    .detail("limit", 800)
                    .detail("consumers", serde_json::json!(["mailer", "thumbnails"]))
                    // The shape of the request-metrics probe's per-route table.
                    .detail(
                        "routes",
                        serde_json::json!({
                            "GET /jobs": {"request_count": 1520, "error_count": 3, "error_rate": 0.002,
                                "last_status_code": 200, "avg_rtt_ms": 4.25, "p50_rtt_ms": 3.1, "p95_rtt_ms": 12.8, "p99_rtt_ms": 40.5},
                            "POST /jobs": {"request_count": 310, "error_count": 31, "error_rate": 0.1,
                                "last_status_code": 503, "avg_rtt_ms": 18.5, "p50_rtt_ms": 15.0, "p95_rtt_ms": 61.2, "p99_rtt_ms": 1250.0},
                            "DELETE /jobs/{id}": {"request_count": 12, "error_count": 0, "error_rate": 0.0,
                                "last_status_code": 204, "avg_rtt_ms": 2.0, "p50_rtt_ms": 1.9, "p95_rtt_ms": 2.6, "p99_rtt_ms": 2.9}
                        }),
                    )
                    .latency(latency))
            }
        })
        .with_description("background job queue")
        .with_tags(["core", "workers"])
    };

    let cache = {
        let calls = Arc::new(AtomicU64::new(0));
        probe::from_fn("cache", move || {
            let latency = jitter(&calls, 150, 250);
            async move {
                Ok(Outcome::healthy()
                    .detail("hit_ratio", 0.97)
                    .detail("evictions_per_s", 3)
                    .detail("note", HOSTILE)
                    .detail("used_memory_bytes", 270_553_174_016_u64)
                    .detail("warn_below", serde_json::json!({"percent": 10}))
                    .detail("uptime_s", 93_784)
                    // A timestamp in UTC, shown in the registry's zone.
                    .detail("last_save_at", "2026-03-29T14:22:01.843000Z")
                    .latency(latency))
            }
        })
        .with_description("Redis cache; reads fall back to the database")
        .with_tags(["cache", "storage"])
    };

    let search = {
        let calls = Arc::new(AtomicU64::new(0));
        probe::from_fn("search", move || {
            let latency = jitter(&calls, 42_000, 30_000);
            async move {
                Ok(Outcome::degraded()
                    .error_text("index lagging: 3 200 documents behind")
                    .detail("lag_docs", 3200)
                    .detail("p95_ms", 87.25)
                    .latency(latency))
            }
        })
        .with_description("full-text search cluster")
        .with_tags(["external"])
    };

    let legacy = probe::from_fn("legacy-api", || async {
        Err::<Outcome, _>(ProbeError::msg(format!("upstream answered 502 with {HOSTILE}")))
    })
    .with_description("old billing API, kept for exports")
    .with_tags(["external", "billing"]);

    let zone = std::env::var("TIMEZONE").unwrap_or_else(|_| "UTC".to_owned());
    Ok(with_auth(HealthRegistry::builder())?
        .timezone(zone)
        // The browser test starts and ends a window with `POST`/`DELETE maintenance`.
        .allow_unauthenticated_maintenance(true)
        .poll_interval(Duration::from_secs(1))
        .alerter(Pager)
        .add(db_probe)
        .add(queue)
        .add_non_critical(cache)
        .add_non_critical(search)
        .add_non_critical(legacy)
        .build()?)
}

async fn set_db(State(db): State<Db>, Path(state): Path<String>) -> (StatusCode, String) {
    match state.parse::<Status>() {
        Ok(status) => {
            db.set(status);
            (StatusCode::OK, format!("db is now {status}\n"))
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();

    let db = Db::default();
    let registry = registry(&db)?;
    registry.set_started();

    let app = Router::new()
        .route("/fixture/db/{state}", post(set_db).with_state(db))
        .merge(registry.router());

    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8099);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}/health/dashboard", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
