//! The health router merged into an application: authentication guards the
//! health routes only, never the application's own routes or its fallback,
//! in either merge order; trailing slashes reach the health endpoints and
//! leave the application's routes as it wrote them; request metrics count
//! the application's 404s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use axum_watch::passive::RequestMetrics;
use axum_watch::{HealthRegistry, Probe, Status};
use common::{Switch, get as fetch};

fn registry() -> HealthRegistry {
    HealthRegistry::builder()
        .add(Switch::new("db", Status::Healthy))
        .basic_auth("ops", "s3cret")
        .build()
        .unwrap()
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "home" }))
        .route("/users/{id}", get(|| async { "user" }))
        .route("/about/", get(|| async { "about, with its slash" }))
        .fallback(|| async { (StatusCode::NOT_FOUND, "the app's own 404") })
}

async fn assert_untouched(app: &Router) {
    let home = fetch(app, "/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert_eq!(home.text(), "home");
    assert_eq!(fetch(app, "/users/7").await.text(), "user");
    for unknown in ["/nope", "/health", "/health/nope", "/healthz"] {
        let reply = fetch(app, unknown).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{unknown}");
        assert_eq!(reply.text(), "the app's own 404", "{unknown}");
        assert!(!reply.headers.contains_key("www-authenticate"), "{unknown}");
    }
    let guarded = fetch(app, "/health/status").await;
    assert_eq!(guarded.status, StatusCode::UNAUTHORIZED);
    assert!(guarded.headers.contains_key("www-authenticate"));
}

/// The application's routes with and without a trailing slash answer as
/// the application wrote them, while the health paths take one.
async fn assert_slashes_untouched(app: &Router) {
    let about = fetch(app, "/about/").await;
    assert_eq!(
        (about.status, about.text().as_str()),
        (StatusCode::OK, "about, with its slash")
    );
    for unknown in ["/about", "/users/7/", "/health/", "/health/nope/"] {
        let reply = fetch(app, unknown).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{unknown}");
        assert_eq!(reply.text(), "the app's own 404", "{unknown}");
        assert!(!reply.headers.contains_key("location"), "{unknown}: not redirected");
    }
    for health in [
        "/health/status/",
        "/health/ready/",
        "/health/live/",
        "/health/ready/db/",
    ] {
        assert_eq!(fetch(app, health).await.status, StatusCode::UNAUTHORIZED, "{health}");
    }
}

#[tokio::test]
async fn trailing_slashes_leave_the_applications_routes_alone_in_either_merge_order() {
    assert_slashes_untouched(&app().merge(registry().router())).await;
    assert_slashes_untouched(&registry().router().merge(app())).await;
}

#[tokio::test]
async fn auth_guards_only_the_health_routes_when_merged_into_the_app() {
    assert_untouched(&app().merge(registry().router())).await;
}

#[tokio::test]
async fn auth_guards_only_the_health_routes_when_the_app_is_merged_into_it() {
    assert_untouched(&registry().router().merge(app())).await;
}

/// The `(unmatched)` row of the request metrics after one request to an
/// unknown path.
async fn unmatched_after_a_404(requests: &RequestMetrics, app: &Router) -> serde_json::Value {
    assert_eq!(fetch(app, "/does-not-exist").await.status, StatusCode::NOT_FOUND);
    let outcome = requests.check().await.unwrap();
    outcome.details()["routes"]["GET (unmatched)"].clone()
}

#[tokio::test]
async fn request_metrics_count_404s_with_the_layer_before_the_merge() {
    let requests = RequestMetrics::new();
    let app = app().layer(requests.clone()).merge(registry().router());
    let row = unmatched_after_a_404(&requests, &app).await;
    assert_eq!(row["request_count"], 1, "{row}");
    assert_eq!(row["last_status_code"], 404, "{row}");
}

#[tokio::test]
async fn request_metrics_count_404s_with_the_layer_after_the_merge() {
    let requests = RequestMetrics::new();
    let app = app().merge(registry().router()).layer(requests.clone());
    let row = unmatched_after_a_404(&requests, &app).await;
    assert_eq!(row["request_count"], 1, "{row}");
    assert_eq!(row["last_status_code"], 404, "{row}");
}
