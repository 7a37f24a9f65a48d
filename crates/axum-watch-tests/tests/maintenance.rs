//! Maintenance mode over HTTP and through the API, in paused time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::body::Body;
use axum_watch::{HealthRegistry, Status};
use common::{Reply, Switch, call, get, send};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

async fn post(app: &axum::Router, content_type: Option<&str>, body: impl Into<Body>) -> Reply {
    let mut request = Request::builder().method(Method::POST).uri("/health/maintenance");
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    call(app, request.body(body.into()).unwrap()).await
}

fn open_registry(db: &Switch) -> HealthRegistry {
    HealthRegistry::builder()
        .add(db.clone())
        .allow_unauthenticated_maintenance(true)
        .cache_age(Duration::ZERO)
        .circuit_breaker(false)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn changes_are_refused_without_authentication_unless_allowed() {
    let registry = HealthRegistry::builder().build().unwrap();
    let app = registry.router();
    assert_eq!(
        get(&app, "/health/maintenance").await.json(),
        json!({"active": false, "until": null})
    );
    for reply in [
        post(&app, None, "").await,
        send(&app, Method::DELETE, "/health/maintenance").await,
    ] {
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(
            reply.json()["detail"]
                .as_str()
                .unwrap()
                .contains("without authentication")
        );
    }
    assert!(!registry.in_maintenance());
    let put = send(&app, Method::PUT, "/health/maintenance").await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(put.headers["allow"], "GET,HEAD,POST,DELETE");
}

#[tokio::test(start_paused = true)]
async fn maintenance_pins_ready_expires_and_keeps_recording() {
    let db = Switch::new("db", Status::Healthy);
    let registry = open_registry(&db);
    let app = registry.router();
    get(&app, "/health/status").await;

    let started = post(&app, Some("application/json"), r#"{"minutes": 1}"#).await;
    assert_eq!(started.status, StatusCode::OK);
    let body = started.json();
    assert_eq!(body["active"], true);
    assert!(body["until"].as_str().unwrap().ends_with('Z'));
    assert_eq!(get(&app, "/health/maintenance").await.json(), body);

    db.set(Status::Unhealthy);
    let ready = get(&app, "/health/ready").await;
    assert_eq!(
        (ready.status, ready.text()),
        (StatusCode::OK, r#"{"status":"maintenance"}"#.to_owned())
    );
    // /status is not pinned, and the transition is still recorded.
    assert_eq!(get(&app, "/health/status").await.status, StatusCode::MULTI_STATUS);
    let alerts = get(&app, "/health/alerts").await.json();
    assert_eq!(alerts["alerts"][0]["new_status"], "unhealthy");

    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(!registry.in_maintenance());
    assert_eq!(
        get(&app, "/health/maintenance").await.json(),
        json!({"active": false, "until": null})
    );
    assert_eq!(get(&app, "/health/ready").await.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(start_paused = true)]
async fn indefinite_maintenance_until_deleted() {
    let db = Switch::new("db", Status::Unhealthy);
    let registry = open_registry(&db);
    let app = registry.router();
    let started = post(&app, None, "").await;
    assert_eq!(started.json(), json!({"active": true, "until": null}));
    tokio::time::advance(Duration::from_secs(365 * 24 * 3600)).await;
    assert_eq!(get(&app, "/health/ready").await.status, StatusCode::OK);
    let ended = send(&app, Method::DELETE, "/health/maintenance").await;
    assert_eq!(
        (ended.status, ended.json()),
        (StatusCode::OK, json!({"active": false, "until": null}))
    );
    assert_eq!(get(&app, "/health/ready").await.status, StatusCode::SERVICE_UNAVAILABLE);
    // DELETE is idempotent.
    assert_eq!(
        send(&app, Method::DELETE, "/health/maintenance").await.status,
        StatusCode::OK
    );
}

#[tokio::test(start_paused = true)]
async fn until_keeps_its_offset() {
    let registry = open_registry(&Switch::new("db", Status::Healthy));
    let app = registry.router();
    let until = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2))
        .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(5)))
        .timestamp();
    let text = axum_watch::model::Timestamp::with_offset(until, jiff::tz::offset(5)).to_string();
    let reply = post(&app, Some("application/json"), format!(r#"{{"until": "{text}"}}"#)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["until"], text);
    assert!(text.ends_with("+05:00"));
}

#[tokio::test(start_paused = true)]
async fn every_invalid_body_is_a_4xx_naming_field_and_reason_and_changes_nothing() {
    let registry = open_registry(&Switch::new("db", Status::Healthy));
    let app = registry.router();
    post(&app, Some("application/json"), r#"{"minutes": 30}"#).await;
    let before = get(&app, "/health/maintenance").await.json();
    let cases: &[(&str, Option<&str>, StatusCode, Option<&str>)] = &[
        (
            r#"{"minutes": "5"}"#,
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("minutes"),
        ),
        (
            r#"{"minutes": true}"#,
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("minutes"),
        ),
        (
            r#"{"minutes": null}"#,
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("minutes"),
        ),
        (
            r#"{"minutes": -1}"#,
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("minutes"),
        ),
        (
            r#"{"minutes": 0}"#,
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("minutes"),
        ),
        (
            r#"{"minutes": 525601}"#,
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("minutes"),
        ),
        (
            r#"{"until": "2030-01-01T00:00:00"}"#,
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("until"),
        ),
        (
            r#"{"until": "2001-01-01T00:00:00Z"}"#,
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("until"),
        ),
        (
            r#"{"hours": 3}"#,
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        ("{not json", Some("application/json"), StatusCode::BAD_REQUEST, None),
        (
            "minutes=5",
            Some("application/x-www-form-urlencoded"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
        ),
    ];
    for (body, content_type, code, field) in cases {
        let reply = post(&app, *content_type, *body).await;
        assert_eq!(reply.status, *code, "{body}");
        let error = reply.json();
        assert!(!error["detail"].as_str().unwrap().is_empty());
        match field {
            Some(f) => assert_eq!(error["field"], *f, "{body}: {error}"),
            None => assert!(error.get("field").is_none(), "{body}: {error}"),
        }
    }
    let oversized = format!(r#"{{"minutes": 5, "pad": "{}"}}"#, "x".repeat(4096));
    let reply = post(&app, Some("application/json"), oversized).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reply.json()["detail"].as_str().unwrap().contains("at most 1024 bytes"));
    assert_eq!(
        get(&app, "/health/maintenance").await.json(),
        before,
        "refusals change nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn the_ready_stream_says_maintenance() {
    let registry = open_registry(&Switch::new("db", Status::Healthy));
    registry.set_maintenance(None);
    let request = Request::builder()
        .uri("/health/ready/stream")
        .body(Body::empty())
        .unwrap();
    let response = registry.router::<()>().oneshot(request).await.unwrap();
    let mut body = response.into_body();
    let chunk = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&chunk[..], b"retry: 3000\ndata: {\"status\":\"maintenance\"}\n\n");
}
