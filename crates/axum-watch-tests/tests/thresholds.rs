//! Failure and success thresholds: a status worsens or recovers only after
//! enough results in a row, and alerts, the alert log, readiness and metrics
//! all follow the reported status. Paused time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum_watch::options::Scheduling;
use axum_watch::{HealthRegistry, ProbeExt, Status};
use common::{Recorder, Switch, get};
use http::StatusCode;
use serde_json::json;

fn registry(db: &Switch, recorder: &Recorder) -> HealthRegistry {
    HealthRegistry::builder()
        .add(db.clone())
        .failure_threshold(3)
        .success_threshold(2)
        .cache_age(Duration::ZERO)
        .circuit_breaker(false)
        .scheduling(Scheduling::WhileWatched)
        .alerter(recorder.clone())
        .build()
        .unwrap()
}

async fn ready(app: &axum::Router) -> (StatusCode, serde_json::Value) {
    let reply = get(app, "/health/ready").await;
    (reply.status, reply.json())
}

async fn alerts(app: &axum::Router) -> usize {
    get(app, "/health/alerts").await.json()["alerts"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test(start_paused = true)]
async fn three_failures_to_worsen_two_successes_to_recover() {
    let db = Switch::new("db", Status::Healthy);
    let recorder = Recorder::default();
    let app = registry(&db, &recorder).router();
    assert_eq!(ready(&app).await.0, StatusCode::OK);

    db.set(Status::Unhealthy);
    let (code, body) = ready(&app).await;
    assert_eq!(code, StatusCode::OK, "one failure changes nothing yet");
    let probe = &body["probes"][0];
    assert_eq!(probe["status"], "healthy");
    assert_eq!(
        probe["details"]["threshold"],
        json!({"observed": "unhealthy", "consecutive": 1, "needed": 3})
    );
    assert_eq!(body["failing"], json!([]));
    // The second failure, seen through a scrape: still healthy in metrics.
    let metrics = get(&app, "/health/metrics").await.text();
    assert!(
        metrics.contains("probe_healthy{name=\"db\",critical=\"true\"} 1\n"),
        "{metrics}"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(alerts(&app).await, 0);
    assert!(recorder.sent().is_empty());

    let (code, body) = ready(&app).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "the third failure flips it");
    assert!(body["probes"][0]["details"].get("threshold").is_none(), "{body}");
    assert_eq!(body["failing"], json!(["db"]));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(alerts(&app).await, 1);
    assert_eq!(recorder.sent(), [("db".to_owned(), Status::Healthy, Status::Unhealthy)]);

    db.set(Status::Healthy);
    let (code, body) = ready(&app).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "one success is not enough");
    assert_eq!(
        body["probes"][0]["details"]["threshold"],
        json!({"observed": "healthy", "consecutive": 1, "needed": 2})
    );
    assert_eq!(ready(&app).await.0, StatusCode::OK, "the second recovers");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(alerts(&app).await, 2);
    assert_eq!(recorder.sent().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_blip_between_failures_starts_the_count_again_and_probes_can_override() {
    let db = Switch::new("db", Status::Healthy);
    let cache = Switch::new("cache", Status::Healthy);
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .add(cache.clone().with_thresholds(1, 1))
        .failure_threshold(2)
        .cache_age(Duration::ZERO)
        .circuit_breaker(false)
        .build()
        .unwrap();
    let app = registry.router();
    ready(&app).await;
    for status in [Status::Unhealthy, Status::Healthy, Status::Unhealthy] {
        db.set(status);
        assert_eq!(ready(&app).await.0, StatusCode::OK, "{status}");
    }
    assert_eq!(ready(&app).await.0, StatusCode::SERVICE_UNAVAILABLE, "two in a row");
    db.set(Status::Healthy);
    assert_eq!(ready(&app).await.0, StatusCode::OK);
    // The cache's own threshold of 1 reports at once.
    cache.set(Status::Unhealthy);
    assert_eq!(ready(&app).await.0, StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn zero_thresholds_are_refused() {
    for builder in [
        HealthRegistry::builder().failure_threshold(0),
        HealthRegistry::builder().success_threshold(0),
        HealthRegistry::builder().add(Switch::new("db", Status::Healthy).with_thresholds(0, 1)),
    ] {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), axum_watch::BuildErrorKind::InvalidOption, "{err}");
        assert!(err.to_string().contains("threshold must be at least 1"), "{err}");
    }
}
