//! The production lifecycle: background scheduling with nobody watching,
//! and draining on shutdown with streams open.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use axum_watch::{HealthRegistry, Status, model::Lifecycle, options::Scheduling};
use common::{Recorder, Switch, get, socket_get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(start_paused = true)]
async fn in_background_mode_a_failure_is_noticed_recorded_and_alerted_with_nobody_watching() {
    let db = Switch::new("db", Status::Healthy);
    let recorder = Recorder::default();
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .alerter(recorder.clone())
        .poll_interval(Duration::from_secs(30))
        .build()
        .unwrap();
    // An alerter is configured, so `Auto` schedules in the background.
    assert_eq!(registry.scheduling(), Scheduling::Background);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(db.calls(), 1, "the first run happens without any request");

    db.set(Status::Unhealthy);
    // No request, no stream: within one interval the loop runs it again.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(db.calls(), 2);
    assert_eq!(recorder.sent(), [("db".to_owned(), Status::Healthy, Status::Unhealthy)]);
    let alerts = get(&registry.router(), "/health/alerts").await.json();
    assert_eq!(alerts["alerts"][0]["new_status"], "unhealthy");
    assert_eq!(registry.stream_subscribers(), 0);
}

#[tokio::test(start_paused = true)]
async fn while_watched_and_on_request_modes_run_nothing_alone() {
    for mode in [Scheduling::WhileWatched, Scheduling::OnRequest] {
        let db = Switch::new("db", Status::Healthy);
        let registry = HealthRegistry::builder()
            .add(db.clone())
            .alerter(Recorder::default())
            .scheduling(mode)
            .poll_interval(Duration::from_secs(5))
            .build()
            .unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(db.calls(), 0, "{mode:?}");
        let metrics = get(&registry.router(), "/health/metrics").await.text();
        let line = format!("health_scheduling_mode{{mode=\"{}\"}} 1\n", mode.as_str());
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
    // Without alerters, callbacks or a shared store, `Auto` waits for a viewer.
    let quiet = HealthRegistry::builder().build().unwrap();
    assert_eq!(quiet.scheduling(), Scheduling::WhileWatched);
}

/// Opens a status stream over a socket and reads its first event.
async fn open_stream(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /health/status/stream HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = [0_u8; 4096];
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("data: ") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "stream closed before its first event");
        seen.extend_from_slice(&buf[..n]);
    }
    stream
}

/// Reads until the server closes the stream; what it sent meanwhile.
async fn read_to_close(mut stream: tokio::net::TcpStream) -> String {
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
    String::from_utf8_lossy(&rest).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_fails_ready_first_ends_every_stream_and_flushes_alerts_before_exit() {
    const DELAY: Duration = Duration::from_millis(1500);
    let db = Switch::new("db", Status::Healthy);
    let slow = Recorder {
        delay: Duration::from_millis(400),
        ..Recorder::default()
    };
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .alerter(slow.clone())
        .poll_interval(Duration::from_secs(1))
        .cache_age(Duration::ZERO)
        .drain_delay(DELAY)
        .drain_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, signal) = tokio::sync::oneshot::channel::<()>();
    let drain = registry.drain_on(async move {
        let _ = signal.await;
    });
    let server = tokio::spawn(async move {
        axum::serve(listener, registry_router(&registry))
            .with_graceful_shutdown(drain)
            .await
            .unwrap();
    });

    let mut streams = Vec::new();
    for _ in 0..100 {
        streams.push(open_stream(addr).await);
    }
    let closed: Vec<_> = streams.into_iter().map(|s| tokio::spawn(read_to_close(s))).collect();

    // A transition just before shutdown: its alert is still being sent.
    db.set(Status::Degraded);
    // The poll loop (1 s) picks it up; requests read its latest report.
    let noticed = Instant::now();
    while socket_get(addr, "/health/status").await.0 != 207 {
        assert!(noticed.elapsed() < Duration::from_secs(3), "the poll loop never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alerts_before = socket_get(addr, "/health/alerts").await.1;

    let shutdown = Instant::now();
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (code, body, _) = socket_get(addr, "/health/ready").await;
    assert_eq!((code, body.as_str()), (503, r#"{"status":"draining"}"#));
    assert_eq!(socket_get(addr, "/health/live").await.0, 200);
    let (_, status, _) = socket_get(addr, "/health/status").await;
    assert!(status.ends_with(r#","lifecycle":"draining"}"#), "{status}");
    let metrics = socket_get(addr, "/health/metrics").await.1;
    assert!(
        metrics.contains("health_lifecycle{state=\"draining\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("probe_healthy{name=\"db\",critical=\"true\"} 0\n"));
    assert!(metrics.contains("probe_degraded{name=\"db\",critical=\"true\"} 1\n"));
    // Draining is no transition: nothing new in the alert log.
    assert_eq!(socket_get(addr, "/health/alerts").await.1, alerts_before);

    server.await.unwrap();
    let took = shutdown.elapsed();
    assert!(took < DELAY + Duration::from_secs(1), "shutdown took {took:?}");
    for client in closed {
        let rest = tokio::time::timeout(Duration::from_secs(1), client)
            .await
            .unwrap()
            .unwrap();
        assert!(rest.ends_with("0\r\n\r\n"), "each stream ends cleanly: {rest:?}");
    }
    // The alert queued before shutdown went out before the server returned.
    assert_eq!(slow.sent(), [("db".to_owned(), Status::Healthy, Status::Degraded)]);
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_stops_sends_nothing_more_not_even_a_report_of_the_same_moment() {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    // Twenty times: a stream that saw a new report and the stop at once
    // used to pick either at random.
    for _ in 0..20 {
        let registry = HealthRegistry::builder()
            .add(Switch::new("db", Status::Healthy))
            .poll_interval(Duration::from_secs(1))
            .drain_delay(Duration::ZERO)
            .build()
            .unwrap();
        let request = http::Request::builder()
            .uri("/health/status/stream")
            .body(axum::body::Body::empty())
            .unwrap();
        let mut body = registry.router::<()>().oneshot(request).await.unwrap().into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert!(String::from_utf8_lossy(&first).contains("data: "));
        // The stream waits for its next event; meanwhile a report is
        // published and the service stops.
        assert!(
            tokio::time::timeout(Duration::from_millis(10), body.frame())
                .await
                .is_err()
        );
        registry.run_all().await;
        registry.drain().await;
        let mut rest = String::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                rest.push_str(&String::from_utf8_lossy(&data));
            }
        }
        assert!(!rest.contains(r#""lifecycle":"stopped""#), "{rest}");
    }
}

fn registry_router(registry: &HealthRegistry) -> axum::Router {
    assert_eq!(registry.lifecycle(), Lifecycle::Serving);
    registry.router()
}
