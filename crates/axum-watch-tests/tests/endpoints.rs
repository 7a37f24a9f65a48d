//! Every JSON endpoint in every state, through the real router.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum_watch::{HealthRegistry, Outcome, ProbeExt, Status, probe};
use common::{Switch, get, send, statuses};
use http::{Method, StatusCode};
use serde_json::json;

fn app(registry: &HealthRegistry) -> axum::Router {
    registry.router()
}

fn tick() -> Duration {
    Duration::from_millis(1100)
}

#[tokio::test(start_paused = true)]
async fn live_is_always_ok_and_runs_nothing() {
    let db = Switch::new("db", Status::Unhealthy);
    let registry = HealthRegistry::builder().add(db.clone()).build().unwrap();
    let reply = get(&app(&registry), "/health/live").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), r#"{"status":"ok"}"#);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(db.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn healthy_degraded_unhealthy_and_non_critical() {
    let db = Switch::new("db", Status::Healthy);
    let cache = Switch::new("cache", Status::Healthy);
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .add_non_critical(cache.clone())
        .build()
        .unwrap();
    let app = app(&registry);

    let ready = get(&app, "/health/ready").await;
    assert_eq!(ready.status, StatusCode::OK);
    let body = ready.json();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["timezone"], "UTC");
    assert!(body["checked_at"].as_str().unwrap().ends_with('Z'));
    let status = get(&app, "/health/status").await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.text(), ready.text(), "a cached report serves both");
    let first = &status.json()["probes"][0];
    assert_eq!(
        first.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "name",
            "status",
            "critical",
            "latency_ms",
            "error",
            "description",
            "tags",
            "details",
            // Each result's own time (fastapi-watch 1.8), after the contract's fields.
            "checked_at"
        ]
    );
    assert_eq!(
        status.json().as_object().unwrap().keys().collect::<Vec<_>>(),
        ["status", "checked_at", "timezone", "probes", "failing"]
    );
    assert_eq!(status.json()["failing"], json!([]));
    assert_eq!(first["critical"], true);
    assert_eq!(status.json()["probes"][1]["critical"], false);

    db.set(Status::Degraded);
    tokio::time::advance(tick()).await;
    let ready = get(&app, "/health/ready").await;
    assert_eq!(
        (ready.status, ready.json()["status"].clone()),
        (StatusCode::OK, json!("degraded"))
    );
    let status = get(&app, "/health/status").await;
    assert_eq!(
        (status.status, status.json()["status"].clone()),
        (StatusCode::MULTI_STATUS, json!("degraded"))
    );

    db.set(Status::Unhealthy);
    tokio::time::advance(tick()).await;
    let ready = get(&app, "/health/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = ready.json();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["probes"][0]["error"], "db is down");
    assert_eq!(body["failing"], json!(["db"]), "the critical unhealthy probe, by name");
    let status = get(&app, "/health/status").await;
    assert_eq!(status.status, StatusCode::MULTI_STATUS);

    // A failing non-critical probe changes nothing.
    db.set(Status::Healthy);
    cache.set(Status::Unhealthy);
    tokio::time::advance(tick()).await;
    let ready = get(&app, "/health/ready").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(
        statuses(&ready.json()),
        [("db".into(), "healthy".into()), ("cache".into(), "unhealthy".into())]
    );
    assert_eq!(ready.json()["status"], "healthy");
    assert_eq!(
        ready.json()["failing"],
        json!([]),
        "a non-critical failure is not listed"
    );
    assert_eq!(get(&app, "/health/status").await.status, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn no_probes_is_healthy() {
    let registry = HealthRegistry::builder().build().unwrap();
    let reply = get(&app(&registry), "/health/status").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["probes"], json!([]));
}

#[tokio::test(start_paused = true)]
async fn grace_period_holds_ready_only() {
    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Healthy))
        .grace_period(Duration::from_secs(10))
        .build()
        .unwrap();
    let app = app(&registry);
    let ready = get(&app, "/health/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.text(), r#"{"status":"starting"}"#);
    assert_eq!(get(&app, "/health/status").await.status, StatusCode::OK);
    assert_eq!(get(&app, "/health/live").await.status, StatusCode::OK);
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(get(&app, "/health/ready").await.status, StatusCode::SERVICE_UNAVAILABLE);
    tokio::time::advance(Duration::from_secs(1)).await;
    let ready = get(&app, "/health/ready").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["status"], "healthy");
}

#[tokio::test(start_paused = true)]
async fn startup_before_and_after_set_started() {
    let registry = HealthRegistry::builder().build().unwrap();
    let app = app(&registry);
    let reply = get(&app, "/health/startup").await;
    assert_eq!(
        (reply.status, reply.text()),
        (StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"starting"}"#.into())
    );
    registry.set_started();
    assert!(registry.is_started());
    let reply = get(&app, "/health/startup").await;
    assert_eq!(
        (reply.status, reply.text()),
        (StatusCode::OK, r#"{"status":"started"}"#.into())
    );
}

#[tokio::test(start_paused = true)]
async fn startup_probes_gate_startup_with_timeouts() {
    let migrations = Switch::new("migrations", Status::Unhealthy);
    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Healthy))
        .startup_probe(migrations.clone())
        .startup_probe(probe::from_fn("warmup", std::future::pending).with_timeout(Duration::from_secs(3)))
        .build()
        .unwrap();
    let app = app(&registry);
    assert_eq!(
        get(&app, "/health/startup").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(migrations.calls(), 0, "nothing runs before set_started");
    registry.set_started();

    let started = tokio::time::Instant::now();
    let reply = get(&app, "/health/startup").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    let body = reply.json();
    assert_eq!(body["status"], "unhealthy");
    assert!(body["checked_at"].is_string());
    assert_eq!(body["timezone"], "UTC");
    assert_eq!(
        statuses(&body),
        [
            ("migrations".into(), "unhealthy".into()),
            ("warmup".into(), "unhealthy".into())
        ]
    );
    assert_eq!(body["probes"][0]["error"], "migrations is down");
    assert_eq!(body["probes"][1]["error"], "timed out after 3s");
    assert!(
        body["probes"][0]["details"].is_null(),
        "startup probes have no circuit breaker"
    );

    // Startup probes never show in /status.
    let status = get(&app, "/health/status").await.json();
    assert_eq!(statuses(&status), [("db".into(), "healthy".into())]);
}

#[tokio::test(start_paused = true)]
async fn startup_passes_when_every_startup_probe_passes() {
    let migrations = Switch::new("migrations", Status::Degraded);
    let registry = HealthRegistry::builder()
        .startup_probe(migrations.clone())
        .build()
        .unwrap();
    registry.set_started();
    let reply = get(&app(&registry), "/health/startup").await;
    assert_eq!(
        (reply.status, reply.text()),
        (StatusCode::OK, r#"{"status":"started"}"#.into())
    );
    assert_eq!(migrations.calls(), 1);
}

fn breaker(details: &serde_json::Value) -> serde_json::Value {
    details["circuit_breaker"].clone()
}

#[tokio::test(start_paused = true)]
async fn circuit_opens_serves_last_result_and_recovers() {
    let db = Switch::new("db", Status::Healthy);
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .cache_age(Duration::ZERO)
        .circuit_threshold(2)
        .circuit_cooldown(Duration::from_secs(60))
        .build()
        .unwrap();
    let app = app(&registry);

    let first = get(&app, "/health/status").await.json();
    assert_eq!(
        breaker(&first["probes"][0]["details"]),
        json!({"open": false, "consecutive_failures": 0, "trips_total": 0})
    );
    let keys: Vec<_> = first["probes"][0]["details"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, ["call", "circuit_breaker"], "the breaker block comes last");

    db.set(Status::Unhealthy);
    let one = get(&app, "/health/status").await.json();
    assert_eq!(
        breaker(&one["probes"][0]["details"]),
        json!({"open": false, "consecutive_failures": 1, "trips_total": 0})
    );
    let two = get(&app, "/health/status").await.json();
    assert_eq!(
        breaker(&two["probes"][0]["details"]),
        json!({"open": true, "consecutive_failures": 2, "trips_total": 1})
    );
    assert_eq!(db.calls(), 3);

    // Open: the probe is not called; its last result is served.
    db.set(Status::Healthy);
    let open = get(&app, "/health/status").await.json();
    assert_eq!(db.calls(), 3);
    assert_eq!(open["probes"][0]["status"], "unhealthy");
    assert_eq!(open["probes"][0]["error"], "db is down");
    assert_eq!(breaker(&open["probes"][0]["details"])["open"], true);
    assert_eq!(get(&app, "/health/ready").await.status, StatusCode::SERVICE_UNAVAILABLE);

    // After the cooldown one trial call closes it.
    tokio::time::advance(Duration::from_secs(60)).await;
    let recovered = get(&app, "/health/status").await.json();
    assert_eq!(db.calls(), 4);
    assert_eq!(recovered["probes"][0]["status"], "healthy");
    assert_eq!(
        breaker(&recovered["probes"][0]["details"]),
        json!({"open": false, "consecutive_failures": 0, "trips_total": 1})
    );

    let alerts = get(&app, "/health/alerts").await.json();
    let changes: Vec<_> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["old_status"].as_str().unwrap().to_owned(),
                a["new_status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("healthy".into(), "unhealthy".into()),
            ("unhealthy".into(), "healthy".into())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn failed_trial_reopens_and_counts_another_trip() {
    let db = Switch::new("db", Status::Unhealthy);
    let registry = HealthRegistry::builder()
        .add(db.clone().with_circuit_breaker(1, Duration::from_secs(30)))
        .cache_age(Duration::ZERO)
        .build()
        .unwrap();
    let app = app(&registry);
    let tripped = get(&app, "/health/status").await.json();
    assert_eq!(
        breaker(&tripped["probes"][0]["details"]),
        json!({"open": true, "consecutive_failures": 1, "trips_total": 1})
    );
    tokio::time::advance(Duration::from_secs(30)).await;
    let again = get(&app, "/health/status").await.json();
    assert_eq!(db.calls(), 2);
    assert_eq!(
        breaker(&again["probes"][0]["details"]),
        json!({"open": true, "consecutive_failures": 2, "trips_total": 2})
    );
}

#[tokio::test(start_paused = true)]
async fn open_circuit_without_a_recent_result_is_suspended() {
    let db = Switch::new("db", Status::Unhealthy);
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .cache_age(Duration::ZERO)
        .circuit_threshold(1)
        .circuit_cooldown(Duration::from_secs(600))
        .result_ttl(Duration::from_secs(5))
        .build()
        .unwrap();
    let app = app(&registry);
    get(&app, "/health/status").await;
    tokio::time::advance(Duration::from_secs(6)).await;
    let suspended = get(&app, "/health/status").await.json();
    let probe = &suspended["probes"][0];
    assert_eq!(probe["status"], "unhealthy");
    assert_eq!(probe["latency_ms"], 0.0);
    assert_eq!(probe["error"], "circuit breaker open — probe temporarily suspended");
    assert_eq!(
        probe["details"],
        json!({"circuit_breaker": {"open": true, "consecutive_failures": 1, "trips_total": 1}})
    );
    assert_eq!(db.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn breaker_block_is_absent_when_disabled() {
    let registry = HealthRegistry::builder()
        .add(probe::from_fn("plain", || async { Ok(Outcome::healthy()) }))
        .add(Switch::new("own", Status::Healthy).without_circuit_breaker())
        .build()
        .unwrap();
    let body = get(&app(&registry), "/health/status").await.json();
    assert_eq!(
        body["probes"][0]["details"],
        json!({"circuit_breaker": {"open": false, "consecutive_failures": 0, "trips_total": 0}})
    );
    assert_eq!(body["probes"][1]["details"], json!({"call": 1}));

    let registry = HealthRegistry::builder()
        .circuit_breaker(false)
        .add(probe::from_fn("plain", || async { Ok(Outcome::healthy()) }))
        .add(Switch::new("opted-in", Status::Healthy).with_circuit_breaker(3, Duration::from_secs(1)))
        .build()
        .unwrap();
    let body = get(&app(&registry), "/health/status").await.json();
    assert!(body["probes"][0]["details"].is_null());
    assert_eq!(body["probes"][1]["details"]["circuit_breaker"]["open"], false);
}

#[tokio::test(start_paused = true)]
async fn history_is_capped_ordered_and_expires() {
    let db = Switch::new("db", Status::Healthy);
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .add(Switch::new("cache", Status::Healthy))
        .history_size(3)
        .result_ttl(Duration::from_secs(10))
        .cache_age(Duration::ZERO)
        .build()
        .unwrap();
    let app = app(&registry);
    for _ in 0..4 {
        get(&app, "/health/status").await;
        tokio::time::advance(Duration::from_secs(2)).await;
    }
    let history = get(&app, "/health/history").await.json();
    let names: Vec<_> = history["probes"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(names, ["db", "cache"]);
    let calls: Vec<_> = history["probes"]["db"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["details"]["call"].as_u64().unwrap())
        .collect();
    assert_eq!(calls, [2, 3, 4], "capped at 3, oldest first");

    // Runs were at t=0, 2, 4 and 6; now t=8. At t=13 the run of t=2 is 11 s old.
    tokio::time::advance(Duration::from_secs(5)).await;
    let history = get(&app, "/health/history").await.json();
    let calls: Vec<_> = history["probes"]["db"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["details"]["call"].as_u64().unwrap())
        .collect();
    assert_eq!(calls, [3, 4]);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(get(&app, "/health/history").await.text(), r#"{"probes":{}}"#);
}

#[tokio::test(start_paused = true)]
async fn alerts_record_transitions_capped_and_expire() {
    let db = Switch::new("db", Status::Unhealthy);
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .circuit_breaker(false)
        .cache_age(Duration::ZERO)
        .max_alerts(2)
        .alert_ttl(Duration::from_secs(100))
        .build()
        .unwrap();
    let app = app(&registry);
    get(&app, "/health/status").await;
    let first = get(&app, "/health/alerts").await.json();
    let list = first["alerts"].as_array().unwrap();
    assert_eq!(list.len(), 1, "a probe first seen unhealthy is recorded: {first}");
    assert_eq!(
        (&list[0]["old_status"], &list[0]["new_status"]),
        (&"healthy".into(), &"unhealthy".into())
    );
    assert_eq!(list[0]["error"], "db is down");

    for status in [Status::Healthy, Status::Degraded, Status::Degraded, Status::Unhealthy] {
        db.set(status);
        get(&app, "/health/status").await;
        tokio::time::advance(Duration::from_secs(30)).await;
    }
    let alerts = get(&app, "/health/alerts").await.json();
    let list = alerts["alerts"].as_array().unwrap();
    assert_eq!(list.len(), 2, "capped at max_alerts: {alerts}");
    assert_eq!(list[0]["old_status"], "healthy");
    assert_eq!(list[0]["new_status"], "degraded");
    assert_eq!(list[1]["new_status"], "unhealthy");
    assert_eq!(list[1]["probe"], "db");
    assert!(list[1]["timestamp"].as_str().unwrap().ends_with('Z'));

    // The degraded record was written at t=30 and the unhealthy one at t=90.
    tokio::time::advance(Duration::from_secs(11)).await; // t=131
    let alerts = get(&app, "/health/alerts").await.json();
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 1);
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(get(&app, "/health/alerts").await.text(), r#"{"alerts":[]}"#);
}

#[tokio::test(start_paused = true)]
async fn tag_filters_apply_before_the_overall_status() {
    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Unhealthy).with_tags(["storage"]))
        .add(Switch::new("cache", Status::Degraded).with_tags(["storage", "fast"]))
        .add(Switch::new("api", Status::Healthy).with_tags(["edge"]))
        .build()
        .unwrap();
    let app = app(&registry);

    let edge = get(&app, "/health/ready?tag=edge").await;
    assert_eq!(edge.status, StatusCode::OK);
    assert_eq!(statuses(&edge.json()), [("api".into(), "healthy".into())]);
    assert_eq!(edge.json()["status"], "healthy");

    let fast = get(&app, "/health/status?tag=fast,%20edge").await;
    assert_eq!(fast.status, StatusCode::MULTI_STATUS);
    assert_eq!(fast.json()["status"], "degraded");
    assert_eq!(fast.json()["probes"].as_array().unwrap().len(), 2);

    let storage = get(&app, "/health/ready?tag=storage").await;
    assert_eq!(storage.status, StatusCode::SERVICE_UNAVAILABLE);

    let blank = get(&app, "/health/ready?tag=%20,").await;
    assert_eq!(
        blank.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a blank filter is no filter"
    );
    assert_eq!(blank.json()["probes"].as_array().unwrap().len(), 3);

    let unknown = get(&app, "/health/status?tag=edge,nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.json(),
        json!({
            "error": "unknown tag",
            "unknown_probes": [],
            "unknown_tags": ["nope"],
            "detail": "no probe has the tag \"nope\"",
        })
    );
    assert_eq!(get(&app, "/health/ready?tag=nope").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(start_paused = true)]
async fn wrong_methods_get_405_and_head_works() {
    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Healthy))
        .build()
        .unwrap();
    registry.set_started();
    let app = app(&registry);
    for path in ["live", "ready", "status", "history", "alerts", "startup"] {
        let uri = format!("/health/{path}");
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let reply = send(&app, method.clone(), &uri).await;
            assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            assert_eq!(reply.headers["allow"], "GET,HEAD", "{method} {uri}");
            assert_eq!(reply.json(), json!({"detail": "Method Not Allowed"}));
        }
        let head = send(&app, Method::HEAD, &uri).await;
        assert_eq!(head.status, StatusCode::OK, "HEAD {uri}");
        assert!(head.body.is_empty());
        assert_eq!(head.headers["content-type"], "application/json");
    }
}

#[tokio::test(start_paused = true)]
async fn prefix_and_timezone_are_honoured() {
    let registry = HealthRegistry::builder()
        .prefix("/ops/health")
        .timezone("Etc/GMT+5")
        .add(Switch::new("db", Status::Healthy))
        .build()
        .unwrap();
    let app = app(&registry);
    assert_eq!(get(&app, "/health/live").await.status, StatusCode::NOT_FOUND);
    let body = get(&app, "/ops/health/status").await.json();
    assert_eq!(body["timezone"], "Etc/GMT+5");
    assert!(body["checked_at"].as_str().unwrap().ends_with("-05:00"), "{body}");

    let root = HealthRegistry::builder().prefix("").build().unwrap();
    assert_eq!(get(&root.router(), "/live").await.status, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn run_all_always_runs_and_report_reuses_the_cache() {
    let db = Switch::new("db", Status::Healthy);
    let registry = HealthRegistry::builder().add(db.clone()).build().unwrap();
    let report = registry.report().await;
    assert_eq!(report.status, Status::Healthy);
    registry.report().await;
    assert_eq!(db.calls(), 1);
    let fresh = registry.run_all().await;
    assert_eq!(db.calls(), 2);
    assert_eq!(fresh.probes[0].details.as_ref().unwrap()["call"], 2);
    assert_eq!(registry.latest_results().await.unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn dashboard_is_served_with_strict_headers() {
    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Healthy))
        .build()
        .unwrap();
    let app = app(&registry);
    let page = get(&app, "/health/dashboard").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.headers["cache-control"], "no-store");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "script-src 'sha256-",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline"));
    assert!(page.text().contains("status/stream"));
    assert_eq!(
        send(&app, Method::HEAD, "/health/dashboard").await.status,
        StatusCode::OK
    );
    let post = send(&app, Method::POST, "/health/dashboard").await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.headers["allow"], "GET,HEAD");
}

#[tokio::test(start_paused = true)]
async fn dashboard_can_be_turned_off_or_replaced() {
    let off = HealthRegistry::builder().dashboard(false).build().unwrap();
    assert_eq!(get(&app(&off), "/health/dashboard").await.status, StatusCode::NOT_FOUND);

    let custom = HealthRegistry::builder()
        .add(Switch::new("db", Status::Degraded))
        .custom_dashboard(|ctx| {
            format!(
                "<p>{} via {}: {} probe(s)</p>",
                ctx.report.status,
                ctx.prefix,
                ctx.report.probes.len()
            )
        })
        .build()
        .unwrap();
    let page = get(&app(&custom), "/health/dashboard").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.text(), "<p>degraded via /health: 1 probe(s)</p>");
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.headers["x-frame-options"], "DENY");
}
