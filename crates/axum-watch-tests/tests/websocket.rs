//! `WebSocketProbe` through a real socket with a real client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum_watch::passive::{StatsConfig, WebSocketProbe};
use axum_watch::{Probe, Status};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;

#[derive(Clone)]
struct Probes {
    echo: WebSocketProbe,
    fail: WebSocketProbe,
}

async fn echo(State(probes): State<Probes>, upgrade: WebSocketUpgrade) -> Response {
    probes.echo.on_upgrade(upgrade, |mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            if let Message::Text(text) = message {
                socket.send(Message::Text(text)).await?;
            }
        }
        Ok::<_, axum::Error>(())
    })
}

#[derive(Debug, thiserror::Error)]
#[error("unsupported command, token=abc123")]
struct BadCommand;

async fn fail(State(probes): State<Probes>, upgrade: WebSocketUpgrade) -> Response {
    probes.fail.on_upgrade(upgrade, |mut socket| async move {
        let _ = socket.recv().await;
        Err::<(), _>(BadCommand)
    })
}

async fn serve(probes: Probes) -> SocketAddr {
    let app = Router::new()
        .route("/echo", get(echo))
        .route("/fail", get(fail))
        .with_state(probes);
    common::serve(app).await
}

async fn details(probe: &WebSocketProbe) -> (Status, Option<String>, Value) {
    let outcome = probe.check().await.unwrap();
    (
        outcome.status(),
        outcome.error().map(str::to_owned),
        Value::Object(outcome.details().clone()),
    )
}

/// Waits until the server side has finished with every connection.
async fn settled(probe: &WebSocketProbe, total: u64) -> Value {
    for _ in 0..500 {
        let (_, _, d) = details(probe).await;
        if d["total_connections"] == total && d["active_connections"] == 0 {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("connections did not settle: {:?}", details(probe).await);
}

#[tokio::test]
async fn counts_connections_messages_and_a_clean_close() {
    let probes = Probes {
        echo: WebSocketProbe::new("chat").min_active_connections(1),
        fail: WebSocketProbe::new("fail"),
    };
    let addr = serve(probes.clone()).await;
    let (_, _, d) = details(&probes.echo).await;
    assert_eq!(d, json!({"message": "no connections observed yet", "traffic": "none"}));

    let (mut client, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/echo"))
        .await
        .unwrap();
    for text in ["one", "two", "three"] {
        client.send(Frame::text(text)).await.unwrap();
        assert_eq!(client.next().await.unwrap().unwrap(), Frame::text(text));
    }
    let (state, _, d) = details(&probes.echo).await;
    assert_eq!(state, Status::Healthy, "one connection is open: {d}");
    assert_eq!(d["active_connections"], 1);
    assert_eq!(d["messages_received"], 3);
    assert_eq!(d["messages_sent"], 3);

    client.close(None).await.unwrap();
    let d = settled(&probes.echo, 1).await;
    assert_eq!(d["error_count"], 0, "a clean close is not an error: {d}");
    assert!(d["avg_duration_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(d["min_duration_ms"], d["max_duration_ms"]);

    let (state, error, _) = details(&probes.echo).await;
    assert_eq!(state, Status::Unhealthy);
    assert_eq!(error.as_deref(), Some("0 active connections, fewer than the minimum 1"));
}

#[tokio::test]
async fn a_vanished_client_is_a_normal_close_and_an_erroring_handler_is_not() {
    let probes = Probes {
        echo: WebSocketProbe::new("chat"),
        fail: WebSocketProbe::new("fail").with_config(StatsConfig::default().min_calls(1)),
    };
    let addr = serve(probes.clone()).await;

    // The client drops the TCP connection without a closing handshake.
    let (client, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/echo"))
        .await
        .unwrap();
    drop(client);
    let d = settled(&probes.echo, 1).await;
    assert_eq!(d["error_count"], 0, "{d}");

    let (mut client, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/fail"))
        .await
        .unwrap();
    client.send(Frame::text("rm -rf")).await.unwrap();
    // The handler returned: the server closes the socket.
    while let Some(Ok(_)) = client.next().await {}
    let d = settled(&probes.fail, 1).await;
    assert_eq!(d["error_count"], 1);
    assert_eq!(d["consecutive_errors"], 1);
    assert_eq!(d["messages_received"], 1);
    assert_eq!(d["last_error"], "BadCommand: unsupported command, token=***");
    let (state, error, _) = details(&probes.fail).await;
    assert_eq!(state, Status::Unhealthy);
    assert_eq!(
        error.as_deref(),
        Some("error rate 100.0% over the last call exceeds threshold 10.0%")
    );
}

#[tokio::test]
async fn failed_connections_age_out_into_no_recent_traffic() {
    let span = Duration::from_millis(300);
    let config = StatsConfig::default().min_calls(1).window_span(span);
    let probes = Probes {
        echo: WebSocketProbe::new("chat").with_config(config),
        fail: WebSocketProbe::new("fail").with_config(config),
    };
    let addr = serve(probes.clone()).await;
    let (mut client, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/fail"))
        .await
        .unwrap();
    client.send(Frame::text("rm -rf")).await.unwrap();
    while let Some(Ok(_)) = client.next().await {}
    let d = settled(&probes.fail, 1).await;
    assert!(d.get("traffic").is_none(), "{d}");
    assert_eq!(details(&probes.fail).await.0, Status::Unhealthy);

    // An open connection is recent traffic however old its start.
    let (mut open, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/echo"))
        .await
        .unwrap();
    open.send(Frame::text("hi")).await.unwrap();
    assert_eq!(open.next().await.unwrap().unwrap(), Frame::text("hi"));

    // Connections are stamped by the statistics' own clock, which tokio's
    // paused clock does not move: the failure ages out in real time.
    tokio::time::sleep(span + Duration::from_millis(100)).await;
    let (state, error, d) = details(&probes.fail).await;
    assert_eq!((state, error), (Status::Healthy, None), "{d}");
    assert_eq!(d["traffic"], "none");
    assert_eq!(d["message"], "no recent traffic: no connections in the last 0.3 s");
    assert_eq!(d["total_connections"], 1);
    assert_eq!(d["error_count"], 1);
    let (state, _, d) = details(&probes.echo).await;
    assert_eq!(state, Status::Healthy);
    assert!(d.get("traffic").is_none(), "one socket is open: {d}");
    assert_eq!(d["active_connections"], 1);
}
