//! `PostgresProbe` against the real PostgreSQL server on loopback
//! (`AXUM_WATCH_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::str::FromStr;
use std::time::{Duration, Instant};

use axum_watch::probes::PostgresProbe;
use axum_watch::{HealthRegistry, Probe, ProbeExt, Status};
use common::{free_port, postgres_url, silent_listener};
use serde_json::Value;

/// The test URL with `password` inserted (trust authentication accepts any).
fn url_with_password(password: &str) -> String {
    postgres_url().replacen("@", &format!(":{password}@"), 1)
}

fn url_with(host_port: Option<&str>, database: Option<&str>) -> String {
    let config = tokio_postgres::Config::from_str(&postgres_url()).unwrap();
    let user = config.get_user().unwrap_or("postgres");
    let host_port = host_port.map_or_else(
        || {
            let host = match &config.get_hosts()[0] {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                other => panic!("expected a TCP host, got {other:?}"),
            };
            format!("{host}:{}", config.get_ports().first().copied().unwrap_or(5432))
        },
        str::to_owned,
    );
    let database = database.unwrap_or_else(|| config.get_dbname().unwrap_or("test"));
    format!("postgres://{user}:s3cret-pw@{host_port}/{database}")
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains("s3cret"), "password leaked: {text}");
}

#[tokio::test]
async fn healthy_with_server_details() {
    let probe = PostgresProbe::new(&url_with_password("s3cret-pw")).unwrap();
    assert_eq!(probe.name(), "postgresql");
    let outcome = probe.check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy);
    let d = outcome.details();
    let keys: Vec<&str> = d.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "host",
            "port",
            "database",
            "version",
            "max_connections",
            "active_connections",
            "total_connections",
            "database_size",
            "database_size_bytes",
            "sslmode",
            // The server offers TLS (`ssl = on`), so the default `prefer`
            // takes it and says what it got.
            "tls_version",
            "cert_not_after",
            "cert_days_remaining"
        ]
    );
    assert_eq!(d["sslmode"], "prefer");
    assert!(d["tls_version"].as_str().unwrap().starts_with("TLSv1."), "{d:?}");
    let config = tokio_postgres::Config::from_str(&postgres_url()).unwrap();
    assert_eq!(d["database"], config.get_dbname().unwrap_or("test"));
    assert_eq!(d["port"], 5432);
    let version = d["version"].as_str().unwrap();
    assert!(version.starts_with(|c: char| c.is_ascii_digit()), "{version}");
    assert!(d["max_connections"].as_i64().unwrap() > 0);
    // This very check is an active client connection.
    assert!(d["active_connections"].as_i64().unwrap() >= 1);
    assert!(d["total_connections"].as_i64().unwrap() >= d["active_connections"].as_i64().unwrap());
    assert!(d["database_size_bytes"].as_i64().unwrap() > 0);
    let size = d["database_size"].as_str().unwrap();
    assert!(size.ends_with("B") || size.ends_with("bytes"), "{size}");
    assert_no_secret(&Value::Object(d.clone()).to_string());
    assert_no_secret(&format!("{probe:?}"));
}

#[tokio::test]
async fn closed_port_is_unhealthy_quickly_with_a_redacted_error() {
    let port = free_port();
    let probe = PostgresProbe::new(&url_with(Some(&format!("127.0.0.1:{port}")), None)).unwrap();
    let started = Instant::now();
    let err = probe.check().await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        err.starts_with(&format!("tokio_postgres::Error: connecting to 127.0.0.1:{port}/")),
        "{err}"
    );
    assert!(err.contains("error connecting to server"), "{err}");
    assert_no_secret(&err);
}

#[tokio::test]
async fn wrong_database_is_unhealthy_with_the_server_message() {
    let probe = PostgresProbe::new(&url_with(None, Some("axum_watch_no_such_db"))).unwrap();
    let err = probe.check().await.unwrap_err().to_string();
    assert!(
        err.contains(r#"database "axum_watch_no_such_db" does not exist"#),
        "{err}"
    );
    assert_no_secret(&err);
}

#[tokio::test]
async fn silent_server_times_out_within_the_connect_timeout() {
    // Accepts TCP connections but never speaks the protocol.
    let port = silent_listener().await.port();
    let probe = PostgresProbe::new(&url_with(Some(&format!("127.0.0.1:{port}")), None))
        .unwrap()
        .connect_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let err = probe.check().await.unwrap_err().to_string();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // Whichever fires first: the probe's own bound or tokio-postgres' connect timeout.
    assert!(
        err.ends_with(": timed out after 500ms") || err.ends_with(": timeout waiting for server"),
        "{err}"
    );
    assert_no_secret(&err);
}

#[tokio::test]
async fn registry_reports_unreachable_server_redacted() {
    let probe = PostgresProbe::new(&url_with(Some(&format!("127.0.0.1:{}", free_port())), None)).unwrap();
    let registry = HealthRegistry::builder()
        .add(probe.with_name("orders-db"))
        .build()
        .unwrap();
    let report = registry.run_all().await;
    let result = report.probe("orders-db").unwrap();
    assert_eq!(result.status, Status::Unhealthy);
    let error = result.error.as_deref().unwrap();
    assert!(error.contains("error connecting to server"), "{error}");
    assert_no_secret(&serde_json::to_string(&report).unwrap());
}

fn pool(url: &str) -> deadpool_postgres::Pool {
    let config = tokio_postgres::Config::from_str(url).unwrap();
    let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
    deadpool_postgres::Pool::builder(manager).max_size(3).build().unwrap()
}

#[tokio::test]
async fn pool_probe_reports_server_and_pool_details() {
    let pool = pool(&url_with_password("s3cret-pw"));
    let probe = PostgresProbe::from_pool(pool.clone());
    let first = probe.check().await.unwrap();
    assert_eq!(first.status(), Status::Healthy);
    let d = first.details();
    assert!(!d.contains_key("host"), "a pool does not say where it points");
    assert!(d["version"].is_string());
    assert!(d["database_size_bytes"].as_i64().unwrap() > 0);
    assert_eq!(d["pool_max_size"], 3);
    assert_eq!(d["pool_size"], 0, "status is read before the check's own connection");
    // The connection went back to the pool and is reused.
    let second = probe.check().await.unwrap();
    assert_eq!(second.details()["pool_size"], 1);
    assert_eq!(second.details()["pool_available"], 1);
    assert_eq!(pool.status().size, 1);
    assert_no_secret(&format!("{probe:?}"));
}

#[tokio::test]
async fn pool_probe_to_a_closed_port_is_unhealthy() {
    let probe = PostgresProbe::from_pool(pool(&url_with(Some(&format!("127.0.0.1:{}", free_port())), None)))
        .connect_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let err = probe.check().await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(err.contains("getting a connection from the pool"), "{err}");
    assert!(err.contains("error connecting to server"), "{err}");
    assert_no_secret(&err);
}

/// A failing metadata query leaves its fields out, not the probe unhealthy.
/// A session whose `search_path` puts a schema before `pg_catalog` sees that
/// schema's `pg_stat_activity`, here a view that divides by zero.
#[tokio::test]
async fn failing_metadata_query_leaves_the_probe_healthy() {
    let (admin, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    // Concurrent test runs may race to create the schema; either one wins.
    let _ = admin
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS axum_watch_shadow; \
             CREATE OR REPLACE VIEW axum_watch_shadow.pg_stat_activity AS \
             SELECT (1 / 0)::text AS state, 'client backend'::text AS backend_type",
        )
        .await;
    let shadowed = format!(
        "{}?options=-c%20search_path%3Daxum_watch_shadow%2Cpg_catalog",
        postgres_url()
    );
    let outcome = PostgresProbe::new(&shadowed).unwrap().check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy);
    let d = outcome.details();
    assert!(!d.contains_key("active_connections"), "{d:?}");
    assert!(!d.contains_key("total_connections"), "{d:?}");
    assert!(d["version"].is_string(), "{d:?}");
    assert!(d["database_size_bytes"].as_i64().unwrap() > 0);
}
