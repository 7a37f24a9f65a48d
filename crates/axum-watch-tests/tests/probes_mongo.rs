//! `MongoProbe` against a MongoDB wire-protocol responder (MockupDB; no real
//! mongod can be installed on the test machines), started by
//! `scripts/services/mongo.sh`: `AXUM_WATCH_MONGO_URL` answers like a
//! MongoDB 7.0 standalone; `AXUM_WATCH_MONGO_RESTRICTED_URL` refuses
//! `serverStatus` and answers `ping` on the database `slow` only after 3 s.
//! Fails, never skips, when the responder is unreachable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use axum_watch::probes::MongoProbe;
use axum_watch::{HealthRegistry, Probe, Status};
use common::{env_or, free_port};
use serde_json::{Value, json};

fn up_url() -> String {
    env_or("AXUM_WATCH_MONGO_URL", "mongodb://127.0.0.1:27017/")
}

fn restricted_url() -> String {
    env_or("AXUM_WATCH_MONGO_RESTRICTED_URL", "mongodb://127.0.0.1:27018/")
}

#[tokio::test]
async fn up_reports_ping_and_server_status_details() {
    let probe = MongoProbe::new(up_url()).unwrap();
    let outcome = probe.check().await.expect("the mongo responder must be reachable");
    assert_eq!(outcome.status(), Status::Healthy);
    let mut details = Value::Object(outcome.details().clone());
    assert!(details["uptime_seconds"].is_number(), "{details}");
    details.as_object_mut().unwrap().remove("uptime_seconds");
    assert_eq!(
        details,
        json!({"version": "7.0.0-mockupdb", "connections_current": 3, "connections_available": 838_857})
    );
    // The client is kept: a second check reuses it.
    assert_eq!(probe.check().await.unwrap().status(), Status::Healthy);
}

#[tokio::test]
async fn server_status_refused_is_still_healthy_without_details() {
    let outcome = MongoProbe::new(restricted_url()).unwrap().check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy);
    assert!(outcome.details().is_empty(), "{outcome:?}");
}

#[tokio::test]
async fn slow_beyond_the_timeout_is_unhealthy_in_time() {
    let url = format!("{}slow", restricted_url());
    let probe = MongoProbe::new(&url).unwrap().timeout(Duration::from_secs(1));
    let started = Instant::now();
    let error = probe.check().await.unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_millis(1800),
        "{:?}",
        started.elapsed()
    );
    assert!(error.starts_with("Timeout: mongodb://127.0.0.1:"), "{error}");
    assert!(error.ends_with("/slow did not answer within 1s"), "{error}");
}

#[tokio::test]
async fn down_is_unhealthy_in_time_without_the_password() {
    let probe = MongoProbe::new(format!("mongodb://app:s3cret-m@127.0.0.1:{}/", free_port()))
        .unwrap()
        .timeout(Duration::from_secs(1));
    let started = Instant::now();
    let error = probe.check().await.unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_millis(1800),
        "{:?}",
        started.elapsed()
    );
    assert!(error.starts_with("MongoError: ping failed: "), "{error}");
    assert!(error.contains("Connection refused"), "{error}");
    assert!(!error.contains("s3cret-m"), "{error}");
}

/// Credentials the responder cannot verify (it knows no SASL): the login
/// fails, and the error does not carry the password.
#[tokio::test]
async fn failed_login_does_not_leak_the_password() {
    let url = up_url().replacen("mongodb://", "mongodb://app:s3cret-login@", 1);
    let probe = MongoProbe::new(url).unwrap().timeout(Duration::from_secs(2));
    let error = probe.check().await.unwrap_err().to_string();
    assert!(error.starts_with("MongoError: ping failed: SCRAM failure"), "{error}");
    assert!(!error.contains("s3cret-login"), "{error}");
    assert!(!format!("{probe:?}").contains("s3cret-login"));
}

#[tokio::test]
async fn checks_an_existing_client() {
    let client = mongodb::Client::with_uri_str(up_url()).await.unwrap();
    let outcome = MongoProbe::from_client(client).check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy);
    assert_eq!(outcome.details()["version"], "7.0.0-mockupdb");
}

#[tokio::test]
async fn registry_runs_it_under_its_name() {
    let registry = HealthRegistry::builder()
        .add(MongoProbe::new(up_url()).unwrap())
        .build()
        .unwrap();
    let report = registry.run_all().await;
    assert_eq!(report.probes[0].name, "mongodb");
    assert_eq!(report.probes[0].status, Status::Healthy, "{:?}", report.probes[0]);
}
