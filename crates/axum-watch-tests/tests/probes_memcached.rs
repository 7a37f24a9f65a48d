//! `MemcachedProbe` against a real memcached on loopback
//! (`AXUM_WATCH_MEMCACHED_ADDR`, default `127.0.0.1:11211`; started by
//! `scripts/services/memcached.sh`). Fails, never skips, without memcached.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use axum_watch::Status;
use axum_watch::probes::MemcachedProbe;
use common::{free_port, host_port, run, silent_listener};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

fn address() -> (String, u16) {
    host_port("AXUM_WATCH_MEMCACHED_ADDR", "127.0.0.1:11211")
}

/// Sends one text-protocol command to the real server and returns its first reply line.
async fn command(line: &str) -> String {
    let (host, port) = address();
    let mut stream = BufReader::new(TcpStream::connect((host.as_str(), port)).await.unwrap());
    stream.get_mut().write_all(line.as_bytes()).await.unwrap();
    let mut reply = String::new();
    stream.read_line(&mut reply).await.unwrap();
    reply
}

#[tokio::test]
async fn healthy_with_the_documented_details() {
    assert_eq!(
        command("set axum-watch:probe-test 0 60 2\r\nhi\r\n").await,
        "STORED\r\n"
    );
    command("get axum-watch:probe-test\r\n").await;

    let (host, port) = address();
    let result = run(MemcachedProbe::new(host, port)).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    assert_eq!(result.name, "memcached");
    let details = result.details.unwrap();
    assert!(details["version"].as_str().unwrap().starts_with("1."), "{details:?}");
    for key in [
        "uptime_seconds",
        "curr_connections",
        "curr_items",
        "bytes",
        "limit_maxbytes",
        "evictions",
    ] {
        assert!(details[key].is_u64(), "{key} in {details:?}");
    }
    assert!(details["curr_connections"].as_u64().unwrap() >= 1);
    assert!(details["curr_items"].as_u64().unwrap() >= 1);
    assert!(details["bytes"].as_u64().unwrap() > 0);
    // At least one hit happened above, so the ratio is a number in (0, 1].
    let ratio = details["hit_ratio"].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio <= 1.0, "{ratio}");
}

#[tokio::test]
async fn closed_port_is_unhealthy_quickly() {
    let port = free_port();
    let started = Instant::now();
    let result = run(MemcachedProbe::new("127.0.0.1", port)).await;
    assert_eq!(result.status, Status::Unhealthy);
    let error = result.error.unwrap();
    assert!(
        error.starts_with(&format!("io::Error: cannot connect to memcached at 127.0.0.1:{port}")),
        "{error}"
    );
    assert!(error.to_lowercase().contains("refused"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn an_unknown_host_is_unhealthy() {
    let result = run(MemcachedProbe::new("no-such-host.invalid", 11211)).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert!(
        result
            .error
            .unwrap()
            .contains("cannot connect to memcached at no-such-host.invalid:11211")
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_inside_the_probe() {
    let port = silent_listener().await.port();
    let started = Instant::now();
    let probe = MemcachedProbe::new("127.0.0.1", port).timeout(Duration::from_millis(400));
    let result = run(probe).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert_eq!(
        result.error.as_deref(),
        Some("Timeout: memcached did not answer `stats` within 400ms")
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(350) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
}

/// A peer that reads the request and answers with `reply`, then closes.
async fn scripted_peer(reply: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut socket = BufReader::new(socket);
        let mut request = String::new();
        socket.read_line(&mut request).await.unwrap();
        socket.get_mut().write_all(reply.as_bytes()).await.unwrap();
    });
    port
}

#[tokio::test]
async fn error_replies_and_other_protocols_are_unhealthy() {
    let cases = [
        (
            "SERVER_ERROR out of memory\r\n",
            "ProtocolError: memcached refused `stats`: SERVER_ERROR out of memory",
        ),
        (
            "-ERR unknown command 'stats'\r\n",
            "ProtocolError: unexpected reply to `stats`: \"-ERR unknown command 'stats'\"",
        ),
        (
            "STAT pid 1\r\n",
            "ProtocolError: memcached closed the connection before the end of the `stats` reply",
        ),
    ];
    for (reply, expected) in cases {
        let port = scripted_peer(reply).await;
        let result = run(MemcachedProbe::new("127.0.0.1", port)).await;
        assert_eq!(result.status, Status::Unhealthy);
        assert_eq!(result.error.as_deref(), Some(expected));
    }
}
