//! A registry let go of while it works: its runs, checks and threads end
//! with it. Alone in its binary, since it counts the process's threads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum_watch::{HealthRegistry, Outcome, ProbeExt, probe};

/// Sets its flag when dropped: the check's future was given up.
struct Dropped(Arc<AtomicUsize>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A registry dropped while a run is in flight (a test that ends, a service
/// that rebuilds its registry) takes its run and check threads with it: the
/// check in progress is given up, not left to finish its timeout, and the
/// registry's threads are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_registry_while_a_run_is_in_flight_ends_its_checks_and_threads() {
    let entered = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let slow = {
        let (entered, dropped) = (Arc::clone(&entered), Arc::clone(&dropped));
        probe::from_fn("slow", move || {
            let (entered, guard) = (Arc::clone(&entered), Dropped(Arc::clone(&dropped)));
            async move {
                let _guard = guard;
                entered.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(Outcome::healthy())
            }
        })
        .with_timeout(Duration::from_secs(60))
    };
    let registry = HealthRegistry::builder().add(slow).build().unwrap();
    let threads_before = registry_threads();
    let run = {
        let registry = registry.clone();
        tokio::spawn(async move { registry.run_all().await })
    };
    while entered.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(registry_threads() > threads_before, "the run and check threads started");

    run.abort();
    let _ = run.await;
    drop(registry);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while (dropped.load(Ordering::SeqCst) == 0 || registry_threads() > threads_before)
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "the check in flight was given up");
    assert_eq!(registry_threads(), threads_before, "the registry's threads ended");
}

/// How many threads of this process carry a registry's thread names.
fn registry_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("axum-watch"))
        .count()
}
