//! `rediss://` for `RedisProbe`, `RedisStorage` and the Celery probe's
//! Redis broker against the TLS-only Redis servers of
//! `scripts/services/tls.sh` (`AXUM_WATCH_REDIS_TLS_URL`, client
//! certificates optional; `AXUM_WATCH_REDIS_MTLS_URL`, client certificates
//! required), whose certificate comes from the test CA at
//! `AXUM_WATCH_TLS_CA`. Fails, never skips, without those servers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum_watch::probes::{CeleryProbe, NoOpProbe, RedisProbe};
use axum_watch::storage::RedisStorage;
use axum_watch::tls::TlsOptions;
use axum_watch::{HealthRegistry, ProbeResult, Status, Storage};
use common::{error, run, tls_env, tls_file};

fn tls_url() -> String {
    tls_env("AXUM_WATCH_REDIS_TLS_URL")
}

fn trusted() -> TlsOptions {
    TlsOptions::new()
        .root_certificate_pem(tls_file("AXUM_WATCH_TLS_CA"))
        .unwrap()
}

fn with_client_certificate() -> TlsOptions {
    trusted()
        .client_identity_pem(
            tls_file("AXUM_WATCH_TLS_CLIENT_CERT"),
            tls_file("AXUM_WATCH_TLS_CLIENT_KEY"),
        )
        .unwrap()
}

fn detail<'a>(result: &'a ProbeResult, key: &str) -> &'a serde_json::Value {
    result
        .details
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("no {key} in {result:?}"))
}

fn assert_tls_details(result: &ProbeResult) {
    assert!(
        detail(result, "tls_version").as_str().unwrap().starts_with("TLSv1."),
        "{result:?}"
    );
    assert!(
        detail(result, "cert_days_remaining").as_i64().unwrap() > 30,
        "{result:?}"
    );
    assert!(detail(result, "cert_not_after").is_string(), "{result:?}");
}

#[tokio::test]
async fn the_probe_over_rediss_with_the_test_ca() {
    let result = run(RedisProbe::new(tls_url()).unwrap().tls_options(trusted())).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    assert!(detail(&result, "version").is_string());
    assert_tls_details(&result);
}

#[tokio::test]
async fn the_probe_refuses_an_untrusted_certificate_unless_verification_is_off() {
    let result = run(RedisProbe::new(tls_url()).unwrap()).await;
    assert_eq!(result.status, Status::Unhealthy);
    let text = error(&result);
    assert!(
        text.starts_with("TlsError: connect failed: TLS handshake with 127.0.0.1:")
            && text.ends_with("failed: certificate not trusted: unknown issuer (trust its CA with root_certificate_pem or sslrootcert)"),
        "{text}"
    );
    let wrong = TlsOptions::new()
        .root_certificate_pem(tls_file("AXUM_WATCH_TLS_OTHER_CA"))
        .unwrap();
    let result = run(RedisProbe::new(tls_url()).unwrap().tls_options(wrong)).await;
    assert!(error(&result).contains("unknown issuer"), "{result:?}");

    let unchecked = TlsOptions::new().danger_accept_invalid_certs(true);
    let result = run(RedisProbe::new(tls_url()).unwrap().tls_options(unchecked)).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
}

#[tokio::test]
async fn a_name_mismatch_is_named() {
    let tls = trusted().server_name("cache.example.com").unwrap();
    let result = run(RedisProbe::new(tls_url()).unwrap().tls_options(tls)).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert!(
        error(&result).contains("certificate name mismatch: it is not valid for \"cache.example.com\""),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_plain_client_is_not_answered_by_a_tls_port() {
    let plain = tls_url().replacen("rediss://", "redis://", 1);
    let result = run(RedisProbe::new(plain).unwrap().timeout(Duration::from_secs(2))).await;
    assert_eq!(result.status, Status::Unhealthy, "{result:?}");
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let url = tls_env("AXUM_WATCH_REDIS_MTLS_URL");
    let result = run(RedisProbe::new(&url).unwrap().tls_options(trusted())).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert!(error(&result).contains("client certificate"), "{result:?}");
    let result = run(RedisProbe::new(&url).unwrap().tls_options(with_client_certificate())).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    assert_tls_details(&result);
}

fn store(service: &str, replica: &str) -> axum_watch::storage::RedisStorageBuilder {
    RedisStorage::builder(tls_url(), service)
        .replica(replica)
        .operation_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(5))
}

fn service(what: &str) -> String {
    format!("tls-{what}-{}", std::process::id())
}

/// One run written through `writer`; `reader` (another replica) sees it.
async fn shared_through(writer: RedisStorage, reader: RedisStorage) {
    let registry = HealthRegistry::builder()
        .add(NoOpProbe::new())
        .storage(writer.clone())
        .build()
        .unwrap();
    assert_eq!(registry.run_all().await.status, Status::Healthy);
    writer.flush(Duration::from_secs(10)).await.unwrap();
    let fleet = reader.fleet().await.unwrap();
    assert!(fleet.iter().any(|r| r.replica == "writer"), "{fleet:?}");
}

#[tokio::test]
async fn the_store_over_rediss() {
    let name = service("store");
    let writer = store(&name, "writer").tls_options(trusted()).build().unwrap();
    let reader = store(&name, "reader").tls_options(trusted()).build().unwrap();
    shared_through(writer, reader).await;
}

#[tokio::test]
async fn the_store_over_mutual_tls() {
    let name = service("mtls");
    let mtls = |replica| {
        RedisStorage::builder(tls_env("AXUM_WATCH_REDIS_MTLS_URL"), &name)
            .replica(replica)
            .tls_options(with_client_certificate())
            .build()
            .unwrap()
    };
    shared_through(mtls("writer"), mtls("reader")).await;
}

#[tokio::test]
async fn the_store_refuses_an_untrusted_certificate_unless_verification_is_off() {
    let name = service("untrusted");
    let refused = store(&name, "reader").build().unwrap();
    let error = refused.fleet().await.unwrap_err().to_string();
    assert!(
        error.contains("redis: could not connect") && error.contains("certificate not trusted: unknown issuer"),
        "{error}"
    );
    let unchecked = store(&name, "writer")
        .tls_options(TlsOptions::new().danger_accept_invalid_certs(true))
        .build()
        .unwrap();
    let reader = store(&name, "reader").tls_options(trusted()).build().unwrap();
    shared_through(unchecked, reader).await;
}

#[tokio::test]
async fn the_celery_broker_over_rediss() {
    // No worker listens on this Redis: the broadcast goes out over TLS and
    // nobody answers, which min_workers 0 accepts.
    let celery = CeleryProbe::new(tls_url()).unwrap().timeout(Duration::from_millis(300));
    let result = run(celery.tls_options(trusted())).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    assert_eq!(detail(&result, "workers_online"), 0);
    assert_tls_details(&result);

    let result = run(CeleryProbe::new(tls_url()).unwrap()).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert!(
        error(&result).contains("certificate not trusted: unknown issuer"),
        "{result:?}"
    );
    let unchecked = TlsOptions::new().danger_accept_invalid_certs(true);
    let result = run(CeleryProbe::new(tls_url())
        .unwrap()
        .timeout(Duration::from_millis(300))
        .tls_options(unchecked))
    .await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");

    let mtls = CeleryProbe::new(tls_env("AXUM_WATCH_REDIS_MTLS_URL"))
        .unwrap()
        .timeout(Duration::from_millis(300))
        .tls_options(with_client_certificate());
    assert_eq!(run(mtls).await.status, Status::Healthy);
}
