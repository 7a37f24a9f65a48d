//! Draining flushes the shared store's write buffer before the server
//! stops, and gives up at the drain timeout when the store never answers.
#![cfg(feature = "redis-storage")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod replicas;

use std::time::{Duration, Instant};

use axum_watch::storage::RedisStorage;
use axum_watch::{HealthRegistry, Status, Storage};
use common::{redis_url, silent_listener};
use replicas::Runs;

fn store(url: &str, service: &str, replica: &str) -> RedisStorage {
    RedisStorage::builder(url, service)
        .replica(replica)
        .operation_timeout(Duration::from_millis(500))
        .read_timeout(Duration::from_millis(200))
        .build()
        .unwrap()
}

fn registry(store: RedisStorage, probe: &Runs, drain_timeout: Duration) -> HealthRegistry {
    HealthRegistry::builder()
        .add(probe.clone())
        .storage(store)
        .poll_interval(None)
        .cache_age(Duration::ZERO)
        .circuit_breaker(false)
        .drain_delay(Duration::ZERO)
        .drain_timeout(drain_timeout)
        .build()
        .unwrap()
}

/// The Redis address behind `redis_url()`.
async fn redis_addr() -> std::net::SocketAddr {
    let url = redis_url();
    let rest = url.strip_prefix("redis://").unwrap_or(&url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:6379")
    };
    tokio::net::lookup_host(host_port).await.unwrap().next().unwrap()
}

#[tokio::test]
async fn drain_flushes_writes_buffered_while_the_store_was_frozen() {
    let proxy = std::sync::Arc::new(replicas::Proxy::start(redis_addr().await).await);
    let service = replicas::unique_service("drain");
    let writer = store(&format!("redis://{}", proxy.addr), &service, "replica-a");
    let reader = store(&redis_url(), &service, "reader");
    let probe = Runs::new("db");
    let registry = registry(writer.clone(), &probe, Duration::from_secs(10));
    registry.run_all().await; // run 1
    replicas::settle(&[&writer]).await;

    proxy.freeze();
    probe.set(Status::Unhealthy);
    registry.run_all().await; // run 2, and a transition
    registry.run_all().await; // run 3
    assert!(writer.write_buffer().pending >= 2, "{:?}", writer.write_buffer());

    let thaw = {
        let proxy = std::sync::Arc::clone(&proxy);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            proxy.thaw();
        })
    };
    registry.drain().await;
    thaw.await.unwrap();
    assert_eq!(
        writer.write_buffer().pending,
        0,
        "drain returned before the buffer was flushed"
    );
    let history = reader.history().await.unwrap();
    let runs = replicas::stored_runs(&history, "db");
    assert_eq!(runs, [1, 2, 3]);
    assert_eq!(reader.alerts().await.unwrap().len(), 1);
}

#[tokio::test]
async fn drain_gives_up_at_its_timeout_when_the_store_never_answers() {
    let silent = silent_listener().await;
    let writer = store(&format!("redis://{silent}"), &replicas::unique_service("drain"), "a");
    let probe = Runs::new("db");
    let registry = registry(writer.clone(), &probe, Duration::from_secs(1));
    registry.run_all().await;
    let started = Instant::now();
    registry.drain().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "drain took {took:?}");
    assert!(
        writer.write_buffer().pending > 0,
        "nothing was written to a silent store"
    );
}
