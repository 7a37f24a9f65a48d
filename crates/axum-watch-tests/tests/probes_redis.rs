//! `RedisProbe` against a real Redis on loopback (`AXUM_WATCH_REDIS_URL`,
//! default `redis://127.0.0.1:6379`), plus throwaway `redis-server`s started
//! here for password and permission cases. Fails, never skips, without Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum_watch::probes::RedisProbe;
use axum_watch::{ProbeResult, Status};
use common::{env_or, free_port, redis_url, run, silent_listener};

/// Everything a user or a log could see of a result.
fn visible(result: &ProbeResult) -> String {
    format!("{result:?} {}", serde_json::to_string(result).unwrap())
}

/// A `redis-server` of our own on a free port, stopped on drop.
struct Throwaway {
    child: Child,
    port: u16,
}

impl Throwaway {
    async fn start(extra: &[&str]) -> Self {
        let port = free_port();
        let binary = env_or("AXUM_WATCH_REDIS_SERVER", "redis-server");
        let child = Command::new(&binary)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &std::env::temp_dir().display().to_string(),
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "redis-server on port {port} did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn healthy_with_the_documented_details() {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("axum-watch:test:redis-probe")
        .arg("1")
        .arg("EX")
        .arg(60)
        .query_async(&mut connection)
        .await
        .unwrap();

    let result = run(RedisProbe::new(redis_url()).unwrap()).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    assert_eq!(result.name, "redis");
    let details = result.details.as_ref().unwrap();
    let version = details["version"].as_str().unwrap();
    assert!(version.split('.').count() >= 2, "{version}");
    assert!(details["uptime_seconds"].as_u64().is_some(), "{details:?}");
    assert!(
        details["used_memory_human"]
            .as_str()
            .unwrap()
            .ends_with(['B', 'K', 'M', 'G']),
        "{details:?}"
    );
    assert!(details["connected_clients"].as_u64().unwrap() >= 2, "{details:?}");
    assert!(details["total_keys"].as_u64().unwrap() >= 1, "{details:?}");
}

#[tokio::test]
async fn checks_an_existing_connection_manager_or_multiplexed_connection() {
    let client = redis::Client::open(redis_url()).unwrap();
    let manager = client.get_connection_manager().await.unwrap();
    let result = run(RedisProbe::from_connection(manager)).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    assert!(result.details.unwrap()["version"].is_string());

    let multiplexed = client.get_multiplexed_async_connection().await.unwrap();
    let probe = RedisProbe::from_connection(multiplexed);
    assert_eq!(
        format!("{probe:?}"),
        r#"RedisProbe { target: "existing connection", timeout: 5s }"#
    );
    let result = run(probe).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
}

#[tokio::test]
async fn closed_port_is_unhealthy_quickly() {
    let port = free_port();
    let started = Instant::now();
    let result = run(RedisProbe::new(format!("redis://127.0.0.1:{port}")).unwrap()).await;
    assert_eq!(result.status, Status::Unhealthy);
    let error = result.error.unwrap();
    assert!(error.starts_with("RedisError: connect failed:"), "{error}");
    assert!(error.to_lowercase().contains("refused"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_password_on_a_server_without_one_is_refused_and_never_shown() {
    let url = redis_url().replacen("redis://", "redis://:hunter2-wrong@", 1);
    let probe = RedisProbe::new(&url).unwrap();
    assert!(!format!("{probe:?}").contains("hunter2"));
    let result = run(probe).await;
    assert_eq!(result.status, Status::Unhealthy);
    let error = result.error.as_deref().unwrap();
    assert!(error.contains("authentication failed"), "{error}");
    assert!(!visible(&result).contains("hunter2"), "{}", visible(&result));
}

#[tokio::test]
async fn a_wrong_database_index_is_unhealthy() {
    let url = format!("{}/99", redis_url().trim_end_matches('/'));
    let result = run(RedisProbe::new(url).unwrap()).await;
    assert_eq!(result.status, Status::Unhealthy);
    let error = result.error.unwrap();
    assert!(error.contains("DB index is out of range"), "{error}");
}

#[tokio::test]
async fn password_protected_server_right_and_wrong_password() {
    let server = Throwaway::start(&["--requirepass", "s3cret-right"]).await;

    let good = RedisProbe::new(format!("redis://:s3cret-right@127.0.0.1:{}/0", server.port)).unwrap();
    let result = run(good).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    assert_eq!(result.details.as_ref().unwrap()["total_keys"], 0);
    assert!(!visible(&result).contains("s3cret"));

    let bad = RedisProbe::new(format!("redis://:s3cret-wrong@127.0.0.1:{}/0", server.port)).unwrap();
    let result = run(bad).await;
    assert_eq!(result.status, Status::Unhealthy);
    let error = result.error.as_deref().unwrap();
    assert!(error.contains("authentication failed"), "{error}");
    assert!(!visible(&result).contains("s3cret"), "{}", visible(&result));

    let none = RedisProbe::new(format!("redis://127.0.0.1:{}", server.port)).unwrap();
    let result = run(none).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert!(result.error.unwrap().contains("NOAUTH"));
}

#[tokio::test]
async fn ping_allowed_but_info_denied_is_healthy_without_details() {
    let server = Throwaway::start(&[]).await;
    let admin = redis::Client::open(format!("redis://127.0.0.1:{}", server.port)).unwrap();
    let mut connection = admin.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "pinger", "on", ">pingerpw", "+ping", "+hello", "+client"])
        .query_async(&mut connection)
        .await
        .unwrap();

    let probe = RedisProbe::new(format!("redis://pinger:pingerpw@127.0.0.1:{}", server.port)).unwrap();
    let result = run(probe).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    let details = result.details.unwrap_or_default();
    for key in [
        "version",
        "uptime_seconds",
        "used_memory_human",
        "connected_clients",
        "total_keys",
    ] {
        assert!(!details.contains_key(key), "{details:?}");
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_inside_the_probe() {
    let port = silent_listener().await.port();

    let started = Instant::now();
    let probe = RedisProbe::new(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .timeout(Duration::from_millis(500));
    let result = run(probe).await;
    assert_eq!(result.status, Status::Unhealthy);
    let error = result.error.unwrap();
    assert!(
        error.contains("no answer within 500ms") || error.contains("timed out"),
        "{error}"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}
