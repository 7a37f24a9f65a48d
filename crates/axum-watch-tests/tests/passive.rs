//! Passive probes through the real router: route probes, the watched router,
//! app-wide request metrics and the generic `watch` wrappers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use axum_watch::passive::{PassiveProbe, RequestMetrics, RouteProbe, StatsConfig, WatchedRouter};
use axum_watch::{BuildErrorKind, HealthRegistry, Probe, ProbeExt, Status};
use common::{get as fetch, serve};
use futures_util::FutureExt;
use serde_json::{Value, json};

async fn details(probe: &impl Probe) -> (Status, Option<String>, Value) {
    let outcome = probe.check().await.unwrap();
    (
        outcome.status(),
        outcome.error().map(str::to_owned),
        Value::Object(outcome.details().clone()),
    )
}

async fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}

async fn boom() -> &'static str {
    panic!("handler exploded: password=hunter2")
}

#[tokio::test]
async fn route_probe_records_status_codes_and_counts_5xx_as_errors() {
    let probe = RouteProbe::new("users").with_config(StatsConfig::default().min_calls(1));
    let app = Router::new()
        .route("/ok", get(|| async { "fine" }).layer(probe.clone()))
        .route(
            "/code/{code}",
            get(|path: axum::extract::Path<u16>| status(path.0)).layer(probe.clone()),
        );

    let (state, _, d) = details(&probe).await;
    assert_eq!(state, Status::Healthy);
    assert_eq!(d, json!({"message": "no requests observed yet", "traffic": "none"}));

    assert_eq!(fetch(&app, "/ok").await.status, 200);
    assert_eq!(fetch(&app, "/code/404").await.status, 404);
    assert_eq!(fetch(&app, "/code/429").await.status, 429);
    let (state, _, d) = details(&probe).await;
    assert_eq!(state, Status::Healthy, "4xx are not errors by default: {d}");
    assert_eq!(d["request_count"], 3);
    assert_eq!(d["error_count"], 0);
    assert_eq!(d["last_status_code"], 429);
    assert_eq!(d["status_distribution"], json!({"2xx": 1, "4xx": 2}));

    assert_eq!(fetch(&app, "/code/503").await.status, 503);
    let (state, error, d) = details(&probe).await;
    assert_eq!(state, Status::Unhealthy);
    assert_eq!(
        error.as_deref(),
        Some("error rate 25.0% over the last 4 calls exceeds threshold 10.0%")
    );
    assert_eq!(d["error_count"], 1);
    assert_eq!(d["consecutive_errors"], 1);
    assert_eq!(d["last_error"], "HTTP 503");
    assert_eq!(d["status_distribution"], json!({"2xx": 1, "4xx": 2, "5xx": 1}));
    assert!(
        d.get("error_types").is_none(),
        "returned error responses are not error types"
    );
}

#[tokio::test]
async fn the_error_status_threshold_is_configurable() {
    let probe = RouteProbe::new("strict").min_error_status(400);
    let app = Router::new().route("/missing", get(|| status(404)).layer(probe.clone()));
    fetch(&app, "/missing").await;
    let (_, _, d) = details(&probe).await;
    assert_eq!(d["error_count"], 1);
    assert_eq!(d["last_error"], "HTTP 404");
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_and_the_server_keeps_serving() {
    let probe = RouteProbe::new("fragile").with_config(StatsConfig::default().min_calls(1));
    let app = Router::new()
        .route("/boom", get(boom).layer(probe.clone()))
        .route("/ok", get(|| async { "fine" }).layer(probe.clone()));
    let addr = serve(app).await;

    let client = reqwest_like::Client::new();
    assert!(
        client.get(addr, "/boom").await.is_err(),
        "the panic drops the connection"
    );
    assert_eq!(client.get(addr, "/ok").await.unwrap(), 200);

    let (state, error, d) = details(&probe).await;
    assert_eq!(state, Status::Unhealthy, "{error:?}");
    assert_eq!(d["request_count"], 2);
    assert_eq!(d["error_count"], 1);
    assert_eq!(d["status_distribution"], json!({"2xx": 1, "5xx": 1}));
    assert_eq!(d["error_types"], json!({"panic": 1}));
    assert_eq!(d["last_error"], "panic: handler exploded: password=***");
}

#[tokio::test]
async fn watched_router_gives_each_path_template_one_probe() {
    let (app, probes) = WatchedRouter::new()
        .route("/users", get(|| async { "[]" }))
        .route("/users/{id}", get(|| async { "{}" }))
        .route("/users/{id}", axum::routing::delete(|| status(500)))
        .into_parts();
    let registry = HealthRegistry::builder().include(probes).build().unwrap();
    assert_eq!(registry.probe_names(), ["route:users", "route:users.:id"]);

    for id in 0..5 {
        assert_eq!(fetch(&app, &format!("/users/{id}")).await.status, 200);
    }
    fetch(&app, "/users").await;
    common::send(&app, http::Method::DELETE, "/users/9").await;

    let report = registry.run_all().await;
    let one = report.probe("route:users.:id").unwrap();
    assert_eq!(one.description.as_deref(), Some("/users/{id}"));
    let d = one.details.as_ref().unwrap();
    assert_eq!(d["request_count"], 6, "raw paths share their template's probe");
    assert_eq!(d["error_count"], 1);
    assert_eq!(
        report.probe("route:users").unwrap().details.as_ref().unwrap()["request_count"],
        1
    );
    assert!(
        one.details.as_ref().unwrap().get("circuit_breaker").is_none(),
        "passive probes have no circuit breaker"
    );
}

#[tokio::test]
async fn request_metrics_key_routes_by_method_and_template() {
    let metrics = RequestMetrics::new();
    let app = Router::new()
        .route("/users", get(|| async { "[]" }).post(|| status(201)))
        .route("/users/{id}", get(|| async { "{}" }))
        .route("/fail", get(|| status(502)))
        .layer(metrics.clone());

    for path in [
        "/users", "/users/1", "/users/2", "/users/3", "/fail", "/nope/1", "/nope/2",
    ] {
        fetch(&app, path).await;
    }
    common::send(&app, http::Method::POST, "/users").await;

    let (_, _, d) = details(&metrics).await;
    assert_eq!(d["request_count"], 8);
    assert_eq!(d["error_count"], 1);
    let routes = d["routes"].as_object().unwrap();
    let keys: Vec<&str> = routes.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "GET (unmatched)",
            "GET /fail",
            "GET /users",
            "POST /users",
            "GET /users/{id}"
        ],
        "sorted by template, then method; never a raw path"
    );
    assert_eq!(routes["GET /users/{id}"]["request_count"], 3);
    assert_eq!(routes["GET (unmatched)"]["request_count"], 2);
    assert_eq!(routes["GET (unmatched)"]["last_status_code"], 404);
    assert_eq!(routes["POST /users"]["last_status_code"], 201);
    assert_eq!(routes["GET /fail"]["error_rate"], json!(1.0));
}

#[tokio::test]
async fn the_route_cap_holds_with_ten_thousand_distinct_raw_paths() {
    let metrics = RequestMetrics::new().max_routes(50);
    let mut router = Router::new();
    for n in 0..200 {
        router = router.route(&format!("/r{n}/{{id}}"), get(|| async { "ok" }));
    }
    let app = router.layer(metrics.clone());
    let ext = http::Method::from_bytes(b"PURGE").unwrap();
    for i in 0..10_000 {
        let path = format!("/r{}/{i}", i % 200);
        let method = if i % 7 == 0 { ext.clone() } else { http::Method::GET };
        common::send(&app, method, &path).await;
    }
    let (_, _, d) = details(&metrics).await;
    assert_eq!(d["request_count"], 10_000);
    let routes = d["routes"].as_object().unwrap();
    assert_eq!(routes.len(), 50);
    assert!(routes.keys().all(|k| k.contains("{id}")), "{:?}", routes.keys());
    let tracked: u64 = routes.values().map(|r| r["request_count"].as_u64().unwrap()).sum();
    assert_eq!(tracked + d["untracked_requests"].as_u64().unwrap(), 10_000);
    assert!(routes.keys().all(|k| k.starts_with("GET ") || k.starts_with("OTHER ")));
}

#[tokio::test]
async fn per_route_off_keeps_totals_only() {
    let metrics = RequestMetrics::new().per_route(false).with_name("app");
    let app = Router::new().route("/", get(|| async { "ok" })).layer(metrics.clone());
    fetch(&app, "/").await;
    assert_eq!(metrics.name(), "app");
    let (_, _, d) = details(&metrics).await;
    assert_eq!(d["request_count"], 1);
    assert!(d.get("routes").is_none());
}

#[derive(Debug, thiserror::Error)]
#[error("connection refused to postgres://app:s3cret@db:5432/x")]
struct DbError;

#[tokio::test]
async fn watch_records_results_errors_and_panics() {
    let probe = PassiveProbe::redis().with_config(StatsConfig::default().min_calls(1));
    assert_eq!(probe.name(), "redis");
    let (_, _, d) = details(&probe).await;
    assert_eq!(d, json!({"message": "no calls observed yet", "traffic": "none"}));

    assert_eq!(probe.watch(async { Ok::<_, DbError>(1) }).await.unwrap(), 1);
    assert!(probe.watch(async { Err::<(), _>(DbError) }).await.is_err());
    let panicked = AssertUnwindSafe(probe.watch(async {
        if true {
            panic!("lost the connection");
        }
        Ok::<(), DbError>(())
    }))
    .catch_unwind()
    .await;
    assert!(panicked.is_err(), "the panic is resumed");
    assert_eq!(probe.watch_blocking(|| "12".parse::<u8>()).unwrap(), 12);
    assert!(probe.watch_blocking(|| "x".parse::<u8>()).is_err());
    probe.record_cache_hit();
    probe.record_cache_miss();

    let (state, _, d) = details(&probe).await;
    assert_eq!(state, Status::Unhealthy);
    assert_eq!(d["call_count"], 5);
    assert_eq!(d["error_count"], 3);
    assert_eq!(d["error_rate"], json!(0.6));
    assert_eq!(d["consecutive_errors"], 1);
    assert_eq!(d["error_types"], json!({"DbError": 1, "panic": 1, "ParseIntError": 1}));
    assert_eq!(d["last_error"], "ParseIntError: invalid digit found in string");
    assert_eq!(d["cache_hits"], 1);
    assert!(d.get("last_status_code").is_none());

    let db = PassiveProbe::postgres();
    let _ = db.watch(async { Err::<(), _>(DbError) }).await;
    let (_, _, d) = details(&db).await;
    assert_eq!(
        d["last_error"],
        "DbError: connection refused to postgres://app:***@db:5432/x"
    );
}

#[tokio::test]
async fn a_dropped_call_is_not_recorded() {
    let probe = PassiveProbe::http();
    let slow = probe.watch(async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<(), DbError>(())
    });
    assert!(tokio::time::timeout(Duration::from_millis(10), slow).await.is_err());
    let (_, _, d) = details(&probe).await;
    assert_eq!(d["message"], "no calls observed yet");
}

/// A bare HTTP/1 client over a real socket.
mod reqwest_like {
    use std::net::SocketAddr;

    use http_body_util::Empty;
    use hyper::body::Bytes;
    use hyper_util::client::legacy::Client as Hyper;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;

    pub(super) struct Client(Hyper<HttpConnector, Empty<Bytes>>);

    impl Client {
        pub(super) fn new() -> Self {
            Self(Hyper::builder(TokioExecutor::new()).build_http())
        }

        pub(super) async fn get(&self, addr: SocketAddr, path: &str) -> Result<u16, String> {
            let uri = format!("http://{addr}{path}").parse().unwrap();
            self.0
                .get(uri)
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string())
        }
    }
}

#[tokio::test]
async fn a_route_probe_layered_on_the_handler_records_the_same() {
    use axum::handler::Handler;

    let probe = RouteProbe::new("handler-layer");
    let app = Router::new().route("/ok", get((|| async { "fine" }).layer(probe.clone())));
    assert_eq!(fetch(&app, "/ok").await.status, 200);
    let (state, _, d) = details(&probe).await;
    assert_eq!(state, Status::Healthy);
    assert_eq!(d["request_count"], 1);
    assert_eq!(d["last_status_code"], 200);
}

#[tokio::test]
async fn a_burst_ages_out_of_the_span_and_readiness_recovers() {
    let span = Duration::from_millis(300);
    let checkout = RouteProbe::new("checkout").with_config(StatsConfig::default().min_calls(5).window_span(span));
    let registry = HealthRegistry::builder()
        .add(checkout.clone())
        .cache_age(Duration::ZERO)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/pay",
            get(|| async { StatusCode::SERVICE_UNAVAILABLE }).layer(checkout.clone()),
        )
        .merge(registry.router());
    for _ in 0..10 {
        assert_eq!(fetch(&app, "/pay").await.status, 503);
    }
    let ready = fetch(&app, "/health/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{}", ready.text());
    let metrics = fetch(&app, "/health/metrics").await.text();
    assert!(
        metrics.contains("\nprobe_no_data{name=\"checkout\",critical=\"true\"} 0\n"),
        "{metrics}"
    );

    // The pod gets no traffic while it is unready. Calls are stamped by the
    // statistics' own (TSC) clock, which tokio's paused clock does not move,
    // so the burst ages out in real time.
    tokio::time::sleep(span + Duration::from_millis(100)).await;
    let ready = fetch(&app, "/health/ready").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text());
    let body = ready.json();
    assert_eq!(body["status"], "healthy");
    let probe = &body["probes"][0];
    assert_eq!(probe["status"], "healthy");
    assert_eq!(probe["error"], Value::Null);
    let d = &probe["details"];
    assert_eq!(d["traffic"], "none", "{d}");
    assert_eq!(d["message"], "no recent traffic: no requests in the last 0.3 s");
    assert!(d["idle_for_s"].as_f64().unwrap() >= 0.3, "{d}");
    assert_eq!(d["request_count"], 10, "lifetime counts stay: {d}");
    assert_eq!(d["error_count"], 10);
    let metrics = fetch(&app, "/health/metrics").await.text();
    assert!(
        metrics.contains("\nprobe_no_data{name=\"checkout\",critical=\"true\"} 1\n"),
        "{metrics}"
    );

    // Traffic again: judged again, and no longer idle.
    assert_eq!(fetch(&app, "/pay").await.status, 503);
    let (state, _, d) = details(&checkout).await;
    assert_eq!(state, Status::Healthy, "one call is below min_calls: {d}");
    assert!(d.get("traffic").is_none(), "{d}");
}

#[test]
fn a_window_smaller_than_min_calls_is_refused_at_build() {
    let tiny = RouteProbe::new("tiny").with_config(StatsConfig::default().window_size(3));
    let err = HealthRegistry::builder().add(tiny).build().unwrap_err();
    assert_eq!(err.kind(), BuildErrorKind::InvalidOption, "{err}");
    let message = err.to_string();
    assert!(message.starts_with("probe \"tiny\": "), "{message}");
    assert!(
        message.contains("window_size") && message.contains("min_calls"),
        "{message}"
    );

    // The same through a group, a wrapper and the other passive probes.
    let (_, group) = WatchedRouter::<()>::new()
        .with_config(StatsConfig::default().window_size(3))
        .route("/users", get(|| async { "[]" }))
        .into_parts();
    let err = HealthRegistry::builder().include(group).build().unwrap_err();
    assert_eq!(err.kind(), BuildErrorKind::InvalidOption, "{err}");
    let wrapped = PassiveProbe::redis()
        .with_config(StatsConfig::default().window_span(Duration::ZERO))
        .with_timeout(Duration::from_secs(1));
    let err = HealthRegistry::builder().add(wrapped).build().unwrap_err();
    assert!(err.to_string().contains("window_span"), "{err}");
    let metrics = RequestMetrics::new().with_config(StatsConfig::default().window_size(5));
    assert!(HealthRegistry::builder().add(metrics).build().is_err());

    // Matching settings are fine.
    let small = RouteProbe::new("small").with_config(StatsConfig::default().window_size(3).min_calls(3));
    assert!(HealthRegistry::builder().add(small).build().is_ok());
}
