//! `KafkaProbe` against Kafka-protocol brokers on loopback, both Tansu,
//! started by `scripts/services/kafka.sh`: a plaintext one
//! (`AXUM_WATCH_KAFKA_BOOTSTRAP`, default `127.0.0.1:9092`) and one that
//! requires a SASL/SCRAM login (`AXUM_WATCH_KAFKA_SASL_BOOTSTRAP`, default
//! `127.0.0.1:9094`, user `AXUM_WATCH_KAFKA_SASL_USER` /
//! `AXUM_WATCH_KAFKA_SASL_PASSWORD`). Tansu has no TLS listener, so the TLS
//! tests put a TLS-terminating proxy (tokio-rustls, below) in front of them,
//! with the test CA of the service scripts (`AXUM_WATCH_TEST_CERTS`, default
//! `~/.cache/axum-watch/test-certs`). Topics are created with rskafka, an
//! independent client. Fails, never skips, when a broker is unreachable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tls_proxy.rs"]
mod tls_proxy;

use std::time::{Duration, Instant};

use axum_watch::probes::{KafkaProbe, PartitionRule, SaslMechanism};
use axum_watch::tls::TlsOptions;
use axum_watch::{HealthRegistry, Probe, Status};
use common::{env_or, free_port, silent_listener};
use rskafka::BackoffConfig;
use rskafka::client::{Client, ClientBuilder};
use tls_proxy::{cert_file, certs_dir, server_with, test_ca_server, tls_proxy};
use tokio::net::TcpStream;

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
        [
            "broker_count",
            "controller_id",
            "topics",
            "internal_topics",
            "partition_count",
            "offline_partition_count",
            "offline_partitions",
            "under_replicated_partition_count",
            "under_replicated_partitions"
        ]
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
        error.ends_with(": the server answered in HTTP (frame size 1213486160), not Kafka)"),
        "{error}"
    );
}

// ---------------------------------------------------------------- partitions

/// Tansu reports every partition led and fully in sync (it has one broker
/// and no replication): the counts are real, the offline and
/// under-replicated cases are unit tests over encoded responses.
#[tokio::test]
async fn partition_health_of_a_created_topic() {
    let topic = format!("axum-watch-partitions-{}", std::process::id());
    admin_client()
        .await
        .controller_client()
        .unwrap()
        .create_topic(&topic, 3, 1, 5_000)
        .await
        .unwrap();
    let probe = KafkaProbe::new(bootstrap())
        .unwrap()
        .partition_rule(PartitionRule::topics([topic.clone()]));
    let outcome = probe.check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy, "{outcome:?}");
    assert_eq!(outcome.error(), None);
    let details = outcome.details();
    assert!(details["partition_count"].as_u64().unwrap() >= 3, "{details:?}");
    assert_eq!(details["offline_partition_count"], 0, "{details:?}");
    assert_eq!(details["offline_partitions"], serde_json::json!({}));
    assert_eq!(details["under_replicated_partition_count"], 0, "{details:?}");
    assert_eq!(details["under_replicated_partitions"], serde_json::json!({}));
    assert!(details.get("missing_topics").is_none(), "{details:?}");
}

#[tokio::test]
async fn a_named_topic_the_cluster_lacks_is_unhealthy() {
    let missing = format!("axum-watch-missing-{}", std::process::id());
    let probe = KafkaProbe::new(bootstrap())
        .unwrap()
        .partition_rule(PartitionRule::topics([missing.clone()]));
    let outcome = probe.check().await.unwrap();
    assert_eq!(outcome.status(), Status::Unhealthy, "{outcome:?}");
    assert_eq!(outcome.error(), Some(format!("topic not found: {missing}").as_str()));
    assert_eq!(outcome.details()["missing_topics"], serde_json::json!([missing]));

    let lenient = KafkaProbe::new(bootstrap())
        .unwrap()
        .partition_rule(PartitionRule::topics([missing]).offline(Status::Degraded));
    assert_eq!(lenient.check().await.unwrap().status(), Status::Degraded);
}

// ---------------------------------------------------------------- SASL

fn sasl_bootstrap() -> String {
    env_or("AXUM_WATCH_KAFKA_SASL_BOOTSTRAP", "127.0.0.1:9094")
}

fn sasl_user() -> String {
    env_or("AXUM_WATCH_KAFKA_SASL_USER", "axum-watch")
}

fn sasl_password() -> String {
    env_or("AXUM_WATCH_KAFKA_SASL_PASSWORD", "axum-watch-test-password")
}

/// Fails, not skips, when the SASL broker is not there.
async fn sasl_broker_must_listen() {
    let addr = sasl_bootstrap();
    TcpStream::connect(&addr).await.unwrap_or_else(|e| {
        panic!("the SASL kafka broker at {addr} must be reachable: {e}; run scripts/services/kafka.sh")
    });
}

#[tokio::test]
async fn scram_sha_256_and_512_logins_are_accepted() {
    sasl_broker_must_listen().await;
    for mechanism in [SaslMechanism::ScramSha256, SaslMechanism::ScramSha512] {
        let probe = KafkaProbe::new(sasl_bootstrap())
            .unwrap()
            .sasl(mechanism, sasl_user(), sasl_password());
        let outcome = probe.check().await.unwrap_or_else(|e| panic!("{mechanism}: {e}"));
        assert_eq!(outcome.status(), Status::Healthy, "{mechanism}: {outcome:?}");
        assert_eq!(outcome.details()["sasl_mechanism"], mechanism.as_str());
        assert!(outcome.details()["broker_count"].as_u64().unwrap() >= 1);
        // A second check reuses the keys derived from the broker's salt.
        assert_eq!(probe.check().await.unwrap().status(), Status::Healthy);
    }
}

#[tokio::test]
async fn a_wrong_password_is_refused_without_echoing_credentials() {
    sasl_broker_must_listen().await;
    let wrong = "wrong-password-4711";
    let probe = KafkaProbe::new(sasl_bootstrap())
        .unwrap()
        .sasl(SaslMechanism::ScramSha512, sasl_user(), wrong);
    let error = probe.check().await.unwrap_err();
    assert_eq!(error.kind(), Some("SaslError"), "{error}");
    let text = error.to_string();
    // Tansu answers with the RFC 5802 `e=invalid-proof`; Apache Kafka with
    // SASL_AUTHENTICATION_FAILED (58): both read as a failed login.
    assert!(
        text.starts_with(&format!(
            "SaslError: no bootstrap server accepted the SASL login ({}: SASL SCRAM-SHA-512: authentication failed: ",
            sasl_bootstrap()
        )),
        "{text}"
    );
    assert!(!text.contains(wrong), "{text}");

    let stranger = KafkaProbe::new(sasl_bootstrap())
        .unwrap()
        .sasl(SaslMechanism::ScramSha256, "nobody-4711", wrong);
    let text = stranger.check().await.unwrap_err().to_string();
    assert!(text.contains("SASL SCRAM-SHA-256: authentication failed"), "{text}");
    assert!(!text.contains(wrong) && !text.contains("nobody-4711"), "{text}");
}

/// Tansu enables SCRAM only, and closes the connection on any other
/// mechanism (Apache Kafka answers UNSUPPORTED_SASL_MECHANISM with its
/// list, which the unit tests cover).
#[tokio::test]
async fn a_mechanism_the_broker_lacks_is_a_sasl_failure() {
    sasl_broker_must_listen().await;
    let probe = KafkaProbe::new(sasl_bootstrap())
        .unwrap()
        .sasl(SaslMechanism::Plain, sasl_user(), sasl_password());
    let error = probe.check().await.unwrap_err();
    assert_eq!(error.kind(), Some("SaslError"), "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "SaslError: no bootstrap server accepted the SASL login ({}: SASL PLAIN: the broker closed the connection at the SASL handshake (does it enable PLAIN?))",
            sasl_bootstrap()
        )
    );
}

#[tokio::test]
async fn without_a_login_the_sasl_broker_is_a_clear_failure() {
    sasl_broker_must_listen().await;
    let error = KafkaProbe::new(sasl_bootstrap())
        .unwrap()
        .request_timeout(Duration::from_secs(3))
        .check()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), Some("KafkaError"), "{error}");
    assert!(
        error
            .to_string()
            .contains("the server closed the connection without answering (does it want TLS or SASL?)"),
        "{error}"
    );
}

// ---------------------------------------------------------------- TLS

fn test_ca_options() -> TlsOptions {
    TlsOptions::new().root_certificate_pem(cert_file("ca.crt")).unwrap()
}

#[tokio::test]
async fn tls_with_the_test_ca_is_healthy_and_shows_the_certificate() {
    let proxy = tls_proxy(bootstrap(), test_ca_server(false)).await;
    let probe = KafkaProbe::new(format!("localhost:{}", proxy.port()))
        .unwrap()
        .tls_options(test_ca_options());
    let outcome = probe.check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy, "{outcome:?}");
    let details = outcome.details();
    assert_eq!(details["tls_version"], "TLSv1.3", "{details:?}");
    assert!(details["cert_days_remaining"].as_i64().unwrap() > 30, "{details:?}");
    assert!(
        details["cert_not_after"].as_str().unwrap().ends_with('Z'),
        "{details:?}"
    );
    assert!(details["broker_count"].as_u64().unwrap() >= 1);

    // By address too: the test certificate names 127.0.0.1.
    let by_ip = KafkaProbe::new(proxy.to_string())
        .unwrap()
        .tls_options(test_ca_options());
    assert_eq!(by_ip.check().await.unwrap().status(), Status::Healthy);
}

/// `SASL_SSL`, what managed clusters speak: SCRAM inside TLS.
#[tokio::test]
async fn scram_over_tls_end_to_end() {
    sasl_broker_must_listen().await;
    let proxy = tls_proxy(sasl_bootstrap(), test_ca_server(false)).await;
    let probe = KafkaProbe::new(proxy.to_string())
        .unwrap()
        .tls_options(test_ca_options())
        .sasl(SaslMechanism::ScramSha512, sasl_user(), sasl_password());
    let outcome = probe.check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy, "{outcome:?}");
    assert_eq!(outcome.details()["sasl_mechanism"], "SCRAM-SHA-512");
    assert_eq!(outcome.details()["tls_version"], "TLSv1.3");
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_unless_verification_is_off() {
    let proxy = tls_proxy(bootstrap(), test_ca_server(false)).await;
    // The system roots do not include the test CA.
    let error = KafkaProbe::new(proxy.to_string())
        .unwrap()
        .tls_options(TlsOptions::new())
        .check()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), Some("TlsError"), "{error}");
    assert!(
        error.to_string().starts_with(&format!(
            "TlsError: no bootstrap server completed the TLS handshake ({proxy}: TLS handshake failed: certificate not trusted: unknown issuer"
        )),
        "{error}"
    );

    let self_signed = tls_proxy(bootstrap(), server_with(false, -1, 30)).await;
    let refused = KafkaProbe::new(self_signed.to_string())
        .unwrap()
        .tls_options(test_ca_options())
        .check()
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("unknown issuer"), "{refused}");

    let accepted = KafkaProbe::new(self_signed.to_string())
        .unwrap()
        .tls_options(TlsOptions::new().danger_accept_invalid_certs(true))
        .check()
        .await
        .unwrap();
    assert_eq!(accepted.status(), Status::Healthy, "{accepted:?}");
    assert_eq!(accepted.details()["cert_days_remaining"], 30);
}

#[tokio::test]
async fn a_name_mismatch_and_an_expired_certificate_are_named() {
    let proxy = tls_proxy(bootstrap(), test_ca_server(false)).await;
    let error = KafkaProbe::new(proxy.to_string())
        .unwrap()
        .tls_options(test_ca_options().server_name("kafka.example.com").unwrap())
        .check()
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("TLS handshake failed: certificate name mismatch"),
        "{error}"
    );

    // The override names what the certificate is for, whatever the
    // address connected to.
    let ok = KafkaProbe::new(proxy.to_string())
        .unwrap()
        .tls_options(test_ca_options().server_name("localhost").unwrap())
        .check()
        .await
        .unwrap();
    assert_eq!(ok.status(), Status::Healthy, "{ok:?}");

    let expired = tls_proxy(bootstrap(), server_with(true, -30, -2)).await;
    let error = KafkaProbe::new(expired.to_string())
        .unwrap()
        .tls_options(test_ca_options())
        .check()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), Some("TlsError"), "{error}");
    assert!(
        error.to_string().contains("TLS handshake failed: certificate expired"),
        "{error}"
    );
    let seen = KafkaProbe::new(expired.to_string())
        .unwrap()
        .tls_options(TlsOptions::new().danger_accept_invalid_certs(true))
        .check()
        .await
        .unwrap();
    assert_eq!(seen.status(), Status::Unhealthy, "{seen:?}");
    assert_eq!(seen.error(), Some("certificate expired 2 days ago"));
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let proxy = tls_proxy(bootstrap(), test_ca_server(true)).await;
    let without = KafkaProbe::new(proxy.to_string())
        .unwrap()
        .tls_options(test_ca_options())
        .check()
        .await
        .unwrap_err();
    assert_eq!(without.kind(), Some("TlsError"), "{without}");
    assert!(
        without
            .to_string()
            .contains("TLS handshake failed: the server requires a client certificate (mutual TLS)"),
        "{without}"
    );

    let with = KafkaProbe::new(proxy.to_string())
        .unwrap()
        .tls_options(
            test_ca_options()
                .client_identity_pem(cert_file("client.crt"), cert_file("client.key"))
                .unwrap(),
        )
        .check()
        .await
        .unwrap();
    assert_eq!(with.status(), Status::Healthy, "{with:?}");
}

#[tokio::test]
async fn plaintext_to_a_tls_listener_is_a_clear_failure() {
    let proxy = tls_proxy(bootstrap(), test_ca_server(false)).await;
    let error = KafkaProbe::new(proxy.to_string()).unwrap().check().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "KafkaError: no bootstrap server answered ({proxy}: the server answered in TLS (frame size 352518912): set tls_options on the probe)"
        )
    );
}

// ---------------------------------------------------------------- client properties

/// The Java client's layout, as Tansu's and Kafka's example files have it.
#[tokio::test]
async fn java_client_properties_with_a_jaas_login() {
    sasl_broker_must_listen().await;
    let properties = format!(
        "# SCRAM over plaintext\n\
         bootstrap.servers={}\n\
         security.protocol=SASL_PLAINTEXT\n\
         sasl.mechanism=SCRAM-SHA-256\n\
         sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n    \
         username=\"{}\" \\\n    password=\"{}\";\n\
         acks=all\n",
        sasl_bootstrap(),
        sasl_user(),
        sasl_password()
    );
    let outcome = KafkaProbe::from_properties(&properties).unwrap().check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy, "{outcome:?}");
    assert_eq!(outcome.details()["sasl_mechanism"], "SCRAM-SHA-256");
}

/// librdkafka's names, `SASL_SSL` with a private CA file.
#[tokio::test]
async fn librdkafka_properties_over_tls() {
    sasl_broker_must_listen().await;
    let proxy = tls_proxy(sasl_bootstrap(), test_ca_server(false)).await;
    let properties = format!(
        "bootstrap.servers=localhost:{}\n\
         security.protocol=SASL_SSL\n\
         sasl.mechanisms=SCRAM-SHA-512\n\
         sasl.username={}\n\
         sasl.password={}\n\
         ssl.ca.location={}/ca.crt\n",
        proxy.port(),
        sasl_user(),
        sasl_password(),
        certs_dir()
    );
    let outcome = KafkaProbe::from_properties(&properties).unwrap().check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy, "{outcome:?}");
    assert_eq!(outcome.details()["tls_version"], "TLSv1.3");
    assert_eq!(outcome.details()["sasl_mechanism"], "SCRAM-SHA-512");
}
