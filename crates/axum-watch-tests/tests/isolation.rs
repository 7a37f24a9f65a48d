//! Nothing a probe does stalls the service: a check that blocks its thread
//! runs on the registry's own check runtime, so `/live`, `/ready` and the
//! other probes keep answering, and no second copy of it is started while
//! it has not returned. Real time on a two-worker runtime, over a socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum_watch::{HealthRegistry, Outcome, ProbeExt, probe};
use common::{serve, socket_get};

const TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_that_blocks_its_thread_stalls_neither_live_nor_ready() {
    let started = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let stuck = {
        let (started, running, most) = (Arc::clone(&started), Arc::clone(&running), Arc::clone(&most));
        probe::from_fn("legacy-driver", move || {
            let (started, running, most) = (Arc::clone(&started), Arc::clone(&running), Arc::clone(&most));
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // A synchronous driver call inside an async check.
                std::thread::sleep(Duration::from_secs(30));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(Outcome::healthy())
            }
        })
        .with_timeout(TIMEOUT)
    };
    let db = probe::from_fn("db", || async { Ok(Outcome::healthy()) });
    let registry = HealthRegistry::builder()
        .add(stuck)
        .add(db)
        .cache_age(Duration::ZERO)
        .build()
        .unwrap();
    let addr = serve(registry.router()).await;

    let live = tokio::spawn(async move {
        let mut slowest = Duration::ZERO;
        for _ in 0..30 {
            let (code, _, took) = socket_get(addr, "/health/live").await;
            assert_eq!(code, 200);
            slowest = slowest.max(took);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slowest
    });
    let mut slowest_ready = Duration::ZERO;
    let mut last = String::new();
    for _ in 0..15 {
        let (code, body, took) = socket_get(addr, "/health/ready").await;
        assert_eq!(code, 503, "{body}");
        slowest_ready = slowest_ready.max(took);
        last = body;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let slowest_live = live.await.unwrap();

    assert!(slowest_live < Duration::from_millis(50), "/live took {slowest_live:?}");
    assert!(
        slowest_ready < TIMEOUT + Duration::from_millis(100),
        "/ready took {slowest_ready:?}"
    );
    assert_eq!(started.load(Ordering::SeqCst), 1, "the stuck check was started again");
    assert_eq!(most.load(Ordering::SeqCst), 1);
    let report: serde_json::Value = serde_json::from_str(&last).unwrap();
    let stuck = &report["probes"][0];
    assert_eq!(stuck["status"], "unhealthy");
    let error = stuck["error"].as_str().unwrap();
    assert!(error.starts_with("still running after "), "{error}");
    assert!(error.ends_with(": the previous check has not returned"), "{error}");
    assert_eq!(
        report["probes"][1]["status"], "healthy",
        "the other probe keeps running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_returns_after_its_timeout_can_run_again() {
    let calls = Arc::new(AtomicUsize::new(0));
    let slow = {
        let calls = Arc::clone(&calls);
        probe::from_fn("slow", move || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    std::thread::sleep(Duration::from_millis(600));
                }
                Ok(Outcome::healthy())
            }
        })
        .with_timeout(Duration::from_millis(200))
    };
    let registry = HealthRegistry::builder()
        .add(slow)
        .cache_age(Duration::ZERO)
        .build()
        .unwrap();
    let first = registry.run_all().await;
    assert_eq!(first.probes[0].error.as_deref(), Some("timed out after 200ms"));
    // Reported at its deadline, while the check still held its thread.
    assert!(first.probes[0].latency_ms < 600.0, "{:?}", first.probes[0]);
    let second = registry.run_all().await;
    assert!(
        second.probes[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("still running after"),
        "{:?}",
        second.probes[0].error
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let third = registry.run_all().await;
    assert!(third.probes[0].is_healthy(), "{:?}", third.probes[0]);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_never_returns_holds_up_no_other_probe_of_its_poll() {
    // Due together, so polled in the same batch; from its second check on,
    // the hung one never returns and has no timeout, so that batch never
    // ends.
    let fast = common::Switch::new("fast", axum_watch::Status::Healthy);
    let hung = {
        let calls = Arc::new(AtomicUsize::new(0));
        probe::from_fn("hung", move || {
            let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if !first {
                    std::future::pending::<()>().await;
                }
                Ok(Outcome::healthy())
            }
        })
        .without_timeout()
    };
    let registry = HealthRegistry::builder()
        .add(fast.clone())
        .add(hung)
        .scheduling(axum_watch::options::Scheduling::Background)
        .poll_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    while fast.calls() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the fast probe stopped being polled after {} calls",
            fast.calls()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(registry);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_panics_while_making_its_future_is_a_panic() {
    let registry = HealthRegistry::builder()
        .add(probe::from_fn(
            "early",
            || -> std::future::Ready<Result<Outcome, axum_watch::ProbeError>> { panic!("no future made") },
        ))
        .build()
        .unwrap();
    let report = registry.run_all().await;
    assert_eq!(report.probes[0].error.as_deref(), Some("panicked: no future made"));
}
