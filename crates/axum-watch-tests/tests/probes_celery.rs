//! `CeleryProbe` against real Celery workers: one on Redis, one on RabbitMQ,
//! started by `scripts/services/celery.sh` (which exports the broker URLs,
//! node names and the virtualenv's python). Fails, never skips, when a
//! worker does not answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use axum_watch::probes::CeleryProbe;
use axum_watch::{HealthRegistry, Probe, ProbeExt, Status};
use common::{cache_dir, env_or, free_port};
use serde_json::{Value, json};

fn redis_broker() -> String {
    env_or("AXUM_WATCH_CELERY_REDIS_BROKER", "redis://127.0.0.1:6379/3")
}

fn amqp_broker() -> String {
    env_or("AXUM_WATCH_CELERY_AMQP_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
}

fn redis_node() -> String {
    env_or("AXUM_WATCH_CELERY_REDIS_NODE", "axum-watch-redis@ci")
}

fn amqp_node() -> String {
    env_or("AXUM_WATCH_CELERY_AMQP_NODE", "axum-watch-amqp@ci")
}

fn workers(outcome: &axum_watch::Outcome) -> Vec<String> {
    serde_json::from_value(outcome.details()["workers"].clone()).unwrap()
}

#[tokio::test]
async fn redis_worker_answers_the_ping() {
    let probe = CeleryProbe::new(redis_broker()).unwrap().min_workers(1);
    let started = Instant::now();
    let outcome = probe.check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy, "{outcome:?}");
    assert!(outcome.details()["workers_online"].as_u64().unwrap() >= 1);
    assert!(workers(&outcome).contains(&redis_node()), "{outcome:?}");
    // PUBLISH says how many workers listen, so the probe stops waiting once
    // they all answered instead of sitting out the whole timeout.
    let fast = CeleryProbe::new(redis_broker())
        .unwrap()
        .timeout(Duration::from_secs(5));
    let started_fast = Instant::now();
    assert!(workers(&fast.check().await.unwrap()).contains(&redis_node()));
    assert!(
        started_fast.elapsed() < Duration::from_secs(3),
        "{:?}",
        started_fast.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[tokio::test]
async fn amqp_worker_answers_the_ping() {
    let probe = CeleryProbe::new(amqp_broker()).unwrap().min_workers(1);
    let started = Instant::now();
    let outcome = probe.check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy, "{outcome:?}");
    assert!(outcome.details()["workers_online"].as_u64().unwrap() >= 1);
    assert!(workers(&outcome).contains(&amqp_node()), "{outcome:?}");
    assert!(
        !workers(&outcome).contains(&redis_node()),
        "brokers are separate: {outcome:?}"
    );
    // The whole 1 s reply window, plus connecting.
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

/// Another Redis database has no worker: the broadcast reaches nobody.
fn idle_redis_broker() -> String {
    let url = redis_broker();
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/9")
}

#[tokio::test]
async fn no_worker_with_min_workers_zero_is_healthy_with_a_reason() {
    let outcome = CeleryProbe::new(idle_redis_broker()).unwrap().check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy);
    assert_eq!(
        Value::Object(outcome.details().clone()),
        json!({
            "workers_online": 0,
            "reason": "no workers online — they may be scaled down because there are no pending tasks",
        })
    );
}

#[tokio::test]
async fn no_worker_with_min_workers_one_is_unhealthy() {
    let outcome = CeleryProbe::new(idle_redis_broker())
        .unwrap()
        .min_workers(1)
        .check()
        .await
        .unwrap();
    assert_eq!(outcome.status(), Status::Unhealthy);
    assert_eq!(outcome.error(), Some("no workers online; expected at least 1"));
    assert_eq!(outcome.details()["workers_online"], 0);
    assert!(!outcome.details().contains_key("reason"));
}

#[tokio::test]
async fn too_few_workers_is_unhealthy_with_the_count() {
    let outcome = CeleryProbe::new(redis_broker())
        .unwrap()
        .min_workers(5)
        .check()
        .await
        .unwrap();
    assert_eq!(outcome.status(), Status::Unhealthy);
    let online = outcome.details()["workers_online"].as_u64().unwrap();
    assert!(online >= 1);
    assert_eq!(
        outcome.error().unwrap(),
        format!("{online} workers online; expected at least 5")
    );
    assert!(workers(&outcome).contains(&redis_node()));
}

/// A vhost of its own on RabbitMQ has no worker either.
#[tokio::test]
async fn no_worker_on_an_amqp_vhost() {
    let api = env_or("AXUM_WATCH_RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:15672");
    let vhost = format!("axum-watch-idle-{}", std::process::id());
    let http = reqwest::Client::new();
    for url in [
        format!("{api}/api/vhosts/{vhost}"),
        format!("{api}/api/permissions/{vhost}/guest"),
    ] {
        let body = json!({"configure": ".*", "write": ".*", "read": ".*"});
        let status = http
            .put(&url)
            .basic_auth("guest", Some("guest"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{url}: {status}");
    }
    let broker = amqp_broker().trim_end_matches('/').to_owned() + "/" + &vhost;
    let zero = CeleryProbe::new(&broker).unwrap().check().await;
    let one = CeleryProbe::new(&broker).unwrap().min_workers(1).check().await;
    http.delete(format!("{api}/api/vhosts/{vhost}"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap();
    let zero = zero.unwrap();
    assert_eq!(zero.status(), Status::Healthy);
    assert_eq!(zero.details()["workers_online"], 0);
    assert!(zero.details()["reason"].is_string());
    assert_eq!(one.unwrap().status(), Status::Unhealthy);
}

/// Sends `tasks.sleep(seconds)` to the Redis worker through the Celery app.
fn send_sleep_task(seconds: u32) -> String {
    let python = env_or(
        "AXUM_WATCH_CELERY_PYTHON",
        &format!("{}/axum-watch/celery-venv/bin/python", cache_dir()),
    );
    let app_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/celery");
    // `timeout`: Celery retries an unreachable broker for a long time.
    let output = Command::new("timeout")
        .arg("30")
        .arg(python)
        .current_dir(app_dir)
        .env("CELERY_BROKER_URL", redis_broker())
        .args(["-c", &format!("import tasks; print(tasks.sleep.delay({seconds}).id)")])
        .output()
        .expect("the celery virtualenv (scripts/services/celery.sh)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn detailed_mode_shows_a_running_task() {
    let task_id = send_sleep_task(3);
    let probe = CeleryProbe::new(redis_broker()).unwrap().detailed(true);
    let node = redis_node();
    let started = Instant::now();
    let worker = loop {
        let outcome = probe.check().await.unwrap();
        assert_eq!(outcome.status(), Status::Healthy);
        let worker = outcome.details()["workers"][&node].clone();
        assert!(worker.is_object(), "{outcome:?}");
        if worker["active"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == task_id.as_str())
        {
            break worker;
        }
        // Earlier runs may still hold the pool's two threads for up to 3 s.
        assert!(started.elapsed() < Duration::from_secs(10), "task never ran: {worker}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(worker["status"], "online");
    assert!(worker["active_tasks"].as_u64().unwrap() >= 1, "{worker}");
    let task = worker["active"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == task_id.as_str())
        .unwrap();
    assert_eq!(task["name"], "tasks.sleep");
    assert_eq!(task["args"], json!([3]));
    assert_eq!(task["kwargs"], json!({}));
    assert!(task["time_start"].is_number(), "{task}");
    assert!(task["worker_pid"].is_number(), "{task}");
    assert_eq!(worker["queues"], json!(["celery"]));
    assert_eq!(worker["pool"]["implementation"], "celery.concurrency.thread:TaskPool");
    assert_eq!(worker["pool"]["max_concurrency"], 2);
    assert!(
        worker["reserved_tasks"].is_u64() && worker["scheduled_tasks"].is_u64(),
        "{worker}"
    );
    let registered = worker["registered_tasks"].as_array().unwrap();
    assert!(
        registered.contains(&json!("tasks.sleep")) && registered.contains(&json!("tasks.add")),
        "{worker}"
    );
    assert!(worker["total_tasks_executed"].is_object(), "{worker}");
}

#[tokio::test]
async fn detailed_mode_over_amqp() {
    let outcome = CeleryProbe::new(amqp_broker())
        .unwrap()
        .detailed(true)
        .check()
        .await
        .unwrap();
    let worker = &outcome.details()["workers"][&amqp_node()];
    assert_eq!(worker["status"], "online", "{outcome:?}");
    assert_eq!(worker["queues"], json!(["celery"]), "{worker}");
    assert!(
        worker["registered_tasks"]
            .as_array()
            .unwrap()
            .contains(&json!("tasks.add")),
        "{worker}"
    );
    assert_eq!(worker["pool"]["max_concurrency"], 2, "{worker}");
}

#[tokio::test]
async fn unreachable_brokers_are_unhealthy_within_the_connect_timeout() {
    let port = free_port();
    for url in [
        format!("redis://:s3cret-r@127.0.0.1:{port}/0"),
        format!("amqp://guest:s3cret-a@127.0.0.1:{port}//"),
    ] {
        let probe = CeleryProbe::new(&url).unwrap().connect_timeout(Duration::from_secs(2));
        let started = Instant::now();
        let error = probe.check().await.unwrap_err().to_string();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{url}: {:?}",
            started.elapsed()
        );
        assert!(error.contains("onnect"), "{url}: {error}");
        assert!(!error.contains("s3cret"), "{url}: {error}");
    }
    let wrong = CeleryProbe::new(amqp_broker().replace("guest:guest", "guest:wrong-pw-1")).unwrap();
    let error = wrong.check().await.unwrap_err().to_string();
    assert!(
        error.contains("ACCESS_REFUSED") && !error.contains("wrong-pw-1"),
        "{error}"
    );
}

/// The reply binding and list live only for one check. Database 10 is used
/// by this test alone, so nothing else touches its bindings.
#[tokio::test]
async fn leaves_no_reply_binding_behind() {
    let url = redis_broker();
    let (base, _) = url.rsplit_once('/').unwrap();
    let broker = format!("{base}/10");
    let registry = HealthRegistry::builder()
        .add(CeleryProbe::new(&broker).unwrap().with_name("celery-redis"))
        .build()
        .unwrap();
    let report = registry.run_all().await;
    assert_eq!(report.probes[0].status, Status::Healthy);
    let client = redis::Client::open(broker).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let bindings: Vec<String> = redis::cmd("SMEMBERS")
        .arg("_kombu.binding.reply.celery.pidbox")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(bindings.is_empty(), "{bindings:?}");
    let lists: Vec<String> = redis::cmd("KEYS")
        .arg("*.reply.celery.pidbox")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(lists.is_empty(), "{lists:?}");
}
