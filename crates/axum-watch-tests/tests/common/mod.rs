//! Helpers shared by the integration tests: requests through the real router,
//! servers and ports on loopback, the services' addresses, probes whose
//! status a test can flip and alerters and receivers that record what they
//! were sent.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use axum_watch::{HealthRegistry, Outcome, Probe, ProbeError, ProbeResult, Status};
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub mod states;

// ---------------------------------------------------------------------------
// Requests through the router
// ---------------------------------------------------------------------------

/// What a request can be sent to: a router, or a registry's router.
pub trait App {
    fn app(&self) -> Router;
}

impl App for Router {
    fn app(&self) -> Router {
        self.clone()
    }
}

impl App for HealthRegistry {
    fn app(&self) -> Router {
        self.router()
    }
}

impl<T: App + ?Sized> App for &T {
    fn app(&self) -> Router {
        (**self).app()
    }
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The whole response.
    pub async fn read(response: Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Self {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// The response with only the first chunk of its body: streams never end.
    pub async fn first_chunk(response: Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = match response.into_body().frame().await {
            Some(Ok(frame)) => frame.into_data().map(|d| d.to_vec()).unwrap_or_default(),
            _ => Vec::new(),
        };
        Self {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn text(&self) -> String {
        self.body.clone()
    }
}

/// `request` through the router of `app`, with the whole response.
pub async fn call(app: impl App, request: Request<Body>) -> Reply {
    Reply::read(app.app().oneshot(request).await.unwrap()).await
}

pub async fn send(app: impl App, method: Method, uri: &str) -> Reply {
    call(
        app,
        Request::builder().method(method).uri(uri).body(Body::empty()).unwrap(),
    )
    .await
}

pub async fn get(app: impl App, uri: &str) -> Reply {
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
    env_or("PROMTOOL", "promtool")
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

// ---------------------------------------------------------------------------
// Servers and ports on loopback
// ---------------------------------------------------------------------------

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

/// A loopback port nothing listens on: bound, then released.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP listener on 127.0.0.1 that accepts every connection and never
/// reads or writes a byte: a frozen server. It lives as long as the test's
/// runtime.
pub async fn silent_listener() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr
}

// ---------------------------------------------------------------------------
// The services on loopback
// ---------------------------------------------------------------------------

/// The environment variable `var`, or `default` when it is unset.
pub fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// `host:port` from the environment variable `var`, or from `default`.
pub fn host_port(var: &str, default: &str) -> (String, u16) {
    let addr = env_or(var, default);
    let (host, port) = addr.rsplit_once(':').unwrap_or_else(|| panic!("{var} is host:port"));
    (host.to_owned(), port.parse().unwrap())
}

/// Where the service scripts keep what they make (test CAs, virtualenvs):
/// `$XDG_CACHE_HOME`, else `$HOME/.cache`.
pub fn cache_dir() -> String {
    env_or("XDG_CACHE_HOME", &format!("{}/.cache", env_or("HOME", "/root")))
}

/// The test PostgreSQL server: `AXUM_WATCH_POSTGRES_URL`.
pub fn postgres_url() -> String {
    env_or("AXUM_WATCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
}

/// The test MariaDB server: `AXUM_WATCH_MYSQL_URL`.
pub fn mysql_url() -> String {
    env_or("AXUM_WATCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
}

/// The test Redis server: `AXUM_WATCH_REDIS_URL`.
pub fn redis_url() -> String {
    env_or("AXUM_WATCH_REDIS_URL", "redis://127.0.0.1:6379")
}

/// A variable `scripts/services/tls.sh` exports for the TLS tests (the
/// TLS-only servers' URLs, the test CA, the wrong CA, the client
/// certificate): without it the test fails, it never skips.
pub fn tls_env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: the TLS tests need the servers of scripts/services/tls.sh \
             (run scripts/test, or source scripts/services/lib.sh and scripts/services/tls.sh first)"
        )
    })
}

/// The contents of the file a [`tls_env`] variable names.
pub fn tls_file(var: &str) -> Vec<u8> {
    let path = tls_env(var);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{var}={path} cannot be read: {e}"))
}

// ---------------------------------------------------------------------------
// Running one probe
// ---------------------------------------------------------------------------

/// The result of one run of `probe` in a registry of its own, without the
/// circuit breaker.
pub async fn run_one(probe: impl Probe) -> ProbeResult {
    let registry = HealthRegistry::builder()
        .add(probe)
        .circuit_breaker(false)
        .build()
        .unwrap();
    registry.run_all().await.probes[0].clone()
}

/// The result of one run of `probe` in a registry of its own with the
/// default settings.
pub async fn run(probe: impl Probe) -> ProbeResult {
    let registry = HealthRegistry::builder().add(probe).build().unwrap();
    registry.run_all().await.probes[0].clone()
}

/// The error of `result`, empty when there is none.
pub fn error(result: &ProbeResult) -> &str {
    result.error.as_deref().unwrap_or_default()
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Captures the log at `level` and above on this thread for as long as the
/// returned guards live.
pub fn capture_logs(level: tracing::Level) -> (LogBuffer, impl Sized) {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    // While only one dispatcher exists, tracing-core caches a callsite's
    // interest from the default of whichever thread hits it first: another
    // test's thread (no subscriber) would cache "never" for the library's
    // callsites and nothing would be captured. A second live dispatcher
    // turns that fast path off, so interest is computed over both.
    let second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let guard = tracing::subscriber::set_default(subscriber);
    (logs, (guard, second))
}

// ---------------------------------------------------------------------------
// Alerters and the receiver they send to
// ---------------------------------------------------------------------------

/// Records what it was sent; fails the first `failures` calls, each call
/// taking `delay`.
#[derive(Clone, Default)]
pub struct Recorder {
    pub sent: Arc<Mutex<Vec<(String, Status, Status)>>>,
    pub calls: Arc<AtomicUsize>,
    pub failures: usize,
    pub transient: bool,
    pub delay: Duration,
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

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub raw: String,
    pub body: Value,
    pub at: Instant,
}

/// How the receiver answers one request.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// This status with a short body (`ok`, or `invalid_payload` for errors).
    Answer(u16),
    /// This status with the request's own path and body echoed back.
    Echo(u16),
    /// 200, after this long.
    Slow(Duration),
}

#[derive(Clone)]
struct Shared {
    requests: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Behaviour>>>,
    default: Arc<Mutex<Behaviour>>,
}

/// An axum server on 127.0.0.1:0 that records every request and answers as
/// scripted (then with the default behaviour, 200 at first).
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Shared,
}

async fn record(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let raw = String::from_utf8_lossy(&body).into_owned();
    let behaviour = shared
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(*shared.default.lock().unwrap());
    let path = uri.path_and_query().map(ToString::to_string).unwrap_or_default();
    shared.requests.lock().unwrap().push(Received {
        method,
        path: path.clone(),
        headers,
        body: serde_json::from_str(&raw).unwrap_or(Value::Null),
        raw: raw.clone(),
        at: Instant::now(),
    });
    match behaviour {
        Behaviour::Answer(code) => {
            let status = StatusCode::from_u16(code).unwrap();
            let text = if status.is_success() { "ok" } else { "invalid_payload" };
            (status, text.to_owned())
        }
        Behaviour::Echo(code) => (StatusCode::from_u16(code).unwrap(), format!("{path} {raw}")),
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            (StatusCode::OK, "ok".to_owned())
        }
    }
}

impl Receiver {
    pub async fn start() -> Self {
        let shared = Shared {
            requests: Arc::default(),
            script: Arc::default(),
            default: Arc::new(Mutex::new(Behaviour::Answer(200))),
        };
        let app = Router::new().fallback(record).with_state(shared.clone());
        let addr = serve(app).await;
        Self { addr, shared }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests this way, in order.
    pub fn script(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.shared.script.lock().unwrap().extend(behaviours);
    }

    /// Answers every unscripted request this way.
    pub fn always(&self, behaviour: Behaviour) {
        *self.shared.default.lock().unwrap() = behaviour;
    }

    pub fn requests(&self) -> Vec<Received> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Polls until at least `n` requests arrived; panics after 5 s.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} requests, got {}: {requests:#?}",
                requests.len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Asserts that the count stays at `n` for `quiet` (no late retry).
    pub async fn stays_at(&self, n: usize, quiet: Duration) -> Vec<Received> {
        let deadline = Instant::now() + quiet;
        while Instant::now() < deadline {
            assert_eq!(self.requests().len(), n, "{:#?}", self.requests());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let requests = self.requests();
        assert_eq!(requests.len(), n, "{requests:#?}");
        requests
    }
}
