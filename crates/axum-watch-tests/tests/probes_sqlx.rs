//! `SqlxProbe` over real sqlx pools: PostgreSQL (`AXUM_WATCH_POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`) and MariaDB
//! (`AXUM_WATCH_MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use axum_watch::probes::SqlxProbe;
use axum_watch::{HealthRegistry, Probe, ProbeExt, Status};
use common::{free_port, mysql_url, postgres_url};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

fn assert_no_secret(text: &str) {
    assert!(!text.contains("s3cret"), "password leaked: {text}");
}

fn pg_options() -> PgConnectOptions {
    postgres_url().parse().unwrap()
}

fn mysql_options() -> MySqlConnectOptions {
    mysql_url().parse().unwrap()
}

#[tokio::test]
async fn postgres_pool_is_healthy_with_pool_details() {
    // Trust authentication accepts the password; it must not show anywhere.
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .min_connections(0)
        .connect_with(pg_options().password("s3cret-pw"))
        .await
        .unwrap();
    let probe = SqlxProbe::new(pool.clone());
    assert_eq!(probe.name(), "sqlx");
    let outcome = probe.check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy);
    let d = outcome.details();
    let keys: Vec<&str> = d.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "backend",
            "pool_size",
            "idle_connections",
            "max_connections",
            "min_connections"
        ]
    );
    assert_eq!(d["backend"], "PostgreSQL");
    // `connect_with` opened one connection, idle until the probe took it.
    assert_eq!(d["pool_size"], 1);
    assert_eq!(d["idle_connections"], 1);
    assert_eq!(d["max_connections"], 4);
    assert_eq!(d["min_connections"], 0);

    // While the application holds the only connection, the probe opens
    // another. (A released connection goes back to the pool asynchronously.)
    for _ in 0..100 {
        if pool.num_idle() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let held = pool.acquire().await.unwrap();
    assert_eq!(pool.size(), 1);
    let busy = probe.check().await.unwrap();
    assert_eq!(busy.details()["idle_connections"], 0);
    assert_eq!(pool.size(), 2);
    drop(held);
    assert_no_secret(&format!("{probe:?}"));
    assert!(format!("{probe:?}").starts_with(r#"SqlxProbe { backend: "PostgreSQL", "#));
}

#[tokio::test]
async fn mysql_pool_is_healthy_with_pool_details() {
    let pool = MySqlPoolOptions::new()
        .max_connections(2)
        .connect_with(mysql_options())
        .await
        .unwrap();
    let probe = SqlxProbe::new(pool).with_name("shop-db");
    let registry = HealthRegistry::builder().add(probe).build().unwrap();
    let report = registry.run_all().await;
    let result = report.probe("shop-db").unwrap();
    assert_eq!(result.status, Status::Healthy, "{:?}", result.error);
    let d = result.details.as_ref().unwrap();
    assert_eq!(d["backend"], "MySQL");
    assert_eq!(d["max_connections"], 2);
    assert!(d["pool_size"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn closed_port_is_unhealthy_within_the_acquire_timeout() {
    let options = pg_options().host("127.0.0.1").port(free_port()).password("s3cret-pw");
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(30))
        .connect_lazy_with(options);
    let probe = SqlxProbe::new(pool).acquire_timeout(Duration::from_millis(800));
    let started = Instant::now();
    let err = probe.check().await.unwrap_err().to_string();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(err.contains("acquiring a PostgreSQL connection from the pool"), "{err}");
    assert!(err.starts_with("Timeout: "), "{err}");
    assert!(
        err.contains("timed out after 800ms; a direct connection attempt failed: "),
        "{err}"
    );
    assert!(err.contains("Connection refused"), "{err}");
    assert_no_secret(&err);
}

#[tokio::test]
async fn wrong_postgres_database_is_unhealthy() {
    let options = pg_options().database("axum_watch_no_such_db").password("s3cret-pw");
    let pool = PgPoolOptions::new().connect_lazy_with(options);
    let probe = SqlxProbe::new(pool).acquire_timeout(Duration::from_secs(3));
    let err = probe.check().await.unwrap_err().to_string();
    assert!(
        err.contains(r#"database "axum_watch_no_such_db" does not exist"#),
        "{err}"
    );
    assert_no_secret(&err);
}

#[tokio::test]
async fn wrong_mysql_password_is_unhealthy_and_redacted() {
    let pool = MySqlPoolOptions::new().connect_lazy_with(mysql_options().password("s3cret-wrong"));
    let probe = SqlxProbe::new(pool).with_name("shop-db");
    let registry = HealthRegistry::builder().add(probe).build().unwrap();
    let report = registry.run_all().await;
    let result = report.probe("shop-db").unwrap();
    assert_eq!(result.status, Status::Unhealthy);
    let error = result.error.as_deref().unwrap();
    assert!(error.contains("Access denied for user"), "{error}");
    assert_no_secret(&serde_json::to_string(&report).unwrap());
}

#[tokio::test]
async fn exhausted_pool_times_out_and_closed_pool_fails_at_once() {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(pg_options())
        .await
        .unwrap();
    let probe = SqlxProbe::new(pool.clone()).acquire_timeout(Duration::from_millis(300));
    let held = pool.acquire().await.unwrap();
    let started = Instant::now();
    let err = probe.check().await.unwrap_err().to_string();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(
        err,
        "Timeout: acquiring a PostgreSQL connection from the pool: timed out after 300ms"
    );
    drop(held);
    assert_eq!(probe.check().await.unwrap().status(), Status::Healthy);

    pool.close().await;
    let err = probe.check().await.unwrap_err().to_string();
    assert_eq!(err, "the PostgreSQL pool is closed");
}
