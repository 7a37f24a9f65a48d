//! Helpers shared by the integration tests: requests through the real router
//! and probes whose status a test can flip.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum_watch::{Outcome, Probe, ProbeError, Status};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn send(app: &Router, method: Method, uri: &str) -> Reply {
    let request = Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply { status, headers, body }
}

pub async fn get(app: &Router, uri: &str) -> Reply {
    send(app, Method::GET, uri).await
}

/// A probe whose status the test sets, counting its calls.
#[derive(Clone)]
pub struct Switch {
    name: &'static str,
    status: Arc<AtomicU8>,
    calls: Arc<AtomicUsize>,
}

impl Switch {
    pub fn new(name: &'static str, status: Status) -> Self {
        let s = Self {
            name,
            status: Arc::new(AtomicU8::new(0)),
            calls: Arc::new(AtomicUsize::new(0)),
        };
        s.set(status);
        s
    }

    pub fn set(&self, status: Status) {
        let v = match status {
            Status::Healthy => 0,
            Status::Degraded => 1,
            Status::Unhealthy => 2,
        };
        self.status.store(v, Ordering::SeqCst);
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Probe for Switch {
    fn name(&self) -> &str {
        self.name
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        match self.status.load(Ordering::SeqCst) {
            0 => Ok(Outcome::healthy().detail("call", n)),
            1 => Ok(Outcome::degraded().detail("call", n)),
            _ => Err(ProbeError::msg(format!("{} is down", self.name))),
        }
    }
}

/// The statuses of a report's probes, by name.
pub fn statuses(report: &Value) -> Vec<(String, String)> {
    report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The promtool binary: `PROMTOOL`, default `promtool` (the test script installs it).
pub fn promtool() -> String {
    std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_owned())
}

/// Runs `promtool check metrics` on `text`; returns the problems it reports
/// other than the abbreviated unit of `probe_latency_ms`, which the metric
/// name keeps for compatibility.
pub fn promtool_problems(text: &str) -> Vec<String> {
    use std::io::Write;
    let mut child = std::process::Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} (the test script installs it): {e}", promtool()));
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0) => Vec::new(),
        Some(3) => report
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("probe_latency_ms"))
            .map(str::to_owned)
            .collect(),
        other => panic!("promtool failed to parse the metrics ({other:?}):\n{report}\n---\n{text}"),
    }
}

/// Serves `app` on a fresh loopback port; the server runs until the test ends.
pub async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// One `GET path` over a new connection to `addr`: the status code, the
/// body, and how long the whole exchange took.
pub async fn socket_get(addr: std::net::SocketAddr, path: &str) -> (u16, String, std::time::Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::time::Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body, elapsed)
}

/// Records what it was sent; fails the first `failures` calls, each call
/// taking `delay`.
#[derive(Clone, Default)]
pub struct Recorder {
    pub sent: Arc<std::sync::Mutex<Vec<(String, Status, Status)>>>,
    pub calls: Arc<AtomicUsize>,
    pub failures: usize,
    pub transient: bool,
    pub delay: std::time::Duration,
    pub panics: bool,
}

impl Recorder {
    pub fn sent(&self) -> Vec<(String, Status, Status)> {
        self.sent.lock().unwrap().clone()
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl axum_watch::Alerter for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    async fn notify(&self, alert: &axum_watch::AlertRecord) -> Result<(), axum_watch::alert::AlertError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        assert!(!self.panics, "alerter bug");
        if n < self.failures {
            return Err(if self.transient {
                axum_watch::alert::AlertError::transient("503 from receiver")
            } else {
                axum_watch::alert::AlertError::permanent("400 from receiver")
            });
        }
        self.sent
            .lock()
            .unwrap()
            .push((alert.probe.clone(), alert.old_status, alert.new_status));
        Ok(())
    }
}
