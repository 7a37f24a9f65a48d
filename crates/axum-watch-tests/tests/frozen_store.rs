//! A shared store that accepts connections and never answers (a Redis or
//! PostgreSQL stopped with `SIGSTOP`) holds up neither probe runs nor
//! endpoints, and what was written meanwhile reaches the store once it
//! answers again.
//!
//! The frozen store is a TCP listener on loopback that accepts and never
//! reads or writes, or `replicas::Proxy` frozen in front of the real Redis
//! (`AXUM_WATCH_REDIS_URL`, default `redis://127.0.0.1:6379`) or PostgreSQL
//! (`AXUM_WATCH_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`).
#![cfg(all(feature = "redis-storage", feature = "postgres-storage"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod replicas;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum_watch::{
    HealthRegistry, Status, Storage,
    storage::{PostgresStorage, RedisStorage},
};
use common::{Reply, get, silent_listener};
use http::StatusCode;
use replicas::{Counter, Runs};

/// Far longer than any bound below: a test that passes did not wait for it.
const OPERATION_TIMEOUT: Duration = Duration::from_millis(1500);
/// The read timeout the stores are given.
const READ_TIMEOUT: Duration = Duration::from_millis(250);
/// Three probes that answer at once take well under a millisecond; the
/// rest is slack for a loaded two-core machine running a debug build.
const READY_BOUND: Duration = Duration::from_millis(200);

fn redis_url() -> String {
    common::redis_url()
}

fn postgres_url() -> String {
    common::postgres_url()
}

fn redis_at(url: &str, service: &str, replica: &str) -> RedisStorage {
    RedisStorage::builder(url, service)
        .replica(replica)
        .operation_timeout(OPERATION_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
        .unwrap()
}

fn postgres_at(url: &str, service: &str, replica: &str) -> PostgresStorage {
    PostgresStorage::builder(url, service)
        .replica(replica)
        .operation_timeout(OPERATION_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
        .unwrap()
}

/// Uncached `/ready` on every request, three fast probes, an alerter.
fn registry(store: impl Storage, probes: &[Runs], counter: &Counter) -> HealthRegistry {
    let mut builder = HealthRegistry::builder()
        .poll_interval(None)
        .cache_age(Duration::ZERO)
        .circuit_breaker(false)
        .alert_retries(0, Duration::from_millis(10))
        .alerter(counter.clone())
        .storage(store);
    for probe in probes {
        builder = builder.add(probe.clone());
    }
    builder.build().unwrap()
}

/// `GET uri` through the router, with how long it took.
async fn timed(registry: &HealthRegistry, uri: &str) -> (Reply, Duration) {
    let start = Instant::now();
    let reply = get(registry, uri).await;
    (reply, start.elapsed())
}

/// Against a store that never answers: every uncached `/ready` comes back
/// within the probes' own latency plus slack, far below the store's
/// operation timeout; writes wait in the buffer; the reading endpoints
/// answer from this replica within the read timeout; a transition's claim
/// gives up after the read timeout and the alert is sent.
async fn nothing_waits_for_a_frozen_store<S: Storage + Clone>(store: S) {
    let probes = [Runs::new("db"), Runs::new("cache"), Runs::new("queue")];
    let counter = Counter::default();
    let registry = registry(store.clone(), &probes, &counter);

    for i in 1..=10_u64 {
        let (reply, took) = timed(&registry, "/health/ready").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert!(
            took < READY_BOUND,
            "uncached /ready {i} took {took:?} with a frozen store (operation timeout {OPERATION_TIMEOUT:?})"
        );
        assert_eq!(store.write_buffer().pending, 3 * i, "every result waits in the buffer");
    }
    assert_eq!(store.write_buffer().dropped, 0);

    for path in ["/health/history", "/health/alerts", "/health/status?scope=fleet"] {
        let (reply, took) = timed(&registry, path).await;
        assert!(reply.status.is_success(), "{path}: {}", reply.body);
        assert!(
            took < READ_TIMEOUT + READY_BOUND,
            "{path} took {took:?}: reads must give up after the read timeout"
        );
    }
    let history = get(&registry, "/health/history").await.json();
    let runs: Vec<u64> = replicas::history_of(&history, "db").iter().map(|(_, r)| *r).collect();
    // `scope=fleet` runs the probes too (nothing is cached).
    assert!(runs.len() >= 10, "{runs:?}");
    let expected: Vec<u64> = (1..=runs.len() as u64).collect();
    assert_eq!(runs, expected, "answered from the replica's own entries");
    let fleet = get(&registry, "/health/status?scope=fleet").await.json();
    assert_eq!(fleet["store"], "unreachable", "{fleet}");
    let waiting = store.write_buffer().pending;

    // A transition: the claim cannot be made, the alert is sent anyway.
    probes[0].set(Status::Unhealthy);
    let (reply, took) = timed(&registry, "/health/ready").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.body);
    assert!(took < READ_TIMEOUT + READY_BOUND, "a transition's run took {took:?}");
    replicas::eventually(Duration::from_secs(5), "the alert is sent", || async {
        counter.sent() == [("db".to_owned(), Status::Healthy, Status::Unhealthy)]
    })
    .await;
    assert_eq!(
        store.write_buffer().pending,
        waiting + 3 + 1,
        "the results and the record wait"
    );
}

/// A claim made before anything found the store frozen is bounded by the
/// read timeout, and the alert is sent.
async fn a_first_claim_is_bounded<S: Storage + Clone>(store: S) {
    let probe = Runs::new("db");
    let counter = Counter::default();
    let registry = registry(store, std::slice::from_ref(&probe), &counter);
    let (reply, _) = timed(&registry, "/health/ready").await;
    assert_eq!(reply.status, StatusCode::OK);
    // Right away: the writer is still waiting for its first write.
    probe.set(Status::Unhealthy);
    let (reply, took) = timed(&registry, "/health/ready").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.body);
    assert!(
        took < READ_TIMEOUT + READY_BOUND,
        "the first transition's run took {took:?} (read timeout {READ_TIMEOUT:?})"
    );
    replicas::eventually(Duration::from_secs(5), "the alert is sent", || async {
        counter.sent().len() == 1
    })
    .await;
}

#[tokio::test]
async fn nothing_waits_for_a_frozen_redis() {
    let addr = silent_listener().await;
    let url = format!("redis://{addr}");
    nothing_waits_for_a_frozen_store(redis_at(&url, &replicas::unique_service("frozen"), "replica-a")).await;
    a_first_claim_is_bounded(redis_at(&url, &replicas::unique_service("frozen"), "replica-a")).await;
}

#[tokio::test]
async fn nothing_waits_for_a_frozen_postgres() {
    let addr = silent_listener().await;
    let url = format!("postgres://postgres@{addr}/test");
    nothing_waits_for_a_frozen_store(postgres_at(&url, &replicas::unique_service("frozen"), "replica-a")).await;
    a_first_claim_is_bounded(postgres_at(&url, &replicas::unique_service("frozen"), "replica-a")).await;
}

/// The store freezes mid-run (the proxy in front of it holds every byte),
/// the replica keeps running its probes, quickly, and sends its alerts; once
/// the store thaws, every result and record made during the freeze is in
/// the real store, in order and once each. `reader` reads the real store.
async fn writes_reach_the_store_after_a_freeze<S: Storage + Clone, R: Storage>(
    proxy: &replicas::Proxy,
    store: S,
    reader: R,
) {
    let probe = Runs::new("db");
    let counter = Counter::default();
    let registry = registry(store.clone(), std::slice::from_ref(&probe), &counter);
    let (reply, _) = timed(&registry, "/health/ready").await; // run 1
    assert_eq!(reply.status, StatusCode::OK);
    replicas::settle(&[&store]).await;

    proxy.freeze();
    // Runs 2..=6: down at 2, back up at 4; two transitions, two records.
    for (run, status) in [
        (2, Status::Unhealthy),
        (3, Status::Unhealthy),
        (4, Status::Healthy),
        (5, Status::Healthy),
        (6, Status::Healthy),
    ] {
        probe.set(status);
        let (reply, took) = timed(&registry, "/health/ready").await;
        let code = if status == Status::Healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        assert_eq!(reply.status, code, "run {run}: {}", reply.body);
        // A transition asks for a claim, which gives up after the read timeout.
        let bound = if matches!(run, 2 | 4) {
            READ_TIMEOUT + READY_BOUND
        } else {
            READY_BOUND
        };
        assert!(took < bound, "run {run} took {took:?} during the freeze");
    }
    assert_eq!(counter.sent().len(), 2, "both transitions sent: {:?}", counter.sent());
    assert_eq!(store.write_buffer().pending, 5 + 2, "five results and two records wait");
    assert_eq!(store.write_buffer().dropped, 0);
    let (history, took) = timed(&registry, "/health/history").await;
    assert!(
        took < READ_TIMEOUT + READY_BOUND,
        "/history took {took:?} during the freeze"
    );
    let runs: Vec<u64> = replicas::history_of(&history.json(), "db")
        .iter()
        .map(|(_, r)| *r)
        .collect();
    assert_eq!(runs, [1, 2, 3, 4, 5, 6], "answered from the replica's own entries");
    // Long enough for the writer to time out and retry while frozen.
    tokio::time::sleep(OPERATION_TIMEOUT + Duration::from_millis(300)).await;
    assert_eq!(store.write_buffer().pending, 7);

    proxy.thaw();
    replicas::eventually(Duration::from_secs(20), "the buffer is flushed", || async {
        store.write_buffer().pending == 0
    })
    .await;
    let stored = reader.history().await.unwrap();
    let runs: Vec<(Option<String>, u64)> = stored
        .iter()
        .find(|(name, _)| name == "db")
        .map(|(_, results)| {
            results
                .iter()
                .map(|r| (r.replica.clone(), r.details.as_ref().unwrap()["run"].as_u64().unwrap()))
                .collect()
        })
        .unwrap_or_default();
    let a = Some("replica-a".to_owned());
    assert_eq!(
        runs,
        (1..=6).map(|run| (a.clone(), run)).collect::<Vec<_>>(),
        "every run in the store, in order, once"
    );
    let alerts: Vec<(Status, Status)> = reader
        .alerts()
        .await
        .unwrap()
        .iter()
        .map(|a| (a.old_status, a.new_status))
        .collect();
    assert_eq!(
        alerts,
        [
            (Status::Healthy, Status::Unhealthy),
            (Status::Unhealthy, Status::Healthy)
        ],
        "both records in the store, in order, once"
    );
    let fleet = get(&registry, "/health/status?scope=fleet").await.json();
    assert_eq!(fleet["store"], "ok", "{fleet}");
}

async fn target(host: &str, port: u16) -> SocketAddr {
    tokio::net::lookup_host((host, port)).await.unwrap().next().unwrap()
}

#[tokio::test]
async fn writes_reach_redis_after_a_freeze() {
    let real: url_parts::Parts = url_parts::parse(&redis_url(), 6379);
    let proxy = replicas::Proxy::start(target(&real.host, real.port).await).await;
    let service = replicas::unique_service("freeze");
    let store = redis_at(&format!("redis://{}{}", proxy.addr, real.path), &service, "replica-a");
    let reader = redis_at(&redis_url(), &service, "reader");
    writes_reach_the_store_after_a_freeze(&proxy, store, reader).await;
}

#[tokio::test]
async fn writes_reach_postgres_after_a_freeze() {
    let (proxy, url) = replicas::postgres_proxy(&postgres_url()).await;
    let service = replicas::unique_service("freeze");
    let store = postgres_at(&url, &service, "replica-a");
    let reader = postgres_at(&postgres_url(), &service, "reader");
    writes_reach_the_store_after_a_freeze(&proxy, store, reader).await;
}

/// Host, port and the rest of a `redis://` URL without credentials.
mod url_parts {
    pub(crate) struct Parts {
        pub(crate) host: String,
        pub(crate) port: u16,
        /// `/db` or empty.
        pub(crate) path: String,
    }

    pub(crate) fn parse(url: &str, default_port: u16) -> Parts {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, String::new()),
        };
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), port.parse().unwrap_or(default_port)),
            None => (authority.to_owned(), default_port),
        };
        Parts { host, port, path }
    }
}
