//! The built `axum-watch` binary against real servers on loopback: exit
//! codes and lines of `check` for pass, fail, unreachable and timeout;
//! `tail` in non-terminal mode, a line per transition, through a dropped
//! stream and a reconnection; credentials never in any output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use axum_watch::{HealthRegistry, HealthRegistryBuilder, Outcome, ProbeError, probe};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdout, Command};

const BIN: &str = env!("CARGO_BIN_EXE_axum-watch");
const PASSWORD: &str = "hunter2-pa55word";

/// A probe whose status the test sets: 0 healthy, 1 degraded, 2 unhealthy.
#[derive(Clone)]
struct Switch(Arc<AtomicU8>);

impl Switch {
    fn new() -> Self {
        Self(Arc::new(AtomicU8::new(0)))
    }

    fn set(&self, state: u8) {
        self.0.store(state, Ordering::SeqCst);
    }

    fn probe(&self, name: &'static str) -> impl axum_watch::Probe {
        let state = Arc::clone(&self.0);
        probe::from_fn(name, move || {
            let state = state.load(Ordering::SeqCst);
            async move {
                match state {
                    0 => Ok(Outcome::healthy()),
                    1 => Ok(Outcome::degraded()),
                    _ => Err(ProbeError::msg(format!("{name} is down"))),
                }
            }
        })
    }
}

/// A registry with a critical `db` and a non-critical `cache`.
fn builder(db: &Switch, cache: &Switch) -> HealthRegistryBuilder {
    HealthRegistry::builder()
        .add(db.probe("db"))
        .add_non_critical(cache.probe("cache"))
        .cache_age(Duration::ZERO)
        .circuit_breaker(false)
}

/// Serves `registry` on `listener` until the registry has drained.
fn serve_on(listener: TcpListener, registry: &HealthRegistry) -> tokio::task::JoinHandle<()> {
    let app: axum::Router = axum::Router::new()
        .route("/plain", axum::routing::get(|| async { "hello" }))
        .merge(registry.router());
    let stopped = registry.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                while stopped.lifecycle() != axum_watch::model::Lifecycle::Stopped {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .unwrap();
    })
}

async fn serve(registry: &HealthRegistry) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    serve_on(listener, registry);
    addr
}

/// Runs the binary to its end.
async fn run(args: &[&str]) -> (i32, String, String, Duration) {
    let started = Instant::now();
    let Output { status, stdout, stderr } = Command::new(BIN).args(args).output().await.unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8(stdout).unwrap();
    let stderr = String::from_utf8(stderr).unwrap();
    (status.code().unwrap(), stdout, stderr, elapsed)
}

/// `check` with its exit code and its one line (from stdout or stderr).
async fn check(args: &[&str]) -> (i32, String) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let (code, stdout, stderr, _) = run(&all).await;
    let out = format!("{stdout}{stderr}");
    assert_eq!(out.lines().count(), 1, "one line: {out:?}");
    assert!(!out.contains(PASSWORD), "a password in the output: {out}");
    (code, out.trim_end().to_owned())
}

/// A loopback port nothing listens on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A listener that accepts connections and never answers.
async fn silent() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_fails_and_names_what_failed() {
    let (db, cache) = (Switch::new(), Switch::new());
    let registry = builder(&db, &cache).build().unwrap();
    let addr = serve(&registry).await;
    let ready = format!("http://{addr}/health/ready");

    let (code, line) = check(&[&ready]).await;
    assert_eq!(code, 0, "{line}");
    assert!(line.starts_with("pass: 200 healthy in "), "{line}");
    assert!(line.ends_with(&format!(" ms - {ready}")), "{line}");
    // A bare server means /health/ready.
    assert_eq!(check(&[&format!("http://{addr}")]).await.0, 0);

    // A failing non-critical probe keeps it ready.
    cache.set(2);
    assert_eq!(check(&[&ready]).await.0, 0);
    db.set(1);
    let (code, line) = check(&[&ready]).await;
    assert_eq!((code, line.starts_with("pass: 200 degraded")), (0, true), "{line}");

    db.set(2);
    let (code, line) = check(&[&ready]).await;
    assert_eq!(code, 1, "{line}");
    assert!(line.starts_with("fail: 503 unhealthy (failing: db) in "), "{line}");
    // /live stays up, /status answers 207 unhealthy: a failure too.
    assert_eq!(check(&[&format!("http://{addr}/health/live")]).await.0, 0);
    let (code, line) = check(&[&format!("http://{addr}/health/status")]).await;
    assert_eq!(code, 1, "{line}");
    assert!(line.starts_with("fail: 207 unhealthy"), "{line}");

    // Not a health report: a failure that says so.
    let (code, line) = check(&[&format!("http://{addr}/plain")]).await;
    assert_eq!(code, 1);
    assert!(
        line.starts_with("fail: 200 OK, but not a health report (bad JSON: "),
        "{line}"
    );
    let (code, line) = check(&[&format!("http://{addr}/nowhere")]).await;
    assert_eq!(code, 1);
    assert!(line.starts_with("fail: 404 Not Found in "), "{line}");

    // --quiet prints nothing and keeps the code.
    let (code, stdout, stderr, _) = run(&["check", &ready, "--quiet"]).await;
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (1, "", ""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_fails_while_starting_and_draining() {
    let (db, cache) = (Switch::new(), Switch::new());
    let registry = builder(&db, &cache)
        .grace_period(Duration::from_secs(60))
        .build()
        .unwrap();
    let addr = serve(&registry).await;
    let (code, line) = check(&[&format!("http://{addr}/health/ready")]).await;
    assert_eq!(code, 1);
    assert!(line.starts_with("fail: 503 starting"), "{line}");

    let registry = builder(&db, &cache)
        .drain_delay(Duration::from_secs(30))
        .build()
        .unwrap();
    let addr = serve(&registry).await;
    let draining = registry.clone();
    tokio::spawn(async move { draining.drain().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (code, line) = check(&[&format!("http://{addr}/health/ready")]).await;
    assert_eq!(code, 1);
    assert!(line.starts_with("fail: 503 draining"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_cannot_reach_a_closed_port_an_unknown_host_or_a_silent_server() {
    let port = free_port();
    let (code, line) = check(&[&format!("http://127.0.0.1:{port}/health/ready")]).await;
    assert_eq!(code, 2, "{line}");
    assert_eq!(
        line,
        format!("unreachable: refused: nothing listens on 127.0.0.1:{port} - http://127.0.0.1:{port}/health/ready")
    );

    let (code, line) = check(&["http://nowhere.invalid/health/ready"]).await;
    assert_eq!(code, 2, "{line}");
    assert!(
        line.starts_with("unreachable: DNS: cannot resolve nowhere.invalid: "),
        "{line}"
    );

    let addr = silent().await;
    let started = Instant::now();
    let (code, line) = check(&[&format!("http://{addr}/health/ready"), "--timeout", "300ms"]).await;
    let took = started.elapsed();
    assert_eq!(code, 2, "{line}");
    assert!(
        line.starts_with("unreachable: timeout: no answer within 300 ms - "),
        "{line}"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );

    // A usage error is neither a verdict nor silent.
    let (code, _, stderr, _) = run(&["check"]).await;
    assert_eq!(code, 64);
    assert!(stderr.contains("a URL is needed"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_url_are_sent_and_never_shown() {
    let (db, cache) = (Switch::new(), Switch::new());
    let registry = builder(&db, &cache).basic_auth("ops", PASSWORD).build().unwrap();
    let addr = serve(&registry).await;
    let with = |password: &str, path: &str| format!("http://ops:{password}@{addr}{path}");

    let (code, line) = check(&[&with(PASSWORD, "/health/ready")]).await;
    assert_eq!(code, 0, "{line}");
    assert!(line.ends_with(&format!(" - http://***@{addr}/health/ready")), "{line}");

    let (code, line) = check(&[&with("wrong-hunter2-pa55word", "/health/ready")]).await;
    assert_eq!(code, 1, "{line}");
    assert!(
        line.starts_with("fail: 401 Unauthorized: credentials missing or refused"),
        "{line}"
    );
    assert!(!line.contains("wrong-hunter2"), "{line}");

    // Secret query values are masked too; every failure is checked by `check`.
    let (code, line) = check(&[&format!("http://ops:{PASSWORD}@{addr}/health/ready?token={PASSWORD}")]).await;
    assert_eq!(code, 0, "{line}");
    assert!(line.ends_with("/health/ready?token=***"), "{line}");
    let port = free_port();
    let (code, _) = check(&[&format!("http://ops:{PASSWORD}@127.0.0.1:{port}/")]).await;
    assert_eq!(code, 2);
    let silent = silent().await;
    let (code, _) = check(&[&format!("http://ops:{PASSWORD}@{silent}/"), "--timeout", "200ms"]).await;
    assert_eq!(code, 2);
    let (code, _) = check(&[&format!("http://ops:{PASSWORD}@nowhere.invalid/")]).await;
    assert_eq!(code, 2);
    let (code, line) = check(&[&format!("http://ops:{PASSWORD}@{addr}/plain")]).await;
    assert_eq!(code, 1, "{line}");
    // Usage errors never echo the URL.
    let (code, stdout, stderr, _) = run(&["check", &format!("ftp://ops:{PASSWORD}@{addr}/")]).await;
    assert_eq!(code, 64);
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD), "{stderr}");

    // tail: connected, refused and a stream that drops.
    let mut tail = Tail::start(&with(PASSWORD, "/health")).await;
    let first = tail.line().await;
    assert!(
        first.contains(&format!("http://***@{addr}/health/status/stream: status healthy")),
        "{first}"
    );
    let (stdout, stderr) = tail.stop().await;
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "{stdout}{stderr}"
    );
    let mut tail = Tail::start(&format!("http://ops:{PASSWORD}@127.0.0.1:{port}/health")).await;
    let dropped = tail.error_line().await;
    assert!(dropped.contains("refused: nothing listens on"), "{dropped}");
    let (stdout, stderr) = tail.stop().await;
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "{stdout}{stderr}"
    );
}

/// A running `axum-watch tail` with its output piped: not a terminal.
struct Tail {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Lines<BufReader<tokio::process::ChildStderr>>,
    seen: (String, String),
}

impl Tail {
    async fn start(url: &str) -> Self {
        let mut child = Command::new(BIN)
            .args(["tail", url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        Self {
            child,
            stdout,
            stderr,
            seen: (String::new(), String::new()),
        }
    }

    /// The next stdout line, within 10 s.
    async fn line(&mut self) -> String {
        let line = tokio::time::timeout(Duration::from_secs(10), self.stdout.next_line())
            .await
            .expect("no line within 10 s")
            .unwrap()
            .expect("tail ended");
        self.seen.0.push_str(&line);
        self.seen.0.push('\n');
        line
    }

    /// The next stderr line, within 10 s.
    async fn error_line(&mut self) -> String {
        let line = tokio::time::timeout(Duration::from_secs(10), self.stderr.next_line())
            .await
            .expect("no error line within 10 s")
            .unwrap()
            .expect("tail ended");
        self.seen.1.push_str(&line);
        self.seen.1.push('\n');
        line
    }

    /// No stdout line for `quiet`.
    async fn silent_for(&mut self, quiet: Duration) {
        if let Ok(line) = tokio::time::timeout(quiet, self.stdout.next_line()).await {
            panic!("unexpected line {line:?}");
        }
    }

    /// Kills it; everything it printed.
    async fn stop(mut self) -> (String, String) {
        self.child.kill().await.unwrap();
        while let Ok(Some(line)) = self.stdout.next_line().await {
            self.seen.0.push_str(&line);
        }
        while let Ok(Some(line)) = self.stderr.next_line().await {
            self.seen.1.push_str(&line);
        }
        self.seen
    }
}

/// The line without its leading timestamp.
fn what(line: &str) -> &str {
    let (at, rest) = line.split_once(' ').unwrap();
    assert!(at.ends_with('Z') && at.len() == 20, "a UTC timestamp first: {line}");
    rest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_a_line_per_transition_and_reconnects_when_the_stream_drops() {
    let (db, cache) = (Switch::new(), Switch::new());
    let registry = builder(&db, &cache)
        .poll_interval(Duration::from_secs(1))
        .drain_delay(Duration::from_millis(500))
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = serve_on(listener, &registry);

    let mut tail = Tail::start(&format!("http://{addr}/health")).await;
    assert_eq!(
        what(&tail.line().await),
        format!("http://{addr}/health/status/stream: status healthy, 2 probes")
    );
    tail.silent_for(Duration::from_millis(2500)).await;

    db.set(2);
    assert_eq!(what(&tail.line().await), "status: healthy -> unhealthy");
    assert_eq!(what(&tail.line().await), "db: healthy -> unhealthy: db is down");
    tail.silent_for(Duration::from_millis(2500)).await;

    cache.set(1);
    assert_eq!(what(&tail.line().await), "cache: healthy -> degraded");
    db.set(0);
    assert_eq!(what(&tail.line().await), "status: unhealthy -> healthy");
    assert_eq!(what(&tail.line().await), "db: unhealthy -> healthy");
    tail.silent_for(Duration::from_millis(2500)).await;

    // The service drains: one line for it, then the stream ends.
    registry.drain().await;
    let line = tail.line().await;
    assert_eq!(what(&line), "lifecycle: serving -> draining");
    server.await.unwrap();
    let dropped = tail.error_line().await;
    assert_eq!(what(&dropped), "the server ended the stream; reconnecting in 1 s");
    let refused = tail.error_line().await;
    assert_eq!(
        what(&refused),
        format!("refused: nothing listens on {addr}; reconnecting in 2 s"),
        "doubling waits"
    );

    // A new instance on the same port: the tail picks it up and reports
    // what changed while it was away.
    let listener = TcpListener::bind(addr).await.unwrap();
    cache.set(2);
    let registry = builder(&db, &cache)
        .poll_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    serve_on(listener, &registry);
    assert_eq!(what(&tail.error_line().await), "reconnected");
    assert_eq!(what(&tail.line().await), "lifecycle: draining -> serving");
    assert_eq!(what(&tail.line().await), "cache: degraded -> unhealthy: cache is down");
    tail.silent_for(Duration::from_millis(2500)).await;
    tail.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_gives_up_on_what_is_not_a_stream() {
    let (db, cache) = (Switch::new(), Switch::new());
    let registry = builder(&db, &cache).build().unwrap();
    let addr = serve(&registry).await;
    let (code, stdout, stderr, took) = run(&["tail", &format!("http://{addr}/plain/stream")]).await;
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr.trim_end(),
        format!("axum-watch tail: http://{addr}/plain/stream answered 404 Not Found, not a status stream")
    );
    assert!(took < Duration::from_secs(2));
}
