//! `RabbitMqProbe` against the real broker on loopback (AMQP on
//! `AXUM_WATCH_RABBITMQ_URL`, management API on
//! `AXUM_WATCH_RABBITMQ_MANAGEMENT_URL`; `scripts/services/rabbitmq.sh`
//! starts both, and the AMQPS listener on `AXUM_WATCH_AMQPS_URL` whose
//! certificate is signed by the test CA in `AXUM_WATCH_AMQPS_CA`). Fails,
//! never skips, when the broker is unreachable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tls_proxy.rs"]
mod tls_proxy;

use std::time::{Duration, Instant};

use axum_watch::probes::{ConfigErrorKind, RabbitMqProbe};
use axum_watch::tls::TlsOptions;
use axum_watch::{HealthRegistry, Probe, ProbeExt, Status};
use common::{cache_dir, env_or, free_port, silent_listener};
use lapin::options::{BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{Value, json};
use tls_proxy::{cert_file, server_with, test_ca_server, tls_proxy};

fn amqp_url() -> String {
    env_or("AXUM_WATCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
}

fn management_url() -> String {
    env_or("AXUM_WATCH_RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:15672")
}

fn amqps_url() -> String {
    env_or("AXUM_WATCH_AMQPS_URL", "amqps://guest:guest@localhost:5671/%2f")
}

/// The PEM of the test CA that signed the AMQPS listener's certificate.
fn amqps_ca() -> String {
    let path = env_or(
        "AXUM_WATCH_AMQPS_CA",
        &format!("{}/axum-watch/test-certs/rabbitmq/ca.crt", cache_dir()),
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the AMQPS test CA {path} (made by scripts/services/rabbitmq.sh): {e}"))
}

/// `url` with other credentials.
fn with_credentials(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}")
}

/// `amqp_url()` with other credentials.
fn amqp_url_as(user: &str, password: &str) -> String {
    with_credentials(&amqp_url(), user, password)
}

#[tokio::test]
async fn connectivity_mode_reports_connected_only() {
    let probe = RabbitMqProbe::new(amqp_url()).unwrap();
    let outcome = probe.check().await.expect("rabbitmq must be reachable");
    assert_eq!(outcome.status(), Status::Healthy);
    assert_eq!(Value::Object(outcome.details().clone()), json!({"connected": true}));
}

#[tokio::test]
async fn rich_mode_shows_server_totals_and_a_queue_with_messages() {
    let queue = format!("axum-watch-test-{}", std::process::id());
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    for i in 0..3 {
        channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                format!("message {i}").as_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let probe = RabbitMqProbe::new(amqp_url())
        .unwrap()
        .management_url(management_url())
        .unwrap();
    // The management API refreshes queue statistics every few seconds (a
    // new queue's state reads "unknown" until then).
    let started = Instant::now();
    let details = loop {
        let outcome = probe.check().await.unwrap();
        assert_eq!(outcome.status(), Status::Healthy);
        let details = outcome.details().clone();
        assert!(
            !details.contains_key("management_api_error"),
            "management API failed: {details:?}"
        );
        if details["queues"]
            .get(&queue)
            .is_some_and(|q| q["messages"] == 3 && q["state"] != "unknown")
        {
            break details;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "queue never showed 3 messages: {details:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    assert_eq!(details["connected"], true);
    let server = &details["server"];
    assert!(
        server["rabbitmq_version"].as_str().is_some_and(|v| v.contains('.')),
        "{server}"
    );
    assert!(server["erlang_version"].is_string(), "{server}");
    assert!(server["node"].as_str().is_some_and(|n| n.contains('@')), "{server}");
    assert!(server["cluster_name"].is_string(), "{server}");
    assert!(
        server["connections"].as_u64().unwrap() >= 1,
        "our own connection is open: {server}"
    );
    assert!(server["queues"].as_u64().unwrap() >= 1, "{server}");
    for key in ["channels", "exchanges", "consumers"] {
        assert!(server[key].is_u64(), "{key}: {server}");
    }
    let totals = &details["totals"];
    assert!(totals["messages"].as_u64().unwrap() >= 3, "{totals}");
    for key in ["messages_ready", "messages_unacknowledged"] {
        assert!(totals[key].is_u64(), "{key}: {totals}");
    }
    for key in ["publish_rate", "deliver_rate", "ack_rate"] {
        assert!(totals[key].is_number(), "{key}: {totals}");
    }
    let q = &details["queues"][&queue];
    assert_eq!(q["state"], "running");
    assert_eq!(q["messages_ready"], 3);
    assert_eq!(q["messages_unacknowledged"], 0);
    assert_eq!(q["consumers"], 0);
    assert!(q["memory_bytes"].as_u64().unwrap() > 0, "{q}");
    assert_eq!(q["durable"], false);
    assert_eq!(q["auto_delete"], false);
    for key in ["publish_rate", "deliver_rate", "ack_rate"] {
        assert!(q[key].is_number(), "{key}: {q}");
    }
    assert!(q.get("idle_since").is_some(), "{q}");
    assert!(!serde_json::to_string(&details).unwrap().contains("guest:guest"));

    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    connection.close(200, "OK".into()).await.unwrap();
}

#[tokio::test]
async fn management_api_down_keeps_the_amqp_result() {
    let probe = RabbitMqProbe::new(amqp_url())
        .unwrap()
        .management_url(format!("http://127.0.0.1:{}", free_port()))
        .unwrap()
        .timeout(Duration::from_secs(3));
    let outcome = probe.check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy);
    let details = outcome.details();
    assert_eq!(details["connected"], true);
    let error = details["management_api_error"].as_str().unwrap();
    assert!(error.starts_with("ManagementApiError: "), "{error}");
    assert!(error.contains("connect"), "{error}");
    assert!(!details.contains_key("server") && !details.contains_key("queues"));
}

/// A user that may use AMQP but not the management API (no tags): the API
/// answers 401 and the probe says so, without the password.
#[tokio::test]
async fn management_api_refusing_the_credentials_keeps_the_amqp_result() {
    let user = format!("axum-watch-amqp-only-{}", std::process::id());
    let password = "s3cret-amqp-only";
    let http = reqwest::Client::new();
    let api = management_url();
    let status = http
        .put(format!("{api}/api/users/{user}"))
        .basic_auth("guest", Some("guest"))
        .json(&json!({"password": password, "tags": ""}))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "creating the user: {status}");
    let status = http
        .put(format!("{api}/api/permissions/%2f/{user}"))
        .basic_auth("guest", Some("guest"))
        .json(&json!({"configure": "", "write": "", "read": ""}))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "granting the vhost: {status}");

    let probe = RabbitMqProbe::new(amqp_url_as(&user, password))
        .unwrap()
        .management_url(&api)
        .unwrap();
    let outcome = probe.check().await;
    http.delete(format!("{api}/api/users/{user}"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap();

    let outcome = outcome.unwrap();
    assert_eq!(outcome.status(), Status::Healthy);
    let details = outcome.details();
    assert_eq!(details["connected"], true);
    let error = details["management_api_error"].as_str().unwrap();
    assert!(error.contains("401"), "{error}");
    assert!(!serde_json::to_string(details).unwrap().contains(password));
}

#[tokio::test]
async fn unreachable_broker_is_unhealthy_with_a_redacted_error() {
    let port = free_port();
    let probe = RabbitMqProbe::new(format!("amqp://guest:s3cret-pw@127.0.0.1:{port}/%2f")).unwrap();
    let started = Instant::now();
    let error = probe.check().await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        error.starts_with(&format!(
            "AmqpError: connect to amqp://guest@127.0.0.1:{port}/%2f failed"
        )),
        "{error}"
    );
    assert!(!error.contains("s3cret-pw"), "{error}");
    assert!(!format!("{probe:?}").contains("s3cret-pw"));
}

#[tokio::test]
async fn wrong_password_is_unhealthy_without_the_password() {
    let probe = RabbitMqProbe::new(amqp_url_as("guest", "not-the-pw-123")).unwrap();
    let started = Instant::now();
    let error = probe.check().await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(error.starts_with("AmqpError: connect to amqp://guest@"), "{error}");
    assert!(!error.contains("not-the-pw-123"), "{error}");
}

/// A server that accepts and then says nothing: the probe's own timeout
/// ends the check with a clear error.
#[tokio::test]
async fn silent_server_times_out_within_the_probe_timeout() {
    let port = silent_listener().await.port();
    let probe = RabbitMqProbe::new(format!("amqp://guest:guest@127.0.0.1:{port}/"))
        .unwrap()
        .timeout(Duration::from_millis(500));
    let started = Instant::now();
    let error = probe.check().await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(
        error.starts_with("Timeout: connect to amqp://guest@127.0.0.1"),
        "{error}"
    );
    assert!(error.contains("within 500ms"), "{error}");
}

/// amqps against the plain-text port: TLS is set up (one crypto provider, no
/// panic) and the failed handshake is a clear unhealthy result.
#[tokio::test]
async fn amqps_against_a_plain_port_fails_cleanly() {
    let plain = amqp_url_as("guest", "guest").replacen("amqp://", "amqps://", 1);
    let probe = RabbitMqProbe::new(&plain).unwrap().timeout(Duration::from_secs(3));
    let error = probe.check().await.unwrap_err().to_string();
    assert!(error.contains("amqps://guest@"), "{error}");
    assert!(!error.contains("guest:guest"), "{error}");
}

/// A real TLS handshake with the AMQPS listener, whose certificate comes
/// from the test CA: trusted through `root_certificate_pem`.
#[tokio::test]
async fn amqps_with_the_test_ca_is_healthy() {
    let probe = RabbitMqProbe::new(amqps_url())
        .unwrap()
        .root_certificate_pem(amqps_ca())
        .unwrap();
    let outcome = probe.check().await.expect("the amqps listener must accept the test CA");
    assert_eq!(outcome.status(), Status::Healthy);
    assert_eq!(Value::Object(outcome.details().clone()), json!({"connected": true}));

    // By IP address too: the certificate names 127.0.0.1 as well.
    let by_ip = amqps_url().replacen("@localhost:", "@127.0.0.1:", 1);
    let probe = RabbitMqProbe::new(&by_ip)
        .unwrap()
        .root_certificate_pem(amqps_ca())
        .unwrap();
    assert_eq!(probe.check().await.unwrap().status(), Status::Healthy);
}

/// Without the test CA the server certificate is not trusted: unhealthy
/// with a certificate error, and no password.
#[tokio::test]
async fn amqps_without_the_test_ca_is_a_certificate_error() {
    let url = with_credentials(&amqps_url(), "guest", "s3cret-tls-pw");
    let registry = HealthRegistry::builder()
        .add(RabbitMqProbe::new(&url).unwrap().timeout(Duration::from_secs(3)))
        .build()
        .unwrap();
    let report = registry.run_all().await;
    let result = &report.probes[0];
    assert_eq!(result.status, Status::Unhealthy);
    let error = result.error.as_deref().unwrap();
    assert!(error.contains("connect to amqps://guest@"), "{error}");
    assert!(error.contains("UnknownIssuer"), "{error}");
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("s3cret-tls-pw"), "{json}");
}

/// The TLS handshake succeeds, then the broker refuses the password.
#[tokio::test]
async fn amqps_with_the_test_ca_and_a_wrong_password_is_unhealthy() {
    let url = with_credentials(&amqps_url(), "guest", "not-the-tls-pw-456");
    let probe = RabbitMqProbe::new(&url)
        .unwrap()
        .root_certificate_pem(amqps_ca())
        .unwrap()
        .timeout(Duration::from_secs(5));
    let started = Instant::now();
    let error = probe.check().await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(error.starts_with("AmqpError: connect to amqps://guest@"), "{error}");
    // Past the handshake: the broker itself refuses the login.
    assert!(error.contains("ACCESS_REFUSED"), "{error}");
    assert!(!error.contains("not-the-tls-pw-456"), "{error}");
}

#[tokio::test]
async fn registry_reports_the_probe_with_its_details() {
    let registry = HealthRegistry::builder()
        .add(RabbitMqProbe::new(amqp_url()).unwrap())
        .add(
            RabbitMqProbe::new(format!("amqp://guest:hunter2@127.0.0.1:{}/", free_port()))
                .unwrap()
                .with_name("rabbitmq-down"),
        )
        .build()
        .unwrap();
    let report = registry.run_all().await;
    let up = &report.probes[0];
    assert_eq!((up.name.as_str(), up.status), ("rabbitmq", Status::Healthy));
    assert_eq!(up.details.as_ref().unwrap()["connected"], true);
    let down = &report.probes[1];
    assert_eq!(down.status, Status::Unhealthy);
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("hunter2"), "{json}");
    assert!(
        down.error
            .as_deref()
            .unwrap()
            .contains("connect to amqp://guest@127.0.0.1"),
        "{json}"
    );
}

// ------------------------------------------------------- TlsOptions

fn test_ca_options() -> TlsOptions {
    TlsOptions::new().root_certificate_pem(amqps_ca()).unwrap()
}

/// The management API's `host:port`.
fn management_upstream() -> String {
    management_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// The AMQPS listener trusted through the `TlsOptions` every probe takes.
#[tokio::test]
async fn amqps_with_tls_options_is_healthy() {
    let probe = RabbitMqProbe::new(amqps_url())
        .unwrap()
        .tls_options(test_ca_options())
        .unwrap();
    assert_eq!(probe.check().await.unwrap().status(), Status::Healthy);
}

/// An `https` management API (the real one behind a TLS-terminating proxy
/// with a certificate of the test CA in `AXUM_WATCH_TEST_CERTS`): refused
/// without its CA, with the reason; read with it.
#[tokio::test]
async fn an_https_management_api_is_verified_with_tls_options() {
    let proxy = tls_proxy(management_upstream(), test_ca_server(false)).await;
    let https = format!("https://localhost:{}", proxy.port());
    let ca = TlsOptions::new().root_certificate_pem(cert_file("ca.crt")).unwrap();

    let untrusted = RabbitMqProbe::new(amqp_url()).unwrap().management_url(&https).unwrap();
    let outcome = untrusted.check().await.unwrap();
    let error = outcome.details()["management_api_error"].as_str().unwrap().to_owned();
    assert!(
        error.starts_with("ManagementApiError: TLS: certificate not trusted: unknown issuer"),
        "{error}"
    );

    let trusted = RabbitMqProbe::new(amqp_url())
        .unwrap()
        .management_url(&https)
        .unwrap()
        .tls_options(ca)
        .unwrap();
    let outcome = trusted.check().await.unwrap();
    assert!(outcome.details().get("management_api_error").is_none(), "{outcome:?}");
    assert!(
        outcome.details()["server"]["rabbitmq_version"].is_string(),
        "{outcome:?}"
    );
}

/// A self-signed management certificate is read only when verification is
/// turned off, which `amqps` refuses (lapin always verifies).
#[tokio::test]
async fn an_untrusted_management_certificate_needs_verification_turned_off() {
    let proxy = tls_proxy(management_upstream(), server_with(false, -1, 30)).await;
    let https = format!("https://localhost:{}", proxy.port());
    let strict = RabbitMqProbe::new(amqp_url())
        .unwrap()
        .management_url(&https)
        .unwrap()
        .tls_options(TlsOptions::new())
        .unwrap();
    let outcome = strict.check().await.unwrap();
    assert!(
        outcome.details()["management_api_error"]
            .as_str()
            .unwrap()
            .contains("unknown issuer")
    );

    let lenient = RabbitMqProbe::new(amqp_url())
        .unwrap()
        .management_url(&https)
        .unwrap()
        .tls_options(TlsOptions::new().danger_accept_invalid_certs(true))
        .unwrap();
    let outcome = lenient.check().await.unwrap();
    assert!(
        outcome.details()["server"]["rabbitmq_version"].is_string(),
        "{outcome:?}"
    );

    let error = RabbitMqProbe::new(amqps_url())
        .unwrap()
        .tls_options(TlsOptions::new().danger_accept_invalid_certs(true))
        .unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::InvalidOption);
    assert!(error.to_string().contains("amqps"), "{error}");
}
