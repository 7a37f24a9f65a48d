//! Server-sent event streams and demand-driven polling, in paused time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum_watch::{HealthRegistry, Outcome, ProbeExt, Status, probe};
use common::{Switch, get, serve};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::time::Instant;
use tower::ServiceExt;

/// An open stream as a test reads it.
struct Stream {
    body: Body,
}

impl Stream {
    async fn open(registry: &HealthRegistry, uri: &str) -> (http::response::Parts, Self) {
        let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let response = registry.router::<()>().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        (parts, Self { body })
    }

    /// The next chunk, or `None` when the stream ended.
    async fn chunk(&mut self) -> Option<String> {
        loop {
            let frame = self.body.frame().await?.unwrap();
            if let Ok(data) = frame.into_data() {
                return Some(String::from_utf8(data.to_vec()).unwrap());
            }
        }
    }

    /// The next chunk if one comes within `within` (virtual time).
    async fn chunk_within(&mut self, within: Duration) -> Option<String> {
        tokio::time::timeout(within, self.chunk()).await.ok().flatten()
    }

    /// The next event's report, skipping keep-alive comments.
    async fn report(&mut self) -> Value {
        loop {
            let chunk = self.chunk().await.expect("stream ended");
            if let Some(data) = data_of(&chunk) {
                return data;
            }
        }
    }
}

fn data_of(chunk: &str) -> Option<Value> {
    let line = chunk.lines().find_map(|l| l.strip_prefix("data: "))?;
    Some(serde_json::from_str(line).unwrap())
}

fn call_of(report: &Value, probe: &str) -> u64 {
    let p = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == probe)
        .unwrap();
    p["details"]["call"].as_u64().unwrap()
}

#[tokio::test(start_paused = true)]
async fn first_event_is_immediate_with_retry_hint_and_headers() {
    let db = Switch::new("db", Status::Healthy);
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .poll_interval(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let (parts, mut stream) = Stream::open(&registry, "/health/status/stream").await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(parts.headers["content-type"], "text/event-stream");
    assert_eq!(parts.headers["cache-control"], "no-cache");
    assert_eq!(parts.headers["x-accel-buffering"], "no");
    let first = stream.chunk().await.unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(
        first.starts_with("retry: 3000\ndata: {\"status\":\"healthy\""),
        "{first:?}"
    );
    assert!(first.ends_with("}\n\n"));
    assert_eq!(first.matches("data: ").count(), 1);
    // The event is exactly what /status answers.
    let status = get(&registry.router(), "/health/status").await;
    assert_eq!(data_of(&first).unwrap(), status.json());
}

#[tokio::test(start_paused = true)]
async fn one_event_and_one_run_per_interval() {
    let db = Switch::new("db", Status::Healthy);
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .poll_interval(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let (_, mut stream) = Stream::open(&registry, "/health/status/stream").await;
    assert_eq!(call_of(&stream.report().await, "db"), 1);
    assert!(
        stream.chunk_within(Duration::from_millis(4900)).await.is_none(),
        "nothing before the interval"
    );
    assert_eq!(call_of(&stream.report().await, "db"), 2);
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(call_of(&stream.report().await, "db"), 3);
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert_eq!(db.calls(), 3);

    // While the loop runs, GETs serve its latest report without running probes.
    let status = get(&registry.router(), "/health/status").await.json();
    assert_eq!(call_of(&status, "db"), 3);
    assert_eq!(db.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_transition_is_streamed_at_once() {
    let db = Switch::new("db", Status::Healthy);
    let registry = HealthRegistry::builder().add(db.clone()).build().unwrap();
    let (_, mut stream) = Stream::open(&registry, "/health/status/stream").await;
    assert_eq!(stream.report().await["status"], "healthy");
    db.set(Status::Unhealthy);
    let started = Instant::now();
    let report = registry.run_all().await;
    assert_eq!(report.status, Status::Unhealthy);
    let event = stream.chunk_within(Duration::ZERO).await.expect("an event at once");
    assert_eq!(data_of(&event).unwrap()["status"], "unhealthy");
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn fifty_subscribers_share_one_run_per_interval() {
    let db = Switch::new("db", Status::Healthy);
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .poll_interval(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut streams = Vec::new();
    for _ in 0..50 {
        let (_, mut s) = Stream::open(&registry, "/health/status/stream").await;
        assert_eq!(call_of(&s.report().await, "db"), 1);
        streams.push(s);
    }
    assert_eq!(registry.stream_subscribers(), 50);
    for round in 2..=4 {
        for s in &mut streams {
            assert_eq!(call_of(&s.report().await, "db"), round);
        }
        assert_eq!(db.calls() as u64, round);
    }
}

#[tokio::test(start_paused = true)]
async fn the_loop_stops_after_the_last_subscriber_leaves() {
    let db = Switch::new("db", Status::Healthy);
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .poll_interval(Duration::from_secs(2))
        .build()
        .unwrap();
    let (_, mut a) = Stream::open(&registry, "/health/status/stream").await;
    let (_, mut b) = Stream::open(&registry, "/health/ready/stream").await;
    a.report().await;
    b.report().await;
    a.report().await;
    assert_eq!(db.calls(), 2);
    drop(a);
    assert_eq!(call_of(&b.report().await, "db"), 2);
    assert_eq!(
        call_of(&b.report().await, "db"),
        3,
        "one subscriber keeps the loop alive"
    );
    drop(b);
    assert_eq!(registry.stream_subscribers(), 0);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(db.calls(), 3, "no probe runs once nobody listens");
    // Back to on-demand: a GET runs the probes again.
    get(&registry.router(), "/health/status").await;
    assert_eq!(db.calls(), 4);
}

/// A probe that takes `delay` (virtual time) and counts its calls.
fn timed(name: &'static str, delay: Duration, calls: Arc<AtomicUsize>) -> impl axum_watch::Probe {
    probe::from_fn(name, move || {
        let calls = Arc::clone(&calls);
        async move {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(delay).await;
            Ok(Outcome::healthy().detail("call", n))
        }
    })
}

#[tokio::test(start_paused = true)]
async fn per_probe_intervals_run_independently() {
    let fast = Arc::new(AtomicUsize::new(0));
    let slow = Arc::new(AtomicUsize::new(0));
    let registry = HealthRegistry::builder()
        .add(timed("fast", Duration::ZERO, Arc::clone(&fast)).with_poll_interval(Duration::from_secs(1)))
        .add(timed("slow", Duration::from_secs(3), Arc::clone(&slow)).with_poll_interval(Duration::from_secs(10)))
        .build()
        .unwrap();
    let start = Instant::now();
    let (_, mut stream) = Stream::open(&registry, "/health/status/stream").await;
    stream.report().await; // the first, full run: waits for the slow probe
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    // From now on the fast probe reports every second, also while the slow
    // one (due at t=10, busy until t=13) is running.
    let mut last_fast = 1;
    while start.elapsed() < Duration::from_millis(12_500) {
        let report = stream.report().await;
        let f = call_of(&report, "fast");
        assert!(f >= last_fast, "fast went backwards");
        last_fast = f;
    }
    assert!(last_fast >= 10, "fast ran {last_fast} times in 12.5 s");
    assert_eq!(slow.load(Ordering::SeqCst), 2, "slow started at t=0 and t=10 only");
    assert_eq!(fast.load(Ordering::SeqCst) as u64, last_fast);
}

#[tokio::test(start_paused = true)]
async fn changing_the_interval_takes_effect_at_once() {
    let db = Switch::new("db", Status::Healthy);
    let registry = HealthRegistry::builder().add(db.clone()).build().unwrap();
    assert_eq!(registry.poll_interval(), Some(Duration::from_secs(60)));
    let start = Instant::now();
    let (_, mut stream) = Stream::open(&registry, "/health/status/stream").await;
    stream.report().await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    registry.set_poll_interval(Duration::from_secs(2));
    assert_eq!(registry.poll_interval(), Some(Duration::from_secs(2)));
    // The probe last ran at t=0: with a 2 s interval it is overdue.
    assert_eq!(call_of(&stream.report().await, "db"), 2);
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert_eq!(call_of(&stream.report().await, "db"), 3);
    assert_eq!(start.elapsed(), Duration::from_secs(12));
    registry.set_poll_interval(Duration::from_millis(10));
    assert_eq!(registry.poll_interval(), Some(Duration::from_secs(1)), "clamped to 1 s");
}

#[tokio::test(start_paused = true)]
async fn idle_streams_get_keep_alive_comments() {
    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Healthy))
        .build()
        .unwrap();
    let start = Instant::now();
    let (_, mut stream) = Stream::open(&registry, "/health/status/stream").await;
    stream.chunk().await.unwrap();
    assert_eq!(stream.chunk().await.unwrap(), ":\n\n");
    assert_eq!(start.elapsed(), Duration::from_secs(15));
    assert_eq!(stream.chunk().await.unwrap(), ":\n\n");
    assert_eq!(start.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn without_polling_a_stream_sends_one_event_and_ends() {
    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Healthy))
        .poll_interval(None)
        .build()
        .unwrap();
    let (_, mut stream) = Stream::open(&registry, "/health/status/stream").await;
    let first = stream.chunk().await.unwrap();
    assert!(first.starts_with("retry: 3000\ndata: "));
    assert_eq!(stream.chunk().await, None);
    assert_eq!(registry.stream_subscribers(), 0);
}

#[tokio::test(start_paused = true)]
async fn ready_stream_says_what_ready_says() {
    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Healthy))
        .grace_period(Duration::from_secs(10))
        .poll_interval(Duration::from_secs(5))
        .build()
        .unwrap();
    let (_, mut ready) = Stream::open(&registry, "/health/ready/stream").await;
    let (_, mut status) = Stream::open(&registry, "/health/status/stream").await;
    assert_eq!(ready.report().await, serde_json::json!({"status": "starting"}));
    assert_eq!(status.report().await["status"], "healthy");
    assert_eq!(ready.report().await, serde_json::json!({"status": "starting"})); // t=5
    assert_eq!(ready.report().await["status"], "healthy"); // t=10: the grace period is over
}

#[tokio::test(start_paused = true)]
async fn streams_take_tag_filters() {
    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Unhealthy).with_tags(["storage"]))
        .add(Switch::new("api", Status::Healthy).with_tags(["edge"]))
        .build()
        .unwrap();
    let (_, mut edge) = Stream::open(&registry, "/health/status/stream?tag=edge").await;
    let report = edge.report().await;
    assert_eq!(report["status"], "healthy");
    assert_eq!(report["probes"].as_array().unwrap().len(), 1);
    let (parts, _) = Stream::open(&registry, "/health/ready/stream?tag=nope").await;
    assert_eq!(parts.status, StatusCode::NOT_FOUND);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_reads_holds_up_nobody() {
    let db = Switch::new("db", Status::Healthy);
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .poll_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    let (_, _stuck) = Stream::open(&registry, "/health/status/stream").await;
    let (_, mut reader) = Stream::open(&registry, "/health/status/stream").await;
    for n in 1..=20 {
        assert_eq!(call_of(&reader.report().await, "db"), n);
    }
    assert_eq!(db.calls(), 20);
}

#[tokio::test]
async fn a_disconnected_client_is_released_promptly() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Healthy))
        .poll_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    let addr = serve(registry.router()).await;

    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(b"GET /health/status/stream HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0; 4096];
    let n = socket.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("200 OK"));
    assert_eq!(registry.stream_subscribers(), 1);
    drop(socket);
    let released = tokio::time::timeout(Duration::from_secs(5), async {
        while registry.stream_subscribers() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(released.is_ok(), "the subscriber was not released within 5 s");
}

#[tokio::test(start_paused = true)]
async fn probes_on_one_schedule_make_one_event_per_interval() {
    let a = Switch::new("a", Status::Healthy);
    let b = Switch::new("b", Status::Healthy);
    let slowish = Arc::new(AtomicUsize::new(0));
    let registry = HealthRegistry::builder()
        .add(a.clone())
        .add(b.clone())
        .add(timed("c", Duration::from_millis(300), Arc::clone(&slowish)))
        .poll_interval(Duration::from_secs(5))
        .build()
        .unwrap();
    let (_, mut stream) = Stream::open(&registry, "/health/status/stream").await;
    stream.report().await;
    let start = Instant::now();
    for round in 2..=4 {
        let report = stream.report().await;
        assert_eq!(
            (call_of(&report, "a"), call_of(&report, "b"), call_of(&report, "c")),
            (round, round, round)
        );
        // Nothing else arrives before the next interval.
        assert!(
            stream.chunk_within(Duration::from_millis(4000)).await.is_none(),
            "a second event in one round"
        );
    }
    assert!(start.elapsed() >= Duration::from_secs(14));
}

/// A probe that reports how often it was called, in its `call` detail.
fn counting(name: &'static str) -> (Arc<AtomicUsize>, impl axum_watch::Probe) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let probe = probe::from_fn(name, move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Ok(Outcome::healthy().detail("call", n)) }
    });
    (calls, probe)
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_starts_the_poll_loop_begins_with_a_fresh_report_then_one_per_interval() {
    let (calls, db) = counting("db");
    let registry = HealthRegistry::builder()
        .add(db)
        .poll_interval(Duration::from_secs(10))
        .cache_age(Duration::from_secs(1))
        .build()
        .unwrap();
    assert_eq!(
        call_of(&serde_json::to_value(registry.run_all().await).unwrap(), "db"),
        1
    );
    // The last run is now 5 s old: older than the cache age.
    tokio::time::advance(Duration::from_secs(5)).await;

    let (_, mut stream) = Stream::open(&registry, "/health/status/stream").await;
    let first = stream.report().await;
    assert_eq!(
        call_of(&first, "db"),
        2,
        "the first event must come from a fresh run: {first}"
    );
    // No second event right behind it: the next one comes one interval later.
    let early = stream.chunk_within(Duration::from_secs(9)).await;
    assert!(early.as_deref().and_then(data_of).is_none(), "{early:?}");
    let next = stream.report().await;
    assert_eq!(call_of(&next, "db"), 3, "{next}");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_stream_opened_within_the_cache_age_reuses_the_cached_report() {
    let (calls, db) = counting("db");
    let registry = HealthRegistry::builder()
        .add(db)
        .poll_interval(Duration::from_secs(10))
        .cache_age(Duration::from_secs(3))
        .build()
        .unwrap();
    registry.run_all().await;
    tokio::time::advance(Duration::from_secs(2)).await;
    let (_, mut stream) = Stream::open(&registry, "/health/status/stream").await;
    assert_eq!(call_of(&stream.report().await, "db"), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
