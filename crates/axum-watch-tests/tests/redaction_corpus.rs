//! The redaction corpus: seventy-odd secret shapes — every shape issue 14
//! found unmasked among them — each in a probe's error (as an outcome's
//! error text, a returned `ProbeError` and, for a few, a panic) and in its
//! details, under an innocuous key and under a secret one, served by a real
//! registry on loopback. No part of any secret appears in any output:
//! `/status`, `/ready`, `/live`, `/startup`, per-probe paths, `?verbose`,
//! `application/health+json`, `/history`, `/alerts`, `/alerts/deliveries`,
//! `/probes`, both streams, `/metrics`, a dashboard that embeds the report,
//! `Debug` of the report, the results and the registry, what state-change
//! callbacks are given, the DEBUG log and (with `alerts`) what every
//! built-in alerter posts to a real receiver; with a storage shared through
//! the real Redis (`AXUM_WATCH_REDIS_URL`), the fleet view and the shared
//! history too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum_watch::options::Scheduling;
use axum_watch::{HealthRegistry, HealthRegistryBuilder, Outcome, Probe, ProbeError, Status};
use common::capture_logs;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// Every part of every secret of the corpus holds this marker, and nothing
/// else does: one search finds any part of any secret, whole or cut.
const MARK: &str = "QZX";

/// The one secret that cannot hold the marker: a number under a secret key.
const NUMERIC_SECRET: u64 = 735_791_357_913;

/// The shapes. `{a}`, `{b}` and `{c}` stand for the parts of the shape's
/// secret, each `QZX<shape><part>`; a shape's secret is everything they
/// stand for, and a cut one leaks whichever part survives.
const SHAPES: &[&str] = &[
    // Key names with prefixes, suffixes and any case (issue 14's first five).
    "password={a}",
    "PASSWORD = {a}",
    "DB_PASSWORD={a}",
    "PGPASSWORD={a} psql -h db",
    "MYSQL_PWD={a}",
    "passwd: {a}",
    "pass={a}",
    "db_pass={a}",
    "dbPass: {a}",
    "DBPASS={a}",
    "passphrase={a}",
    "client_secret={a}",
    "clientSecret: {a}",
    "AWS_SECRET_ACCESS_KEY={a}",
    "secret={a}",
    "access_token={a}",
    "refresh_token={a}",
    "sessionToken: {a}",
    "GITHUB_TOKEN={a}",
    "auth={a}",
    "basicAuth: {a}",
    "credentials={a}",
    "private_key={a}",
    "privateKey: {a}",
    "routing_key={a}",
    "--password={a}",
    "spring.datasource.password={a}",
    "export DB_PASSWORD=\"{a}\"",
    "PASSWORD: {a}",
    "token={a}, retrying",
    "password := {a}",
    "secret_key_base => {a}",
    // Header-style pairs.
    "X-API-Key: {a}",
    "x-api-key:{a}",
    "api_key={a}",
    "apikey={a}",
    "api-key: {a}",
    "API Key: {a}",
    "Private Key: {a}",
    "Secret-Key: {a}",
    "X-Auth-Token: {a}",
    "Authorization: Bearer {a}",
    "Authorization: Basic {a}=",
    "Proxy-Authorization: Basic {a}",
    "GET /v1/items?access_token={a}&page=2",
    // Quoted and structured text.
    "{\"password\":\"{a}\",\"user\":\"app\"}",
    "{\"client_secret\": \"{a}\"}",
    "{\\\"token\\\":\\\"{a}\\\"}",
    "{'password': '{a}'}",
    "password=\"{a} {b}\"",
    "<password>{a}</password>",
    "host=db user=app password={a} dbname=x",
    "Server=db;Uid=app;Pwd={a};",
    // A value on the line after its key.
    "password:\n{a}",
    "password:\n    {a}\nuser: app",
    "secret: |\n  {a}",
    // URL user info, passwords holding `/`, `@` and `:`.
    "postgres://app:{a}@db:5432/x",
    "redis://:{a}@cache:6379/0",
    "redis://:{a}/{b}@h",
    "mysql://root:{a}@{b}:{c}@db/x",
    "amqp://guest:{a}@localhost:5672/%2f",
    "https://deploy:{a}@git.example.com/org/repo.git",
    "redis://default:{a}@cache:6379 then redis://:{b}@replica:6380",
    // DSNs without a scheme.
    "app:{a}@tcp(db:3306)/app",
    "app:{a}@db/app",
    "app:{a}@db:5432/app",
    "dsn=app:{a}@tcp(127.0.0.1:3306)/test",
    "user:{a}@cache: connection refused",
    // A bearer token standing alone.
    "sent Bearer {a}eyJhbGciOiJIUzI1NiJ9 upstream",
    // The registry's own rules: `redact_keys(["session", "cookie"])` and a regex.
    "session_id={a}",
    "Cookie: sid={a}; theme=dark",
    "charged with sk_live_{a}x9",
];

/// How many shapes, at the end of [`SHAPES`], only the registry's own rules cover.
const OWN_RULE_SHAPES: usize = 3;

/// Secret names the details use, in turn, for the shape's secret.
const SECRET_KEYS: &[&str] = &[
    "password",
    "DB_PASSWORD",
    "client_secret",
    "X-API-Key",
    "Secret-Key",
    "access_token",
    "sessionToken",
    "pass",
    "private key",
    "credentials",
    "auth",
    "apiKey",
    "Passphrase",
];

/// A shape with its secret filled in.
struct Shape {
    n: usize,
    text: String,
}

fn corpus() -> Vec<Shape> {
    SHAPES
        .iter()
        .enumerate()
        .map(|(n, template)| {
            let part = |p: char| format!("{MARK}{n:02}{p}");
            let text = template
                .replace("{a}", &part('a'))
                .replace("{b}", &part('b'))
                .replace("{c}", &part('c'));
            Shape { n, text }
        })
        .collect()
}

/// How a probe reports its shape.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// An outcome with the shape in its error text and its details.
    Outcome,
    /// A returned error with the shape as its message.
    Error,
    /// A panic with the shape in its message.
    Panic,
}

/// A probe that reports healthy on its first run, then its shape on every
/// later one: the second run is a transition, with alert records and
/// callbacks.
#[derive(Clone)]
struct Leaky {
    name: String,
    n: usize,
    text: String,
    kind: Kind,
    runs: Arc<AtomicUsize>,
}

impl Leaky {
    fn new(shape: &Shape, kind: Kind) -> Self {
        let suffix = match kind {
            Kind::Outcome => "outcome",
            Kind::Error => "error",
            Kind::Panic => "panic",
        };
        Self {
            name: format!("s{:02}-{suffix}", shape.n),
            n: shape.n,
            text: shape.text.clone(),
            kind,
            runs: Arc::default(),
        }
    }

    fn outcome(&self) -> Outcome {
        let text = self.text.as_str();
        let status = if self.n.is_multiple_of(2) {
            Status::Unhealthy
        } else {
            Status::Degraded
        };
        let key = SECRET_KEYS[self.n % SECRET_KEYS.len()];
        let secret = format!("{MARK}{:02}s", self.n);
        // The shape's secret, as a string, inside an object, in a list or as
        // a number, under a secret key; the shape itself under innocuous ones.
        let secret_value = match self.n % 4 {
            0 => json!(secret),
            1 => json!({"value": secret, "rotated": true}),
            2 => json!([secret, secret]),
            _ => json!(NUMERIC_SECRET),
        };
        Outcome::new(status)
            .error_text(format!("check failed: {text}"))
            .detail("info", text)
            .detail("dsn", text)
            .detail("nested", json!({"list": [text, 1], "inner": {"note": text}}))
            .detail(key, secret_value)
            .detail("connection", json!({"host": "db", "password": secret}))
            .detail(text, "keyed by the shape")
    }
}

impl Probe for Leaky {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        if self.runs.fetch_add(1, Ordering::SeqCst) == 0 {
            return Ok(Outcome::healthy().detail("info", "warming up"));
        }
        match self.kind {
            Kind::Outcome => Ok(self.outcome()),
            Kind::Error => Err(ProbeError::with_kind("DriverError", self.text.clone())),
            Kind::Panic => std::panic::panic_any(format!("lost the connection: {}", self.text)),
        }
    }
}

/// Every probe of the corpus: an outcome and an error per shape, and a
/// panic for a few.
fn probes() -> Vec<Leaky> {
    let corpus = corpus();
    let mut probes = Vec::new();
    for shape in &corpus {
        probes.push(Leaky::new(shape, Kind::Outcome));
        probes.push(Leaky::new(shape, Kind::Error));
        if shape.n % 16 == 3 {
            probes.push(Leaky::new(shape, Kind::Panic));
        }
    }
    probes
}

/// Stripe-style live keys: the shape the key names cannot know.
fn live_keys() -> impl for<'a> Fn(&'a str) -> Cow<'a, str> + Send + Sync + 'static {
    let re = regex::Regex::new(r"sk_live_[A-Za-z0-9]+").unwrap();
    move |text| re.replace_all(text, "***")
}

/// The corpus's registry options: its probes, the two extra key names and
/// the regex, and no background runs, so that every run is a request's.
fn builder(probes: &[Leaky]) -> HealthRegistryBuilder {
    let mut builder = HealthRegistry::builder()
        .cache_age(Duration::ZERO)
        .scheduling(Scheduling::WhileWatched)
        .redact_keys(["session", "cookie"])
        .redact_with(live_keys());
    for probe in probes {
        builder = builder.add(probe.clone());
    }
    builder
}

/// The shapes whose secret shows anywhere in `text`, as `(shape, context)`.
fn leaks(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(MARK).map(|k| from + k) {
        let n: usize = text[at + MARK.len()..]
            .get(..2)
            .and_then(|d| d.parse().ok())
            .unwrap_or(usize::MAX);
        let shape = SHAPES.get(n).map_or_else(|| "?".to_owned(), |s| format!("{n}: {s:?}"));
        let start = (0..=at.saturating_sub(60))
            .rev()
            .find(|k| text.is_char_boundary(*k))
            .unwrap_or(0);
        let end = (at + 20..=text.len())
            .find(|k| text.is_char_boundary(*k))
            .unwrap_or(text.len());
        found.push((shape, text[start..end].to_owned()));
        from = at + MARK.len();
    }
    if let Some(at) = text.find(&NUMERIC_SECRET.to_string()) {
        found.push((
            "the numeric secret".to_owned(),
            text[at.saturating_sub(40)..at].to_owned(),
        ));
    }
    found
}

/// The start of a long text, for a failure message.
fn short(text: &str) -> &str {
    let end = (0..=text.len().min(400))
        .rev()
        .find(|k| text.is_char_boundary(*k))
        .unwrap_or(0);
    &text[..end]
}

fn assert_clean(what: &str, text: &str) {
    let leaks = leaks(text);
    assert!(
        leaks.is_empty(),
        "{what}: {} secrets leaked:\n{}",
        leaks.len(),
        leaks
            .iter()
            .map(|(shape, context)| format!("  shape {shape}\n    …{context:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A plain HTTP/1 client over a real socket.
struct Http(Client<HttpConnector, Empty<Bytes>>);

impl Http {
    fn new() -> Self {
        Self(Client::builder(TokioExecutor::new()).build_http())
    }

    /// `GET path`: its status and whole body.
    async fn get(&self, addr: SocketAddr, path: &str) -> (u16, String) {
        self.get_as(addr, path, "*/*").await
    }

    /// `GET path` asking for the `accept` media type.
    async fn get_as(&self, addr: SocketAddr, path: &str, accept: &str) -> (u16, String) {
        let request = http::Request::get(format!("http://{addr}{path}"))
            .header(http::header::ACCEPT, accept)
            .body(Empty::new())
            .unwrap();
        let response = self.0.request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// The stream at `path` up to the end of its first event.
    async fn first_event(&self, addr: SocketAddr, path: &str) -> String {
        let response = self
            .0
            .get(format!("http://{addr}{path}").parse().unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "text/event-stream", "{path}");
        let mut body = response.into_body();
        let mut text = String::new();
        while !text.find("data: ").is_some_and(|at| text[at..].contains("\n\n")) {
            let frame = tokio::time::timeout(Duration::from_secs(20), body.frame())
                .await
                .unwrap_or_else(|_| panic!("no event on {path} within 20 s: {text:?}"))
                .unwrap_or_else(|| panic!("{path} ended before its first event: {text:?}"))
                .unwrap();
            if let Ok(data) = frame.into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
        }
        text
    }
}

/// The corpus is what the acceptance line asks: at least fifty shapes, each
/// with a secret of its own, among them every shape issue 14 listed.
#[test]
fn the_corpus_holds_every_listed_shape() {
    assert!(SHAPES.len() >= 50, "{} shapes", SHAPES.len());
    let corpus = corpus();
    for listed in [
        "DB_PASSWORD=",
        "PGPASSWORD=",
        "client_secret=",
        "access_token=",
        "X-API-Key: ",
        "Secret-Key: ",
        "pass=",
        "@tcp(db:3306)/app",
        "redis://:",
        "password:\n",
        "postgres://app:",
    ] {
        assert!(
            corpus.iter().any(|s| s.text.contains(listed)),
            "no shape holds {listed:?}"
        );
    }
    assert!(
        corpus
            .iter()
            .any(|s| s.text.starts_with("redis://:") && s.text.contains('/'))
    );
    for shape in &corpus {
        assert!(shape.text.contains(MARK), "shape {} has no secret", shape.n);
        let redacted = axum_watch::redact(&shape.text);
        if by_default(shape.n) {
            assert_clean(&format!("shape {} through axum_watch::redact", shape.n), &redacted);
        } else {
            // What the registry's own rules are for: the built-in ones
            // leave it alone.
            assert_eq!(redacted, shape.text, "shape {}", shape.n);
        }
    }
}

/// Whether the built-in rules cover shape `n`; the last shapes need the
/// registry's own (`redact_keys`, `redact_with`).
fn by_default(n: usize) -> bool {
    n < SHAPES.len() - OWN_RULE_SHAPES
}

#[tokio::test(flavor = "current_thread")]
async fn no_secret_reaches_any_output() {
    let (logs, _capture) = capture_logs(tracing::Level::DEBUG);
    let probes = probes();
    let transitions: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&transitions);
    let startup = Leaky::new(&corpus()[3], Kind::Outcome);
    #[cfg(feature = "alerts")]
    let receiver = common::Receiver::start().await;
    let builder = builder(&probes);
    #[cfg(feature = "alerts")]
    let builder = {
        use axum_watch::alert::{OpsgenieAlerter, PagerDutyAlerter, SlackAlerter, TeamsAlerter, WebhookAlerter};
        builder
            .alerter(WebhookAlerter::new(receiver.url("/webhook")).unwrap())
            .alerter(SlackAlerter::new(receiver.url("/slack")).unwrap())
            .alerter(TeamsAlerter::new(receiver.url("/teams")).unwrap())
            .alerter(TeamsAlerter::new(receiver.url("/adaptive")).unwrap().adaptive_card())
            .alerter(PagerDutyAlerter::new("routing-key").events_url(receiver.url("/pagerduty")))
            .alerter(OpsgenieAlerter::new("genie-key").api_url(receiver.url("/opsgenie")))
    };
    let registry = builder
        .max_alerts(1000)
        .startup_probe(startup)
        .on_state_change(move |alert| {
            seen.lock()
                .unwrap()
                .push(format!("{alert:?} {}", serde_json::to_string(alert).unwrap()));
        })
        .custom_dashboard(|ctx| {
            format!(
                "<html><script>const report = {};</script></html>",
                serde_json::to_string(ctx.report).unwrap()
            )
        })
        .build()
        .unwrap();
    registry.set_started();
    // The first run is healthy everywhere; the second and later ones carry
    // the shapes, so the second is a transition for every probe.
    let warm = registry.run_all().await;
    assert_eq!(warm.status, Status::Healthy);
    let addr = common::serve(registry.router()).await;
    let http = Http::new();

    let mut outputs: Vec<(String, String)> = Vec::new();
    for path in [
        "/health/status",
        "/health/ready",
        "/health/live",
        "/health/startup",
        "/health/history",
        "/health/alerts",
        "/health/metrics",
        "/health/dashboard",
    ] {
        let (code, body) = http.get(addr, path).await;
        assert!(code < 500 || code == 503, "{path}: {code} {}", short(&body));
        outputs.push((path.to_owned(), body));
    }
    // The faces beside them: a probe's own paths, the Kubernetes text,
    // health+json, the delivery log and the probe list.
    let mut more: Vec<String> = [
        "/health/ready?verbose",
        "/health/live?verbose",
        "/health/alerts/deliveries",
        "/health/probes",
    ]
    .map(str::to_owned)
    .to_vec();
    for name in ["s00-outcome", "s03-panic", "s48-error", "s53-outcome", "s70-outcome"] {
        more.extend([
            format!("/health/status/{name}"),
            format!("/health/ready/{name}"),
            format!("/health/ready/{name}?verbose"),
        ]);
    }
    for path in &more {
        let (code, body) = http.get(addr, path).await;
        assert!(code < 500 || code == 503, "{path}: {code} {}", short(&body));
        outputs.push((path.clone(), body));
    }
    for path in ["/health/status", "/health/ready"] {
        let (_, body) = http.get_as(addr, path, "application/health+json").await;
        assert!(body.contains("s00-outcome"), "{path} as health+json: {}", short(&body));
        outputs.push((format!("{path} as health+json"), body));
    }
    for path in ["/health/status/stream", "/health/ready/stream"] {
        outputs.push((path.to_owned(), http.first_event(addr, path).await));
    }
    let report = registry.run_all().await;
    outputs.push(("Debug of a report".to_owned(), format!("{report:?}")));
    outputs.push((
        "Debug of every result".to_owned(),
        report.probes.iter().map(|p| format!("{p:?}\n")).collect(),
    ));
    outputs.push((
        "Debug of the latest results".to_owned(),
        format!("{:?}", registry.latest_results().await),
    ));
    outputs.push(("Debug of the registry".to_owned(), format!("{registry:?}")));
    outputs.push(("Debug of the probes' outcomes".to_owned(), {
        probes
            .iter()
            // `Outcome` knows the built-in rules only.
            .filter(|p| matches!(p.kind, Kind::Outcome) && by_default(p.n))
            .map(|p| format!("{:?}\n", p.outcome()))
            .collect()
    }));
    outputs.push((
        "state-change callbacks".to_owned(),
        transitions.lock().unwrap().join("\n"),
    ));
    #[cfg(feature = "alerts")]
    {
        // One transition per probe, sent by each of the six alerters.
        let posts = receiver.wait_for(6 * probes.len()).await;
        for path in ["/webhook", "/slack", "/teams", "/adaptive", "/pagerduty", "/opsgenie"] {
            let bodies: Vec<&str> = posts
                .iter()
                .filter(|r| r.path.starts_with(path))
                .map(|r| r.raw.as_str())
                .collect();
            assert!(
                bodies.iter().any(|b| b.contains("***")),
                "{path} carries the redacted errors"
            );
            outputs.push((format!("what {path} was sent"), bodies.join("\n")));
        }
    }
    outputs.push(("the DEBUG log".to_owned(), logs.contents()));

    for (what, text) in &outputs {
        assert_clean(what, text);
    }

    // None of that is vacuous: every probe is there, failing, masked.
    let status: Value = serde_json::from_str(&outputs[0].1).unwrap();
    let results = status["probes"].as_array().unwrap();
    assert_eq!(results.len(), probes.len());
    for (result, probe) in results.iter().zip(&probes) {
        assert_eq!(result["name"], probe.name.as_str());
        assert_ne!(result["status"], "healthy", "{result}");
        let error = result["error"].as_str().unwrap();
        assert!(error.contains("***"), "{}: nothing masked in {error:?}", probe.name);
        if matches!(probe.kind, Kind::Outcome) {
            let details = &result["details"];
            let key = SECRET_KEYS[probe.n % SECRET_KEYS.len()];
            assert_eq!(details[key], "***", "{}: {details}", probe.name);
            assert_eq!(details["connection"], json!({"host": "db", "password": "***"}));
            assert!(details["info"].as_str().unwrap().contains("***"), "{details}");
            assert!(details["nested"]["inner"]["note"].as_str().unwrap().contains("***"));
        }
    }
    let history: Value = serde_json::from_str(&outputs[4].1).unwrap();
    assert!(history["probes"]["s00-outcome"].as_array().unwrap().len() >= 2);
    let alerts: Value = serde_json::from_str(&outputs[5].1).unwrap();
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), probes.len());
    assert_eq!(transitions.lock().unwrap().len(), probes.len());
    let log = logs.contents();
    assert!(log.contains("probe ran"), "the log was captured: {}", short(&log));
    assert!(log.contains("password=***"), "errors are logged, redacted");
    for path in ["/health/status/stream", "/health/ready/stream"] {
        let event = &outputs.iter().find(|(what, _)| what == path).unwrap().1;
        assert!(
            event.contains("s00-outcome") && event.contains("***"),
            "{path}: {}",
            short(event)
        );
    }
    let dashboard = &outputs[7].1;
    assert!(
        dashboard.contains("s00-outcome") && dashboard.contains("***"),
        "{}",
        short(dashboard)
    );
}

/// Details of every shape under keys named like secrets and not, nested in
/// objects and lists, come out masked; numbers, flags and plain text stay.
#[tokio::test(flavor = "current_thread")]
async fn details_keep_what_is_no_secret() {
    let registry = HealthRegistry::builder()
        .add(axum_watch::probe::from_fn("pool", || async {
            Ok(Outcome::healthy()
                .detail("pool_size", 10)
                .detail("passed", 3)
                .detail("compass", "north")
                .detail("authentication", "failed")
                .detail("url", "https://db.example.com:5432/app")
                .detail("status", "authentication failed: bad credentials")
                .detail("tokens", json!({"client_id": "web", "token_url": "https://sso/token"})))
        }))
        .build()
        .unwrap();
    let result = registry.run_all().await.probes[0].clone();
    assert_eq!(
        Value::Object(result.details.unwrap()),
        json!({
            "pool_size": 10,
            "passed": 3,
            "compass": "north",
            "authentication": "failed",
            "url": "https://db.example.com:5432/app",
            "status": "authentication failed: bad credentials",
            // A key named like a secret is masked whole, whatever it holds.
            "tokens": "***",
        })
    );
}

/// The fleet view and the shared history carry another replica's results
/// as that replica redacted them, through the real Redis.
#[cfg(feature = "redis-storage")]
#[tokio::test(flavor = "current_thread")]
async fn the_fleet_view_and_the_shared_store_hold_no_secret() {
    use axum_watch::Storage;
    use axum_watch::storage::RedisStorage;

    let (logs, _capture) = capture_logs(tracing::Level::DEBUG);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let service = format!("t-redaction-{}-{nanos}", std::process::id());
    let store = |replica: &str| {
        RedisStorage::builder(common::redis_url(), &service)
            .replica(replica)
            .max_alerts(1000)
            .build()
            .unwrap()
    };
    let (store_a, store_b) = (store("replica-a"), store("replica-b"));
    let probes = probes();
    let a = HealthRegistry::builder()
        .add(axum_watch::probe::from_fn("web", || async { Ok(Outcome::healthy()) }))
        .cache_age(Duration::ZERO)
        .storage(store_a.clone())
        .build()
        .unwrap();
    let b = builder(&probes).storage(store_b.clone()).build().unwrap();
    b.run_all().await;
    b.run_all().await;
    a.run_all().await;
    let settled = std::time::Instant::now();
    while store_a.write_buffer().pending + store_b.write_buffer().pending > 0 {
        assert!(
            settled.elapsed() < Duration::from_secs(10),
            "the writes never reached Redis at {}",
            common::redis_url()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let addr = common::serve(a.router()).await;
    let http = Http::new();
    let (code, fleet) = http.get(addr, "/health/status?scope=fleet").await;
    assert_eq!(code, 207, "{}", short(&fleet));
    let view: Value = serde_json::from_str(&fleet).unwrap();
    assert_eq!(view["store"], "ok", "{}", short(&fleet));
    let other = &view["replicas"][1];
    assert_eq!(other["replica"], "replica-b", "{}", short(&fleet));
    assert_eq!(other["probes"].as_array().unwrap().len(), probes.len());
    assert!(fleet.contains("***"));
    let (_, history) = http.get(addr, "/health/history").await;
    assert!(history.contains("s00-outcome"), "{}", short(&history));
    let (_, alerts) = http.get(addr, "/health/alerts").await;
    assert!(alerts.contains("s00-outcome"), "{}", short(&alerts));
    for (what, text) in [
        ("the fleet view", fleet),
        ("the shared history", history),
        ("the shared alert log", alerts),
        (
            "the stored history, read back",
            format!("{:?}", store_a.history().await.unwrap()),
        ),
        (
            "the stored latest results, read back",
            format!("{:?}", store_b.latest().await.unwrap()),
        ),
        ("the DEBUG log", logs.contents()),
    ] {
        assert_clean(what, &text);
    }
}
