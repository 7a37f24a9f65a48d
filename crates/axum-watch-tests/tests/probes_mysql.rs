//! `MySqlProbe` against the real MariaDB server on loopback
//! (`AXUM_WATCH_MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use axum_watch::probes::MySqlProbe;
use axum_watch::{HealthRegistry, Probe, ProbeExt, Status};
use common::{free_port, mysql_url, silent_listener};

fn opts() -> mysql_async::Opts {
    mysql_async::Opts::from_url(&mysql_url()).unwrap()
}

/// The test server's URL with another address, password or database.
fn url_with(host_port: Option<&str>, password: Option<&str>, database: Option<&str>) -> String {
    let opts = opts();
    let host_port = host_port.map_or_else(
        || format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port()),
        str::to_owned,
    );
    let user = opts.user().unwrap_or("root");
    let auth = match password.or(opts.pass()) {
        Some(pass) => format!("{user}:{pass}"),
        None => user.to_owned(),
    };
    let database = database.or(opts.db_name()).unwrap_or("test");
    format!("mysql://{auth}@{host_port}/{database}")
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains("s3cret"), "password leaked: {text}");
}

#[tokio::test]
async fn healthy_with_server_details() {
    let probe = MySqlProbe::new(&mysql_url()).unwrap();
    assert_eq!(probe.name(), "mysql");
    let outcome = probe.check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy);
    let d = outcome.details();
    let keys: Vec<&str> = d.keys().map(String::as_str).filter(|k| *k != "socket").collect();
    assert_eq!(
        keys,
        [
            "host",
            "port",
            "tls",
            "database",
            "version",
            "max_connections",
            "threads_connected",
            "uptime_seconds"
        ]
    );
    let opts = opts();
    assert_eq!(d["host"], opts.ip_or_hostname());
    assert_eq!(d["port"], opts.tcp_port());
    assert_eq!(d["database"], opts.db_name().unwrap_or("test"));
    // The machine's MariaDB is asked for no TLS: none is used.
    assert_eq!(d["tls"], false);
    let version = d["version"].as_str().unwrap();
    assert!(version.starts_with(|c: char| c.is_ascii_digit()), "{version}");
    assert!(d["max_connections"].as_u64().unwrap() > 0);
    // This very check holds a connection.
    assert!(d["threads_connected"].as_u64().unwrap() >= 1);
    assert!(d["uptime_seconds"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn wrong_password_is_rejected_with_a_redacted_error() {
    let probe = MySqlProbe::new(&url_with(None, Some("s3cret-wrong"), None)).unwrap();
    assert_no_secret(&format!("{probe:?}"));
    let started = Instant::now();
    let err = probe.check().await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.starts_with("mysql_async::Error: connecting to "), "{err}");
    assert!(err.contains("Access denied for user"), "{err}");
    assert_no_secret(&err);
}

#[tokio::test]
async fn closed_port_is_unhealthy_quickly() {
    let port = free_port();
    let probe = MySqlProbe::new(&url_with(Some(&format!("127.0.0.1:{port}")), Some("s3cret-pw"), None)).unwrap();
    let started = Instant::now();
    let err = probe.check().await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        err.starts_with(&format!("mysql_async::Error: connecting to 127.0.0.1:{port}/")),
        "{err}"
    );
    assert!(err.contains("Connection refused"), "{err}");
    assert_no_secret(&err);
}

#[tokio::test]
async fn wrong_database_is_unhealthy_with_the_server_message() {
    let probe = MySqlProbe::new(&url_with(None, None, Some("axum_watch_no_such_db"))).unwrap();
    let err = probe.check().await.unwrap_err().to_string();
    assert!(err.contains("Unknown database 'axum_watch_no_such_db'"), "{err}");
}

#[tokio::test]
async fn silent_server_times_out_within_the_connect_timeout() {
    let port = silent_listener().await.port();
    let probe = MySqlProbe::new(&url_with(Some(&format!("127.0.0.1:{port}")), Some("s3cret-pw"), None))
        .unwrap()
        .connect_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let err = probe.check().await.unwrap_err().to_string();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(
        err,
        format!("Timeout: connecting to 127.0.0.1:{port}/test: timed out after 500ms")
    );
}

#[tokio::test]
async fn registry_shows_the_failure_redacted() {
    let probe = MySqlProbe::new(&url_with(None, Some("s3cret-wrong"), None)).unwrap();
    let registry = HealthRegistry::builder()
        .add(probe.with_name("shop-db"))
        .build()
        .unwrap();
    let report = registry.run_all().await;
    let result = report.probe("shop-db").unwrap();
    assert_eq!(result.status, Status::Unhealthy);
    assert!(result.error.as_deref().unwrap().contains("Access denied"));
    assert_no_secret(&serde_json::to_string(&report).unwrap());
}

#[tokio::test]
async fn pool_probe_reports_server_and_pool_details() {
    let constraints = mysql_async::PoolConstraints::new(1, 3).unwrap();
    let opts = mysql_async::OptsBuilder::from_opts(opts())
        .pool_opts(mysql_async::PoolOpts::default().with_constraints(constraints));
    let pool = mysql_async::Pool::new(opts);
    let probe = MySqlProbe::from_pool(pool.clone());
    assert_eq!(
        format!("{probe:?}"),
        r#"MySqlProbe { target: "pool", connect_timeout: 5s }"#
    );
    let first = probe.check().await.unwrap();
    assert_eq!(first.status(), Status::Healthy);
    let d = first.details();
    assert!(d["version"].is_string());
    assert!(d["threads_connected"].as_u64().unwrap() >= 1);
    assert_eq!(d["pool_max_size"], 3);
    assert_eq!(d["pool_size"], 0, "read before the check's own connection");
    // The connection goes back to the pool (asynchronously) and is reused.
    for _ in 0..100 {
        if pool
            .metrics()
            .connections_in_pool
            .load(std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = probe.check().await.unwrap();
    assert_eq!(second.details()["pool_size"], 1);
    assert_eq!(second.details()["pool_available"], 1);
    pool.disconnect().await.unwrap();
}

#[tokio::test]
async fn pool_probe_with_a_wrong_password_is_unhealthy() {
    let pool = mysql_async::Pool::from_url(url_with(None, Some("s3cret-wrong"), None)).unwrap();
    let probe = MySqlProbe::from_pool(pool);
    let err = probe.check().await.unwrap_err().to_string();
    assert!(
        err.starts_with("mysql_async::Error: getting a connection from the pool: "),
        "{err}"
    );
    assert!(err.contains("Access denied"), "{err}");
    assert_no_secret(&err);
}
