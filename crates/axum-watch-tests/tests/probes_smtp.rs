//! `SmtpProbe` against real aiosmtpd servers on loopback, started by
//! `scripts/services/smtp.sh`: plain (`AXUM_WATCH_SMTP_ADDR`, default
//! `127.0.0.1:8025`), STARTTLS (`AXUM_WATCH_SMTP_TLS_ADDR`, `127.0.0.1:8587`)
//! and implicit TLS (`AXUM_WATCH_SMTPS_ADDR`, `127.0.0.1:8465`), the TLS ones
//! with a certificate from the test CA at `AXUM_WATCH_SMTP_TLS_CA` (default
//! `$XDG_CACHE_HOME/axum-watch/test-certs/ca.crt`, `~/.cache` when unset).
//! Fails, never skips, without them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use axum_watch::probes::{SmtpProbe, SmtpTls};
use axum_watch::{ProbeResult, Status};
use common::{cache_dir, env_or, free_port, host_port, run, silent_listener};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

fn plain() -> (String, u16) {
    host_port("AXUM_WATCH_SMTP_ADDR", "127.0.0.1:8025")
}

fn starttls() -> (String, u16) {
    host_port("AXUM_WATCH_SMTP_TLS_ADDR", "127.0.0.1:8587")
}

fn smtps() -> (String, u16) {
    host_port("AXUM_WATCH_SMTPS_ADDR", "127.0.0.1:8465")
}

fn test_ca() -> Vec<u8> {
    let path = env_or(
        "AXUM_WATCH_SMTP_TLS_CA",
        &format!("{}/axum-watch/test-certs/ca.crt", cache_dir()),
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("test CA {path}: {e}; run scripts/services/smtp.sh"))
}

fn extensions(result: &ProbeResult) -> Vec<String> {
    let details = result.details.as_ref().unwrap();
    details["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn plain_session_is_healthy_with_banner_and_extensions() {
    let (host, port) = plain();
    let result = run(SmtpProbe::new(host.clone(), port)).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    assert_eq!(result.name, "smtp");
    let details = result.details.as_ref().unwrap();
    assert_eq!(details["host"], host.as_str());
    assert_eq!(details["port"], port);
    assert_eq!(details["tls"], "none");
    assert!(!details.contains_key("tls_version"));
    assert!(
        details["banner"].as_str().unwrap().contains("Python SMTP"),
        "{details:?}"
    );
    let extensions = extensions(&result);
    assert!(extensions.contains(&"8BITMIME".to_owned()), "{extensions:?}");
    assert!(extensions.contains(&"HELP".to_owned()), "{extensions:?}");
    assert!(!extensions.contains(&"STARTTLS".to_owned()), "{extensions:?}");
    // The first line of the EHLO reply is the server's name, not an extension.
    assert!(!extensions.contains(&"localhost".to_owned()), "{extensions:?}");
}

#[tokio::test]
async fn starttls_with_the_test_ca_is_healthy_and_ehlo_is_repeated_over_tls() {
    let (host, port) = starttls();
    for name in [host.as_str(), "localhost"] {
        let probe = SmtpProbe::new(name, port)
            .tls(SmtpTls::StartTls)
            .root_certificate_pem(test_ca())
            .ehlo_name("probe.test");
        let result = run(probe).await;
        assert_eq!(result.status, Status::Healthy, "{result:?}");
        let details = result.details.as_ref().unwrap();
        assert_eq!(details["tls"], "starttls");
        assert!(
            matches!(details["tls_version"].as_str(), Some("TLSv1.3" | "TLSv1.2")),
            "{details:?}"
        );
        // The server offers STARTTLS only before TLS: these came from the second EHLO.
        let extensions = extensions(&result);
        assert!(!extensions.contains(&"STARTTLS".to_owned()), "{extensions:?}");
        assert!(extensions.contains(&"8BITMIME".to_owned()), "{extensions:?}");
    }
}

#[tokio::test]
async fn starttls_without_trusting_the_ca_is_unhealthy() {
    let (host, port) = starttls();
    let result = run(SmtpProbe::new(host.clone(), port).tls(SmtpTls::StartTls)).await;
    assert_eq!(result.status, Status::Unhealthy);
    let error = result.error.unwrap();
    assert!(
        error.starts_with(&format!("TlsError: TLS handshake with {host}:{port} failed")),
        "{error}"
    );
    assert!(error.contains("certificate not trusted: unknown issuer"), "{error}");
}

#[tokio::test]
async fn starttls_accepting_invalid_certificates_is_healthy() {
    let (host, port) = starttls();
    let probe = SmtpProbe::new(host, port)
        .tls(SmtpTls::StartTls)
        .danger_accept_invalid_certs(true);
    let result = run(probe).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
}

#[tokio::test]
async fn starttls_against_a_server_not_offering_it_is_unhealthy() {
    let (host, port) = plain();
    let result = run(SmtpProbe::new(host, port).tls(SmtpTls::StartTls)).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert_eq!(
        result.error.as_deref(),
        Some("SmtpError: the server does not offer STARTTLS")
    );
}

#[tokio::test]
async fn implicit_tls_is_healthy() {
    let (host, port) = smtps();
    let probe = SmtpProbe::new(host, port)
        .tls(SmtpTls::Implicit)
        .root_certificate_pem(test_ca());
    let result = run(probe).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    let details = result.details.as_ref().unwrap();
    assert_eq!(details["tls"], "implicit");
    assert!(details["tls_version"].is_string(), "{details:?}");
    assert!(
        details["banner"].as_str().unwrap().contains("Python SMTP"),
        "{details:?}"
    );
}

#[tokio::test]
async fn closed_port_is_unhealthy_quickly() {
    let port = free_port();
    let started = Instant::now();
    let result = run(SmtpProbe::new("127.0.0.1", port)).await;
    assert_eq!(result.status, Status::Unhealthy);
    let error = result.error.unwrap();
    assert!(
        error.starts_with(&format!("io::Error: cannot connect to smtp server at 127.0.0.1:{port}")),
        "{error}"
    );
    assert!(error.to_lowercase().contains("refused"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_inside_the_probe() {
    let port = silent_listener().await.port();
    for tls in [SmtpTls::None, SmtpTls::Implicit] {
        let started = Instant::now();
        let probe = SmtpProbe::new("127.0.0.1", port)
            .tls(tls)
            .danger_accept_invalid_certs(true)
            .timeout(Duration::from_millis(400));
        let result = run(probe).await;
        assert_eq!(result.status, Status::Unhealthy);
        let expected = match tls {
            SmtpTls::Implicit => "Timeout: smtp TLS handshake: timed out after 400ms",
            _ => "Timeout: smtp banner: timed out after 400ms",
        };
        assert_eq!(result.error.as_deref(), Some(expected));
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(350) && elapsed < Duration::from_secs(2),
            "{elapsed:?}"
        );
    }
}

/// A server that sends `banner`, then answers each command line with the
/// next of `replies`, recording what it was sent.
async fn scripted_server(
    banner: &'static str,
    replies: &'static [&'static str],
) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut socket = BufReader::new(socket);
        socket.get_mut().write_all(banner.as_bytes()).await.unwrap();
        let mut received = Vec::new();
        for reply in replies {
            let mut line = String::new();
            if socket.read_line(&mut line).await.unwrap() == 0 {
                break;
            }
            received.push(line.trim_end().to_owned());
            socket.get_mut().write_all(reply.as_bytes()).await.unwrap();
        }
        received
    });
    (port, task)
}

#[tokio::test]
async fn a_refusing_banner_or_ehlo_reply_is_unhealthy_with_the_server_words() {
    let (port, server) = scripted_server("554 5.3.2 no service for you\r\n", &[]).await;
    let result = run(SmtpProbe::new("127.0.0.1", port)).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert_eq!(
        result.error.as_deref(),
        Some("SmtpError: the server refused the session: 554 5.3.2 no service for you")
    );
    server.await.unwrap();

    let (port, server) = scripted_server(
        "220 mx.test ESMTP\r\n",
        &["421-4.7.0 too busy\r\n421 4.7.0 try later\r\n"],
    )
    .await;
    let result = run(SmtpProbe::new("127.0.0.1", port).ehlo_name("probe.test")).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert_eq!(
        result.error.as_deref(),
        Some("SmtpError: EHLO rejected: 421 4.7.0 too busy 4.7.0 try later")
    );
    assert_eq!(server.await.unwrap(), ["EHLO probe.test"]);
}

#[tokio::test]
async fn the_session_ends_with_quit_and_sends_no_mail() {
    let (port, server) = scripted_server(
        "220-mx.test ESMTP\r\n220 second line\r\n",
        &["250-mx.test\r\n250 PIPELINING\r\n", "221 bye\r\n"],
    )
    .await;
    let result = run(SmtpProbe::new("127.0.0.1", port)).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    let details = result.details.as_ref().unwrap();
    assert_eq!(details["banner"], "mx.test ESMTP\nsecond line");
    assert_eq!(details["extensions"], Value::from(vec!["PIPELINING"]));
    assert_eq!(server.await.unwrap(), ["EHLO localhost", "QUIT"]);
}
