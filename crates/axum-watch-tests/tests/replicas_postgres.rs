//! `PostgresStorage` against the real PostgreSQL (`AXUM_WATCH_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`): two replicas sharing it, the
//! fleet view, alert de-duplication, bounds and pruning, and an outage made
//! by a TCP proxy in front of the database that starts refusing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod replicas;

use std::time::Duration;

use axum_watch::{Storage, storage::PostgresStorage};
use common::{free_port, get, postgres_url};
use replicas::{Factory, Tune};

struct Postgres {
    url: String,
}

impl Factory for Postgres {
    type Store = PostgresStorage;

    fn make(&self, service: &str, replica: &str, tune: &Tune) -> PostgresStorage {
        PostgresStorage::builder(&self.url, service)
            .replica(replica)
            .history_size(tune.history_size)
            .max_alerts(tune.max_alerts)
            .result_ttl(tune.result_ttl)
            .alert_ttl(tune.alert_ttl)
            .stale_after(tune.stale_after)
            .buffer(tune.buffer)
            .operation_timeout(tune.timeout)
            .read_timeout(tune.read_timeout)
            .build()
            .unwrap()
    }
}

fn postgres() -> Postgres {
    Postgres { url: postgres_url() }
}

async fn client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {} is unreachable: {e}", postgres_url()));
    tokio::spawn(connection);
    client
}

async fn count(c: &tokio_postgres::Client, table: &str, service: &str) -> i64 {
    c.query_one(&format!("SELECT count(*) FROM {table} WHERE service = $1"), &[&service])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn history_and_alerts_are_shared() {
    replicas::history_and_alerts_are_shared(&postgres()).await;
}

#[tokio::test]
async fn fleet_lists_replicas_and_marks_stale_ones() {
    replicas::fleet_lists_replicas_and_marks_stale_ones(&postgres()).await;
}

#[tokio::test]
async fn one_transition_is_sent_once() {
    replicas::one_transition_is_sent_once(&postgres()).await;
}

#[tokio::test]
async fn other_probes_and_services_are_not_deduplicated() {
    replicas::other_probes_and_services_are_not_deduplicated(&postgres()).await;
}

#[cfg(feature = "alerts")]
#[tokio::test]
async fn one_webhook_per_transition() {
    replicas::one_webhook_per_transition(&postgres()).await;
}

#[tokio::test]
async fn bounds_hold_and_old_rows_are_pruned() {
    let service = replicas::unique_service("bounds");
    let (registry, probe) = replicas::bounds_hold(&postgres(), &service).await;
    let c = client().await;
    // The tables themselves hold no more than the bounds.
    assert_eq!(count(&c, "axum_watch_results", &service).await, 3);
    assert_eq!(count(&c, "axum_watch_alerts", &service).await, 2);
    assert_eq!(count(&c, "axum_watch_latest", &service).await, 1);
    replicas::ttl_expires::<Postgres>(&registry).await;
    // The next writes delete what expired.
    probe.set(axum_watch::Status::Unhealthy);
    registry.run_all().await;
    replicas::eventually(Duration::from_secs(5), "the expired rows are deleted", || async {
        count(&c, "axum_watch_results", &service).await == 1 && count(&c, "axum_watch_alerts", &service).await == 1
    })
    .await;
}

#[tokio::test]
async fn the_schema_is_created_idempotently_by_replicas_starting_together() {
    let service = replicas::unique_service("ddl");
    let stores: Vec<PostgresStorage> = (0..4)
        .map(|i| postgres().make(&service, &format!("replica-{i}"), &Tune::default()))
        .collect();
    let runs = stores.iter().map(|store| {
        let registry = replicas::registry(store.clone(), replicas::Runs::new("db"), None);
        async move { registry.run_all().await }
    });
    futures_util::future::join_all(runs).await;
    replicas::settle(&stores.iter().collect::<Vec<_>>()).await;
    let c = client().await;
    assert_eq!(count(&c, "axum_watch_latest", &service).await, 4);
    // The published DDL is the same and can be run again.
    c.batch_execute(PostgresStorage::SCHEMA).await.unwrap();
}

#[tokio::test]
async fn claims_expire_after_the_window() {
    let service = replicas::unique_service("window");
    let counter = replicas::Counter::default();
    let probe = replicas::Runs::new("db");
    let registry = axum_watch::HealthRegistry::builder()
        .add(probe.clone())
        .poll_interval(None)
        .circuit_breaker(false)
        .alert_dedup_window(Duration::from_millis(300))
        .alerter(counter.clone())
        .storage(postgres().make(&service, "replica-a", &Tune::default()))
        .build()
        .unwrap();
    registry.run_all().await;
    probe.set(axum_watch::Status::Unhealthy);
    registry.run_all().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    probe.set(axum_watch::Status::Healthy);
    registry.run_all().await;
    probe.set(axum_watch::Status::Unhealthy);
    registry.run_all().await;
    replicas::eventually(Duration::from_secs(5), "three alerts", || async {
        counter.sent().len() == 3
    })
    .await;
}

// ---------------------------------------------------------------------------
// Outage: a TCP proxy in front of PostgreSQL (replicas::Proxy)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_outage_loses_nothing_that_fits_the_buffer() {
    let (mut proxy, url) = replicas::postgres_proxy(&postgres_url()).await;
    let factory = Postgres { url };
    let service = replicas::unique_service("outage");
    let reader = postgres().make(&service, "reader", &Tune::default());
    replicas::outage(&factory, &mut proxy, &service, reader).await;
}

#[tokio::test]
async fn an_unreachable_database_never_fails_an_endpoint() {
    let port = free_port();
    let factory = Postgres {
        url: format!("postgres://postgres@127.0.0.1:{port}/test"),
    };
    let store = factory.make(&replicas::unique_service("never"), "replica-a", &Tune::default());
    let registry = replicas::registry(store.clone(), replicas::Runs::new("db"), None);
    registry.run_all().await;
    for path in [
        "/health/history",
        "/health/alerts",
        "/health/status?scope=fleet",
        "/health/metrics",
    ] {
        let reply = get(&registry, path).await;
        assert_eq!(reply.status, http::StatusCode::OK, "{path}: {}", reply.body);
    }
    assert_eq!(store.write_buffer().pending, 1);
}

#[tokio::test]
async fn the_password_stays_hidden() {
    let port = free_port();
    let store = PostgresStorage::builder(format!("postgres://app:hunter2@127.0.0.1:{port}/test"), "secret")
        .operation_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    replicas::the_password_stays_hidden(store).await;
}
