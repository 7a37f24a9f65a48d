//! gRPC health checking (`grpc.health.v1.Health`) through a real tonic
//! server and client over TCP: `Check`, `Watch` and `List` for the overall
//! service, probe names and tags, in every state of the lifecycle, answered
//! from the same engine (and the same runs) as the HTTP endpoints.
//!
//! `Check` and `Watch` go through tonic-health's generated client; `List`,
//! which tonic-health does not generate, through the tests' own prost
//! messages.
//!
//! Time-dependent tests run in paused time over the same real sockets. A
//! paused clock jumps to the next timer whenever the runtime waits for I/O,
//! even with bytes in flight on loopback; a [`ticker`] bounds each jump to a
//! millisecond, so a message in flight costs a few virtual milliseconds
//! (hence [`SOON`]) while probe runs keep their exact schedule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum_watch::{HealthRegistry, ProbeExt, Status};
use common::{Switch, get};
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Streaming};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use ServingStatus::{NotServing, ServiceUnknown, Serving};

/// How long, in virtual time, a message in flight may take: "at once".
const SOON: Duration = Duration::from_millis(100);

/// Aborts the ticker when the test ends.
struct Ticker(tokio::task::JoinHandle<()>);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A timer every millisecond, so that a paused clock never jumps further
/// than that while the runtime waits for the socket.
fn ticker() -> Ticker {
    Ticker(tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }))
}

/// The registry's health service on a loopback port, served by tonic.
async fn serve(registry: &HealthRegistry) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = registry.grpc_service();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming(listener))
            .await
            .unwrap();
    });
    addr
}

/// Accepted connections as tonic's own `serve(addr)` sets them up: without
/// Nagle's delay, which would hold a small message back for a delayed ACK.
fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A client of the health service at `addr`.
struct Client {
    health: HealthClient<Channel>,
    channel: Channel,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        let channel = channel(addr).await;
        Self {
            health: HealthClient::new(channel.clone()),
            channel,
        }
    }

    async fn check(&mut self, service: &str) -> Result<ServingStatus, tonic::Status> {
        let request = HealthCheckRequest {
            service: service.to_owned(),
        };
        let response = self.health.check(request).await?.into_inner();
        Ok(response.status())
    }

    async fn status(&mut self, service: &str) -> ServingStatus {
        self.check(service)
            .await
            .unwrap_or_else(|e| panic!("Check({service:?}) failed: {e}"))
    }

    async fn watch(&mut self, service: &str) -> Watch {
        let request = HealthCheckRequest {
            service: service.to_owned(),
        };
        Watch {
            stream: self.health.watch(request).await.unwrap().into_inner(),
        }
    }

    async fn list(&mut self) -> HashMap<String, ServingStatus> {
        list(self.channel.clone()).await
    }
}

/// An open `Watch` call.
struct Watch {
    stream: Streaming<HealthCheckResponse>,
}

impl Watch {
    /// The next message; `None` when the call ended with OK.
    async fn next(&mut self) -> Option<ServingStatus> {
        self.stream.message().await.unwrap().map(|m| m.status())
    }

    /// The next message if one comes within `within` (virtual time).
    async fn next_within(&mut self, within: Duration) -> Option<Option<ServingStatus>> {
        tokio::time::timeout(within, self.next()).await.ok()
    }

    async fn expect(&mut self, status: ServingStatus) {
        assert_eq!(self.next().await, Some(status));
    }

    async fn expect_quiet(&mut self, during: Duration) {
        let got = self.next_within(during).await;
        assert!(got.is_none(), "no message expected, got {got:?}");
    }
}

// `List` is not in tonic-health's generated code: its messages, written
// from grpc-proto's health.proto.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthListRequest {}

#[derive(Clone, PartialEq, prost::Message)]
struct HealthListResponse {
    #[prost(map = "string, message", tag = "1")]
    statuses: HashMap<String, HealthCheckResponse>,
}

async fn list(channel: Channel) -> HashMap<String, ServingStatus> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/List");
    let codec = tonic_prost::ProstCodec::<HealthListRequest, HealthListResponse>::default();
    let response = grpc
        .unary(tonic::Request::new(HealthListRequest {}), path, codec)
        .await
        .unwrap()
        .into_inner();
    response
        .statuses
        .into_iter()
        .map(|(name, answer)| (name, answer.status()))
        .collect()
}

/// Probes that tell the naming apart: a critical `db` (tags `core`,
/// `storage`), a non-critical `cache` (tag `storage`) and a critical `app`
/// (tag `core`).
fn probes() -> (Switch, Switch, Switch) {
    (
        Switch::new("db", Status::Healthy),
        Switch::new("cache", Status::Healthy),
        Switch::new("app", Status::Healthy),
    )
}

fn registry_of(db: &Switch, cache: &Switch, app: &Switch) -> axum_watch::HealthRegistryBuilder {
    HealthRegistry::builder()
        .add(db.clone().with_tags(["core", "storage"]))
        .add_non_critical(cache.clone().with_tags(["storage"]))
        .add(app.clone().with_tags(["core"]))
        // Every Check sees the switches' latest state, and a probe that
        // fails many checks in a row answers from itself, not from a circuit.
        .cache_age(Duration::ZERO)
        .circuit_breaker(false)
}

const SERVICES: [&str; 6] = ["", "db", "cache", "app", "tag:core", "tag:storage"];

/// What `Check` answers for each of [`SERVICES`].
async fn statuses(client: &mut Client) -> Vec<ServingStatus> {
    let mut out = Vec::new();
    for service in SERVICES {
        out.push(client.status(service).await);
    }
    out
}

/// `/ready`'s code, which service `""` must agree with.
async fn ready_code(registry: &HealthRegistry) -> u16 {
    get(registry, "/health/ready").await.status.as_u16()
}

#[tokio::test]
async fn check_answers_the_overall_service_probes_and_tags_in_every_probe_state() {
    let (db, cache, app) = probes();
    let registry = registry_of(&db, &cache, &app).build().unwrap();
    let mut client = Client::connect(serve(&registry).await).await;

    //                               ""       db       cache       app      tag:core  tag:storage
    assert_eq!(
        statuses(&mut client).await,
        [Serving, Serving, Serving, Serving, Serving, Serving]
    );
    assert_eq!(ready_code(&registry).await, 200);

    // Degraded still serves, as it is still ready.
    db.set(Status::Degraded);
    assert_eq!(
        statuses(&mut client).await,
        [Serving, Serving, Serving, Serving, Serving, Serving]
    );

    // A failing non-critical probe: its own service fails, readiness and
    // its tag (decided by critical probes) do not.
    db.set(Status::Healthy);
    cache.set(Status::Unhealthy);
    assert_eq!(
        statuses(&mut client).await,
        [Serving, Serving, NotServing, Serving, Serving, Serving]
    );
    assert_eq!(ready_code(&registry).await, 200);

    // A failing critical probe: readiness and both of its tags fail; the
    // other probes' own services still serve.
    cache.set(Status::Healthy);
    db.set(Status::Unhealthy);
    assert_eq!(
        statuses(&mut client).await,
        [NotServing, NotServing, Serving, Serving, NotServing, NotServing]
    );
    assert_eq!(ready_code(&registry).await, 503);

    app.set(Status::Unhealthy);
    db.set(Status::Healthy);
    assert_eq!(
        statuses(&mut client).await,
        [NotServing, Serving, Serving, NotServing, NotServing, Serving]
    );
}

#[tokio::test]
async fn maintenance_serves_every_service_without_running_probes() {
    let (db, cache, app) = probes();
    let registry = registry_of(&db, &cache, &app).build().unwrap();
    let mut client = Client::connect(serve(&registry).await).await;
    db.set(Status::Unhealthy);
    cache.set(Status::Unhealthy);
    assert_eq!(client.status("").await, NotServing);

    registry.set_maintenance(None);
    let calls = db.calls();
    assert_eq!(statuses(&mut client).await, [Serving; 6]);
    assert_eq!(ready_code(&registry).await, 200);
    assert_eq!(db.calls(), calls, "the gate answers before any probe runs");

    registry.clear_maintenance();
    assert_eq!(
        statuses(&mut client).await,
        [NotServing, NotServing, NotServing, Serving, NotServing, NotServing]
    );
}

#[tokio::test(start_paused = true)]
async fn the_grace_period_does_not_serve_until_it_ends() {
    let _ticker = ticker();
    let (db, cache, app) = probes();
    let registry = registry_of(&db, &cache, &app)
        .grace_period(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut client = Client::connect(serve(&registry).await).await;
    assert_eq!(statuses(&mut client).await, [NotServing; 6]);
    assert_eq!(ready_code(&registry).await, 503);
    assert_eq!(client.list().await.values().filter(|s| **s != NotServing).count(), 0);

    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(statuses(&mut client).await, [Serving; 6]);
    assert_eq!(ready_code(&registry).await, 200);
}

#[tokio::test(start_paused = true)]
async fn draining_does_not_serve_and_ends_every_watch() {
    let _ticker = ticker();
    let (db, cache, app) = probes();
    let registry = registry_of(&db, &cache, &app)
        .drain_delay(Duration::from_secs(2))
        .drain_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let mut client = Client::connect(serve(&registry).await).await;
    let mut overall = client.watch("").await;
    let mut probe = client.watch("db").await;
    overall.expect(Serving).await;
    probe.expect(Serving).await;

    let drain = tokio::spawn({
        let registry = registry.clone();
        async move { registry.drain().await }
    });
    // At once, with no probe run: every watch hears it, Check and List agree.
    let started = Instant::now();
    overall.expect(NotServing).await;
    probe.expect(NotServing).await;
    assert!(started.elapsed() <= SOON, "{:?}", started.elapsed());
    assert_eq!(statuses(&mut client).await, [NotServing; 6]);
    assert!(client.list().await.values().all(|s| *s == NotServing));
    assert_eq!(ready_code(&registry).await, 503);

    // After the drain delay the watches end with OK, nothing else sent.
    assert_eq!(overall.next().await, None);
    assert_eq!(probe.next().await, None);
    let ended = started.elapsed();
    assert!(
        ended >= Duration::from_secs(2) && ended <= Duration::from_secs(2) + SOON,
        "{ended:?}"
    );
    drain.await.unwrap();
}

#[tokio::test]
async fn unknown_names_are_not_found_and_watched_as_service_unknown() {
    let (db, cache, app) = probes();
    let registry = registry_of(&db, &cache, &app).build().unwrap();
    let mut client = Client::connect(serve(&registry).await).await;
    for name in ["nope", "tag:nope", "tag:", "DB", " db", "core", "storage"] {
        let error = client.check(name).await.unwrap_err();
        assert_eq!(error.code(), Code::NotFound, "{name:?}: {error}");
    }
    // The protocol: SERVICE_UNKNOWN, and the call stays open.
    let mut watch = client.watch("nope").await;
    watch.expect(ServiceUnknown).await;
    tokio::time::pause();
    watch.expect_quiet(Duration::from_secs(120)).await;
}

#[tokio::test(start_paused = true)]
async fn watch_sends_the_status_at_once_then_exactly_one_message_per_transition() {
    let _ticker = ticker();
    let (db, cache, app) = probes();
    let registry = registry_of(&db, &cache, &app)
        .poll_interval(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut client = Client::connect(serve(&registry).await).await;
    let started = Instant::now();
    let mut overall = client.watch("").await;
    let mut cache_watch = client.watch("cache").await;
    let mut storage = client.watch("tag:storage").await;
    overall.expect(Serving).await;
    cache_watch.expect(Serving).await;
    storage.expect(Serving).await;
    assert!(started.elapsed() <= SOON, "the first message comes at once");

    // Polls that change nothing send nothing.
    overall.expect_quiet(Duration::from_secs(22)).await;

    // A critical failure: one message at the next poll, then quiet.
    db.set(Status::Unhealthy);
    let flipped = Instant::now();
    overall.expect(NotServing).await;
    assert!(flipped.elapsed() <= Duration::from_secs(5));
    storage.expect(NotServing).await;
    overall.expect_quiet(Duration::from_secs(22)).await;

    // Maintenance moves it at once, both ways, without a poll; the gate
    // comes first for every name.
    registry.set_maintenance(None);
    let at = Instant::now();
    overall.expect(Serving).await;
    storage.expect(Serving).await;
    assert!(at.elapsed() <= SOON);
    registry.clear_maintenance();
    let at = Instant::now();
    overall.expect(NotServing).await;
    storage.expect(NotServing).await;
    assert!(at.elapsed() <= SOON);

    // A window that ends by itself ends on time.
    let end = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30);
    registry.set_maintenance(Some(axum_watch::model::Timestamp::with_offset(
        end,
        jiff::tz::Offset::UTC,
    )));
    let at = Instant::now();
    overall.expect(Serving).await;
    storage.expect(Serving).await;
    overall.expect(NotServing).await;
    storage.expect(NotServing).await;
    let lasted = at.elapsed();
    assert!(
        lasted >= Duration::from_secs(29) && lasted <= Duration::from_secs(30) + SOON,
        "{lasted:?}"
    );
    // The healthy cache's own service never moved.
    cache_watch.expect_quiet(SOON).await;

    // Recovery: one message.
    db.set(Status::Healthy);
    overall.expect(Serving).await;
    storage.expect(Serving).await;
    overall.expect_quiet(Duration::from_secs(22)).await;
    storage.expect_quiet(SOON).await;

    // A non-critical probe's failure moves its own service alone.
    cache.set(Status::Unhealthy);
    cache_watch.expect(NotServing).await;
    cache_watch.expect_quiet(Duration::from_secs(22)).await;
    overall.expect_quiet(SOON).await;
    storage.expect_quiet(SOON).await;
}

#[tokio::test(start_paused = true)]
async fn watch_follows_the_grace_period_to_its_end() {
    let _ticker = ticker();
    let (db, cache, app) = probes();
    let registry = registry_of(&db, &cache, &app)
        .grace_period(Duration::from_secs(10))
        .poll_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut client = Client::connect(serve(&registry).await).await;
    let started = Instant::now();
    let mut overall = client.watch("").await;
    overall.expect(NotServing).await;
    overall.expect(Serving).await;
    let ended = started.elapsed();
    assert!(
        ended >= Duration::from_secs(10) && ended <= Duration::from_secs(10) + SOON,
        "{ended:?}"
    );
    overall.expect_quiet(Duration::from_secs(120)).await;
}

#[tokio::test(start_paused = true)]
async fn a_hundred_watches_cause_one_probe_run_per_interval() {
    let _ticker = ticker();
    let db = Switch::new("db", Status::Healthy);
    let registry = HealthRegistry::builder()
        .add(db.clone())
        .poll_interval(Duration::from_secs(5))
        .build()
        .unwrap();
    let addr = serve(&registry).await;
    // Ten connections, ten calls on each, opened together.
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(Client::connect(addr).await);
    }
    let started = Instant::now();
    let opens = clients.iter().flat_map(|client| {
        (0..10).map(|_| {
            let mut health = client.health.clone();
            async move {
                let request = HealthCheckRequest::default();
                let stream = health.watch(request).await.unwrap().into_inner();
                let mut watch = Watch { stream };
                watch.expect(Serving).await;
                watch
            }
        })
    });
    let mut watches = futures_util::future::join_all(opens).await;
    assert!(started.elapsed() <= SOON, "{:?}", started.elapsed());
    assert_eq!(registry.stream_subscribers(), 100);
    assert_eq!(db.calls(), 1, "the first messages share one run");

    db.set(Status::Unhealthy);
    for watch in &mut watches {
        watch.expect(NotServing).await;
    }
    assert_eq!(
        db.calls(),
        2,
        "one run at the interval, whatever the number of watchers"
    );
    // Four more intervals: four more runs, and no message (nothing changed).
    let mut quiet = Vec::new();
    for watch in &mut watches {
        quiet.push(watch.next_within(Duration::from_secs(21)));
    }
    for got in futures_util::future::join_all(quiet).await {
        assert!(got.is_none(), "{got:?}");
    }
    assert_eq!(db.calls(), 6);

    drop(watches);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(registry.stream_subscribers(), 0, "a closed call leaves");
}

#[tokio::test]
async fn list_returns_every_service_with_its_check_status() {
    let (db, cache, app) = probes();
    let registry = registry_of(&db, &cache, &app).build().unwrap();
    let mut client = Client::connect(serve(&registry).await).await;
    cache.set(Status::Unhealthy);
    app.set(Status::Unhealthy);
    let listed = client.list().await;
    let mut names: Vec<&str> = listed.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["", "app", "cache", "db", "tag:core", "tag:storage"]);
    for (service, status) in &listed {
        assert_eq!(client.status(service).await, *status, "{service:?}");
    }
    assert_eq!(listed["cache"], NotServing);
    assert_eq!(listed["tag:storage"], Serving);
    assert_eq!(listed[""], NotServing);
}

#[tokio::test]
async fn an_interceptor_guards_every_method() {
    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Healthy))
        .build()
        .unwrap();
    let service = registry.grpc_service().with_interceptor(|request: tonic::Request<()>| {
        match request.metadata().get("x-api-key") {
            Some(key) if key == "s3cret" => Ok(request),
            _ => Err(tonic::Status::unauthenticated("missing or wrong x-api-key")),
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming(listener)),
    );
    let mut client = Client::connect(addr).await;
    assert_eq!(client.check("").await.unwrap_err().code(), Code::Unauthenticated);
    let request = HealthCheckRequest::default();
    let error = client.health.watch(request).await.unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);

    let mut request = tonic::Request::new(HealthCheckRequest::default());
    request.metadata_mut().insert("x-api-key", "s3cret".parse().unwrap());
    let answer = client.health.check(request).await.unwrap().into_inner();
    assert_eq!(answer.status(), Serving);
}

#[tokio::test]
async fn an_unknown_method_is_unimplemented() {
    let registry = HealthRegistry::builder().build().unwrap();
    let channel = channel(serve(&registry).await).await;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Nope");
    let codec = tonic_prost::ProstCodec::<HealthListRequest, HealthListResponse>::default();
    let error = grpc
        .unary(tonic::Request::new(HealthListRequest {}), path, codec)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unimplemented);
}
