//! Alerts people can act on: a registry with a service name and a public
//! URL flips a critical, tagged probe whose error holds a credential, and
//! every built-in alerter (webhook, Slack, Teams in both formats, PagerDuty,
//! Opsgenie) delivers to a real HTTP receiver on loopback a payload that
//! says which service and replica, which probe, why (the redacted error),
//! since when, with a stable id and a link to the dashboard.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::Method;
use axum_watch::alert::{OpsgenieAlerter, PagerDutyAlerter, SlackAlerter, TeamsAlerter, WebhookAlerter};
use axum_watch::{AlertRecord, HealthRegistry, Outcome, ProbeError, ProbeExt, probe};
use common::{Received, Receiver, get};
use serde_json::{Value, json};

const SECRET: &str = "Sup3rS3cretPw";
const ROUTING_KEY: &str = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY00";
const GENIE_KEY: &str = "0a1b2c3d-0000-4000-8000-5e6f7a8b9c0d";
const DASHBOARD: &str = "https://checkout.example.com/health/dashboard";

/// A critical probe `db`, tagged `infra`, failing with an error that
/// quotes its connection string while `down` is set.
fn db(down: &Arc<AtomicBool>) -> impl axum_watch::Probe {
    let down = Arc::clone(down);
    probe::from_fn("db", move || {
        let down = down.load(Ordering::SeqCst);
        async move {
            if down {
                Err(ProbeError::msg(format!(
                    "connect to postgres://app:{SECRET}@db.internal:5432/app failed: connection refused"
                )))
            } else {
                Ok(Outcome::healthy())
            }
        }
    })
    .with_tags(["infra"])
}

/// The recorded transitions, polled until there are `n`.
async fn alert_log(registry: &HealthRegistry, n: usize) -> Vec<AlertRecord> {
    let app = registry.router();
    for _ in 0..500 {
        let body = get(&app, "/health/alerts").await.json();
        let records: Vec<AlertRecord> = serde_json::from_value(body["alerts"].clone()).unwrap();
        if records.len() >= n {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {n} alert records");
}

fn at<'a>(requests: &'a [Received], path: &str) -> Vec<&'a Received> {
    requests.iter().filter(|r| r.path.starts_with(path)).collect()
}

/// The value of the fact titled `title` in a list of `{key: title, value}`.
fn fact<'a>(facts: &'a Value, key: &str, title: &str) -> &'a str {
    facts
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f[key] == title)
        .unwrap_or_else(|| panic!("no fact {title:?} in {facts}"))["value"]
        .as_str()
        .unwrap()
}

/// Every fact the chat alerters show for the record that went down.
fn assert_facts(facts: &Value, key: &str, down: &AlertRecord) {
    assert_eq!(fact(facts, key, "Service"), "checkout");
    assert_eq!(fact(facts, key, "Replica"), down.replica.as_deref().unwrap());
    assert_eq!(fact(facts, key, "Probe"), "db");
    assert_eq!(fact(facts, key, "Status"), "unhealthy");
    assert_eq!(fact(facts, key, "Previous"), "healthy");
    assert_eq!(fact(facts, key, "Error"), down.error.as_deref().unwrap());
    assert_eq!(fact(facts, key, "Critical"), "yes");
    assert_eq!(fact(facts, key, "Tags"), "infra");
    let since = fact(facts, key, "Previous since");
    assert!(since.starts_with(&down.since.unwrap().to_string()), "{since}");
    assert!(since.contains(" (for "), "{since}");
    assert_eq!(fact(facts, key, "Time"), down.timestamp.to_string());
    assert_eq!(fact(facts, key, "Alert id"), down.id);
}

#[tokio::test]
async fn every_alerter_payload_says_who_what_why_since_when_and_where_to_look() {
    let receiver = Receiver::start().await;
    let down = Arc::new(AtomicBool::new(false));
    let registry = HealthRegistry::builder()
        .add(db(&down))
        .service_name("checkout")
        .public_url("https://checkout.example.com/")
        .cache_age(Duration::ZERO)
        .circuit_breaker(false)
        .alert_timeout(Duration::from_secs(2))
        .alerter(WebhookAlerter::new(receiver.url("/hook")).unwrap())
        .alerter(SlackAlerter::new(receiver.url("/slack")).unwrap())
        .alerter(TeamsAlerter::new(receiver.url("/teams")).unwrap())
        .alerter(TeamsAlerter::new(receiver.url("/adaptive")).unwrap().adaptive_card())
        .alerter(PagerDutyAlerter::new(ROUTING_KEY).events_url(receiver.url("/pd")))
        .alerter(OpsgenieAlerter::new(GENIE_KEY).api_url(receiver.url("/og")))
        .build()
        .unwrap();
    registry.run_all().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    down.store(true, Ordering::SeqCst);
    registry.run_all().await;
    receiver.wait_for(6).await;
    down.store(false, Ordering::SeqCst);
    registry.run_all().await;
    let requests = receiver.wait_for(12).await;

    // The records themselves.
    let records = alert_log(&registry, 2).await;
    let (went_down, came_back) = (&records[0], &records[1]);
    assert!(went_down.is_worse() && came_back.is_recovery());
    for r in &records {
        assert_eq!(r.id.len(), 26, "{r:?}");
        assert!(r.id.bytes().all(|b| b.is_ascii_hexdigit()), "{r:?}");
        assert_eq!(r.service.as_deref(), Some("checkout"));
        assert!(r.replica.as_deref().is_some_and(|id| !id.is_empty()), "{r:?}");
        assert!(r.critical);
        assert_eq!(r.tags, ["infra"]);
        assert_eq!(r.dashboard_url.as_deref(), Some(DASHBOARD));
    }
    assert_ne!(went_down.id, came_back.id);
    let error = went_down.error.as_deref().unwrap();
    assert!(
        error.contains("connection refused") && error.contains("db.internal"),
        "{error}"
    );
    assert!(!error.contains(SECRET), "{error}");
    assert_eq!(came_back.error, None, "a recovery has no error");
    // The recovery says how long the outage lasted, from the first record.
    assert_eq!(came_back.since, Some(went_down.timestamp));
    let outage = came_back
        .timestamp
        .instant()
        .duration_since(went_down.timestamp.instant());
    assert_eq!(came_back.duration_ms, Some(u64::try_from(outage.as_millis()).unwrap()));
    assert!(went_down.duration_ms.unwrap() >= 20, "{went_down:?}");

    for r in &requests {
        assert_eq!(r.method, Method::POST);
        assert!(!r.raw.contains(SECRET), "{} leaked the secret: {}", r.path, r.raw);
    }

    // Webhook: the record itself, with its id as the idempotency key.
    let hook = at(&requests, "/hook");
    assert_eq!(hook.len(), 2);
    for (r, record) in hook.iter().zip(&records) {
        assert_eq!(r.body, serde_json::to_value(record).unwrap());
        assert_eq!(r.headers["idempotency-key"], record.id.as_str());
    }

    // Slack: a line with the service, the error and a link; every fact.
    let slack = at(&requests, "/slack");
    assert_eq!(
        slack[0].body["text"],
        format!(":rotating_light: checkout/db is now unhealthy (was healthy): {error} <{DASHBOARD}|dashboard>")
    );
    let attachment = &slack[0].body["attachments"][0];
    assert_eq!(attachment["title_link"], DASHBOARD);
    assert_facts(&attachment["fields"], "title", went_down);
    assert_eq!(
        slack[1].body["text"],
        format!(":white_check_mark: checkout/db is now healthy (was unhealthy) <{DASHBOARD}|dashboard>")
    );

    // Teams, both formats: the same facts and a button to the dashboard.
    let card = &at(&requests, "/teams")[0].body;
    assert_eq!(card["summary"], "checkout/db is now unhealthy (was healthy)");
    assert_facts(&card["sections"][0]["facts"], "name", went_down);
    assert_eq!(card["potentialAction"][0]["targets"][0]["uri"], DASHBOARD);
    let adaptive = &at(&requests, "/adaptive")[0].body["attachments"][0]["content"];
    assert_facts(&adaptive["body"][1]["facts"], "title", went_down);
    assert_eq!(adaptive["actions"][0]["type"], "Action.OpenUrl");
    assert_eq!(adaptive["actions"][0]["url"], DASHBOARD);

    // PagerDuty: one incident per probe, triggered then resolved.
    let pd = at(&requests, "/pd");
    let trigger = &pd[0].body;
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], "axum-watch:checkout:db");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["source"], went_down.replica.as_deref().unwrap());
    assert_eq!(trigger["payload"]["group"], "checkout");
    assert_eq!(trigger["payload"]["component"], "db");
    assert_eq!(
        trigger["payload"]["summary"],
        format!("checkout/db is now unhealthy (was healthy): {error}")
    );
    assert_eq!(
        trigger["payload"]["custom_details"],
        serde_json::to_value(went_down).unwrap()
    );
    assert_eq!(trigger["links"][0]["href"], DASHBOARD);
    assert_eq!(
        pd[1].body,
        json!({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "axum-watch:checkout:db"})
    );

    // Opsgenie: created with every field, then closed by its alias.
    let og = at(&requests, "/og");
    assert_eq!(og[0].path, "/og/v2/alerts");
    assert_eq!(og[0].headers["authorization"], format!("GenieKey {GENIE_KEY}").as_str());
    let create = &og[0].body;
    assert_eq!(create["message"], "checkout/db is now unhealthy (was healthy)");
    assert_eq!(create["alias"], "axum-watch:checkout:db");
    assert_eq!(create["description"], format!("{error}\n\n{DASHBOARD}"));
    assert_eq!(create["priority"], "P2");
    assert_eq!(create["tags"], json!(["infra"]));
    assert_eq!(create["entity"], "checkout");
    assert_eq!(create["source"], went_down.replica.as_deref().unwrap());
    assert_eq!(create["details"]["Alert id"], went_down.id);
    assert_eq!(create["details"]["Error"], error);
    assert_eq!(
        og[1].path,
        "/og/v2/alerts/axum-watch:checkout:db/close?identifierType=alias"
    );
    assert_eq!(og[1].headers["authorization"], format!("GenieKey {GENIE_KEY}").as_str());
    assert_eq!(og[1].body["note"], "checkout/db is now healthy (was unhealthy)");
}

#[tokio::test]
async fn a_webhook_body_can_be_shaped_and_keeps_its_idempotency_key() {
    let receiver = Receiver::start().await;
    let down = Arc::new(AtomicBool::new(false));
    let webhook = WebhookAlerter::new(receiver.url("/chat")).unwrap().body(|alert| {
        json!({
            "text": alert.summary(),
            "severity": if alert.is_worse() { "high" } else { "info" },
        })
    });
    let registry = HealthRegistry::builder()
        .add(db(&down))
        .service_name("checkout")
        .cache_age(Duration::ZERO)
        .alerter(webhook)
        .build()
        .unwrap();
    registry.run_all().await;
    down.store(true, Ordering::SeqCst);
    registry.run_all().await;
    let r = receiver.wait_for(1).await.remove(0);
    let record = alert_log(&registry, 1).await.remove(0);
    let error = record.error.as_deref().unwrap();
    assert_eq!(
        r.body,
        json!({"text": format!("checkout/db is unhealthy (was healthy): {error}"), "severity": "high"})
    );
    assert_eq!(r.headers["idempotency-key"], record.id.as_str());
}

#[tokio::test]
async fn a_service_that_starts_with_a_dependency_down_pages_at_once() {
    let receiver = Receiver::start().await;
    let down = Arc::new(AtomicBool::new(true));
    let registry = HealthRegistry::builder()
        .add(db(&down))
        .alerter(WebhookAlerter::new(receiver.url("/hook")).unwrap())
        .build()
        .unwrap();
    registry.run_all().await;
    let r = receiver.wait_for(1).await.remove(0);
    assert_eq!(r.body["old_status"], "healthy");
    assert_eq!(r.body["new_status"], "unhealthy");
    // No service name given and no shared store: the executable's name.
    let service = r.body["service"].as_str().unwrap();
    assert!(service.starts_with("alert_payloads"), "{service}");
    assert!(
        r.body.get("dashboard_url").is_none(),
        "no public URL, no link: {}",
        r.body
    );
}

#[test]
fn the_public_url_and_service_name_are_validated() {
    for bad in [
        "checkout.example.com",
        "ftp://checkout.example.com",
        "https://",
        "https:// x",
    ] {
        let err = HealthRegistry::builder().public_url(bad).build().unwrap_err();
        assert_eq!(err.kind(), axum_watch::BuildErrorKind::InvalidOption, "{bad}");
        assert!(err.to_string().contains("public_url"), "{err}");
    }
    for bad in ["", "  ", "a\nb"] {
        let err = HealthRegistry::builder().service_name(bad).build().unwrap_err();
        assert!(err.to_string().contains("service_name"), "{err}");
    }
}
