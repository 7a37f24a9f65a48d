//! `KafkaProbe` against a Kafka-protocol broker on loopback
//! (`AXUM_WATCH_KAFKA_BOOTSTRAP`, default `127.0.0.1:9092`; Tansu, started by
//! `scripts/services/kafka.sh`). Topics are created with rskafka, an
//! independent client. Fails, never skips, when the broker is unreachable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use axum_watch::probes::KafkaProbe;
use axum_watch::{HealthRegistry, Probe, Status};
use common::{env_or, free_port, silent_listener};
use rskafka::BackoffConfig;
use rskafka::client::{Client, ClientBuilder};

fn bootstrap() -> String {
    env_or("AXUM_WATCH_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
}

/// An rskafka client to create topics with; fails (rskafka would otherwise
/// retry forever) when the broker does not answer.
async fn admin_client() -> Client {
    let backoff = BackoffConfig {
        deadline: Some(Duration::from_secs(5)),
        ..BackoffConfig::default()
    };
    let build = ClientBuilder::new(vec![bootstrap()]).backoff_config(backoff).build();
    match tokio::time::timeout(Duration::from_secs(10), build).await {
        Ok(Ok(client)) => client,
        Ok(Err(error)) => panic!("kafka broker at {} must be reachable: {error}", bootstrap()),
        Err(_) => panic!(
            "kafka broker at {} must be reachable: no answer within 10 s",
            bootstrap()
        ),
    }
}

fn names(value: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(value.clone()).unwrap()
}

#[tokio::test]
async fn a_created_topic_appears_among_user_topics() {
    let topic = format!("axum-watch-orders-{}", std::process::id());
    let client = admin_client().await;
    client
        .controller_client()
        .unwrap()
        .create_topic(&topic, 1, 1, 5_000)
        .await
        .unwrap();

    let probe = KafkaProbe::new(bootstrap()).unwrap();
    let outcome = probe.check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy);
    let details = outcome.details();
    assert!(details["broker_count"].as_u64().unwrap() >= 1, "{details:?}");
    assert!(details["controller_id"].is_i64(), "{details:?}");
    let topics = names(&details["topics"]);
    assert!(topics.contains(&topic), "{details:?}");
    assert!(topics.iter().all(|t| !t.starts_with("__")), "{details:?}");
    let internal = names(&details["internal_topics"]);
    assert!(internal.iter().all(|t| t.starts_with("__")), "{details:?}");
    let mut sorted = topics.clone();
    sorted.sort();
    assert_eq!(topics, sorted);
    assert_eq!(
        details.keys().collect::<Vec<_>>(),
        ["broker_count", "controller_id", "topics", "internal_topics"]
    );
}

/// A topic named like Kafka's own lands in `internal_topics`.
#[tokio::test]
async fn double_underscore_topics_are_internal() {
    let topic = format!("__axum_watch_internal_{}", std::process::id());
    let client = admin_client().await;
    client
        .controller_client()
        .unwrap()
        .create_topic(&topic, 1, 1, 5_000)
        .await
        .unwrap();
    let outcome = KafkaProbe::new(bootstrap()).unwrap().check().await.unwrap();
    assert!(
        names(&outcome.details()["internal_topics"]).contains(&topic),
        "{outcome:?}"
    );
    assert!(!names(&outcome.details()["topics"]).contains(&topic), "{outcome:?}");
}

#[tokio::test]
async fn a_dead_first_bootstrap_server_is_skipped() {
    let probe = KafkaProbe::with_servers([format!("127.0.0.1:{}", free_port()), bootstrap()]).unwrap();
    let outcome = probe.check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy);
}

#[tokio::test]
async fn unreachable_bootstrap_is_unhealthy_quickly() {
    let (a, b) = (free_port(), free_port());
    let probe = KafkaProbe::new(format!("127.0.0.1:{a},127.0.0.1:{b}")).unwrap();
    let started = Instant::now();
    let error = probe.check().await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        error.starts_with("KafkaError: no bootstrap server answered (127.0.0.1:"),
        "{error}"
    );
    assert!(error.contains(&format!("127.0.0.1:{b}: Connection refused")), "{error}");
}

/// A server that accepts and never answers: the check ends at the timeout.
#[tokio::test]
async fn silent_server_times_out_within_the_request_timeout() {
    let port = silent_listener().await.port();
    let probe = KafkaProbe::new(format!("127.0.0.1:{port}"))
        .unwrap()
        .request_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let error = probe.check().await.unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        error,
        format!("Timeout: no metadata within 500ms (127.0.0.1:{port}: no answer)")
    );
}

#[tokio::test]
async fn registry_runs_it_under_its_name() {
    let registry = HealthRegistry::builder()
        .add(KafkaProbe::new(bootstrap()).unwrap())
        .build()
        .unwrap();
    let report = registry.run_all().await;
    assert_eq!(report.probes[0].name, "kafka");
    assert_eq!(report.probes[0].status, Status::Healthy, "{:?}", report.probes[0]);
}

/// Something else on the port (here an HTTP server's answer): a clear
/// protocol error, not a hang or a huge allocation.
#[tokio::test]
async fn a_non_kafka_server_is_a_protocol_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0; 64];
        let _ = socket.read(&mut buf).await;
        socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await.unwrap();
    });
    let error = KafkaProbe::new(format!("127.0.0.1:{port}"))
        .unwrap()
        .check()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("unexpected metadata response: frame size 1213486160"),
        "{error}"
    );
}
