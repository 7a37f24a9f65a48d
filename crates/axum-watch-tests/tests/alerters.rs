//! The built-in alerters (webhook, Slack, Teams, PagerDuty) against a real
//! HTTP receiver on loopback: exact payloads, delivery through a registry,
//! retries, timeouts, refused connections, maintenance and redaction.
//!
//! Real time with small timeouts and backoffs; every wait is a bounded poll.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use axum::http::Method;
use axum_watch::{
    AlertRecord, Alerter, HealthRegistry, Status,
    alert::{AlertError, PagerDutyAlerter, SlackAlerter, TeamsAlerter, WebhookAlerter},
};
use common::{Behaviour, Received, Receiver, Switch, free_port, get};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Alerts and the payloads the alerters must send for them
// ---------------------------------------------------------------------------

const KEY: &str = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY00";

fn alert(old: Status, new: Status) -> AlertRecord {
    AlertRecord::new("db", old, new, "2026-03-29T14:22:01.843000Z".parse().unwrap())
}

/// The transitions every payload test covers: degraded, unhealthy, recovery.
fn transitions() -> [AlertRecord; 3] {
    [
        alert(Status::Healthy, Status::Degraded),
        alert(Status::Degraded, Status::Unhealthy),
        alert(Status::Unhealthy, Status::Healthy),
    ]
}

fn slack_expected(a: &AlertRecord, channel: Option<&str>, username: &str) -> String {
    let (emoji, color) = match a.new_status {
        Status::Healthy => (":white_check_mark:", "#2eb886"),
        Status::Degraded => (":warning:", "#daa038"),
        Status::Unhealthy => (":rotating_light:", "#a30200"),
    };
    let mut message = serde_json::Map::new();
    message.insert("username".into(), username.into());
    if let Some(channel) = channel {
        message.insert("channel".into(), channel.into());
    }
    message.insert(
        "text".into(),
        format!("{emoji} {} is now {} (was {})", a.probe, a.new_status, a.old_status).into(),
    );
    message.insert(
        "attachments".into(),
        json!([{"color": color, "fields": [
            {"title": "Probe", "value": a.probe, "short": true},
            {"title": "Status", "value": a.new_status, "short": true},
            {"title": "Previous", "value": a.old_status, "short": true},
            {"title": "Critical", "value": "yes", "short": true},
            {"title": "Time", "value": a.timestamp.to_string(), "short": true},
        ]}]),
    );
    Value::Object(message).to_string()
}

fn teams_expected(a: &AlertRecord) -> String {
    let theme = match a.new_status {
        Status::Healthy => "2EB886",
        Status::Degraded => "DAA038",
        Status::Unhealthy => "A30200",
    };
    json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "themeColor": theme,
        "summary": format!("{} is now {} (was {})", a.probe, a.new_status, a.old_status),
        "sections": [{
            "activityTitle": format!("{} is now {} (was {})", a.probe, a.new_status, a.old_status),
            "facts": [
                {"name": "Probe", "value": a.probe},
                {"name": "Status", "value": a.new_status},
                {"name": "Previous", "value": a.old_status},
                {"name": "Critical", "value": "yes"},
                {"name": "Time", "value": a.timestamp.to_string()},
            ],
        }],
    })
    .to_string()
}

fn adaptive_expected(a: &AlertRecord) -> String {
    let color = match a.new_status {
        Status::Healthy => "Good",
        Status::Degraded => "Warning",
        Status::Unhealthy => "Attention",
    };
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {
                        "type": "TextBlock",
                        "text": format!("{} is now {} (was {})", a.probe, a.new_status, a.old_status),
                        "weight": "Bolder",
                        "color": color,
                        "wrap": true,
                    },
                    {"type": "FactSet", "facts": [
                        {"title": "Probe", "value": a.probe},
                        {"title": "Status", "value": a.new_status},
                        {"title": "Previous", "value": a.old_status},
                        {"title": "Critical", "value": "yes"},
                        {"title": "Time", "value": a.timestamp.to_string()},
                    ]},
                ],
            },
        }],
    })
    .to_string()
}

fn pagerduty_expected(a: &AlertRecord, source: &str) -> String {
    let dedup_key = format!("axum-watch:{}", a.probe);
    let severity = match a.new_status {
        Status::Healthy => {
            return json!({"routing_key": KEY, "event_action": "resolve", "dedup_key": dedup_key}).to_string();
        }
        Status::Degraded => "warning",
        Status::Unhealthy => "critical",
    };
    json!({
        "routing_key": KEY,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": format!("{} is now {} (was {})", a.probe, a.new_status, a.old_status),
            "source": source,
            "severity": severity,
            "timestamp": a.timestamp.to_string(),
            "component": a.probe,
            "custom_details": {
                "probe": a.probe, "old_status": a.old_status, "new_status": a.new_status,
                "timestamp": a.timestamp.to_string(), "critical": true,
            },
        },
    })
    .to_string()
}

/// Checks the common shape of every request an alerter sends.
fn assert_json_post(r: &Received, path: &str) {
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, path);
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(
        r.headers["user-agent"].to_str().unwrap().starts_with("axum-watch/"),
        "{:?}",
        r.headers
    );
}

// ---------------------------------------------------------------------------
// Payloads, calling `notify` directly
// ---------------------------------------------------------------------------

#[tokio::test]
async fn webhook_posts_the_alert_record_itself() {
    let receiver = Receiver::start().await;
    let webhook = WebhookAlerter::new(receiver.url("/hook")).unwrap();
    assert_eq!(webhook.name(), "webhook");
    for a in transitions() {
        webhook.notify(&a).await.unwrap();
    }
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    for (r, a) in requests.iter().zip(transitions()) {
        assert_json_post(r, "/hook");
        assert_eq!(r.raw, serde_json::to_string(&a).unwrap());
    }
    assert_eq!(
        requests[1].raw,
        r#"{"probe":"db","old_status":"degraded","new_status":"unhealthy","timestamp":"2026-03-29T14:22:01.843000Z","critical":true}"#
    );
}

#[tokio::test]
async fn webhook_sends_its_extra_headers() {
    let receiver = Receiver::start().await;
    let webhook = WebhookAlerter::new(receiver.url("/hook?team=payments"))
        .unwrap()
        .header("Authorization", "Bearer s3cret-t0ken")
        .header("X-Team", "payments")
        .header("X-Team", "platform");
    webhook
        .notify(&alert(Status::Healthy, Status::Unhealthy))
        .await
        .unwrap();
    let r = &receiver.requests()[0];
    assert_json_post(r, "/hook?team=payments");
    assert_eq!(r.headers["authorization"], "Bearer s3cret-t0ken");
    let teams: Vec<_> = r.headers.get_all("x-team").iter().collect();
    assert_eq!(teams, ["payments", "platform"]);

    // A header HTTP cannot carry fails every send, permanently, unsent.
    for broken in [
        WebhookAlerter::new(receiver.url("/hook"))
            .unwrap()
            .header("bad name", "v"),
        WebhookAlerter::new(receiver.url("/hook"))
            .unwrap()
            .header("X-Token", "s3cret\nline"),
    ] {
        let err = broken
            .notify(&alert(Status::Healthy, Status::Unhealthy))
            .await
            .unwrap_err();
        assert!(!err.is_transient(), "{err}");
        assert!(err.to_string().starts_with("invalid "), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn slack_sends_incoming_webhook_messages() {
    let receiver = Receiver::start().await;
    let slack = SlackAlerter::new(receiver.url("/services/T000/B000/XXXX"))
        .unwrap()
        .channel("#ops")
        .username("payments-health");
    assert_eq!(slack.name(), "slack");
    for a in transitions() {
        slack.notify(&a).await.unwrap();
    }
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    for (r, a) in requests.iter().zip(transitions()) {
        assert_json_post(r, "/services/T000/B000/XXXX");
        assert_eq!(r.raw, slack_expected(&a, Some("#ops"), "payments-health"));
    }
    assert_eq!(
        requests[1].body["text"],
        ":rotating_light: db is now unhealthy (was degraded)"
    );
    assert_eq!(requests[2].body["attachments"][0]["color"], "#2eb886");

    // Without a channel the key is left out; the username has a default.
    let plain = SlackAlerter::new(receiver.url("/plain")).unwrap();
    let a = alert(Status::Healthy, Status::Unhealthy);
    plain.notify(&a).await.unwrap();
    let r = &receiver.requests()[3];
    assert_eq!(r.raw, slack_expected(&a, None, "axum-watch"));
    assert!(r.body.get("channel").is_none());
}

#[tokio::test]
async fn teams_sends_message_cards_or_adaptive_cards() {
    let receiver = Receiver::start().await;
    let card = TeamsAlerter::new(receiver.url("/card")).unwrap();
    let adaptive = TeamsAlerter::new(receiver.url("/workflow?sig=abc"))
        .unwrap()
        .adaptive_card();
    assert_eq!(card.name(), "teams");
    assert_eq!(adaptive.name(), "teams");
    for a in transitions() {
        card.notify(&a).await.unwrap();
        adaptive.notify(&a).await.unwrap();
    }
    let requests = receiver.requests();
    assert_eq!(requests.len(), 6);
    for (pair, a) in requests.chunks(2).zip(transitions()) {
        assert_json_post(&pair[0], "/card");
        assert_eq!(pair[0].raw, teams_expected(&a));
        assert_json_post(&pair[1], "/workflow?sig=abc");
        assert_eq!(pair[1].raw, adaptive_expected(&a));
    }
    assert_eq!(requests[2].body["themeColor"], "A30200");
    assert_eq!(
        requests[3].body["attachments"][0]["content"]["body"][0]["text"],
        "db is now unhealthy (was degraded)"
    );
}

#[tokio::test]
async fn pagerduty_triggers_and_resolves_events() {
    let receiver = Receiver::start().await;
    let pagerduty = PagerDutyAlerter::new(KEY)
        .events_url(receiver.url("/v2/enqueue"))
        .source("web-1");
    assert_eq!(pagerduty.name(), "pagerduty");
    receiver.always(Behaviour::Answer(202));
    for a in transitions() {
        pagerduty.notify(&a).await.unwrap();
    }
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    for (r, a) in requests.iter().zip(transitions()) {
        assert_json_post(r, "/v2/enqueue");
        assert_eq!(r.raw, pagerduty_expected(&a, "web-1"));
    }
    assert_eq!(requests[0].body["payload"]["severity"], "warning");
    assert_eq!(requests[1].body["payload"]["severity"], "critical");
    assert_eq!(
        requests[2].raw,
        format!(r#"{{"routing_key":"{KEY}","event_action":"resolve","dedup_key":"axum-watch:db"}}"#)
    );

    // The default source is the record's replica, else the host's name.
    let default = PagerDutyAlerter::new(KEY).events_url(receiver.url("/v2/enqueue"));
    default
        .notify(&alert(Status::Healthy, Status::Unhealthy))
        .await
        .unwrap();
    let source = receiver.requests()[3].body["payload"]["source"].clone();
    assert!(source.as_str().is_some_and(|s| !s.trim().is_empty()), "{source}");
}

// ---------------------------------------------------------------------------
// End to end: a registry, a probe that flips, the dispatcher
// ---------------------------------------------------------------------------

fn registry_with(db: &Switch, alerter: impl Alerter) -> HealthRegistry {
    HealthRegistry::builder()
        .add(db.clone())
        .alerter(alerter)
        .cache_age(Duration::ZERO)
        .circuit_breaker(false)
        .alert_timeout(Duration::from_millis(200))
        .alert_retries(2, Duration::from_millis(20))
        .build()
        .unwrap()
}

/// The newest record of `/health/alerts`, polled until there are `n`.
async fn alert_log(registry: &HealthRegistry, n: usize) -> Vec<AlertRecord> {
    let app = registry.router();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let body = get(&app, "/health/alerts").await.json();
        let records: Vec<AlertRecord> = serde_json::from_value(body["alerts"].clone()).unwrap();
        if records.len() >= n {
            return records;
        }
        assert!(Instant::now() < deadline, "expected {n} alert records, got {records:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Healthy, then unhealthy: the registry records one transition and the
/// alerter delivers it; returns the request and the recorded transition.
async fn flip_once(receiver: &Receiver, alerter: impl Alerter) -> (Received, AlertRecord) {
    let db = Switch::new("db", Status::Healthy);
    let registry = registry_with(&db, alerter);
    registry.run_all().await;
    db.set(Status::Unhealthy);
    registry.run_all().await;
    let requests = receiver.wait_for(1).await;
    let records = alert_log(&registry, 1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    (requests[0].clone(), records[0].clone())
}

#[tokio::test]
async fn every_alerter_delivers_through_a_registry() {
    let receiver = Receiver::start().await;
    let (r, a) = flip_once(&receiver, WebhookAlerter::new(receiver.url("/hook")).unwrap()).await;
    assert_json_post(&r, "/hook");
    assert_eq!((a.old_status, a.new_status), (Status::Healthy, Status::Unhealthy));
    assert_eq!(r.raw, serde_json::to_string(&a).unwrap());
    assert_eq!(r.headers["idempotency-key"], a.id.as_str());

    let receiver = Receiver::start().await;
    let slack = SlackAlerter::new(receiver.url("/slack")).unwrap().channel("#ops");
    let (r, a) = flip_once(&receiver, slack).await;
    assert_eq!(r.body["channel"], "#ops");
    let service = a.service.clone().unwrap();
    assert_eq!(
        r.body["text"],
        format!(":rotating_light: {service}/db is now unhealthy (was healthy): db is down")
    );

    let receiver = Receiver::start().await;
    let (r, _) = flip_once(&receiver, TeamsAlerter::new(receiver.url("/teams")).unwrap()).await;
    assert_eq!(r.body["@type"], "MessageCard");
    assert_eq!(
        r.body["summary"],
        format!("{service}/db is now unhealthy (was healthy)")
    );

    let receiver = Receiver::start().await;
    let adaptive = TeamsAlerter::new(receiver.url("/teams")).unwrap().adaptive_card();
    let (r, _) = flip_once(&receiver, adaptive).await;
    assert_eq!(
        r.body["attachments"][0]["content"]["body"][0]["text"],
        format!("{service}/db is now unhealthy (was healthy)")
    );

    let receiver = Receiver::start().await;
    receiver.always(Behaviour::Answer(202));
    let pagerduty = PagerDutyAlerter::new(KEY)
        .events_url(receiver.url("/v2/enqueue"))
        .source("web-1");
    let (r, a) = flip_once(&receiver, pagerduty).await;
    assert_eq!(r.body["dedup_key"], format!("axum-watch:{service}:db"));
    assert_eq!(r.body["payload"]["source"], "web-1");
    assert_eq!(r.body["payload"]["custom_details"], serde_json::to_value(&a).unwrap());
}

#[tokio::test]
async fn webhook_url_on_the_builder_delivers_and_is_validated() {
    let receiver = Receiver::start().await;
    let db = Switch::new("db", Status::Healthy);
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .webhook_url(receiver.url("/builder-hook"))
        .cache_age(Duration::ZERO)
        .build()
        .unwrap();
    registry.run_all().await;
    db.set(Status::Degraded);
    registry.run_all().await;
    let r = &receiver.wait_for(1).await[0];
    assert_json_post(r, "/builder-hook");
    let a = &alert_log(&registry, 1).await[0];
    assert_eq!(r.raw, serde_json::to_string(a).unwrap());

    for bad in ["ftp://hooks.example.com/x", "hooks.example.com/t0ken", ""] {
        let err = HealthRegistry::builder().webhook_url(bad).build().unwrap_err();
        assert!(err.to_string().starts_with("invalid webhook URL: "), "{err}");
        assert!(bad.is_empty() || !err.to_string().contains(bad), "{err}");
    }
}

// ---------------------------------------------------------------------------
// Failures: timeouts, retries, refused connections
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_slow_receiver_is_retried_then_given_up_without_delaying_checks() {
    let receiver = Receiver::start().await;
    receiver.always(Behaviour::Slow(Duration::from_secs(3)));
    let db = Switch::new("db", Status::Healthy);
    let registry = registry_with(&db, WebhookAlerter::new(receiver.url("/slow")).unwrap());
    registry.run_all().await;
    db.set(Status::Unhealthy);

    let started = Instant::now();
    let report = registry.run_all().await;
    let check_took = started.elapsed();
    assert_eq!(report.status, Status::Unhealthy);
    assert!(
        check_took < Duration::from_millis(150),
        "the check waited {check_took:?}"
    );

    // The first attempt and both retries, each cut off by the 200 ms timeout
    // (then 20 ms and 40 ms of backoff) long before the 3 s answer. The gaps
    // are measured at the receiver, after connecting: allow some slack.
    let requests = receiver.wait_for(3).await;
    for pair in requests.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(150) && gap < Duration::from_secs(2),
            "attempts {gap:?} apart"
        );
    }
    receiver.stays_at(3, Duration::from_millis(400)).await;
    assert!(requests.iter().all(|r| r.raw == requests[0].raw));

    // Checks still run at full speed while the alerter struggles.
    db.set(Status::Healthy);
    let started = Instant::now();
    registry.run_all().await;
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_server_error_then_success_is_delivered_exactly_once() {
    let receiver = Receiver::start().await;
    receiver.script([Behaviour::Answer(500)]);
    let (first, _) = flip_once(&receiver, WebhookAlerter::new(receiver.url("/hook")).unwrap()).await;
    let requests = receiver.wait_for(2).await;
    assert_eq!(requests[1].raw, first.raw);
    receiver.stays_at(2, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn too_many_requests_is_retried_but_bad_request_is_not() {
    let receiver = Receiver::start().await;
    receiver.script([Behaviour::Answer(429)]);
    flip_once(&receiver, SlackAlerter::new(receiver.url("/slack")).unwrap()).await;
    receiver.wait_for(2).await;
    receiver.stays_at(2, Duration::from_millis(200)).await;

    let receiver = Receiver::start().await;
    receiver.always(Behaviour::Answer(400));
    flip_once(&receiver, SlackAlerter::new(receiver.url("/slack")).unwrap()).await;
    receiver.stays_at(1, Duration::from_millis(200)).await;

    // The same classification, seen from `notify`, with the service's reason.
    let receiver = Receiver::start().await;
    let slack = SlackAlerter::new(receiver.url("/services/T000/B000/XXXX")).unwrap();
    let a = alert(Status::Healthy, Status::Unhealthy);
    let mut errors: Vec<(u16, AlertError)> = Vec::new();
    for code in [400, 403, 404, 408, 429, 500, 503] {
        receiver.script([Behaviour::Answer(code)]);
        errors.push((code, slack.notify(&a).await.unwrap_err()));
    }
    for (code, err) in errors {
        let transient = matches!(code, 408 | 429 | 500 | 503);
        assert_eq!(err.is_transient(), transient, "{code}: {err}");
        let text = err.to_string();
        assert!(text.starts_with(&format!("slack answered {code} ")), "{text}");
        assert!(text.ends_with(": invalid_payload"), "{text}");
        assert!(!text.contains("XXXX") && !text.contains("/services/"), "{text}");
    }
}

#[tokio::test]
async fn refused_connections_are_transient_and_hide_urls_and_keys() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let secret_path = "/services/T0SECRET/B0SECRET/T0KENT0KENT0KEN";
    let a = alert(Status::Healthy, Status::Unhealthy);

    let webhook = WebhookAlerter::new(format!(
        "http://alice:pa55word@127.0.0.1:{port}{secret_path}?sig=S1GNATURE"
    ))
    .unwrap()
    .header("Authorization", "Bearer HEADERT0KEN");
    let slack = SlackAlerter::new(format!("{base}{secret_path}")).unwrap();
    let teams = TeamsAlerter::new(format!("{base}/workflows/abc?sig=S1GNATURE")).unwrap();
    let pagerduty = PagerDutyAlerter::new(KEY).events_url(format!("{base}/v2/enqueue"));
    let errors = [
        webhook.notify(&a).await.unwrap_err(),
        slack.notify(&a).await.unwrap_err(),
        teams.notify(&a).await.unwrap_err(),
        pagerduty.notify(&a).await.unwrap_err(),
    ];
    for (err, who) in errors.iter().zip(["webhook", "slack", "teams", "pagerduty"]) {
        let text = err.to_string();
        assert!(err.is_transient(), "{text}");
        assert!(text.starts_with(&format!("{who} request failed: ")), "{text}");
        for secret in [
            base.as_str(),
            "127.0.0.1",
            "pa55word",
            "T0SECRET",
            "T0KENT0KEN",
            "S1GNATURE",
            "HEADERT0KEN",
            "/v2/enqueue",
            KEY,
        ] {
            assert!(!text.contains(secret), "{secret:?} in {text:?}");
        }
    }
}

#[tokio::test]
async fn error_answers_echoing_secrets_are_scrubbed() {
    let receiver = Receiver::start().await;
    receiver.always(Behaviour::Echo(400));
    let pagerduty = PagerDutyAlerter::new(KEY).events_url(receiver.url("/v2/enqueue"));
    let err = pagerduty
        .notify(&alert(Status::Healthy, Status::Unhealthy))
        .await
        .unwrap_err();
    assert!(!err.is_transient());
    let text = err.to_string();
    assert!(text.starts_with("pagerduty answered 400 Bad Request: "), "{text}");
    assert!(text.contains(r#"{"routing_key":"#), "{text}");
    assert!(!text.contains(KEY), "{text}");
    assert!(text.chars().count() < 300, "{text}");

    // A secret in the URL's path or query is scrubbed from the quote too.
    let slack = SlackAlerter::new(receiver.url("/services/T0SECRET/B0SECRET/T0KENT0KEN?sig=S1GNATURE")).unwrap();
    let err = slack
        .notify(&alert(Status::Healthy, Status::Unhealthy))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("slack answered 400 Bad Request: "), "{text}");
    for secret in ["T0SECRET", "T0KENT0KEN", "S1GNATURE"] {
        assert!(!text.contains(secret), "{secret:?} in {text:?}");
    }
}

#[tokio::test]
async fn invalid_urls_are_refused_without_repeating_them() {
    for bad in [
        "",
        "hooks.example.com/t0ken",
        "ftp://hooks.example.com/t0ken",
        "http://",
    ] {
        let errors = [
            WebhookAlerter::new(bad).unwrap_err(),
            SlackAlerter::new(bad).unwrap_err(),
            TeamsAlerter::new(bad).unwrap_err(),
            PagerDutyAlerter::new(KEY)
                .events_url(bad)
                .notify(&alert(Status::Healthy, Status::Unhealthy))
                .await
                .unwrap_err(),
        ];
        for err in errors {
            assert!(!err.is_transient(), "{err}");
            assert!(err.to_string().starts_with("invalid "), "{err}");
            assert!(!err.to_string().contains("t0ken"), "{err}");
        }
    }
    // Loopback and plain http are allowed: the tests' receivers use them.
    assert!(WebhookAlerter::new("http://localhost:8080/hook").is_ok());
    assert!(WebhookAlerter::new("http://[::1]:8080/hook").is_ok());
}

// ---------------------------------------------------------------------------
// Maintenance and Debug
// ---------------------------------------------------------------------------

#[tokio::test]
async fn maintenance_sends_nothing_but_still_records() {
    let receiver = Receiver::start().await;
    let db = Switch::new("db", Status::Healthy);
    let registry = registry_with(&db, WebhookAlerter::new(receiver.url("/hook")).unwrap());
    registry.run_all().await;
    registry.set_maintenance(None);
    db.set(Status::Unhealthy);
    registry.run_all().await;
    let records = alert_log(&registry, 1).await;
    assert_eq!(
        (records[0].old_status, records[0].new_status),
        (Status::Healthy, Status::Unhealthy)
    );
    receiver.stays_at(0, Duration::from_millis(200)).await;

    // After maintenance the next transition goes out again.
    registry.clear_maintenance();
    db.set(Status::Healthy);
    registry.run_all().await;
    let requests = receiver.wait_for(1).await;
    let records = alert_log(&registry, 2).await;
    assert_eq!(requests[0].raw, serde_json::to_string(&records[1]).unwrap());
    receiver.stays_at(1, Duration::from_millis(100)).await;
}

#[tokio::test]
async fn debug_output_hides_urls_keys_and_header_values() {
    let secrets = [
        "hooks.example.com",
        "T0SECRET",
        "S1GNATURE",
        "HEADERT0KEN",
        KEY,
        "events.example.com",
    ];
    let webhook = WebhookAlerter::new("https://hooks.example.com/T0SECRET?sig=S1GNATURE")
        .unwrap()
        .header("Authorization", "Bearer HEADERT0KEN");
    let slack = SlackAlerter::new("https://hooks.example.com/services/T0SECRET")
        .unwrap()
        .channel("#ops");
    let teams = TeamsAlerter::new("https://hooks.example.com/workflows?sig=S1GNATURE").unwrap();
    let adaptive = TeamsAlerter::new("https://hooks.example.com/workflows?sig=S1GNATURE")
        .unwrap()
        .adaptive_card();
    let pagerduty = PagerDutyAlerter::new(KEY)
        .events_url("https://events.example.com/T0SECRET")
        .source("web-1");
    let shown = [
        format!("{webhook:?}"),
        format!("{slack:?}"),
        format!("{teams:?}"),
        format!("{adaptive:?}"),
        format!("{pagerduty:?}"),
        format!("{pagerduty:#?}"),
    ];
    for text in &shown {
        assert!(text.contains("<redacted>"), "{text}");
        for secret in secrets {
            assert!(!text.contains(secret), "{secret:?} in {text}");
        }
    }
    assert_eq!(
        shown[0],
        r#"WebhookAlerter { url: "<redacted>", headers: ["authorization"], custom_body: false }"#
    );
    assert_eq!(
        shown[1],
        r##"SlackAlerter { channel: Some("#ops"), username: "axum-watch", url: "<redacted>" }"##
    );
    assert_eq!(shown[2], r#"TeamsAlerter { format: "MessageCard", url: "<redacted>" }"#);
    assert_eq!(
        shown[3],
        r#"TeamsAlerter { format: "AdaptiveCard", url: "<redacted>" }"#
    );
    assert_eq!(
        shown[4],
        r#"PagerDutyAlerter { source: Some("web-1"), routing_key: "<redacted>", events_url: "<redacted>" }"#
    );

    // Nor does the registry show more than the alerters' names.
    let registry = HealthRegistry::builder()
        .alerter(webhook)
        .alerter(slack)
        .alerter(teams)
        .alerter(pagerduty)
        .build()
        .unwrap();
    let text = format!("{registry:?}");
    for secret in secrets {
        assert!(!text.contains(secret), "{secret:?} in {text}");
    }
}
