//! Probes added and removed at runtime, and route discovery: through the
//! real router (and a real socket for the WebSocket route), the report,
//! `/status`, `/metrics`, `/probes` and the streams.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::handler::Handler;
use axum::response::Response;
use axum::routing::get;
use axum_watch::passive::{RouteProbe, StatsConfig};
use axum_watch::{AddProbeErrorKind, HealthRegistry, Outcome, ProbeExt, Status, probe};
use common::{Switch, capture_logs, get as fetch, socket_get};
use futures_util::{SinkExt, StreamExt};
use http::Request;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message as Frame;
use tower::ServiceExt;

/// The probes of a report (or of `/probes`), by name.
fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

fn probe<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no probe {name} in {report}"))
}

async fn ws(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            if let Message::Text(text) = message {
                let _ = socket.send(Message::Text(text)).await;
            }
        }
    })
}

#[tokio::test]
async fn five_routes_make_four_route_probes_each_with_its_own_counts() {
    let checkout = RouteProbe::new("checkout").with_config(StatsConfig::default().min_calls(1));
    let registry = HealthRegistry::builder()
        .add(checkout.clone())
        .cache_age(Duration::ZERO)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/users", get(|| async { "[]" }))
        .route("/users/{id}", get(|| async { "{}" }))
        .route("/ws", get(ws))
        .route("/internal/debug", get(|| async { "debug" }))
        .route("/checkout", get((|| async { "ok" }).layer(checkout)))
        // Merged before the layer: the health routes are wrapped too, and
        // still never discovered.
        .merge(registry.router())
        .layer(
            registry
                .discover_routes()
                .with_config(StatsConfig::default().min_calls(1))
                .with_tags(["api"])
                .exclude("/internal/*"),
        );
    let addr = common::serve(app).await;

    for (path, times) in [
        ("/users", 2),
        ("/users/7", 3),
        ("/internal/debug", 2),
        ("/checkout", 4),
        ("/nowhere", 2),
        ("/health/live", 1),
    ] {
        for _ in 0..times {
            socket_get(addr, path).await;
        }
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    socket.send(Frame::text("hi")).await.unwrap();
    assert_eq!(socket.next().await.unwrap().unwrap(), Frame::text("hi"));
    socket.close(None).await.unwrap();

    let (code, body, _) = socket_get(addr, "/health/status").await;
    assert_eq!(code, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        names(&report["probes"]),
        ["checkout", "route:GET:users", "route:GET:users.:id", "route:GET:ws"],
        "{report}"
    );
    // Each counts its own requests, the hand-placed one included, and
    // nothing twice.
    for (name, count) in [
        ("checkout", 4),
        ("route:GET:users", 2),
        ("route:GET:users.:id", 3),
        ("route:GET:ws", 1),
    ] {
        let p = probe(&report, name);
        assert_eq!(p["details"]["request_count"], count, "{name}: {p}");
        assert_eq!(p["status"], "healthy", "{p}");
    }
    let users = probe(&report, "route:GET:users.:id");
    assert_eq!(users["description"], "GET /users/{id}");
    assert_eq!(users["tags"], serde_json::json!(["api"]));
    assert_eq!(users["critical"], true);
    let socket = probe(&report, "route:GET:ws");
    assert_eq!(socket["description"], "GET /ws (WebSocket)");
    assert_eq!(socket["tags"], serde_json::json!(["api", "websocket"]));
    assert_eq!(socket["details"]["last_status_code"], 101);
    assert!(probe(&report, "checkout").get("description").is_none_or(Value::is_null));

    let (_, body, _) = socket_get(addr, "/health/probes").await;
    let listed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(names(&listed["probes"]), names(&report["probes"]));
    assert!(
        listed["probes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["kind"] == "passive"),
        "{listed}"
    );
    assert_eq!(registry.runtime_probes(), 3);
}

#[tokio::test]
async fn a_nested_router_s_own_layer_and_a_probe_outside_the_layer_take_their_routes() {
    let registry = HealthRegistry::builder().cache_age(Duration::ZERO).build().unwrap();
    let outside = RouteProbe::new("orders");
    registry.add_probe(outside.clone()).unwrap();
    let admin = Router::new().route("/stats", get(|| async { "{}" })).layer(
        registry
            .discover_routes()
            .with_tags(["admin"])
            .critical(false)
            .thresholds(2, 1),
    );
    // A route probe outside the discovery layer of its route, and no
    // application layer around that router.
    let orders = Router::new()
        .route("/orders", get(|| async { "[]" }))
        .layer(registry.discover_routes().with_tags(["orders"]))
        .route_layer(outside.clone());
    let app: Router = Router::new()
        .route("/", get(|| async { "home" }).post(|| async { "posted" }))
        .nest("/admin", admin)
        .layer(registry.discover_routes().with_tags(["app"]))
        .merge(orders);
    for (method, path) in [
        ("GET", "/admin/stats"),
        ("GET", "/admin/stats"),
        ("GET", "/"),
        ("POST", "/"),
        ("GET", "/orders"),
    ] {
        let request = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert!(response.status().is_success(), "{method} {path}: {}", response.status());
    }
    let report = fetch(&registry.router(), "/health/status").await.json();
    assert_eq!(
        names(&report["probes"]),
        ["orders", "route:GET:admin.stats", "route:GET:index", "route:POST:index"],
        "{report}"
    );
    let stats = probe(&report, "route:GET:admin.stats");
    assert_eq!(
        stats["tags"],
        serde_json::json!(["admin"]),
        "the inner layer's: {stats}"
    );
    assert_eq!(stats["critical"], false);
    assert_eq!(stats["details"]["request_count"], 2);
    let listed = fetch(&registry.router(), "/health/probes").await.json();
    let info = listed["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "route:GET:admin.stats")
        .unwrap()
        .clone();
    assert_eq!(info["failure_threshold"], 2, "{info}");
    assert_eq!(probe(&report, "route:POST:index")["description"], "POST /");
    assert_eq!(probe(&report, "route:GET:index")["tags"], serde_json::json!(["app"]));
    assert_eq!(probe(&report, "orders")["details"]["request_count"], 1);
}

/// An open stream as a test reads it.
struct Stream {
    body: Body,
}

impl Stream {
    async fn open(registry: &HealthRegistry, uri: &str) -> Self {
        let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let response = registry.router::<()>().oneshot(request).await.unwrap();
        Self {
            body: response.into_body(),
        }
    }

    /// The next event's report, skipping keep-alive comments.
    async fn report(&mut self) -> Value {
        loop {
            let frame = self.body.frame().await.expect("stream ended").unwrap();
            let Ok(data) = frame.into_data() else { continue };
            let chunk = String::from_utf8(data.to_vec()).unwrap();
            if let Some(line) = chunk.lines().find_map(|l| l.strip_prefix("data: ")) {
                return serde_json::from_str(line).unwrap();
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_probe_added_at_runtime_shows_everywhere_and_removal_takes_it_out() {
    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Healthy))
        .poll_interval(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut status = Stream::open(&registry, "/health/status/stream").await;
    let mut ready = Stream::open(&registry, "/health/ready/stream").await;
    assert_eq!(names(&status.report().await["probes"]), ["db"]);
    assert_eq!(names(&ready.report().await["probes"]), ["db"]);

    let tenant = Switch::new("tenant", Status::Unhealthy);
    registry
        .add_probe_non_critical(tenant.clone().with_tags(["tenants"]))
        .unwrap();
    // Both streams get an event with it at once, long before the next poll.
    let started = tokio::time::Instant::now();
    let event = status.report().await;
    assert_eq!(names(&event["probes"]), ["db", "tenant"], "{event}");
    assert_eq!(probe(&event, "tenant")["status"], "unhealthy");
    assert_eq!(event["status"], "healthy", "not critical: {event}");
    assert_eq!(names(&ready.report().await["probes"]), ["db", "tenant"]);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(tenant.calls(), 1);

    let app = registry.router();
    let report = fetch(&app, "/health/status").await.json();
    assert_eq!(names(&report["probes"]), ["db", "tenant"]);
    assert_eq!(
        names(&fetch(&app, "/health/status?tag=tenants").await.json()["probes"]),
        ["tenant"]
    );
    assert_eq!(fetch(&app, "/health/ready/tenant").await.status, 503);
    let listed = fetch(&app, "/health/probes").await.json();
    assert_eq!(names(&listed["probes"]), ["db", "tenant"]);
    assert_eq!(listed["probes"][1]["critical"], false);
    let metrics = fetch(&app, "/health/metrics").await.text();
    assert!(
        metrics.contains("\nprobe_healthy{name=\"tenant\",critical=\"false\"} 0\n"),
        "{metrics}"
    );
    assert!(metrics.contains("\nhealth_probes_refused_total{reason=\"limit\"} 0\n"));
    assert!(common::promtool_problems(&metrics).is_empty(), "{metrics}");

    assert!(registry.remove_probe("tenant"));
    assert!(!registry.remove_probe("tenant"));
    assert_eq!(names(&status.report().await["probes"]), ["db"]);
    assert_eq!(names(&ready.report().await["probes"]), ["db"]);
    assert_eq!(names(&fetch(&app, "/health/status").await.json()["probes"]), ["db"]);
    assert_eq!(fetch(&app, "/health/status/tenant").await.status, 404);
    assert_eq!(names(&fetch(&app, "/health/probes").await.json()["probes"]), ["db"]);
    let metrics = fetch(&app, "/health/metrics").await.text();
    assert!(!metrics.contains("name=\"tenant\""), "{metrics}");
    assert_eq!(registry.probe_names(), ["db"]);

    // The poll loop goes on with the list as it is now.
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(names(&status.report().await["probes"]), ["db"]);
    assert_eq!(tenant.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_request_right_after_an_addition_waits_for_the_new_probe() {
    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Healthy))
        .build()
        .unwrap();
    let app = registry.router();
    assert_eq!(names(&fetch(&app, "/health/status").await.json()["probes"]), ["db"]);
    // Within the cache age, and before the new probe's first check ran.
    registry
        .add_probe(probe::from_fn("slow", || async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(Outcome::healthy())
        }))
        .unwrap();
    let report = fetch(&app, "/health/status").await.json();
    assert_eq!(names(&report["probes"]), ["db", "slow"], "{report}");
    assert_eq!(
        probe(&report, "db")["details"]["call"],
        1,
        "the others keep their results"
    );
}

#[tokio::test(start_paused = true)]
async fn the_cap_is_enforced_counted_and_logged() {
    let (logs, _guard) = capture_logs(tracing::Level::INFO);
    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Healthy))
        .max_runtime_probes(2)
        .cache_age(Duration::ZERO)
        .build()
        .unwrap();
    let ok = |name: &'static str| probe::from_fn(name, || async { Ok(Outcome::healthy()) });
    registry.add_probe(ok("a")).unwrap();
    registry.add_probe(ok("b")).unwrap();
    let full = registry.add_probe(ok("c")).unwrap_err();
    assert_eq!(full.kind(), AddProbeErrorKind::LimitReached);
    assert_eq!(
        full.to_string(),
        "probe \"c\" refused: the cap of probes added at runtime is reached"
    );
    assert_eq!(
        registry.add_probe(ok("db")).unwrap_err().kind(),
        AddProbeErrorKind::DuplicateProbeName
    );
    assert_eq!(
        registry.add_probe(ok("bad name")).unwrap_err().kind(),
        AddProbeErrorKind::InvalidProbeName
    );
    assert_eq!(
        registry.add_probe(ok("x").with_thresholds(0, 1)).unwrap_err().kind(),
        AddProbeErrorKind::InvalidOption
    );
    assert_eq!(registry.probe_names(), ["db", "a", "b"]);
    assert_eq!(registry.runtime_probes(), 2);

    // Removing one makes room; removing a builder probe does not.
    assert!(registry.remove_probe("db"));
    assert_eq!(
        registry.add_probe(ok("c")).unwrap_err().kind(),
        AddProbeErrorKind::LimitReached
    );
    assert!(registry.remove_probe("a"));
    registry.add_probe(ok("c")).unwrap();
    assert_eq!(registry.probe_names(), ["b", "c"]);

    let metrics = fetch(&registry.router(), "/health/metrics").await.text();
    for line in [
        "health_probes_refused_total{reason=\"duplicate\"} 1",
        "health_probes_refused_total{reason=\"limit\"} 2",
        "health_probes_refused_total{reason=\"invalid\"} 2",
    ] {
        assert!(metrics.contains(&format!("\n{line}\n")), "{line}:\n{metrics}");
    }
    assert!(metrics.contains("# TYPE health_probes_refused_total counter\n"));
    let logs = logs.contents();
    assert!(logs.contains("probe refused probe=c reason=\"limit\""), "{logs}");
    assert!(logs.contains("probe refused probe=db reason=\"duplicate\""), "{logs}");
    assert_eq!(
        logs.lines().filter(|l| l.contains("probe refused")).count(),
        5,
        "{logs}"
    );
}

#[tokio::test]
async fn discovered_probes_count_under_the_cap_once_per_route() {
    let registry = HealthRegistry::builder()
        .max_runtime_probes(1)
        .cache_age(Duration::ZERO)
        .build()
        .unwrap();
    let app: Router = Router::new()
        .route("/a", get(|| async { "a" }))
        .route("/b", get(|| async { "b" }))
        .route("/c", get(|| async { "c" }))
        .layer(registry.discover_routes());
    for path in ["/a", "/b", "/c", "/b", "/c", "/a"] {
        let response = fetch(&app, path).await;
        assert_eq!(response.status, 200, "a refused probe leaves its route serving");
    }
    let report = fetch(&registry.router(), "/health/status").await.json();
    assert_eq!(names(&report["probes"]), ["route:GET:a"]);
    assert_eq!(probe(&report, "route:GET:a")["details"]["request_count"], 2);
    let metrics = fetch(&registry.router(), "/health/metrics").await.text();
    assert!(
        metrics.contains("\nhealth_probes_refused_total{reason=\"limit\"} 2\n"),
        "one refusal per route, not per request:\n{metrics}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_in_flight_while_probes_are_added_and_removed_completes() {
    let slow_calls = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&slow_calls);
    let slow = probe::from_fn("slow", move || {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(2)).await;
            Ok(Outcome::healthy())
        }
    });
    let registry = HealthRegistry::builder()
        .add(slow)
        .add(Switch::new("gone", Status::Unhealthy))
        .build()
        .unwrap();
    let run = tokio::spawn({
        let registry = registry.clone();
        async move { registry.run_all().await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    registry.add_probe(Switch::new("new", Status::Healthy)).unwrap();
    assert!(registry.remove_probe("gone"));
    let report = run.await.unwrap();
    // The run finished with what is registered now: the removed probe's
    // result is dropped, the new one is checked.
    let names: Vec<_> = report.probes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["slow", "new"]);
    assert_eq!(report.status, Status::Healthy);
    assert_eq!(slow_calls.load(Ordering::SeqCst), 1, "the slow probe ran once");
    let history = fetch(&registry.router(), "/health/history").await.json();
    assert!(history["probes"].get("gone").is_none(), "{history}");
    let alerts = fetch(&registry.router(), "/health/alerts").await.json();
    assert_eq!(
        alerts["alerts"],
        serde_json::json!([]),
        "a removed probe is not alerted on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_changes_and_runs_stay_consistent() {
    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Healthy))
        .cache_age(Duration::ZERO)
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let registry = registry.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let name = format!("w{worker}-{i}");
                let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
                registry.add_probe(Switch::new(leaked, Status::Healthy)).unwrap();
                if i % 2 == 0 {
                    assert!(registry.remove_probe(&name));
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    let reader = {
        let registry = registry.clone();
        tokio::spawn(async move {
            for _ in 0..50 {
                let report = registry.report().await;
                let mut seen = std::collections::HashSet::new();
                assert!(
                    report.probes.iter().all(|p| seen.insert(p.name.clone())),
                    "no probe twice"
                );
                tokio::task::yield_now().await;
            }
        })
    };
    for task in tasks {
        task.await.unwrap();
    }
    reader.await.unwrap();
    let report = registry.run_all().await;
    let mut names: Vec<_> = report.probes.iter().map(|p| p.name.clone()).collect();
    assert_eq!(names.len(), 1 + 4 * 25);
    let mut registered = registry.probe_names();
    names.sort();
    registered.sort();
    assert_eq!(names, registered);
    assert_eq!(registry.runtime_probes(), 100);
}
