//! `RedisStorage` against the real Redis (`AXUM_WATCH_REDIS_URL`, default
//! `redis://127.0.0.1:6379`): two replicas sharing it, the fleet view,
//! alert de-duplication, bounds and expiry, and an outage of a throwaway
//! `redis-server` the test starts, stops and restarts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod replicas;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum_watch::{Storage, storage::RedisStorage};
use common::{free_port, get, redis_url};
use redis::AsyncCommands;
use replicas::{Factory, Outage, Tune};

struct Redis {
    url: String,
}

impl Factory for Redis {
    type Store = RedisStorage;

    fn make(&self, service: &str, replica: &str, tune: &Tune) -> RedisStorage {
        RedisStorage::builder(&self.url, service)
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

fn redis() -> Redis {
    Redis { url: redis_url() }
}

async fn connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url} is unreachable: {e}"))
}

#[tokio::test]
async fn history_and_alerts_are_shared() {
    replicas::history_and_alerts_are_shared(&redis()).await;
}

#[tokio::test]
async fn fleet_lists_replicas_and_marks_stale_ones() {
    replicas::fleet_lists_replicas_and_marks_stale_ones(&redis()).await;
}

#[tokio::test]
async fn one_transition_is_sent_once() {
    replicas::one_transition_is_sent_once(&redis()).await;
}

#[tokio::test]
async fn other_probes_and_services_are_not_deduplicated() {
    replicas::other_probes_and_services_are_not_deduplicated(&redis()).await;
}

#[cfg(feature = "alerts")]
#[tokio::test]
async fn one_webhook_per_transition() {
    replicas::one_webhook_per_transition(&redis()).await;
}

#[tokio::test]
async fn bounds_and_expiry_hold_in_redis() {
    let service = replicas::unique_service("bounds");
    let (registry, _probe) = replicas::bounds_hold(&redis(), &service).await;
    let mut c = connection(&redis_url()).await;
    let ns = format!("axum-watch:{service}");
    // The store itself holds no more than the bounds, and every key expires.
    let history: usize = c.zcard(format!("{ns}:history:db")).await.unwrap();
    assert_eq!(history, 3);
    let alerts: usize = c.zcard(format!("{ns}:alerts")).await.unwrap();
    assert_eq!(alerts, 2);
    let keys: Vec<String> = c.keys(format!("{ns}:*")).await.unwrap();
    assert!(keys.len() >= 5, "{keys:?}");
    for key in &keys {
        let ttl: i64 = c.pttl(key).await.unwrap();
        assert!(ttl > 0 && ttl <= 1500, "{key} expires in {ttl} ms");
    }
    replicas::ttl_expires::<Redis>(&registry).await;
    let keys: Vec<String> = c.keys(format!("{ns}:*")).await.unwrap();
    assert!(keys.is_empty(), "keys left after the TTL: {keys:?}");
}

#[tokio::test]
async fn claims_expire_after_the_window() {
    let service = replicas::unique_service("window");
    let counter = replicas::Counter::default();
    let probe = replicas::Runs::new("db");
    let registry = axum_watch::HealthRegistry::builder()
        .add(probe.clone())
        .poll_interval(None)
        .cache_age(Duration::ZERO)
        .circuit_breaker(false)
        .alert_dedup_window(Duration::from_millis(300))
        .alerter(counter.clone())
        .storage(redis().make(&service, "replica-a", &Tune::default()))
        .build()
        .unwrap();
    let mut c = connection(&redis_url()).await;
    registry.run_all().await;
    probe.set(axum_watch::Status::Unhealthy);
    registry.run_all().await;
    let key = format!("axum-watch:{service}:claim:db:healthy:unhealthy");
    let ttl: i64 = c.pttl(&key).await.unwrap();
    assert!(ttl > 0 && ttl <= 300, "the claim expires with the window: {ttl}");
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
// Outage: a throwaway redis-server
// ---------------------------------------------------------------------------

struct Throwaway {
    port: u16,
    child: Option<Child>,
}

impl Throwaway {
    fn start(port: u16) -> Child {
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)")
    }

    async fn wait_until(&self, up: bool) {
        let start = Instant::now();
        loop {
            let answered = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok();
            if answered == up {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not {}",
                if up { "start" } else { "stop" }
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Outage for Throwaway {
    async fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        self.wait_until(false).await;
    }

    async fn up(&mut self) {
        self.child = Some(Self::start(self.port));
        self.wait_until(true).await;
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn an_outage_loses_nothing_that_fits_the_buffer() {
    let mut server = Throwaway {
        port: free_port(),
        child: None,
    };
    server.up().await;
    let factory = Redis { url: server.url() };
    let service = replicas::unique_service("outage");
    let reader = factory.make(&service, "reader", &Tune::default());
    replicas::outage(&factory, &mut server, &service, reader).await;
}

#[tokio::test]
async fn an_unreachable_redis_never_fails_an_endpoint() {
    // Nothing listens on this port: every call fails at once.
    let factory = Redis {
        url: format!("redis://127.0.0.1:{}", free_port()),
    };
    let store = factory.make(&replicas::unique_service("never"), "replica-a", &Tune::default());
    let probe = replicas::Runs::new("db");
    let registry = replicas::registry(store.clone(), probe, None);
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
    let history = get(&registry, "/health/history").await.json();
    assert_eq!(replicas::history_of(&history, "db"), [("replica-a".to_owned(), 1)]);
    assert_eq!(store.write_buffer().pending, 1);
}

#[tokio::test]
async fn the_password_stays_hidden() {
    let store = RedisStorage::builder(format!("redis://:hunter2@127.0.0.1:{}/0", free_port()), "secret")
        .operation_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    replicas::the_password_stays_hidden(store).await;
}
