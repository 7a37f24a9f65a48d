//! Runs over many probes: every result lands at its probe's position, in
//! the report, the history and the poll loop's merges, whichever runtime
//! the checks run on; registration refuses what it refused with few
//! probes; checks that hold every check thread still time out; probes
//! marked for the caller's runtime run there while the runs have a thread
//! of their own. Correctness only: the speed of these paths is measured by
//! `scripts/bench-scale`, never asserted here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum_watch::options::CheckRuntime;
use axum_watch::{BuildErrorKind, HealthRegistry, Outcome, ProbeExt, ProbeGroup, Status, probe};

const MANY: usize = 10_000;

fn name(i: usize) -> String {
    format!("p{i:05}")
}

/// Probe `i` is unhealthy when `i % 7 == 0` (from its `n`-th call on, so a
/// later run changes it), degraded when `i % 11 == 0`, else healthy;
/// every third probe is non-critical. Each names its index in its details.
fn registry(check_runtime: CheckRuntime, unhealthy_from_call: usize) -> HealthRegistry {
    let mut group = ProbeGroup::new();
    for i in 0..MANY {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let check = probe::from_fn(name(i), move || {
            let call = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                let outcome = if i % 7 == 0 && call >= unhealthy_from_call {
                    Outcome::unhealthy("down")
                } else if i.is_multiple_of(11) {
                    Outcome::degraded()
                } else {
                    Outcome::healthy()
                };
                Ok(outcome.detail("index", i))
            }
        });
        group = if i % 3 == 0 {
            group.add_non_critical(check)
        } else {
            group.add(check)
        };
    }
    HealthRegistry::builder()
        .include(group)
        .check_runtime(check_runtime)
        .circuit_breaker(false)
        .history_size(4)
        .build()
        .unwrap()
}

fn expected(i: usize, unhealthy: bool) -> Status {
    if i.is_multiple_of(7) && unhealthy {
        Status::Unhealthy
    } else if i.is_multiple_of(11) {
        Status::Degraded
    } else {
        Status::Healthy
    }
}

/// Every result of `report` at its probe's position, with its own status,
/// criticality and details; `failing` the critical unhealthy ones in order.
fn assert_in_place(report: &axum_watch::HealthReport, unhealthy: bool) {
    assert_eq!(report.probes.len(), MANY);
    for (i, result) in report.probes.iter().enumerate() {
        assert_eq!(result.name, name(i), "position {i}");
        assert_eq!(result.status, expected(i, unhealthy), "{}", result.name);
        assert_eq!(result.critical, i % 3 != 0, "{}", result.name);
        assert_eq!(result.details.as_ref().unwrap()["index"], i, "{}", result.name);
        assert!(result.checked_at.is_some(), "{}", result.name);
    }
    let failing: Vec<String> = (0..MANY)
        .filter(|i| i % 3 != 0 && expected(*i, unhealthy) == Status::Unhealthy)
        .map(name)
        .collect();
    assert_eq!(report.failing, failing);
    let overall = if unhealthy { Status::Unhealthy } else { Status::Degraded };
    assert_eq!(report.status, overall);
}

async fn runs_record_every_result_at_its_position(check_runtime: CheckRuntime) {
    let registry = registry(check_runtime, 1);
    assert_in_place(&*registry.run_all().await, false);
    assert_in_place(&*registry.run_all().await, true);
    // The store has every probe's two results, under its own name, in
    // registration order.
    let latest = registry.latest_results().await.unwrap();
    assert_eq!(latest.len(), MANY);
    for (i, result) in latest.iter().enumerate() {
        assert_eq!(result.name, name(i));
        assert_eq!(result.status, expected(i, true));
    }
    let reply = common::get(&registry, "/health/history").await;
    let history: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let probes = history["probes"].as_object().unwrap();
    assert_eq!(probes.len(), MANY);
    for (i, (key, results)) in probes.iter().enumerate() {
        assert_eq!(*key, name(i));
        let statuses: Vec<&str> = results
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            [expected(i, false).as_str(), expected(i, true).as_str()],
            "{key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_ten_thousand_probes_records_every_result_at_its_position() {
    runs_record_every_result_at_its_position(CheckRuntime::Auto).await;
}

#[tokio::test]
async fn the_same_on_the_callers_runtime() {
    runs_record_every_result_at_its_position(CheckRuntime::Caller).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_metrics_over_ten_thousand_probes_list_each_once_in_order() {
    let registry = registry(CheckRuntime::Auto, 0);
    let status = common::get(&registry, "/health/status").await;
    let report: axum_watch::HealthReport = serde_json::from_str(&status.body).unwrap();
    assert_in_place(&report, true);
    let metrics = common::get(&registry, "/health/metrics").await.body;
    let healthy: Vec<&str> = metrics.lines().filter(|l| l.starts_with("probe_healthy{")).collect();
    assert_eq!(healthy.len(), MANY);
    for (i, line) in healthy.iter().enumerate() {
        let want = format!("probe_healthy{{name=\"{}\",", name(i));
        assert!(line.starts_with(&want), "{line}");
        let value = if expected(i, true) == Status::Healthy {
            " 1"
        } else {
            " 0"
        };
        assert!(line.ends_with(value), "{line}");
    }
}

#[tokio::test(start_paused = true)]
async fn poll_rounds_merge_due_probes_into_place_and_keep_the_others() {
    // Every fifth probe has an interval of its own; a stream keeps the poll
    // loop running, so those are checked again while the rest keep their
    // results, each at its position.
    let mut builder = HealthRegistry::builder().check_runtime(CheckRuntime::Caller);
    for i in 0..2_000 {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let check = probe::from_fn(name(i), move || {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move { Ok(Outcome::healthy().detail("index", i).detail("call", n)) }
        });
        builder = if i % 5 == 0 {
            builder.add(check.with_poll_interval(Duration::from_secs(1)))
        } else {
            builder.add(check)
        };
    }
    let registry = builder.poll_interval(None).build().unwrap();
    let request = http::Request::get("/health/status/stream")
        .body(axum::body::Body::empty())
        .unwrap();
    let stream = tower::ServiceExt::oneshot(registry.router::<()>(), request)
        .await
        .unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }
    let report = registry.report().await;
    drop(stream);
    assert_eq!(report.probes.len(), 2_000);
    for (i, result) in report.probes.iter().enumerate() {
        assert_eq!(result.name, name(i));
        let details = result.details.as_ref().unwrap();
        assert_eq!(details["index"], i);
        let call = details["call"].as_u64().unwrap();
        if i % 5 == 0 {
            assert!(call >= 3, "{} was polled {call} times", result.name);
        } else {
            assert_eq!(call, 1, "{} has no interval of its own", result.name);
        }
    }
}

#[test]
fn ten_thousand_registrations_keep_their_order_and_refuse_a_duplicate_name() {
    let probes: Vec<_> = (0..MANY)
        .map(|i| Arc::new(probe::from_fn(name(i), || async { Ok(Outcome::healthy()) })))
        .collect();
    let mut group = ProbeGroup::new();
    for p in &probes {
        group = group.add(Arc::clone(p));
    }
    // The same instances again, through another group: ignored.
    let again = probes
        .iter()
        .fold(ProbeGroup::new(), |g, p| g.add_non_critical(Arc::clone(p)));
    let group = group.include(again);
    assert_eq!(group.len(), MANY);
    let registry = HealthRegistry::builder().include(group.clone()).build().unwrap();
    let names = registry.probe_names();
    assert_eq!(names.len(), MANY);
    assert!(names.iter().enumerate().all(|(i, n)| *n == name(i)));

    let impostor = probe::from_fn(name(MANY - 1), || async { Ok(Outcome::healthy()) });
    let err = HealthRegistry::builder()
        .include(group)
        .add(impostor)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), BuildErrorKind::DuplicateProbeName);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_that_hold_every_check_thread_still_time_out() {
    let limit = Duration::from_millis(200);
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let stuck = {
        let first = Arc::clone(&first);
        probe::from_fn("stuck", move || {
            let block = first.swap(false, std::sync::atomic::Ordering::SeqCst);
            async move {
                if block {
                    // Holds the only check thread.
                    std::thread::sleep(Duration::from_millis(1_500));
                }
                Ok(Outcome::healthy())
            }
        })
        .with_timeout(limit)
    };
    let queued = probe::from_fn("queued", || async { Ok(Outcome::healthy()) }).with_timeout(limit);
    let registry = HealthRegistry::builder()
        .add(stuck)
        .add(queued)
        .check_runtime(CheckRuntime::dedicated(1))
        .cache_age(Duration::ZERO)
        .circuit_breaker(false)
        .build()
        .unwrap();
    let started = Instant::now();
    let report = registry.run_all().await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1_000),
        "the run waited {took:?} for a blocked thread"
    );
    let stuck = report.probe("stuck").unwrap();
    assert_eq!(stuck.status, Status::Unhealthy, "{stuck:?}");
    assert_eq!(stuck.error.as_deref(), Some("timed out after 200ms"), "{stuck:?}");
    // The other ran before the thread was taken, or could not start at all.
    let queued = report.probe("queued").unwrap();
    assert!(
        queued.is_healthy() || queued.error.as_deref() == Some("timed out after 200ms"),
        "{queued:?}"
    );
    // Once the thread is free both run again: no result of the abandoned
    // tasks lands in a later run.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let report = registry.run_all().await;
    for result in &report.probes {
        assert_eq!(result.status, Status::Healthy, "{result:?}");
    }
    let history = registry.latest_results().await.unwrap();
    assert!(history.iter().all(|r| r.status == Status::Healthy), "{history:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_for_the_callers_runtime_run_there_and_others_on_check_threads() {
    let seen: Arc<Mutex<Vec<(&'static str, String)>>> = Arc::default();
    let recorder = |label: &'static str| {
        let seen = Arc::clone(&seen);
        move || {
            let seen = Arc::clone(&seen);
            async move {
                let thread = std::thread::current().name().unwrap_or_default().to_owned();
                seen.lock().unwrap().push((label, thread));
                Ok(Outcome::healthy())
            }
        }
    };
    let registry = HealthRegistry::builder()
        .add(probe::from_fn("caller", recorder("caller")).on_caller_runtime())
        .add(probe::from_fn("isolated", recorder("isolated")))
        .startup_probe(probe::from_fn("started", recorder("caller")).on_caller_runtime())
        .cache_age(Duration::ZERO)
        .build()
        .unwrap();
    // The startup probe first, before any run: as Kubernetes asks.
    registry.set_started();
    common::get(&registry, "/health/startup").await;
    // Through a request, as a server asks, and directly.
    common::get(&registry, "/health/ready").await;
    registry.run_all().await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 5, "{seen:?}");
    for (label, thread) in seen {
        match label {
            "caller" => assert!(!thread.starts_with("axum-watch-"), "ran on {thread}"),
            _ => assert_eq!(thread, "axum-watch-check"),
        }
    }
}
