//! `/metrics` through the real router, checked by Prometheus' own `promtool`
//! in every state. The test script installs promtool; without it these tests
//! fail rather than skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::promtool_problems;
use std::time::Duration;

use axum::body::Body;
use axum_watch::{HealthRegistry, Status};
use common::{Switch, get};
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn scrape(registry: &HealthRegistry) -> (String, String) {
    let reply = get(&registry.router(), "/health/metrics").await;
    assert_eq!(reply.status, 200);
    (reply.headers["content-type"].to_str().unwrap().to_owned(), reply.text())
}

#[tokio::test(start_paused = true)]
async fn promtool_accepts_every_state() {
    let db = Switch::new("db", Status::Healthy);
    let cache = Switch::new("cache", Status::Healthy);
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .add_non_critical(cache.clone())
        .cache_age(Duration::ZERO)
        .circuit_threshold(2)
        .build()
        .unwrap();
    let states: [(&str, Status, Status); 4] = [
        ("healthy", Status::Healthy, Status::Healthy),
        ("degraded", Status::Degraded, Status::Healthy),
        ("unhealthy", Status::Unhealthy, Status::Degraded),
        ("circuit open", Status::Unhealthy, Status::Unhealthy),
    ];
    for (label, db_status, cache_status) in states {
        db.set(db_status);
        cache.set(cache_status);
        let (content_type, text) = scrape(&registry).await;
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        assert_eq!(promtool_problems(&text), Vec::<String>::new(), "{label}:\n{text}");
        let overall = match label {
            "healthy" => "2",
            "degraded" => "1",
            _ => "0",
        };
        assert!(
            text.contains(&format!("\nhealth_status {overall}\n")),
            "{label}:\n{text}"
        );
    }
    let (_, text) = scrape(&registry).await;
    assert!(
        text.contains("probe_circuit_open{name=\"db\",critical=\"true\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("probe_circuit_trips_total{name=\"db\",critical=\"true\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("probe_healthy{name=\"cache\",critical=\"false\"} 0\n"),
        "{text}"
    );

    let empty = HealthRegistry::builder().build().unwrap();
    let (_, text) = scrape(&empty).await;
    assert_eq!(promtool_problems(&text), Vec::<String>::new(), "{text}");
    // Seven probe families, the overall status, lifecycle, scheduling mode and dropped alerts.
    assert_eq!(text.matches("# TYPE ").count(), 11);
}

#[tokio::test(start_paused = true)]
async fn openmetrics_when_the_scraper_asks() {
    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Healthy))
        .build()
        .unwrap();
    let request = Request::builder()
        .uri("/health/metrics")
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .body(Body::empty())
        .unwrap();
    let response = registry.router::<()>().oneshot(request).await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.ends_with("# EOF\n"));
    assert!(text.contains("# TYPE probe_circuit_trips counter\n"));
}

/// One request over a real socket: the status line and headers
/// (lower-cased), and the body's bytes.
#[cfg(feature = "gzip")]
async fn raw_get(addr: std::net::SocketAddr, path: &str, extra: &str) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n{extra}connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap().to_ascii_lowercase();
    (head, raw[split + 4..].to_vec())
}

#[cfg(feature = "gzip")]
#[tokio::test]
async fn a_scraper_that_accepts_gzip_gets_the_same_text_compressed() {
    use std::io::Read as _;
    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Healthy))
        .add_non_critical(Switch::new("cache", Status::Degraded))
        .cache_age(Duration::from_secs(60))
        .build()
        .unwrap();
    let addr = common::serve(registry.router()).await;
    // As Prometheus asks for a scrape.
    let prometheus = "accept: text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\naccept-encoding: gzip\r\n";
    let (head, gzipped) = raw_get(addr, "/health/metrics", prometheus).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("\r\ncontent-encoding: gzip"), "{head}");
    assert!(head.contains("\r\nvary: accept-encoding"), "{head}");
    assert!(
        head.contains(&format!("\r\ncontent-length: {}", gzipped.len())),
        "{head}"
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gzipped[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(promtool_problems(&text), Vec::<String>::new(), "{text}");
    assert!(
        text.contains("probe_degraded{name=\"cache\",critical=\"false\"} 1\n"),
        "{text}"
    );

    // Without the header, or with gzip refused: the same text, plain.
    for extra in ["", "accept-encoding: gzip;q=0, br\r\n"] {
        let (head, plain) = raw_get(addr, "/health/metrics", extra).await;
        assert!(!head.contains("content-encoding"), "{extra:?}: {head}");
        assert!(head.contains("\r\nvary: accept-encoding"), "{head}");
        assert_eq!(String::from_utf8(plain).unwrap(), text, "{extra:?}");
    }
    assert!(gzipped.len() * 2 < text.len(), "{} of {}", gzipped.len(), text.len());
}

#[cfg(feature = "prometheus-client")]
#[tokio::test(start_paused = true)]
async fn the_collector_exports_the_same_families_into_an_app_registry() {
    let db = Switch::new("db", Status::Degraded);
    let health = HealthRegistry::builder()
        .add(db.clone())
        .add_non_critical(Switch::new("cache", Status::Unhealthy))
        .build()
        .unwrap();
    let mut app_metrics = prometheus_client::registry::Registry::default();
    app_metrics.register_collector(Box::new(health.metrics_collector()));
    let render = |registry: &prometheus_client::registry::Registry| {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    };
    // Before any run there are no samples, but every family is declared.
    let empty = render(&app_metrics);
    assert!(empty.contains("# TYPE probe_healthy gauge"), "{empty}");
    assert!(!empty.contains("probe_healthy{"), "{empty}");

    health.run_all().await;
    let text = render(&app_metrics);
    for line in [
        r#"probe_healthy{name="db",critical="true"} 0"#,
        r#"probe_degraded{name="db",critical="true"} 1"#,
        r#"probe_healthy{name="cache",critical="false"} 0"#,
        r#"probe_circuit_trips_total{name="cache",critical="false"} 0"#,
        "health_status 1",
        "health_alerts_dropped_total 0",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    // prometheus-client writes OpenMetrics text, where a counter's HELP/TYPE
    // use the family name without `_total`; classic promtool then reports the
    // `_total` samples as having no help text. Nothing else may be reported.
    let problems: Vec<String> = promtool_problems(&text.replace("# EOF\n", ""))
        .into_iter()
        .filter(|p| !(p.ends_with("_total no help text")))
        .collect();
    assert_eq!(problems, Vec::<String>::new(), "{text}");
}

/// A probe whose own details happen to hold a `circuit_breaker` entry.
fn impostor(name: &'static str) -> impl axum_watch::Probe {
    axum_watch::probe::from_fn(name, || async {
        Ok(axum_watch::Outcome::healthy()
            .detail(
                "circuit_breaker",
                serde_json::json!({"open": true, "consecutive_failures": 7, "trips_total": 3}),
            )
            .detail("pool", 4))
    })
}

#[tokio::test(start_paused = true)]
async fn a_probe_detail_named_circuit_breaker_does_not_disturb_the_breaker_metrics() {
    let registry = HealthRegistry::builder()
        .add(impostor("with-breaker"))
        .add(axum_watch::ProbeExt::without_circuit_breaker(impostor(
            "without-breaker",
        )))
        .build()
        .unwrap();
    let (_, text) = scrape(&registry).await;
    for name in ["with-breaker", "without-breaker"] {
        for family in [
            "probe_circuit_open",
            "probe_circuit_consecutive_failures",
            "probe_circuit_trips_total",
        ] {
            let sample = format!("{family}{{name=\"{name}\",critical=\"true\"}} 0\n");
            assert!(text.contains(&sample), "{sample} missing:\n{text}");
        }
    }
    // In JSON the breaker's own block wins while it is on; without it the
    // probe's detail is shown as the probe gave it.
    let status = get(&registry.router(), "/health/status").await.json();
    assert_eq!(
        status["probes"][0]["details"],
        serde_json::json!({"pool": 4, "circuit_breaker": {"open": false, "consecutive_failures": 0, "trips_total": 0}})
    );
    assert_eq!(
        status["probes"][1]["details"]["circuit_breaker"]["consecutive_failures"],
        7
    );
}
