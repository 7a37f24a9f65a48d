//! Resilience of the health endpoints: probes that panic, fail or hang,
//! timeouts, single-flight runs and the report cache, redaction of
//! credentials (in responses and in logs) and misbehaving state-change
//! callbacks. Everything goes through the real router with paused time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum_watch::{AlertRecord, HealthRegistry, Outcome, Probe, ProbeError, ProbeExt, options::Scheduling, probe};
use common::{Reply, capture_logs, get};
use http::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The result of the probe `name` in a report body.
fn probe_in<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no probe {name:?} in {report}"))
}

/// `elapsed` is `expected` of virtual time, give or take timer granularity.
#[track_caller]
fn assert_took(elapsed: Duration, expected: Duration) {
    assert!(
        elapsed >= expected && elapsed <= expected + Duration::from_millis(5),
        "took {elapsed:?}, expected {expected:?}"
    );
}

/// A latency in ms equal to `expected_ms`, give or take timer granularity.
#[track_caller]
fn assert_latency(result: &Value, expected_ms: f64) {
    let latency = result["latency_ms"].as_f64().unwrap();
    assert!(
        (expected_ms..=expected_ms + 5.0).contains(&latency),
        "latency_ms {latency}, expected ≈ {expected_ms} in {result}"
    );
}

/// Lets every ready task run without moving virtual time.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// A probe that panics with `message`.
struct Panics {
    name: &'static str,
    message: &'static str,
}

impl Probe for Panics {
    fn name(&self) -> &str {
        self.name
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        panic!("{}", self.message)
    }
}

/// A probe that never returns, counting the checks that started.
#[derive(Clone)]
struct Hangs {
    name: &'static str,
    started: Arc<AtomicUsize>,
}

impl Hangs {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            started: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }
}

impl Probe for Hangs {
    fn name(&self) -> &str {
        self.name
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }
}

/// A healthy probe that takes `delay` of (virtual) time, counting its calls.
#[derive(Clone)]
struct Slow {
    name: &'static str,
    delay: Duration,
    calls: Arc<AtomicUsize>,
}

impl Slow {
    fn new(name: &'static str, delay: Duration) -> Self {
        Self {
            name,
            delay,
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Probe for Slow {
    fn name(&self) -> &str {
        self.name
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        Ok(Outcome::healthy())
    }
}

/// A probe whose health the test flips.
#[derive(Clone)]
struct Flip {
    name: &'static str,
    healthy: Arc<std::sync::atomic::AtomicBool>,
}

impl Flip {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            healthy: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }
}

impl Probe for Flip {
    fn name(&self) -> &str {
        self.name
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        if self.healthy.load(Ordering::SeqCst) {
            Ok(Outcome::healthy())
        } else {
            Err(ProbeError::msg(format!("{} is down", self.name)))
        }
    }
}

// ---------------------------------------------------------------------------
// 1. Panics, errors and hangs are contained; timeouts
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn panicking_failing_and_hanging_probes_are_contained_within_the_default_timeout() {
    let hanging = Hangs::new("hanging");
    let registry = HealthRegistry::builder()
        .add(probe::from_fn("fine", || async { Ok(Outcome::healthy()) }))
        .add(Panics {
            name: "panicky",
            message: "disk on fire",
        })
        .add(probe::from_fn("erroring", || async {
            Err(io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused").into())
        }))
        .add(hanging.clone())
        .build()
        .unwrap();
    let app = registry.router::<()>();
    let start = Instant::now();

    let ready = tokio::spawn(get(app.clone(), "/health/ready"));
    settle().await;
    assert_eq!(hanging.started(), 1, "the /ready run has started its probes");
    assert!(!ready.is_finished());
    assert_eq!(Instant::now(), start, "no virtual time has passed yet");

    let live = get(app.clone(), "/health/live").await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.text(), r#"{"status":"ok"}"#);
    assert_eq!(Instant::now(), start, "/live answered without waiting for anything");
    assert!(!ready.is_finished(), "/ready is still waiting on the hang");

    let reply = ready.await.unwrap();
    assert_took(start.elapsed(), Duration::from_secs(10));
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let report = reply.json();
    assert_eq!(report["status"], "unhealthy");

    let fine = probe_in(&report, "fine");
    assert_eq!(fine["status"], "healthy");
    assert_eq!(fine["error"], Value::Null);

    let panicky = probe_in(&report, "panicky");
    assert_eq!(panicky["status"], "unhealthy");
    assert_eq!(panicky["error"], "panicked: disk on fire");

    let erroring = probe_in(&report, "erroring");
    assert_eq!(erroring["status"], "unhealthy");
    assert_eq!(erroring["error"], "io::Error: connection refused");

    let hung = probe_in(&report, "hanging");
    assert_eq!(hung["status"], "unhealthy");
    assert_eq!(hung["error"], "timed out after 10s");

    // The panic did not take the registry down: it keeps answering.
    assert_eq!(get(app.clone(), "/health/live").await.status, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn per_probe_with_timeout_overrides_the_registry_timeout() {
    let quick = Hangs::new("quick-timeout");
    let inherits = Hangs::new("inherits");
    let patient = Slow::new("patient", Duration::from_secs(2));
    let registry = HealthRegistry::builder()
        .timeout(Duration::from_secs(1))
        .add(quick.clone().with_timeout(Duration::from_millis(500)))
        .add(inherits.clone())
        // Longer than the registry's 1 s, within its own 5 s.
        .add(patient.clone().with_timeout(Duration::from_secs(5)))
        .build()
        .unwrap();
    let start = Instant::now();
    let reply = get(registry.router(), "/health/status").await;
    assert_took(start.elapsed(), Duration::from_secs(2));
    assert_eq!(reply.status, StatusCode::MULTI_STATUS);
    let report = reply.json();
    assert_eq!(probe_in(&report, "quick-timeout")["error"], "timed out after 500ms");
    assert_eq!(probe_in(&report, "inherits")["error"], "timed out after 1s");
    let patient_result = probe_in(&report, "patient");
    assert_eq!(patient_result["status"], "healthy");
    assert_eq!(patient_result["error"], Value::Null);
    assert_latency(patient_result, 2000.0);
    assert_eq!((quick.started(), inherits.started(), patient.calls()), (1, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn registry_timeout_option_applies_to_every_probe() {
    let registry = HealthRegistry::builder()
        .timeout(Duration::from_millis(2500))
        .add(Hangs::new("a"))
        .add(Hangs::new("b"))
        .build()
        .unwrap();
    let start = Instant::now();
    let reply = get(registry.router(), "/health/ready").await;
    assert_took(start.elapsed(), Duration::from_millis(2500));
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let report = reply.json();
    for name in ["a", "b"] {
        let result = probe_in(&report, name);
        assert_eq!(result["status"], "unhealthy");
        assert_eq!(result["error"], "timed out after 2.5s");
    }
}

#[tokio::test(start_paused = true)]
async fn without_timeout_lets_a_slow_probe_finish() {
    let slow = Slow::new("slow", Duration::from_secs(30));
    let registry = HealthRegistry::builder()
        .timeout(Duration::from_secs(1))
        .add(slow.clone().without_timeout())
        .build()
        .unwrap();
    let start = Instant::now();
    let reply = get(registry.router(), "/health/ready").await;
    assert_took(start.elapsed(), Duration::from_secs(30));
    assert_eq!(reply.status, StatusCode::OK);
    let report = reply.json();
    assert_eq!(report["status"], "healthy");
    let result = probe_in(&report, "slow");
    assert_eq!(result["status"], "healthy");
    assert_eq!(result["error"], Value::Null);
    assert_latency(result, 30_000.0);
    assert_eq!(slow.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn registry_timeout_none_lets_every_probe_finish() {
    let registry = HealthRegistry::builder()
        .timeout(None)
        .add(Slow::new("slow", Duration::from_secs(60)))
        .build()
        .unwrap();
    let start = Instant::now();
    let reply = get(registry.router(), "/health/status").await;
    assert_took(start.elapsed(), Duration::from_secs(60));
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(probe_in(&reply.json(), "slow")["status"], "healthy");
}

// ---------------------------------------------------------------------------
// 2. Single flight and the report cache
// ---------------------------------------------------------------------------

/// Sends `n` concurrent `/health/status` requests and returns their replies.
async fn concurrent_status(app: &Router, n: usize) -> Vec<Reply> {
    let tasks: Vec<_> = (0..n)
        .map(|_| tokio::spawn(get(app.clone(), "/health/status")))
        .collect();
    let mut replies = Vec::with_capacity(n);
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    replies
}

#[tokio::test(start_paused = true)]
async fn hundred_concurrent_status_requests_run_each_probe_once() {
    let db = Slow::new("db", Duration::from_millis(50));
    let cache = Slow::new("cache", Duration::from_millis(50));
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .add(cache.clone())
        .build()
        .unwrap();
    let app = registry.router();
    let start = Instant::now();
    let replies = concurrent_status(&app, 100).await;
    assert_took(start.elapsed(), Duration::from_millis(50));
    assert_eq!((db.calls(), cache.calls()), (1, 1));
    assert_eq!(replies.len(), 100);
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, replies[0].body, "every request got the same run");
    }
    assert_eq!(replies[0].json()["status"], "healthy");
}

#[tokio::test(start_paused = true)]
async fn zero_cache_age_still_shares_the_run_in_flight() {
    let db = Slow::new("db", Duration::from_millis(50));
    let cache = Slow::new("cache", Duration::from_millis(50));
    let registry = HealthRegistry::builder()
        .cache_age(Duration::ZERO)
        .add(db.clone())
        .add(cache.clone())
        .build()
        .unwrap();
    let app = registry.router();

    let replies = concurrent_status(&app, 100).await;
    assert_eq!((db.calls(), cache.calls()), (1, 1));
    assert!(replies.iter().all(|r| r.status == StatusCode::OK));
    assert!(replies.iter().all(|r| r.body == replies[0].body));

    // Nothing is reused once the run is over, even with no time passing.
    let reply = get(app.clone(), "/health/status").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!((db.calls(), cache.calls()), (2, 2));

    // A second burst shares one new run again.
    concurrent_status(&app, 100).await;
    assert_eq!((db.calls(), cache.calls()), (3, 3));
}

#[tokio::test(start_paused = true)]
async fn default_cache_age_reuses_the_report_until_it_expires() {
    let db = Slow::new("db", Duration::from_millis(50));
    let cache = Slow::new("cache", Duration::from_millis(50));
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .add(cache.clone())
        .build()
        .unwrap();
    let app = registry.router();

    let first = get(app.clone(), "/health/status").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!((db.calls(), cache.calls()), (1, 1));

    // 900 ms after the report was taken: still within the 1 s cache age.
    tokio::time::advance(Duration::from_millis(900)).await;
    let cached = get(app.clone(), "/health/status").await;
    assert_eq!(cached.status, StatusCode::OK);
    assert_eq!(cached.body, first.body, "the cached report is served");
    assert_eq!((db.calls(), cache.calls()), (1, 1));

    // 1.1 s after: expired, the probes run again.
    tokio::time::advance(Duration::from_millis(200)).await;
    let fresh = get(app.clone(), "/health/status").await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert_eq!((db.calls(), cache.calls()), (2, 2));
}

// ---------------------------------------------------------------------------
// 3. Credentials are redacted everywhere
// ---------------------------------------------------------------------------

const SECRETS: [&str; 4] = ["s3cret", "hunter2", "p4ssw0rd", "tk_live_abc123"];

#[tokio::test(start_paused = true)]
async fn credentials_are_redacted_in_status_history_and_logs() {
    let (logs, _capture) = capture_logs(tracing::Level::DEBUG);

    let registry = HealthRegistry::builder()
        .add(probe::from_fn("db", || async {
            Err(ProbeError::msg(
                "connect postgres://app:s3cret@db:5432/x failed; password=hunter2",
            ))
        }))
        .add(Panics {
            name: "cache",
            message: "lost connection to redis://default:p4ssw0rd@cache:6379/0",
        })
        .add(probe::from_fn("api", || async {
            Ok(Outcome::unhealthy(
                "GET https://api.example/v1 failed: token=tk_live_abc123",
            ))
        }))
        .build()
        .unwrap();
    let app = registry.router();

    let expected = [
        ("db", "connect postgres://app:***@db:5432/x failed; password=***"),
        ("cache", "panicked: lost connection to redis://default:***@cache:6379/0"),
        ("api", "GET https://api.example/v1 failed: token=***"),
    ];

    let status = get(app.clone(), "/health/status").await;
    assert_eq!(status.status, StatusCode::MULTI_STATUS);
    let report = status.json();
    for (name, error) in expected {
        assert_eq!(probe_in(&report, name)["error"], error, "{name}");
    }

    let history = get(app.clone(), "/health/history").await;
    assert_eq!(history.status, StatusCode::OK);
    let history = history.json();
    for (name, error) in expected {
        let results = history["probes"][name].as_array().unwrap();
        assert_eq!(results.len(), 1, "{name}: {history}");
        assert_eq!(results[0]["error"], error, "{name}");
    }

    let captured = logs.contents();
    for (_, error) in expected {
        assert!(
            captured.contains(error),
            "redacted error {error:?} missing from the logs:\n{captured}"
        );
    }
    for body in [status.text(), history.to_string(), captured] {
        for secret in SECRETS {
            assert!(!body.contains(secret), "{secret:?} leaked into:\n{body}");
        }
    }
}

// ---------------------------------------------------------------------------
// 4. Misbehaving state-change callbacks
// ---------------------------------------------------------------------------

/// `(probe, old, new)` of every alert in `/health/alerts`.
async fn alerts(app: &Router) -> Vec<(String, String, String)> {
    let reply = get(app.clone(), "/health/alerts").await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.json()["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["probe"].as_str().unwrap().to_owned(),
                a["old_status"].as_str().unwrap().to_owned(),
                a["new_status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

fn seen_entry(alert: &AlertRecord) -> (String, String, String) {
    (
        alert.probe.clone(),
        alert.old_status.to_string(),
        alert.new_status.to_string(),
    )
}

fn triple(probe: &str, old: &str, new: &str) -> (String, String, String) {
    (probe.to_owned(), old.to_owned(), new.to_owned())
}

/// Flips `db` healthy → unhealthy → healthy through `/health/status`
/// (cache age zero, so every request runs the probes), checking after each
/// step that the request answered normally, the alert log and what the
/// well-behaved callbacks saw.
async fn drive_transitions(app: &Router, db: &Flip, seen: &[&Seen]) {
    let first = get(app.clone(), "/health/status").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.json()["status"], "healthy");
    settle().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(alerts(app).await, []);
    for s in seen {
        assert!(s.lock().unwrap().is_empty(), "no call for the first result");
    }

    db.set_healthy(false);
    let down = get(app.clone(), "/health/status").await;
    assert_eq!(down.status, StatusCode::MULTI_STATUS);
    let report = down.json();
    assert_eq!(report["status"], "unhealthy");
    assert_eq!(probe_in(&report, "db")["error"], "db is down");
    settle().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let went_down = triple("db", "healthy", "unhealthy");
    assert_eq!(alerts(app).await, std::slice::from_ref(&went_down));
    for s in seen {
        assert_eq!(*s.lock().unwrap(), std::slice::from_ref(&went_down));
    }

    // Same status again: no transition, no call.
    let still_down = get(app.clone(), "/health/status").await;
    assert_eq!(still_down.status, StatusCode::MULTI_STATUS);
    settle().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(alerts(app).await.len(), 1);

    db.set_healthy(true);
    let up = get(app.clone(), "/health/status").await;
    assert_eq!(up.status, StatusCode::OK);
    assert_eq!(up.json()["status"], "healthy");
    settle().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let came_back = triple("db", "unhealthy", "healthy");
    assert_eq!(alerts(app).await, [went_down.clone(), came_back.clone()]);
    for s in seen {
        assert_eq!(*s.lock().unwrap(), [went_down.clone(), came_back.clone()]);
    }

    // /ready and /live are unaffected too.
    assert_eq!(get(app.clone(), "/health/ready").await.status, StatusCode::OK);
    assert_eq!(get(app.clone(), "/health/live").await.status, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn panicking_sync_callback_does_not_stop_requests_alerts_or_later_callbacks() {
    let db = Flip::new("db");
    let seen: Seen = Arc::default();
    let registry = HealthRegistry::builder()
        .cache_age(Duration::ZERO)
        // Probes run when these tests ask, not in the background.
        .scheduling(Scheduling::WhileWatched)
        .add(db.clone())
        .on_state_change(|alert| panic!("sync callback exploded on {}", alert.probe))
        .on_state_change({
            let seen = Arc::clone(&seen);
            move |alert| seen.lock().unwrap().push(seen_entry(alert))
        })
        .build()
        .unwrap();
    drive_transitions(&registry.router(), &db, &[&seen]).await;
}

#[tokio::test(start_paused = true)]
async fn panicking_async_callback_does_not_stop_requests_alerts_or_later_callbacks() {
    let db = Flip::new("db");
    let seen_sync: Seen = Arc::default();
    let seen_async: Seen = Arc::default();
    let registry = HealthRegistry::builder()
        .cache_age(Duration::ZERO)
        // Probes run when these tests ask, not in the background.
        .scheduling(Scheduling::WhileWatched)
        .add(db.clone())
        .on_state_change_async(|alert: AlertRecord| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            panic!("async callback exploded on {}", alert.probe);
        })
        .on_state_change({
            let seen = Arc::clone(&seen_sync);
            move |alert| seen.lock().unwrap().push(seen_entry(alert))
        })
        .on_state_change_async({
            let seen = Arc::clone(&seen_async);
            move |alert: AlertRecord| {
                let seen = Arc::clone(&seen);
                async move { seen.lock().unwrap().push(seen_entry(&alert)) }
            }
        })
        .build()
        .unwrap();
    drive_transitions(&registry.router(), &db, &[&seen_sync, &seen_async]).await;
}

#[tokio::test(start_paused = true)]
async fn sync_and_async_panicking_callbacks_together() {
    let db = Flip::new("db");
    let seen: Seen = Arc::default();
    let registry = HealthRegistry::builder()
        .cache_age(Duration::ZERO)
        // Probes run when these tests ask, not in the background.
        .scheduling(Scheduling::WhileWatched)
        .add(db.clone())
        .on_state_change(|_| panic!("sync callback exploded"))
        .on_state_change_async(|_alert: AlertRecord| async move {
            panic!("async callback exploded");
        })
        .on_state_change({
            let seen = Arc::clone(&seen);
            move |alert| seen.lock().unwrap().push(seen_entry(alert))
        })
        .build()
        .unwrap();
    drive_transitions(&registry.router(), &db, &[&seen]).await;
}

// ---------------------------------------------------------------------------
// 5. Latency of a timed-out check
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn timed_out_result_has_latency_of_the_timeout() {
    let registry = HealthRegistry::builder()
        .add(Hangs::new("custom").with_timeout(Duration::from_millis(750)))
        .add(Hangs::new("default"))
        .build()
        .unwrap();
    let start = Instant::now();
    let reply = get(registry.router(), "/health/status").await;
    assert_took(start.elapsed(), Duration::from_secs(10));
    assert_eq!(reply.status, StatusCode::MULTI_STATUS);
    let report = reply.json();

    let custom = probe_in(&report, "custom");
    assert_eq!(custom["error"], "timed out after 750ms");
    assert_latency(custom, 750.0);

    let default = probe_in(&report, "default");
    assert_eq!(default["error"], "timed out after 10s");
    assert_latency(default, 10_000.0);

    // The history holds the same latencies.
    let history = get(registry.router(), "/health/history").await.json();
    assert_latency(&history["probes"]["custom"][0], 750.0);
    assert_latency(&history["probes"]["default"][0], 10_000.0);
    assert_eq!(
        history["probes"]["custom"][0]["details"]["circuit_breaker"],
        json!({"open": false, "consecutive_failures": 1, "trips_total": 0})
    );
}
