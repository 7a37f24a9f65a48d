//! The alert dispatcher with test alerters: once per transition, isolation,
//! retries, timeouts, drops and maintenance, in paused time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum_watch::{HealthRegistry, Status, options::Scheduling};
use common::{Recorder, Switch, get};
use tokio::time::Instant;

fn registry(db: &Switch, alerters: Vec<Recorder>, queue: usize) -> HealthRegistry {
    let mut builder = HealthRegistry::builder()
        .add(db.clone())
        // Probes run when these tests ask, not in the background.
        .scheduling(Scheduling::WhileWatched)
        .cache_age(Duration::ZERO)
        .circuit_breaker(false)
        .alert_queue(queue)
        .alert_timeout(Duration::from_secs(5))
        .alert_retries(2, Duration::from_secs(1));
    for a in alerters {
        builder = builder.alerter(a);
    }
    builder.build().unwrap()
}

/// Lets spawned alert workers run until virtual time has moved `by`.
async fn settle(by: Duration) {
    tokio::time::sleep(by).await;
}

#[tokio::test(start_paused = true)]
async fn each_transition_is_sent_once_and_a_first_unhealthy_observation_too() {
    let db = Switch::new("db", Status::Unhealthy);
    let recorder = Recorder::default();
    let app = registry(&db, vec![recorder.clone()], 16).router();
    get(&app, "/health/status").await;
    settle(Duration::from_secs(1)).await;
    let went_down = ("db".to_owned(), Status::Healthy, Status::Unhealthy);
    assert_eq!(
        recorder.sent(),
        std::slice::from_ref(&went_down),
        "a service that starts with a dependency down pages"
    );
    for s in [Status::Healthy, Status::Healthy, Status::Degraded] {
        db.set(s);
        get(&app, "/health/status").await;
    }
    settle(Duration::from_secs(1)).await;
    assert_eq!(
        recorder.sent(),
        [
            went_down,
            ("db".to_owned(), Status::Unhealthy, Status::Healthy),
            ("db".to_owned(), Status::Healthy, Status::Degraded)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_first_healthy_or_degraded_observation_is_no_transition() {
    for first in [Status::Healthy, Status::Degraded] {
        let db = Switch::new("db", first);
        let recorder = Recorder::default();
        let app = registry(&db, vec![recorder.clone()], 16).router();
        get(&app, "/health/status").await;
        settle(Duration::from_secs(1)).await;
        assert!(recorder.sent().is_empty(), "{first:?}: {:?}", recorder.sent());
        assert_eq!(get(&app, "/health/alerts").await.text(), r#"{"alerts":[]}"#);
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_or_panicking_alerter_delays_no_check_and_no_other_alerter() {
    let db = Switch::new("db", Status::Healthy);
    let slow = Recorder {
        delay: Duration::from_secs(3600),
        ..Recorder::default()
    };
    let broken = Recorder {
        panics: true,
        ..Recorder::default()
    };
    let fast = Recorder::default();
    let app = registry(&db, vec![slow.clone(), broken.clone(), fast.clone()], 16).router();
    get(&app, "/health/status").await;
    db.set(Status::Unhealthy);
    let started = Instant::now();
    assert_eq!(get(&app, "/health/ready").await.status, 503);
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "the check did not wait for any alerter"
    );
    settle(Duration::from_millis(10)).await;
    assert_eq!(fast.sent().len(), 1);
    assert_eq!(broken.calls(), 1, "a panic is not retried");
    assert!(slow.sent().is_empty());
    // The slow one times out after 5 s, then is retried twice.
    settle(Duration::from_secs(5 + 1 + 5 + 2 + 5)).await;
    assert_eq!(slow.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_backoff_and_permanent_ones_are_not() {
    let db = Switch::new("db", Status::Healthy);
    let flaky = Recorder {
        failures: 2,
        transient: true,
        ..Recorder::default()
    };
    let rejected = Recorder {
        failures: 1,
        transient: false,
        ..Recorder::default()
    };
    let app = registry(&db, vec![flaky.clone(), rejected.clone()], 16).router();
    get(&app, "/health/status").await;
    db.set(Status::Unhealthy);
    get(&app, "/health/status").await;
    settle(Duration::from_millis(999)).await;
    assert_eq!(flaky.calls(), 1, "the first retry waits 1 s");
    settle(Duration::from_secs(3)).await;
    assert_eq!(flaky.calls(), 3);
    assert_eq!(flaky.sent().len(), 1, "delivered on the third attempt");
    assert_eq!(rejected.calls(), 1);
    assert!(rejected.sent().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_counts_drops_in_metrics() {
    let db = Switch::new("db", Status::Healthy);
    let stuck = Recorder {
        delay: Duration::from_secs(3600),
        ..Recorder::default()
    };
    let app = registry(&db, vec![stuck.clone()], 1).router();
    get(&app, "/health/status").await;
    for s in [Status::Unhealthy, Status::Healthy, Status::Unhealthy, Status::Healthy] {
        db.set(s);
        get(&app, "/health/status").await;
        settle(Duration::from_millis(1)).await;
    }
    // One in the worker's hands, one waiting in the queue, two dropped.
    let metrics = get(&app, "/health/metrics").await.text();
    assert!(metrics.contains("\nhealth_alerts_dropped_total 2\n"), "{metrics}");
    assert_eq!(
        get(&app, "/health/alerts").await.json()["alerts"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test(start_paused = true)]
async fn maintenance_suppresses_sending_but_not_recording() {
    let db = Switch::new("db", Status::Healthy);
    let recorder = Recorder::default();
    let registry = registry(&db, vec![recorder.clone()], 16);
    let app = registry.router();
    get(&app, "/health/status").await;
    registry.set_maintenance(None);
    db.set(Status::Unhealthy);
    get(&app, "/health/status").await;
    settle(Duration::from_secs(1)).await;
    assert!(recorder.sent().is_empty());
    assert_eq!(
        get(&app, "/health/alerts").await.json()["alerts"][0]["new_status"],
        "unhealthy"
    );
    registry.clear_maintenance();
    db.set(Status::Healthy);
    get(&app, "/health/status").await;
    settle(Duration::from_secs(1)).await;
    assert_eq!(recorder.sent(), [("db".to_owned(), Status::Unhealthy, Status::Healthy)]);
}
