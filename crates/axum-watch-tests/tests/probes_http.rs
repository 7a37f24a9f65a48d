//! `HttpProbe` against real local axum servers: plain HTTP and HTTPS with a
//! certificate generated for the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Redirect;
use axum::routing::{get, post};
use axum_watch::probes::{ConfigError, HttpProbe};
use axum_watch::tls::TlsOptions;
use axum_watch::{HealthRegistry, Probe, ProbeExt, Status};
use base64::Engine as _;
use common::{error, free_port, run_one, serve};
use http::Method;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const SECRET: &str = "s3cr3t-pass";

fn app() -> Router {
    Router::new()
        .route("/health", get(|| async { r#"{"status":"ok"}"# }))
        .route("/fail", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "down") }))
        .route("/moved", get(|| async { Redirect::to("/health") }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .route(
            "/auth",
            get(|headers: HeaderMap| async move {
                let expected = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("user:{SECRET}"))
                );
                match headers.get("authorization") {
                    Some(v) if v == expected.as_str() => StatusCode::OK,
                    _ => StatusCode::UNAUTHORIZED,
                }
            }),
        )
        .route(
            "/submit",
            post(|headers: HeaderMap| async move {
                if headers.get("x-token").is_some_and(|v| v == SECRET) {
                    (StatusCode::CREATED, "accepted")
                } else {
                    (StatusCode::FORBIDDEN, "no token")
                }
            }),
        )
}

#[tokio::test]
async fn healthy_get_reports_status_and_timing() {
    let addr = serve(app()).await;
    let probe = HttpProbe::new(format!("http://{addr}/health")).unwrap();
    assert_eq!(probe.name(), format!("http:127.0.0.1:{}", addr.port()));
    let result = run_one(probe).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    assert_eq!(result.error, None);
    let d = result.details.unwrap();
    assert_eq!(d["url"], format!("http://{addr}/health"));
    assert_eq!(d["method"], "GET");
    assert_eq!(d["status_code"], 200);
    let ms = d["response_ms"].as_f64().unwrap();
    assert!((0.0..5000.0).contains(&ms), "{ms}");
    assert!(d.get("cert_days_remaining").is_none(), "plain http has no certificate");
}

#[tokio::test]
async fn unexpected_status_is_unhealthy() {
    let addr = serve(app()).await;
    let result = run_one(HttpProbe::new(format!("http://{addr}/fail")).unwrap()).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert_eq!(
        error(&result),
        "unexpected status 500 Internal Server Error; expected 200..=399"
    );
    assert_eq!(result.details.unwrap()["status_code"], 500);

    let accepting = HttpProbe::builder(format!("http://{addr}/fail"))
        .expect_status(500..=503)
        .build()
        .unwrap();
    assert_eq!(run_one(accepting).await.status, Status::Healthy);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let addr = serve(app()).await;
    let default = run_one(HttpProbe::new(format!("http://{addr}/moved")).unwrap()).await;
    assert_eq!(default.status, Status::Healthy, "3xx is in the default range");
    assert_eq!(default.details.unwrap()["status_code"], 303);

    let strict = HttpProbe::builder(format!("http://{addr}/moved"))
        .expect_status(200..=299)
        .build()
        .unwrap();
    let result = run_one(strict).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert_eq!(error(&result), "unexpected status 303 See Other; expected 200..=299");
}

#[tokio::test]
async fn body_checks() {
    let addr = serve(app()).await;
    let url = format!("http://{addr}/health");

    let contains = HttpProbe::builder(&url)
        .expect_body_contains(r#""status":"ok""#)
        .build()
        .unwrap();
    assert_eq!(run_one(contains).await.status, Status::Healthy);

    let missing = HttpProbe::builder(&url).expect_body_contains("ready").build().unwrap();
    let result = run_one(missing).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert_eq!(error(&result), r#"response body does not contain "ready""#);
    assert_eq!(result.details.unwrap()["status_code"], 200);

    let parsed = HttpProbe::builder(&url)
        .expect_body(|body| serde_json::from_str::<serde_json::Value>(body).is_ok_and(|v| v["status"] == "ok"))
        .build()
        .unwrap();
    assert_eq!(run_one(parsed).await.status, Status::Healthy);

    let rejected = HttpProbe::builder(&url)
        .expect_body(|body| body.len() > 1000)
        .build()
        .unwrap();
    let result = run_one(rejected).await;
    assert_eq!(
        (result.status, error(&result)),
        (Status::Unhealthy, "response body check failed")
    );
}

#[tokio::test]
async fn closed_port_is_unhealthy() {
    let port = free_port();
    let started = Instant::now();
    let result = run_one(HttpProbe::new(format!("http://127.0.0.1:{port}/health")).unwrap()).await;
    assert_eq!(result.status, Status::Unhealthy);
    let error = error(&result);
    assert!(error.starts_with("request failed: "), "{error}");
    assert!(error.to_lowercase().contains("connect"), "{error}");
    assert!(
        !error.contains("127.0.0.1"),
        "the URL is in details, not repeated in the error: {error}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    let d = result.details.unwrap();
    assert_eq!(d["url"], format!("http://127.0.0.1:{port}/health"));
    assert!(d.get("status_code").is_none());
}

#[tokio::test]
async fn a_hanging_server_times_out_inside_the_probe() {
    let addr = serve(app()).await;
    let probe = HttpProbe::builder(format!("http://{addr}/slow"))
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let result = run_one(probe).await;
    assert_eq!(
        (result.status, error(&result)),
        (Status::Unhealthy, "request timed out after 300 ms")
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn method_and_headers_are_sent_and_header_values_never_shown() {
    let addr = serve(app()).await;
    let builder = HttpProbe::builder(format!("http://{addr}/submit"))
        .method(Method::POST)
        .header("x-token", SECRET)
        .expect_status(201..=201);
    assert!(!format!("{builder:?}").contains(SECRET));
    let probe = builder.build().unwrap();
    let debug = format!("{probe:?}");
    assert!(debug.contains("x-token") && !debug.contains(SECRET), "{debug}");
    let result = run_one(probe).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    let d = result.details.unwrap();
    assert_eq!(
        (d["method"].as_str(), d["status_code"].as_u64()),
        (Some("POST"), Some(201))
    );

    let without = HttpProbe::builder(format!("http://{addr}/submit"))
        .method(Method::POST)
        .build()
        .unwrap();
    assert_eq!(run_one(without).await.details.unwrap()["status_code"], 403);
}

#[tokio::test]
async fn credentials_in_the_url_are_used_but_never_shown() {
    let addr = serve(app()).await;
    let url = format!("http://user:{SECRET}@{addr}/auth");
    let builder = HttpProbe::builder(&url);
    assert!(!format!("{builder:?}").contains(SECRET));
    let probe = builder.build().unwrap();
    assert!(!format!("{probe:?}").contains(SECRET), "{probe:?}");

    let registry = HealthRegistry::builder().add(probe).build().unwrap();
    let report = registry.run_all().await;
    let result = &report.probes[0];
    assert_eq!(
        result.status,
        Status::Healthy,
        "basic auth from the URL was sent: {result:?}"
    );
    assert_eq!(
        result.details.as_ref().unwrap()["url"],
        format!("http://user:***@{addr}/auth")
    );
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains(SECRET), "{json}");

    // The same credentials against a closed port: the error stays clean.
    let port = free_port();
    let down = HttpProbe::new(format!("http://user:{SECRET}@127.0.0.1:{port}/auth")).unwrap();
    let result = run_one(down).await;
    assert_eq!(result.status, Status::Unhealthy);
    let everything = format!("{result:?} {}", serde_json::to_string(&result).unwrap());
    assert!(!everything.contains(SECRET), "{everything}");

    // A wrong password is an unhealthy 401, still without the password.
    let wrong = HttpProbe::new(format!("http://user:wrong-{SECRET}@{addr}/auth")).unwrap();
    let result = run_one(wrong).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert!(error(&result).starts_with("unexpected status 401"));
    assert!(!format!("{result:?}").contains(SECRET));
}

#[test]
fn bad_options_are_refused_clearly() {
    let cases: [(Result<HttpProbe, ConfigError>, &str); 7] = [
        (
            HttpProbe::new("not a url"),
            "invalid HTTP probe URL: relative URL without a base",
        ),
        (
            HttpProbe::new("ftp://user:secret@files.example.com/"),
            "invalid HTTP probe URL: the scheme must be http or https, not ftp",
        ),
        (HttpProbe::new("http://"), "invalid HTTP probe URL: empty host"),
        (
            HttpProbe::builder("http://example.com")
                .header("bad header", "x")
                .build(),
            "invalid header name \"bad header\"",
        ),
        (
            HttpProbe::builder("http://example.com")
                .header("x-token", "line\nbreak")
                .build(),
            "the value of header x-token is invalid: it must be visible ASCII",
        ),
        #[allow(clippy::reversed_empty_ranges)]
        (
            HttpProbe::builder("http://example.com")
                .expect_status(300..=200)
                .build(),
            "invalid expected status range 300..=200: it is empty",
        ),
        (
            HttpProbe::builder("https://example.com")
                .root_certificate_pem("not a certificate")
                .build(),
            "invalid root certificate: no PEM certificate found",
        ),
    ];
    for (result, want) in cases {
        assert_eq!(result.unwrap_err().to_string(), want);
    }
}

// ---------------------------------------------------------------- https

struct Pki {
    ca_pem: String,
    config: Arc<ServerConfig>,
}

/// A CA and a server certificate for 127.0.0.1 signed by it, valid from
/// yesterday until `valid_for` from now (negative: already expired).
fn pki(valid_for: time::Duration) -> Pki {
    let now = time::OffsetDateTime::now_utc();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = now - time::Duration::days(10);
    ca_params.not_after = now + time::Duration::days(3650);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params.not_before = now - time::Duration::days(5);
    params.not_after = now + valid_for;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();

    let chain = vec![cert.der().clone(), CertificateDer::from(ca.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    // The crate's one provider, named: a workspace build also enables
    // rustls's ring (the CLI's), and then no process default exists.
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        config: Arc::new(config),
    }
}

/// TLS over a TCP listener, for `axum::serve`; failed handshakes (a client
/// that does not trust the certificate) are skipped.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn serve_tls(pki: &Pki) -> SocketAddr {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(pki.config.clone()),
    };
    tokio::spawn(async move { axum::serve(listener, app()).await.unwrap() });
    addr
}

#[tokio::test]
async fn https_reports_certificate_days_remaining() {
    let pki = pki(time::Duration::days(30));
    let addr = serve_tls(&pki).await;
    let probe = HttpProbe::builder(format!("https://{addr}/health"))
        .root_certificate_pem(pki.ca_pem.clone())
        .expect_body_contains("ok")
        .build()
        .unwrap();
    let result = run_one(probe).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    let d = result.details.unwrap();
    assert_eq!(d["url"], format!("https://{addr}/health"));
    assert_eq!(d["status_code"], 200);
    let days = d["cert_days_remaining"].as_i64().unwrap();
    assert!((29..=30).contains(&days), "{days}");
    let not_after = d["cert_not_after"].as_str().unwrap();
    let expected = (time::OffsetDateTime::now_utc() + time::Duration::days(30)).year();
    assert!(
        not_after.starts_with(&expected.to_string()) && not_after.ends_with('Z'),
        "{not_after}"
    );
}

#[tokio::test]
async fn https_certificate_checks() {
    let pki = pki(time::Duration::days(30));
    let addr = serve_tls(&pki).await;
    let url = format!("https://{addr}/health");

    // Not trusted: the handshake fails.
    let result = run_one(HttpProbe::new(&url).unwrap()).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert!(error(&result).contains("certificate"), "{}", error(&result));

    // Trust anything: connects and still reads the expiry.
    let lax = HttpProbe::builder(&url)
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let result = run_one(lax).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    assert!(result.details.unwrap()["cert_days_remaining"].as_i64().unwrap() >= 29);

    // Expiring within the warning window: degraded.
    let warned = HttpProbe::builder(&url)
        .root_certificate_pem(pki.ca_pem.clone())
        .warn_cert_days(60)
        .build()
        .unwrap()
        .with_name("api");
    let result = run_one(warned).await;
    assert_eq!(result.status, Status::Degraded, "{result:?}");
    assert!(
        error(&result).ends_with("days, under the 60-day warning"),
        "{}",
        error(&result)
    );
}

#[tokio::test]
async fn https_expired_certificate_is_unhealthy() {
    let pki = pki(-time::Duration::days(3));
    let addr = serve_tls(&pki).await;
    let url = format!("https://{addr}/health");

    let strict = HttpProbe::builder(&url)
        .root_certificate_pem(pki.ca_pem.clone())
        .build()
        .unwrap();
    let result = run_one(strict).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert!(error(&result).to_lowercase().contains("expired"), "{}", error(&result));

    let lax = HttpProbe::builder(&url)
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let result = run_one(lax).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert!(error(&result).starts_with("certificate expired "), "{}", error(&result));
    let days = result.details.unwrap()["cert_days_remaining"].as_i64().unwrap();
    assert!((-4..=-3).contains(&days), "{days}");
}

/// The `TlsOptions` every probe takes: untrusted refused, trusted with the
/// CA (expiry still read), accepted when verification is turned off; a
/// server-name override is refused at build.
#[tokio::test]
async fn https_with_tls_options() {
    let pki = pki(time::Duration::days(30));
    let addr = serve_tls(&pki).await;
    let url = format!("https://{addr}/health");

    let strict = HttpProbe::builder(&url).tls_options(TlsOptions::new()).build().unwrap();
    let result = run_one(strict).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert!(error(&result).contains("UnknownIssuer"), "{}", error(&result));

    let trusted = TlsOptions::new().root_certificate_pem(&pki.ca_pem).unwrap();
    let result = run_one(HttpProbe::builder(&url).tls_options(trusted).build().unwrap()).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    let days = result.details.unwrap()["cert_days_remaining"].as_i64().unwrap();
    assert!((29..=30).contains(&days), "{days}");

    let lax = TlsOptions::new().danger_accept_invalid_certs(true);
    let result = run_one(HttpProbe::builder(&url).tls_options(lax).build().unwrap()).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");

    // The builder's own root certificate adds to the options.
    let result = run_one(
        HttpProbe::builder(&url)
            .tls_options(TlsOptions::new())
            .root_certificate_pem(pki.ca_pem.clone())
            .build()
            .unwrap(),
    )
    .await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");

    let named = TlsOptions::new().server_name("api.internal").unwrap();
    let error = HttpProbe::builder(&url).tls_options(named).build().unwrap_err();
    assert!(error.to_string().contains("server_name"), "{error}");
}
