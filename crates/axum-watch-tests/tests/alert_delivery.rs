//! Nothing lost, nothing doubled: a real HTTP receiver on loopback that
//! answers 500 for a while, then refuses connections, then is slower than
//! the alerter's timeout, then recovers and rejects one request. Every
//! transition the registry produced is delivered (duplicates only as
//! repeats of the same idempotency key) or counted as refused, and
//! `/alerts/deliveries` and `/metrics` agree with what the receiver saw.
//!
//! Real time with short timeouts; every wait is a bounded poll.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum_watch::alert::WebhookAlerter;
use axum_watch::{AlertRecord, HealthRegistry, Status};
use common::{Switch, get};
use serde_json::Value;

/// How the receiver treats the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    /// 500 Internal Server Error.
    Failing,
    /// Nothing listens on the port: connections are refused.
    Refusing,
    /// Takes this long before answering 200.
    Slow(Duration),
    /// Answers the next request 400 (a permanent error), then `Ok`.
    RejectOnce,
}

/// One request as the receiver saw it: the idempotency key, the body's id
/// and the status it meant to answer.
#[derive(Debug, Clone)]
struct Seen {
    key: String,
    id: String,
    answered: u16,
}

#[derive(Clone, Default)]
struct Log {
    seen: Arc<Mutex<Vec<Seen>>>,
    mode: Arc<Mutex<Option<Mode>>>,
}

async fn receive(State(log): State<Log>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mode = {
        let mut mode = log.mode.lock().unwrap();
        let now = mode.unwrap_or(Mode::Ok);
        if now == Mode::RejectOnce {
            *mode = Some(Mode::Ok);
        }
        now
    };
    let body: Value = serde_json::from_slice(&body).unwrap();
    let answered = match mode {
        Mode::Failing => 500,
        Mode::RejectOnce => 400,
        Mode::Ok | Mode::Slow(_) | Mode::Refusing => 200,
    };
    log.seen.lock().unwrap().push(Seen {
        key: headers["idempotency-key"].to_str().unwrap().to_owned(),
        id: body["id"].as_str().unwrap().to_owned(),
        answered,
    });
    if let Mode::Slow(delay) = mode {
        tokio::time::sleep(delay).await;
    }
    StatusCode::from_u16(answered).unwrap()
}

/// A receiver on a fixed loopback port that can stop listening and listen
/// again.
struct Flaky {
    addr: SocketAddr,
    log: Log,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Flaky {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut flaky = Self {
            addr,
            log: Log::default(),
            server: None,
        };
        flaky.listen(listener);
        flaky
    }

    fn listen(&mut self, listener: tokio::net::TcpListener) {
        let app = Router::new().fallback(receive).with_state(self.log.clone());
        self.server = Some(tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }));
    }

    async fn set(&mut self, mode: Mode) {
        *self.log.mode.lock().unwrap() = Some(mode);
        match (mode, self.server.take()) {
            // Dropping the server closes the listener and every connection.
            (Mode::Refusing, Some(server)) => {
                server.abort();
                let _ = server.await;
            }
            (Mode::Refusing, None) => {}
            (_, Some(server)) => self.server = Some(server),
            (_, None) => {
                let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
                self.listen(listener);
            }
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.seen.lock().unwrap().clone()
    }
}

fn registry(db: &Switch, url: &str, queue: usize) -> HealthRegistry {
    HealthRegistry::builder()
        .add(db.clone())
        .cache_age(Duration::ZERO)
        .circuit_breaker(false)
        .alert_queue(queue)
        .alert_timeout(Duration::from_millis(150))
        .alert_retries(1, Duration::from_millis(20))
        .alert_redelivery(Duration::from_millis(200))
        .alerter(WebhookAlerter::new(url).unwrap())
        .build()
        .unwrap()
}

/// Flips `db` down and up again `times` times, a run after each flip.
async fn flap(registry: &HealthRegistry, db: &Switch, times: usize) {
    for _ in 0..times {
        db.set(Status::Unhealthy);
        registry.run_all().await;
        db.set(Status::Healthy);
        registry.run_all().await;
    }
}

async fn alert_log(registry: &HealthRegistry) -> Vec<AlertRecord> {
    let body = get(&registry.router(), "/health/alerts").await.json();
    serde_json::from_value(body["alerts"].clone()).unwrap()
}

async fn deliveries(registry: &HealthRegistry) -> Value {
    let body = get(&registry.router(), "/health/alerts/deliveries").await.json();
    assert_eq!(body["alerters"].as_array().unwrap().len(), 1, "{body}");
    body["alerters"][0].clone()
}

/// Polls `/alerts/deliveries` until nothing waits; panics after 15 s.
async fn settled(registry: &HealthRegistry) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let d = deliveries(registry).await;
        if d["waiting"] == 0 {
            return d;
        }
        assert!(Instant::now() < deadline, "alerts still waiting: {d}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of one sample in a metrics exposition.
fn sample(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn through_errors_refusals_and_timeouts_every_alert_is_delivered_once_by_id_or_counted() {
    let mut receiver = Flaky::start().await;
    let db = Switch::new("db", Status::Healthy);
    let registry = registry(&db, &format!("http://{}/hook", receiver.addr), 256);
    registry.run_all().await;

    receiver.set(Mode::Failing).await;
    flap(&registry, &db, 2).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    receiver.set(Mode::Refusing).await;
    flap(&registry, &db, 2).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    receiver.set(Mode::Slow(Duration::from_millis(400))).await;
    flap(&registry, &db, 1).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    // While it was down, the alerts waited and were counted as failed rounds.
    let during = deliveries(&registry).await;
    assert_eq!(during["sent"], 0, "{during}");
    assert!(during["failed"].as_u64().unwrap() >= 3, "{during}");
    assert_eq!(during["waiting"], 10, "{during}");
    let first = &during["undelivered"][0];
    assert_eq!(first["state"], "waiting", "{during}");
    assert!(first["attempts"].as_u64().unwrap() >= 4, "{during}");
    assert!(
        first["error"].as_str().unwrap().starts_with("timed out after"),
        "the last round timed out: {during}"
    );

    receiver.set(Mode::Ok).await;
    let recovered = settled(&registry).await;
    assert_eq!(recovered["sent"], 10, "{recovered}");
    // Then one alert is refused for good, and the next goes through.
    receiver.set(Mode::RejectOnce).await;
    flap(&registry, &db, 1).await;
    let after = settled(&registry).await;

    let produced: Vec<String> = alert_log(&registry).await.into_iter().map(|a| a.id).collect();
    assert_eq!(produced.len(), 12, "{produced:?}");
    let unique: BTreeSet<&String> = produced.iter().collect();
    assert_eq!(unique.len(), 12, "every record has its own id");

    let seen = receiver.seen();
    let mut delivered: BTreeMap<&str, usize> = BTreeMap::new();
    let mut refused = BTreeSet::new();
    for s in &seen {
        assert_eq!(s.key, s.id, "the idempotency key is the alert id");
        assert!(produced.contains(&s.id), "{s:?} was never produced");
        match s.answered {
            200 => *delivered.entry(&s.id).or_default() += 1,
            400 => {
                refused.insert(s.id.as_str());
            }
            _ => {}
        }
    }
    assert_eq!(refused.len(), 1, "{seen:?}");
    assert!(
        refused.iter().all(|id| !delivered.contains_key(id)),
        "a refused alert is not sent again"
    );
    // Delivered by id plus counted as refused is everything produced:
    // nothing lost in silence.
    assert_eq!(delivered.len() + refused.len(), produced.len(), "{seen:#?}");
    // Timeouts made duplicates, each a repeat of its alert's key.
    assert!(
        delivered.values().any(|n| *n > 1),
        "the slow phase repeats a delivery: {seen:#?}"
    );
    // Every alert arrived in the order it was produced.
    let first_seen: Vec<&str> = {
        let mut order = Vec::new();
        for s in &seen {
            if !order.contains(&s.id.as_str()) {
                order.push(s.id.as_str());
            }
        }
        order
    };
    assert_eq!(first_seen, produced.iter().map(String::as_str).collect::<Vec<_>>());

    // The counts agree with the receiver.
    assert_eq!(after["sent"], 11, "{after}");
    assert_eq!(after["rejected"], 1, "{after}");
    assert_eq!(after["dropped"], 0, "{after}");
    assert!(after["redelivered"].as_u64().unwrap() >= 1, "{after}");
    let listed = after["undelivered"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{after}");
    assert_eq!(listed[0]["state"], "rejected");
    assert_eq!(listed[0]["id"], *refused.first().unwrap());
    assert!(listed[0]["error"].as_str().unwrap().contains("400"), "{after}");

    let metrics = get(&registry.router(), "/health/metrics").await.text();
    let series = |outcome: &str| format!("health_alert_deliveries_total{{alerter=\"webhook\",outcome=\"{outcome}\"}}");
    assert_eq!(sample(&metrics, &series("sent")), 11);
    assert_eq!(sample(&metrics, &series("rejected")), 1);
    assert_eq!(sample(&metrics, &series("dropped")), 0);
    assert_eq!(sample(&metrics, &series("failed")), after["failed"].as_u64().unwrap());
    assert_eq!(sample(&metrics, "health_alert_queue{alerter=\"webhook\"}"), 0);
}

#[tokio::test]
async fn a_full_queue_drops_its_oldest_alerts_counted_and_listed() {
    let mut receiver = Flaky::start().await;
    receiver.set(Mode::Refusing).await;
    let db = Switch::new("db", Status::Healthy);
    let registry = registry(&db, &format!("http://{}/hook", receiver.addr), 3);
    registry.run_all().await;
    flap(&registry, &db, 3).await;
    let produced: Vec<String> = alert_log(&registry).await.into_iter().map(|a| a.id).collect();
    assert_eq!(produced.len(), 6);

    receiver.set(Mode::Ok).await;
    let after = settled(&registry).await;
    let sent = after["sent"].as_u64().unwrap();
    let dropped = after["dropped"].as_u64().unwrap();
    assert!(dropped >= 2, "{after}");
    assert_eq!(sent + dropped, 6, "every alert is sent or counted: {after}");
    let listed: Vec<&str> = after["undelivered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            assert_eq!(u["state"], "dropped");
            u["id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(listed.len() as u64, dropped);
    // The newest alerts were kept: the ones the receiver got end the log.
    let received: Vec<String> = receiver
        .seen()
        .into_iter()
        .filter(|s| s.answered == 200)
        .map(|s| s.id)
        .collect();
    let kept: BTreeSet<&String> = received.iter().collect();
    assert_eq!(kept.len() as u64, sent);
    assert!(
        produced.ends_with(&received[received.len() - 3..]),
        "{produced:?} {received:?}"
    );
    for id in listed {
        assert!(!kept.contains(&id.to_owned()), "{id} both dropped and sent");
    }
    let metrics = get(&registry.router(), "/health/metrics").await.text();
    assert_eq!(sample(&metrics, "health_alerts_dropped_total"), dropped);
}

#[tokio::test]
async fn draining_redelivers_waiting_alerts_at_once() {
    let mut receiver = Flaky::start().await;
    let db = Switch::new("db", Status::Healthy);
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .cache_age(Duration::ZERO)
        .alert_timeout(Duration::from_millis(150))
        .alert_retries(0, Duration::from_millis(20))
        .alert_redelivery(Duration::from_secs(3600))
        .drain_delay(Duration::ZERO)
        .drain_timeout(Duration::from_secs(5))
        .alerter(WebhookAlerter::new(format!("http://{}/hook", receiver.addr)).unwrap())
        .build()
        .unwrap();
    registry.run_all().await;
    receiver.set(Mode::Failing).await;
    db.set(Status::Unhealthy);
    registry.run_all().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while deliveries(&registry).await["failed"] == 0 {
        assert!(Instant::now() < deadline, "the first round never failed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    receiver.set(Mode::Ok).await;
    // Without the drain it would wait an hour.
    let started = Instant::now();
    registry.drain().await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let delivered: Vec<Seen> = receiver.seen().into_iter().filter(|s| s.answered == 200).collect();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    let d = deliveries(&registry).await;
    assert_eq!(
        (d["sent"].as_u64(), d["redelivered"].as_u64()),
        (Some(1), Some(1)),
        "{d}"
    );
}
