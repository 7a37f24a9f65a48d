//! Scenarios every shared storage backend must pass, run by
//! `tests/replicas_redis.rs` and `tests/replicas_postgres.rs` against the
//! real servers: two registries (two replicas) sharing one store.
//!
//! Real time with short TTLs and timeouts; every wait is a bounded poll.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{capture_logs, get, promtool_problems};

use axum_watch::{
    AlertRecord, Alerter, HealthRegistry, Outcome, Probe, ProbeError, Status, Storage, alert::AlertError,
};
use http::StatusCode;
use serde_json::Value;

// ---------------------------------------------------------------------------
// Plumbing
// ---------------------------------------------------------------------------

/// Limits a test gives the store it makes.
#[derive(Clone, Debug)]
pub struct Tune {
    pub history_size: usize,
    pub max_alerts: usize,
    pub result_ttl: Duration,
    pub alert_ttl: Duration,
    pub stale_after: Duration,
    pub buffer: usize,
    pub timeout: Duration,
    pub read_timeout: Duration,
}

impl Default for Tune {
    fn default() -> Self {
        Self {
            history_size: 50,
            max_alerts: 50,
            result_ttl: Duration::from_secs(600),
            alert_ttl: Duration::from_secs(600),
            stale_after: Duration::from_secs(60),
            buffer: 100,
            timeout: Duration::from_millis(1500),
            // Generous: a loaded machine must not make a healthy store look down.
            read_timeout: Duration::from_secs(1),
        }
    }
}

/// Makes stores of one backend.
pub trait Factory {
    type Store: Storage + Clone + std::fmt::Debug;
    /// A store of `service` for `replica` at the backend's usual address.
    fn make(&self, service: &str, replica: &str, tune: &Tune) -> Self::Store;
}

/// A service name no other test (or earlier run) uses.
pub fn unique_service(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("t-{what}-{}-{nanos}", std::process::id())
}

/// A probe whose status the test sets; each result carries its run number.
#[derive(Clone)]
pub struct Runs {
    name: String,
    runs: Arc<AtomicU64>,
    status: Arc<Mutex<Status>>,
}

impl Runs {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            runs: Arc::new(AtomicU64::new(0)),
            status: Arc::new(Mutex::new(Status::Healthy)),
        }
    }

    pub fn set(&self, status: Status) {
        *self.status.lock().unwrap() = status;
    }
}

impl Probe for Runs {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        let status = *self.status.lock().unwrap();
        let outcome = match status {
            Status::Healthy => Outcome::healthy(),
            Status::Degraded => Outcome::degraded(),
            Status::Unhealthy => Outcome::unhealthy("it is down"),
        };
        Ok(outcome.detail("run", run))
    }
}

/// Counts what it is asked to send, in every registry it is given to.
#[derive(Clone, Default)]
pub struct Counter {
    sent: Arc<Mutex<Vec<(String, Status, Status)>>>,
}

impl Counter {
    pub fn sent(&self) -> Vec<(String, Status, Status)> {
        self.sent.lock().unwrap().clone()
    }
}

impl Alerter for Counter {
    fn name(&self) -> &str {
        "counter"
    }

    async fn notify(&self, alert: &AlertRecord) -> Result<(), AlertError> {
        self.sent
            .lock()
            .unwrap()
            .push((alert.probe.clone(), alert.old_status, alert.new_status));
        Ok(())
    }
}

/// A registry that runs probes only when the test says so.
pub fn registry(store: impl Storage, probe: Runs, alerter: Option<Counter>) -> HealthRegistry {
    let mut builder = HealthRegistry::builder()
        .add(probe)
        .poll_interval(None)
        .cache_age(Duration::from_secs(3600))
        .circuit_breaker(false)
        .alert_retries(0, Duration::from_millis(10))
        .storage(store);
    if let Some(alerter) = alerter {
        builder = builder.alerter(alerter);
    }
    builder.build().unwrap()
}

/// Polls `check` until it holds, for at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every write handed to `stores` has reached them: writes go
/// to a shared store in the background, so another replica sees them a
/// moment after the run that made them.
pub async fn settle<S: Storage>(stores: &[&S]) {
    eventually(Duration::from_secs(5), "the writes reach the store", || async {
        stores.iter().all(|s| s.write_buffer().pending == 0)
    })
    .await;
}

/// `(replica, run)` of each result of `probe` in a `/history` body.
/// The `run` detail of each of `probe`'s results in a store's history, oldest first.
pub fn stored_runs(history: &axum_watch::storage::History, probe: &str) -> Vec<u64> {
    history
        .iter()
        .find(|(name, _)| name == probe)
        .map(|(_, results)| {
            results
                .iter()
                .map(|r| r.details.as_ref().unwrap()["run"].as_u64().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

pub fn history_of(body: &Value, probe: &str) -> Vec<(String, u64)> {
    body["probes"][probe]
        .as_array()
        .map(|results| {
            results
                .iter()
                .map(|r| {
                    (
                        r["replica"].as_str().unwrap_or_default().to_owned(),
                        r["details"]["run"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `(replica, probe, new_status)` of each record in an `/alerts` body.
pub fn alerts_of(body: &Value) -> Vec<(String, String, String)> {
    body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["replica"].as_str().unwrap_or_default().to_owned(),
                a["probe"].as_str().unwrap().to_owned(),
                a["new_status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

/// Both replicas' history and alerts are visible from either, labelled.
pub async fn history_and_alerts_are_shared<F: Factory>(factory: &F) {
    let service = unique_service("shared");
    let tune = Tune::default();
    let (pa, pb) = (Runs::new("db"), Runs::new("db"));
    let (sa, sb) = (
        factory.make(&service, "replica-a", &tune),
        factory.make(&service, "replica-b", &tune),
    );
    let a = registry(sa.clone(), pa.clone(), None);
    let b = registry(sb.clone(), pb.clone(), None);
    // The stores order by the millisecond a result was written: runs a
    // few milliseconds apart have a time order to check.
    let tick = || tokio::time::sleep(Duration::from_millis(3));
    a.run_all().await;
    tick().await;
    b.run_all().await;
    tick().await;
    pa.set(Status::Unhealthy);
    pb.set(Status::Unhealthy);
    a.run_all().await;
    tick().await;
    b.run_all().await;
    settle(&[&sa, &sb]).await;

    for (who, registry) in [("a", &a), ("b", &b)] {
        let history = get(registry, "/health/history").await;
        assert_eq!(history.status, StatusCode::OK);
        let mut seen = history_of(&history.json(), "db");
        seen.sort();
        assert_eq!(
            seen,
            [
                ("replica-a".to_owned(), 1),
                ("replica-a".to_owned(), 2),
                ("replica-b".to_owned(), 1),
                ("replica-b".to_owned(), 2)
            ],
            "history seen from {who}: {}",
            history.body
        );
        let alerts = get(registry, "/health/alerts").await;
        assert_eq!(alerts.status, StatusCode::OK);
        let mut seen = alerts_of(&alerts.json());
        seen.sort();
        assert_eq!(
            seen,
            [
                ("replica-a".to_owned(), "db".to_owned(), "unhealthy".to_owned()),
                ("replica-b".to_owned(), "db".to_owned(), "unhealthy".to_owned())
            ],
            "alerts seen from {who}: {}",
            alerts.body
        );
    }
    // Results in history are in time order.
    let history = get(&a, "/health/history").await.json();
    let runs: Vec<u64> = history_of(&history, "db").into_iter().map(|(_, run)| run).collect();
    assert_eq!(runs, [1, 1, 2, 2]);
    // The local report is unchanged: no replica label in the report itself.
    let status = get(&a, "/health/status").await;
    assert_eq!(status.status, StatusCode::MULTI_STATUS);
    assert!(status.json()["probes"][0].get("replica").is_none(), "{}", status.body);
}

/// `status?scope=fleet` lists every replica; one that stopped reporting is
/// marked stale and no longer decides the fleet's status.
pub async fn fleet_lists_replicas_and_marks_stale_ones<F: Factory>(factory: &F) {
    let service = unique_service("fleet");
    let tune = Tune {
        stale_after: Duration::from_millis(1500),
        ..Tune::default()
    };
    let (pa, pb) = (Runs::new("db"), Runs::new("db"));
    let (sa, sb) = (
        factory.make(&service, "replica-a", &tune),
        factory.make(&service, "replica-b", &tune),
    );
    let a = registry(sa.clone(), pa.clone(), None);
    let b = registry(sb.clone(), pb.clone(), None);
    pb.set(Status::Unhealthy);
    a.run_all().await;
    b.run_all().await;
    settle(&[&sa, &sb]).await;

    let fleet = get(&a, "/health/status?scope=fleet").await;
    assert_eq!(fleet.status, StatusCode::MULTI_STATUS, "{}", fleet.body);
    let body = fleet.json();
    assert_eq!(body["scope"], "fleet");
    assert_eq!(body["store"], "ok");
    assert_eq!(body["replica"], "replica-a");
    assert_eq!(body["status"], "unhealthy");
    let replicas = body["replicas"].as_array().unwrap();
    let ids: Vec<&str> = replicas.iter().map(|r| r["replica"].as_str().unwrap()).collect();
    assert_eq!(ids, ["replica-a", "replica-b"]);
    assert_eq!(replicas[0]["self"], true);
    assert_eq!(replicas[1]["self"], false);
    assert_eq!(replicas[0]["status"], "healthy");
    assert_eq!(replicas[1]["status"], "unhealthy");
    assert_eq!(replicas[1]["stale"], false);
    assert_eq!(replicas[1]["probes"][0]["name"], "db");
    assert_eq!(replicas[1]["probes"][0]["details"]["run"], 1);
    // The same fleet seen from the other replica.
    let from_b = get(&b, "/health/status?scope=fleet").await.json();
    assert_eq!(from_b["replicas"].as_array().unwrap().len(), 2);
    assert_eq!(from_b["replicas"][1]["self"], true);

    // b stops reporting; a keeps going.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    a.run_all().await;
    let fleet = get(&a, "/health/status?scope=fleet").await;
    assert_eq!(
        fleet.status,
        StatusCode::OK,
        "a stale replica does not count: {}",
        fleet.body
    );
    let body = fleet.json();
    assert_eq!(body["replicas"][0]["stale"], false);
    assert_eq!(body["replicas"][1]["stale"], true);
    assert_eq!(body["replicas"][1]["status"], "unhealthy");

    // Tags filter every replica's probes; bad scopes are refused.
    let unknown = get(&a, "/health/status?scope=fleet&tag=nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let bad = get(&a, "/health/status?scope=everything").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("unknown scope"), "{}", bad.body);
    // The dashboard shows the replicas: its page is marked for the fleet view.
    let page = get(&a, "/health/dashboard").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<body data-fleet>"), "the page is not marked");
    let memory = HealthRegistry::builder().build().unwrap();
    assert!(
        !get(&memory, "/health/dashboard")
            .await
            .body
            .contains("<body data-fleet>")
    );
    let none = get(&memory, "/health/status?scope=fleet").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND, "{}", none.body);
    assert!(none.body.contains("shared"), "{}", none.body);

    let local = get(&a, "/health/status?scope=replica").await;
    assert_eq!(local.status, StatusCode::OK);
    assert!(local.json().get("replicas").is_none());
}

/// One transition observed by both replicas is sent once; each replica
/// still records it.
pub async fn one_transition_is_sent_once<F: Factory>(factory: &F) {
    let service = unique_service("dedup");
    let tune = Tune::default();
    let counter = Counter::default();
    let (pa, pb) = (Runs::new("db"), Runs::new("db"));
    let (sa, sb) = (
        factory.make(&service, "replica-a", &tune),
        factory.make(&service, "replica-b", &tune),
    );
    let a = registry(sa.clone(), pa.clone(), Some(counter.clone()));
    let b = registry(sb.clone(), pb.clone(), Some(counter.clone()));
    a.run_all().await;
    b.run_all().await;
    pa.set(Status::Unhealthy);
    pb.set(Status::Unhealthy);
    tokio::join!(a.run_all(), b.run_all());
    eventually(Duration::from_secs(5), "one alert is sent", || async {
        !counter.sent().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        counter.sent(),
        [("db".to_owned(), Status::Healthy, Status::Unhealthy)],
        "exactly one send"
    );
    settle(&[&sa, &sb]).await;
    let alerts = alerts_of(&get(&a, "/health/alerts").await.json());
    assert_eq!(alerts.len(), 2, "both replicas recorded the transition: {alerts:?}");
    // The recovery is a different transition: sent once more.
    pa.set(Status::Healthy);
    pb.set(Status::Healthy);
    b.run_all().await;
    a.run_all().await;
    eventually(Duration::from_secs(5), "the recovery is sent", || async {
        counter.sent().len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(counter.sent()[1], ("db".to_owned(), Status::Unhealthy, Status::Healthy));
    assert_eq!(counter.sent().len(), 2);
}

/// Different probes, and the same probe in different services, are
/// different alerts.
pub async fn other_probes_and_services_are_not_deduplicated<F: Factory>(factory: &F) {
    let (one, two) = (unique_service("svc-one"), unique_service("svc-two"));
    let tune = Tune::default();
    let counter = Counter::default();
    let probes = [Runs::new("db"), Runs::new("cache"), Runs::new("db")];
    let registries = [
        registry(
            factory.make(&one, "replica-a", &tune),
            probes[0].clone(),
            Some(counter.clone()),
        ),
        registry(
            factory.make(&one, "replica-b", &tune),
            probes[1].clone(),
            Some(counter.clone()),
        ),
        registry(
            factory.make(&two, "replica-a", &tune),
            probes[2].clone(),
            Some(counter.clone()),
        ),
    ];
    for r in &registries {
        r.run_all().await;
    }
    for p in &probes {
        p.set(Status::Unhealthy);
    }
    for r in &registries {
        r.run_all().await;
    }
    eventually(Duration::from_secs(5), "three alerts are sent", || async {
        counter.sent().len() == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut probes: Vec<String> = counter.sent().into_iter().map(|(p, _, _)| p).collect();
    probes.sort();
    assert_eq!(probes, ["cache", "db", "db"]);
}

/// Bounds as the endpoints see them: history per probe, alerts, TTLs.
pub async fn bounds_hold<F: Factory>(factory: &F, service: &str) -> (HealthRegistry, Runs) {
    let tune = Tune {
        history_size: 3,
        max_alerts: 2,
        result_ttl: Duration::from_millis(1500),
        alert_ttl: Duration::from_millis(1500),
        ..Tune::default()
    };
    let probe = Runs::new("db");
    let a = registry(factory.make(service, "replica-a", &tune), probe.clone(), None);
    for status in [
        Status::Healthy,
        Status::Unhealthy,
        Status::Healthy,
        Status::Unhealthy,
        Status::Healthy,
    ] {
        probe.set(status);
        a.run_all().await;
    }
    let history = history_of(&get(&a, "/health/history").await.json(), "db");
    let runs: Vec<u64> = history.iter().map(|(_, run)| *run).collect();
    assert_eq!(runs, [3, 4, 5], "the newest three results stay");
    let alerts = alerts_of(&get(&a, "/health/alerts").await.json());
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[1].2, "healthy");
    (a, probe)
}

/// After the TTL nothing is shown any more.
pub async fn ttl_expires<F: Factory>(registry: &HealthRegistry) {
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let history = get(registry, "/health/history").await.json();
    assert_eq!(history["probes"], serde_json::json!({}), "{history}");
    let alerts = get(registry, "/health/alerts").await.json();
    assert_eq!(alerts["alerts"], serde_json::json!([]), "{alerts}");
    let fleet = get(registry, "/health/status?scope=fleet").await.json();
    // Only this replica itself, from its own state.
    assert_eq!(fleet["replicas"].as_array().unwrap().len(), 1, "{fleet}");
}

/// Something that can make the store unreachable and bring it back.
pub trait Outage {
    fn down(&mut self) -> impl Future<Output = ()>;
    fn up(&mut self) -> impl Future<Output = ()>;
}

/// The store goes away mid-run: endpoints answer from the replica's own
/// state with the right codes, writes wait in the buffer (the oldest give
/// way when it is full, counted in `/metrics`), a transition is sent without
/// a claim, and the buffer reaches the store, in order, once it is back.
/// `reader` reads the store directly afterwards.
pub async fn outage<F: Factory, O: Outage, R: Storage>(factory: &F, outage: &mut O, service: &str, reader: R) {
    let tune = Tune {
        buffer: 3,
        timeout: Duration::from_millis(500),
        ..Tune::default()
    };
    let store = factory.make(service, "replica-a", &tune);
    let probe = Runs::new("db");
    let counter = Counter::default();
    let a = registry(store.clone(), probe.clone(), Some(counter.clone()));
    a.run_all().await; // run 1, stored
    probe.set(Status::Unhealthy);
    a.run_all().await; // run 2, stored with its alert, claimed and sent
    eventually(Duration::from_secs(5), "the first alert is sent", || async {
        counter.sent().len() == 1
    })
    .await;
    settle(&[&store]).await;

    outage.down().await;
    // Runs 3..=7 while the store is away: five results, nothing else.
    for _ in 3..=7 {
        let report = a.run_all().await;
        assert_eq!(report.status, Status::Unhealthy);
    }
    assert_eq!(store.write_buffer().pending, 3);
    assert_eq!(store.write_buffer().dropped, 2);

    let ready = get(&a, "/health/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{}", ready.body);
    let status = get(&a, "/health/status").await;
    assert_eq!(status.status, StatusCode::MULTI_STATUS);
    assert_eq!(get(&a, "/health/live").await.status, StatusCode::OK);
    let history = get(&a, "/health/history").await;
    assert_eq!(history.status, StatusCode::OK);
    let runs: Vec<u64> = history_of(&history.json(), "db").iter().map(|(_, r)| *r).collect();
    assert_eq!(runs, [1, 2, 3, 4, 5, 6, 7], "answered from the replica's own state");
    let alerts = get(&a, "/health/alerts").await;
    assert_eq!(alerts.status, StatusCode::OK);
    assert_eq!(alerts_of(&alerts.json()).len(), 1);
    let fleet = get(&a, "/health/status?scope=fleet").await;
    assert_eq!(fleet.status, StatusCode::MULTI_STATUS);
    let fleet = fleet.json();
    assert_eq!(fleet["store"], "unreachable");
    assert_eq!(fleet["replicas"].as_array().unwrap().len(), 1);
    let metrics = get(&a, "/health/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics
            .body
            .contains("health_storage_writes_dropped_total{replica=\"replica-a\"} 2\n"),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("health_storage_writes_pending{replica=\"replica-a\"} 3\n"),
        "{}",
        metrics.body
    );

    assert_eq!(promtool_problems(&metrics.body), Vec::<String>::new());

    // A transition while the store is away: nobody can claim it, so this
    // replica sends it (a duplicate page beats a missed one). Its result and
    // record push two more of the oldest waiting writes out.
    probe.set(Status::Healthy);
    a.run_all().await; // run 8
    eventually(Duration::from_secs(5), "the recovery is sent anyway", || async {
        counter.sent().len() == 2
    })
    .await;
    assert_eq!(counter.sent()[1], ("db".to_owned(), Status::Unhealthy, Status::Healthy));
    assert_eq!(store.write_buffer().pending, 3);
    assert_eq!(store.write_buffer().dropped, 4);

    outage.up().await;
    eventually(Duration::from_secs(20), "the buffer is flushed", || async {
        store.write_buffer().pending == 0
    })
    .await;
    assert_eq!(store.write_buffer().dropped, 4);
    let stored = reader.history().await.unwrap();
    let runs = stored_runs(&stored, "db");
    // Runs 3 to 6 did not fit; 7, 8 and the recovery's record were flushed in order.
    assert!(runs.ends_with(&[7, 8]), "stored runs {runs:?}");
    assert!(runs.iter().all(|r| !(3..=6).contains(r)), "stored runs {runs:?}");
    let alerts = reader.alerts().await.unwrap();
    let last = alerts.last().expect("the recovery's record is stored");
    assert_eq!((last.old_status, last.new_status), (Status::Unhealthy, Status::Healthy));
    assert_eq!(last.replica.as_deref(), Some("replica-a"));
    // Back to normal: new writes reach the store at once.
    a.run_all().await;
    settle(&[&store]).await;
    let fleet = get(&a, "/health/status?scope=fleet").await.json();
    assert_eq!(fleet["store"], "ok");
}

// ---------------------------------------------------------------------------
// Stores that go away or freeze
// ---------------------------------------------------------------------------

/// A TCP proxy on 127.0.0.1 in front of a real server. `down` refuses
/// connections and cuts the open ones; `freeze` keeps accepting and holding
/// connections but passes nothing in either direction, as a server stopped
/// with `SIGSTOP` does (the kernel still accepts); `thaw` delivers what was
/// held and forwards again.
pub struct Proxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    accept: Option<tokio::task::JoinHandle<()>>,
    connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    frozen: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let mut proxy = Self {
            addr: "127.0.0.1:0".parse().unwrap(),
            target,
            accept: None,
            connections: Arc::default(),
            frozen: tokio::sync::watch::Sender::new(false),
        };
        proxy.up().await;
        proxy
    }

    fn listen(addr: SocketAddr) -> tokio::net::TcpListener {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(addr).unwrap();
        socket.listen(64).unwrap()
    }

    /// From now on nothing passes, on open and new connections alike.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// What was held is delivered, in order, and forwarding resumes.
    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }

    /// Copies `from` to `to`, holding each chunk while frozen.
    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        mut frozen: tokio::sync::watch::Receiver<bool>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = vec![0_u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if frozen.wait_for(|f| !*f).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = frozen.wait_for(|f| !*f).await;
        let _ = to.shutdown().await;
    }
}

/// A [`Proxy`] in front of the PostgreSQL server of `url`, and the URL of
/// the same database through it.
#[cfg(feature = "postgres-storage")]
pub async fn postgres_proxy(url: &str) -> (Proxy, String) {
    let config: tokio_postgres::Config = url.parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        #[allow(unreachable_patterns)]
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let target = tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(target).await;
    let user = config.get_user().unwrap_or("postgres");
    let db = config.get_dbname().unwrap_or("test");
    let through = format!("postgres://{user}@{}/{db}", proxy.addr);
    (proxy, through)
}

impl Outage for Proxy {
    async fn down(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
        assert!(
            tokio::net::TcpStream::connect(self.addr).await.is_err(),
            "the proxy still accepts"
        );
    }

    async fn up(&mut self) {
        let listener = Self::listen(self.addr);
        self.addr = listener.local_addr().unwrap();
        let (target, connections, frozen) = (self.target, Arc::clone(&self.connections), self.frozen.clone());
        self.accept = Some(tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let frozen = frozen.subscribe();
                let task = tokio::spawn(async move {
                    if let Ok(outbound) = tokio::net::TcpStream::connect(target).await {
                        let (in_read, in_write) = inbound.into_split();
                        let (out_read, out_write) = outbound.into_split();
                        tokio::join!(
                            Self::pump(in_read, out_write, frozen.clone()),
                            Self::pump(out_read, in_write, frozen)
                        );
                    }
                });
                connections.lock().unwrap().push(task);
            }
        }));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

// ---------------------------------------------------------------------------
// The real webhook alerter, end to end
// ---------------------------------------------------------------------------

/// Two replicas with the real webhook alerter: one POST per transition.
#[cfg(feature = "alerts")]
pub async fn one_webhook_per_transition<F: Factory>(factory: &F) {
    let receiver = crate::common::Receiver::start().await;
    let service = unique_service("webhook");
    let tune = Tune::default();
    let url = receiver.url("/hook");
    let make = |replica: &str, probe: Runs| {
        HealthRegistry::builder()
            .add(probe)
            .poll_interval(None)
            .cache_age(Duration::from_secs(3600))
            .storage(factory.make(&service, replica, &tune))
            .webhook_url(&url)
            .build()
            .unwrap()
    };
    let (pa, pb) = (Runs::new("api"), Runs::new("api"));
    let (a, b) = (make("replica-a", pa.clone()), make("replica-b", pb.clone()));
    tokio::join!(a.run_all(), b.run_all());
    pa.set(Status::Degraded);
    pb.set(Status::Degraded);
    tokio::join!(a.run_all(), b.run_all());
    eventually(Duration::from_secs(5), "the webhook is called", || async {
        !receiver.requests().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.requests().len(), 1);
    let bodies: Vec<Value> = receiver.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies[0]["probe"], "api", "{bodies:?}");
    assert_eq!(bodies[0]["new_status"], "degraded", "{bodies:?}");
}

// ---------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------

/// A store whose URL holds the password `hunter2` and whose server does
/// not answer: the password shows in no log line, endpoint or `Debug`.
pub async fn the_password_stays_hidden<S: Storage + Clone + std::fmt::Debug>(store: S) {
    let (logs, _capture) = capture_logs(tracing::Level::DEBUG);

    assert!(!format!("{store:?}").contains("hunter2"), "{store:?}");
    let a = registry(store, Runs::new("db"), None);
    a.run_all().await;
    let mut bodies = String::new();
    for path in [
        "/health/history",
        "/health/alerts",
        "/health/status?scope=fleet",
        "/health/metrics",
    ] {
        let reply = get(&a, path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        bodies.push_str(&reply.body);
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // a flush attempt
    let logs = logs.contents();
    assert!(logs.contains("shared storage unreachable"), "{logs}");
    assert!(!logs.contains("hunter2"), "{logs}");
    assert!(!bodies.contains("hunter2"), "{bodies}");
}
