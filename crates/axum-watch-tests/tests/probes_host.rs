//! The probes that need no client library, against real sockets, the real
//! file system and real (deliberately blocked) tokio runtimes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum_watch::probes::{DiskSpaceProbe, NoOpProbe, RuntimeProbe, SpaceThreshold, TcpProbe, ThresholdProbe};
use axum_watch::{Outcome, Probe, ProbeError, ProbeExt, Status, probe};
use common::{error, free_port, run_one};
use serde_json::json;
use tokio::net::{TcpListener, TcpSocket};

// ---------------------------------------------------------------- noop

#[tokio::test]
async fn noop_is_healthy_and_renamable() {
    let result = run_one(NoOpProbe::new()).await;
    assert_eq!((result.name.as_str(), result.status), ("noop", Status::Healthy));
    assert_eq!(result.error, None);
    let renamed = run_one(NoOpProbe::default().with_name("placeholder")).await;
    assert_eq!(
        (renamed.name.as_str(), renamed.status),
        ("placeholder", Status::Healthy)
    );
}

// ---------------------------------------------------------------- tcp

#[tokio::test]
async fn tcp_reaches_a_listening_port() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = tokio::spawn(async move { listener.accept().await.is_ok() });

    let probe = TcpProbe::new("127.0.0.1", port);
    assert_eq!(probe.name(), format!("tcp:127.0.0.1:{port}"));
    let result = run_one(probe).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    let details = result.details.unwrap();
    assert_eq!(details["host"], "127.0.0.1");
    assert_eq!(details["port"], port);
    assert_eq!(details["resolved_ips"], json!(["127.0.0.1"]));
    let connect_ms = details["connect_ms"].as_f64().unwrap();
    assert!((0.0..1000.0).contains(&connect_ms), "{connect_ms}");
    assert!(accepted.await.unwrap(), "the probe really connected");
}

#[tokio::test]
async fn tcp_resolves_host_names_and_tries_each_address() {
    // `localhost` may resolve to ::1 first; only 127.0.0.1 listens.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let result = run_one(TcpProbe::new("localhost", port)).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    let details = result.details.unwrap();
    assert_eq!(details["host"], "localhost");
    let ips = details["resolved_ips"].as_array().unwrap();
    assert!(ips.contains(&json!("127.0.0.1")), "{ips:?}");
}

#[tokio::test]
async fn tcp_to_a_closed_port_is_unhealthy() {
    let port = free_port();
    let result = run_one(TcpProbe::new("127.0.0.1", port)).await;
    assert_eq!(result.status, Status::Unhealthy);
    let error = error(&result);
    assert!(
        error.starts_with(&format!("tcp connect to 127.0.0.1:{port} failed:")) && error.contains("refused"),
        "{error}"
    );
    let details = result.details.unwrap();
    assert_eq!(details["host"], "127.0.0.1");
    assert_eq!(details["port"], port);
    assert_eq!(details["resolved_ips"], json!(["127.0.0.1"]));
    assert!(details.get("connect_ms").is_none());
}

#[tokio::test]
async fn tcp_to_an_unresolvable_host_is_unhealthy() {
    let started = Instant::now();
    let probe = TcpProbe::new("nonexistent.invalid", 80).connect_timeout(Duration::from_secs(3));
    let result = run_one(probe).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert!(
        error(&result).starts_with("dns resolution of nonexistent.invalid "),
        "{}",
        error(&result)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let details = result.details.unwrap();
    assert_eq!(details["host"], "nonexistent.invalid");
    assert!(details.get("resolved_ips").is_none());
}

#[tokio::test]
async fn tcp_connect_that_hangs_times_out_inside_the_probe() {
    // A listener that never accepts, with its accept queue filled: further
    // SYNs are dropped, so a connect hangs.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => held.push(stream),
            _ => break,
        }
    }
    let started = Instant::now();
    let probe = TcpProbe::new("127.0.0.1", addr.port()).connect_timeout(Duration::from_millis(300));
    let result = run_one(probe).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert_eq!(
        error(&result),
        format!("tcp connect to 127.0.0.1:{} timed out after 300 ms", addr.port())
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(listener);
}

#[tokio::test]
async fn tcp_rejects_an_empty_host_and_strips_brackets() {
    let result = run_one(TcpProbe::new(" ", 80).with_name("empty")).await;
    assert_eq!(
        (result.status, error(&result)),
        (Status::Unhealthy, "invalid host: it is empty")
    );

    let listener = TcpSocket::new_v6().and_then(|s| {
        s.bind("[::1]:0".parse().unwrap())?;
        s.listen(16)
    });
    if let Ok(listener) = listener {
        // IPv6 loopback is available on this machine.
        let port = listener.local_addr().unwrap().port();
        let probe = TcpProbe::new("[::1]", port);
        assert_eq!(probe.name(), format!("tcp:::1:{port}"));
        let result = run_one(probe).await;
        assert_eq!(result.status, Status::Healthy, "{result:?}");
        assert_eq!(result.details.unwrap()["resolved_ips"], json!(["::1"]));
    }
}

// ---------------------------------------------------------------- disk

#[tokio::test]
async fn disk_reports_space_and_stays_healthy_without_thresholds() {
    let dir = std::env::temp_dir();
    let result = run_one(DiskSpaceProbe::new(&dir)).await;
    assert_eq!((result.name.as_str(), result.status), ("disk", Status::Healthy));
    assert_eq!(result.error, None);
    let d = result.details.unwrap();
    assert_eq!(d["path"], dir.display().to_string());
    let total = d["total_bytes"].as_u64().unwrap();
    let free = d["free_bytes"].as_u64().unwrap();
    let used = d["used_bytes"].as_u64().unwrap();
    let percent = d["free_percent"].as_f64().unwrap();
    assert!(total > 0 && free <= total && used <= total, "{d:?}");
    #[allow(clippy::cast_precision_loss)]
    let expected = free as f64 * 100.0 / total as f64;
    assert!((percent - expected).abs() < 0.01, "{percent} vs {expected}");
    assert!(d.get("warn_below").is_none() && d.get("fail_below").is_none());
}

#[tokio::test]
async fn disk_thresholds_degrade_and_fail() {
    let dir = std::env::temp_dir();

    let relaxed = DiskSpaceProbe::new(&dir)
        .warn_below(SpaceThreshold::Bytes(0))
        .fail_below(SpaceThreshold::Percent(0.0));
    assert_eq!(run_one(relaxed).await.status, Status::Healthy);

    let warn = run_one(DiskSpaceProbe::new(&dir).warn_below(SpaceThreshold::Percent(100.0))).await;
    assert_eq!(warn.status, Status::Degraded);
    assert!(
        error(&warn).contains("is below the warning threshold of 100%"),
        "{}",
        error(&warn)
    );
    assert_eq!(warn.details.unwrap()["warn_below"], json!({ "percent": 100.0 }));

    let fail = run_one(
        DiskSpaceProbe::new(&dir)
            .warn_below(SpaceThreshold::Percent(100.0))
            .fail_below(SpaceThreshold::Bytes(u64::MAX)),
    )
    .await;
    assert_eq!(fail.status, Status::Unhealthy, "the stricter verdict wins");
    assert!(
        error(&fail).contains(&format!("is below the failure threshold of {} bytes", u64::MAX)),
        "{}",
        error(&fail)
    );
    let d = fail.details.unwrap();
    assert_eq!(d["fail_below"], json!({ "bytes": u64::MAX }));
    assert!(
        d["total_bytes"].as_u64().unwrap() > 0,
        "details survive a failing verdict"
    );
}

#[tokio::test]
async fn disk_reports_bad_paths_and_bad_options() {
    let missing = run_one(DiskSpaceProbe::new("/nonexistent/axum-watch")).await;
    assert_eq!(missing.status, Status::Unhealthy);
    assert!(
        error(&missing).starts_with("disk statistics of /nonexistent/axum-watch failed:"),
        "{}",
        error(&missing)
    );

    for bad in [-1.0, 100.5, f64::NAN] {
        let err = DiskSpaceProbe::new("/")
            .fail_below(SpaceThreshold::Percent(bad))
            .check()
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid DiskSpaceProbe option fail_below: a percentage must be between 0 and 100"),
            "{err}"
        );
    }
}

// ---------------------------------------------------------------- threshold

/// A probe reporting `depth` with a status the test picks.
fn queue(status: Status, depth: u64) -> impl Probe {
    probe::from_fn("queue", move || async move {
        let outcome = match status {
            Status::Unhealthy => Outcome::unhealthy("queue down"),
            other => Outcome::new(other),
        };
        Ok(outcome.detail("depth", depth).latency(Duration::from_millis(7)))
    })
}

fn depth_over(limit: u64) -> impl Fn(&axum_watch::model::Details) -> bool + Send + Sync + 'static {
    move |d| d["depth"].as_u64().unwrap() > limit
}

#[tokio::test]
async fn threshold_warns_and_fails_on_details() {
    let wrap = |depth| {
        ThresholdProbe::new(queue(Status::Healthy, depth))
            .warn_if(depth_over(100))
            .fail_if(depth_over(1000))
    };

    let ok = run_one(wrap(50)).await;
    assert_eq!(
        (ok.name.as_str(), ok.status, ok.error.as_deref()),
        ("queue", Status::Healthy, None)
    );

    let warn = run_one(wrap(500)).await;
    assert_eq!(warn.status, Status::Degraded);
    assert_eq!(error(&warn), "warn_if condition met");
    assert_eq!(warn.details.unwrap()["depth"], 500, "inner details are kept");
    assert!((warn.latency_ms - 7.0).abs() < f64::EPSILON, "inner latency is kept");

    let fail = run_one(wrap(5000)).await;
    assert_eq!(fail.status, Status::Unhealthy, "fail_if wins over warn_if");
    assert_eq!(error(&fail), "fail_if condition met");
    assert_eq!(fail.details.unwrap()["depth"], 5000);
}

#[tokio::test]
async fn threshold_keeps_a_degraded_inner_result_when_nothing_holds() {
    let probe = ThresholdProbe::new(queue(Status::Degraded, 1))
        .warn_if(depth_over(100))
        .fail_if(depth_over(1000));
    let result = run_one(probe).await;
    assert_eq!((result.status, result.error.as_deref()), (Status::Degraded, None));

    let bare = run_one(ThresholdProbe::new(queue(Status::Healthy, 10_000))).await;
    assert_eq!(bare.status, Status::Healthy, "no predicates: pass-through");
}

#[tokio::test]
async fn threshold_passes_unhealthy_through_without_calling_predicates() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = |calls: &Arc<AtomicUsize>| {
        let calls = calls.clone();
        move |_: &axum_watch::model::Details| {
            calls.fetch_add(1, Ordering::SeqCst);
            true
        }
    };
    let result = run_one(
        ThresholdProbe::new(queue(Status::Unhealthy, 1))
            .warn_if(counted(&calls))
            .fail_if(counted(&calls)),
    )
    .await;
    assert_eq!((result.status, error(&result)), (Status::Unhealthy, "queue down"));
    assert_eq!(result.details.unwrap()["depth"], 1);

    let failing = probe::from_fn("broken", || async {
        Err::<Outcome, _>(ProbeError::msg("cannot connect"))
    });
    let result = run_one(
        ThresholdProbe::new(failing)
            .warn_if(counted(&calls))
            .fail_if(counted(&calls)),
    )
    .await;
    assert_eq!((result.status, error(&result)), (Status::Unhealthy, "cannot connect"));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn threshold_counts_a_panicking_predicate_as_false() {
    let panics = |_: &axum_watch::model::Details| -> bool { panic!("predicate bug") };
    let result = run_one(ThresholdProbe::new(queue(Status::Healthy, 5)).fail_if(panics)).await;
    assert_eq!((result.status, result.error), (Status::Healthy, None));

    let result = run_one(
        ThresholdProbe::new(queue(Status::Healthy, 5))
            .fail_if(panics)
            .warn_if(|_| true),
    )
    .await;
    assert_eq!(result.status, Status::Degraded, "warn_if still applies");

    // Indexing a missing key with as_u64().unwrap() panics too.
    let result =
        run_one(ThresholdProbe::new(queue(Status::Healthy, 5)).warn_if(|d| d["missing"].as_u64().unwrap() > 1)).await;
    assert_eq!(result.status, Status::Healthy);
}

#[tokio::test]
async fn threshold_wraps_a_real_probe_and_can_be_renamed() {
    let disk = ThresholdProbe::new(DiskSpaceProbe::new(std::env::temp_dir()))
        .warn_if(|d| d["total_bytes"].as_u64().is_some_and(|t| t > 0))
        .with_name("scratch")
        .with_timeout(Duration::from_secs(3));
    assert_eq!(disk.inner().inner().name(), "disk");
    let result = run_one(disk).await;
    assert_eq!((result.name.as_str(), result.status), ("scratch", Status::Degraded));
    assert!(result.details.unwrap()["free_bytes"].is_u64());
}

// ---------------------------------------------------------------- runtime

/// Keeps the runtime busy: blocks its thread for `block` between yields
/// until `stop` is set.
fn spawn_blocker(block: Duration, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(block);
            tokio::task::yield_now().await;
        }
    })
}

/// Like a handler that does blocking work each time it is woken: awaits
/// a timer, then blocks the thread for `block`.
fn spawn_waking_blocker(block: Duration, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
            std::thread::sleep(block);
        }
    })
}

#[tokio::test]
async fn runtime_is_healthy_when_quiet() {
    // The OS may preempt this thread on a busy machine; that is not the
    // runtime's fault, so one quiet sample out of a few must be healthy.
    let mut lags = Vec::new();
    for _ in 0..5 {
        let result = run_one(RuntimeProbe::new()).await;
        let d = result.details.clone().unwrap();
        lags.push(d["lag_ms"].as_f64().unwrap());
        if result.status == Status::Healthy {
            assert_eq!(result.name, "runtime");
            assert_eq!(result.error, None);
            assert_eq!(d["warn_ms"], 5.0);
            assert_eq!(d["fail_ms"], 20.0);
            assert_eq!(d["flavor"], "current_thread");
            assert_eq!(d["workers"], 1);
            assert!(d["alive_tasks"].as_u64().is_some());
            assert_eq!(d["global_queue_depth"], 0);
            return;
        }
    }
    panic!("never healthy on a quiet runtime; lags {lags:?}");
}

#[tokio::test]
async fn runtime_blocked_by_a_task_is_unhealthy() {
    let stop = Arc::new(AtomicBool::new(false));
    let blocker = spawn_blocker(Duration::from_millis(50), stop.clone());
    let result = run_one(RuntimeProbe::new()).await;
    stop.store(true, Ordering::SeqCst);
    blocker.await.unwrap();

    assert_eq!(result.status, Status::Unhealthy, "{result:?}");
    let lag = result.details.as_ref().unwrap()["lag_ms"].as_f64().unwrap();
    assert!(lag >= 45.0, "lag {lag}");
    assert!(
        error(&result).ends_with("ms is at or above 20 ms"),
        "{}",
        error(&result)
    );
}

#[tokio::test]
async fn runtime_blocked_by_a_woken_handler_is_unhealthy() {
    let stop = Arc::new(AtomicBool::new(false));
    let blocker = spawn_waking_blocker(Duration::from_millis(50), stop.clone());
    tokio::time::sleep(Duration::from_millis(5)).await;
    let result = run_one(RuntimeProbe::new()).await;
    stop.store(true, Ordering::SeqCst);
    blocker.await.unwrap();
    assert_eq!(result.status, Status::Unhealthy, "{result:?}");
}

#[tokio::test]
async fn runtime_lag_between_thresholds_is_degraded() {
    let stop = Arc::new(AtomicBool::new(false));
    let blocker = spawn_blocker(Duration::from_millis(30), stop.clone());
    let result = run_one(RuntimeProbe::new().warn_ms(10.0).fail_ms(10_000.0)).await;
    stop.store(true, Ordering::SeqCst);
    blocker.await.unwrap();
    assert_eq!(result.status, Status::Degraded, "{result:?}");
    assert!(
        error(&result).ends_with("ms is at or above 10 ms"),
        "{}",
        error(&result)
    );
    assert_eq!(result.details.unwrap()["fail_ms"], 10_000.0);
}

#[test]
fn runtime_one_worker_blocked_on_a_multi_thread_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let blocker = spawn_blocker(Duration::from_millis(50), stop.clone());
        let result = run_one(RuntimeProbe::new()).await;
        stop.store(true, Ordering::SeqCst);
        blocker.await.unwrap();
        result
    });
    assert_ne!(result.status, Status::Healthy, "{result:?}");
    let d = result.details.unwrap();
    assert_eq!(d["flavor"], "multi_thread");
    assert_eq!(d["workers"], 1);
    assert!(d["lag_ms"].as_f64().unwrap() >= 5.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_reports_the_runtime_shape() {
    let d = RuntimeProbe::new().check().await.unwrap().details().clone();
    assert_eq!(d["flavor"], "multi_thread");
    assert_eq!(d["workers"], 2);
    assert!(d["alive_tasks"].as_u64().is_some());
}

#[tokio::test]
async fn runtime_rejects_bad_thresholds() {
    let err = RuntimeProbe::new().warn_ms(30.0).check().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid RuntimeProbe options: warn_ms (30) is above fail_ms (20)"
    );
    let err = RuntimeProbe::new().fail_ms(f64::INFINITY).check().await.unwrap_err();
    assert!(
        err.to_string().starts_with("invalid RuntimeProbe option fail_ms"),
        "{err}"
    );
    let result = run_one(RuntimeProbe::new().warn_ms(-1.0)).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert!(error(&result).starts_with("invalid RuntimeProbe option warn_ms"));
}
