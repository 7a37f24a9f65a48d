//! Per-alerter notification policy: a minimum interval per probe, reminders
//! while a probe stays unhealthy, and recoveries on or off — each sending
//! exactly what it promises, while the alert log keeps every transition.
//! Paused time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum_watch::alert::NotifyPolicy;
use axum_watch::options::Scheduling;
use axum_watch::{HealthRegistry, Status};
use common::{Recorder, Switch, get};

const POLL: Duration = Duration::from_secs(10);

fn registry(db: &Switch, recorder: &Recorder, policy: NotifyPolicy) -> HealthRegistry {
    HealthRegistry::builder()
        .add(db.clone())
        .circuit_breaker(false)
        .poll_interval(POLL)
        .scheduling(Scheduling::Background)
        .alerter_with(recorder.clone(), policy)
        .build()
        .unwrap()
}

/// Lets the background loop run `polls` more times.
async fn polls(n: u32) {
    tokio::time::sleep(POLL * n).await;
}

fn transitions(recorder: &Recorder) -> Vec<(Status, Status)> {
    recorder.sent().into_iter().map(|(_, old, new)| (old, new)).collect()
}

#[tokio::test(start_paused = true)]
async fn a_minimum_interval_holds_back_a_flapping_probe() {
    let db = Switch::new("db", Status::Healthy);
    let recorder = Recorder::default();
    let registry = registry(
        &db,
        &recorder,
        NotifyPolicy::new().min_interval(Duration::from_secs(60)),
    );
    polls(1).await;
    // Flapping every poll: four transitions within 40 s.
    for status in [Status::Unhealthy, Status::Healthy, Status::Unhealthy, Status::Healthy] {
        db.set(status);
        polls(1).await;
    }
    assert_eq!(
        transitions(&recorder),
        [(Status::Healthy, Status::Unhealthy)],
        "one page per minute"
    );
    let log = get(&registry.router(), "/health/alerts").await.json();
    assert_eq!(
        log["alerts"].as_array().unwrap().len(),
        4,
        "the log keeps every transition"
    );
    // Once the interval has passed, the next transition goes out.
    polls(3).await;
    db.set(Status::Unhealthy);
    polls(1).await;
    assert_eq!(transitions(&recorder).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn reminders_repeat_while_a_probe_stays_unhealthy_and_stop_when_it_recovers() {
    let db = Switch::new("db", Status::Healthy);
    let recorder = Recorder::default();
    let _registry = registry(&db, &recorder, NotifyPolicy::new().reminder(Duration::from_secs(30)));
    polls(1).await;
    db.set(Status::Unhealthy);
    polls(1).await; // the transition
    polls(9).await; // 90 s more, still down: reminders at 30, 60 and 90 s
    let unhealthy = (Status::Unhealthy, Status::Unhealthy);
    assert_eq!(
        transitions(&recorder),
        [(Status::Healthy, Status::Unhealthy), unhealthy, unhealthy, unhealthy]
    );
    db.set(Status::Healthy);
    polls(6).await;
    assert_eq!(
        transitions(&recorder).len(),
        5,
        "the recovery, and no reminder after it"
    );
    assert_eq!(transitions(&recorder)[4], (Status::Unhealthy, Status::Healthy));
}

#[tokio::test(start_paused = true)]
async fn recoveries_can_be_left_out() {
    let db = Switch::new("db", Status::Healthy);
    let recorder = Recorder::default();
    let _registry = registry(&db, &recorder, NotifyPolicy::new().recoveries(false));
    polls(1).await;
    for status in [Status::Unhealthy, Status::Healthy, Status::Degraded, Status::Healthy] {
        db.set(status);
        polls(1).await;
    }
    assert_eq!(
        transitions(&recorder),
        [
            (Status::Healthy, Status::Unhealthy),
            (Status::Healthy, Status::Degraded)
        ]
    );
}
