//! What passive probes cost: recording one call, a `RouteProbe` on a minimal
//! axum handler called in-process, and recording from two threads at once.
//!
//! `cargo bench -p axum-watch --bench passive`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::handler::Handler;
use axum::routing::get;
use axum_watch::passive::{PassiveProbe, RouteProbe};
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::Request;
use tower::util::MapResponseLayer;
use tower::{Service, ServiceExt};

fn work(x: u64) -> Result<u64, Infallible> {
    Ok(black_box(x).wrapping_mul(31))
}

fn record_one_call(c: &mut Criterion) {
    let probe = PassiveProbe::new("bench");
    let mut group = c.benchmark_group("record");
    group.bench_function("bare call", |b| b.iter(|| work(black_box(7))));
    // The two clock reads every recorded call needs (start and end): the
    // TSC-based clock the probes use, and std's for comparison.
    group.bench_function("two clock reads (quanta)", |b| {
        b.iter(|| {
            let start = quanta::Instant::now();
            black_box(quanta::Instant::now() - start)
        });
    });
    group.bench_function("two clock reads (std)", |b| {
        b.iter(|| {
            let start = Instant::now();
            black_box(Instant::now() - start)
        });
    });
    group.bench_function("watch_blocking", |b| {
        b.iter(|| probe.watch_blocking(|| work(black_box(7))));
    });
    group.bench_function("bare async call", |b| {
        b.iter(|| async { work(black_box(7)) }.now_or_never().unwrap());
    });
    group.bench_function("watch (async)", |b| {
        b.iter(|| probe.watch(async { work(black_box(7)) }).now_or_never().unwrap());
    });
    // The error path: an error type's text is written each time, stored only
    // when it changes.
    let failing = PassiveProbe::new("failing");
    group.bench_function("watch_blocking, the same error each call", |b| {
        b.iter(|| {
            failing
                .watch_blocking(|| Err::<u64, _>(std::io::Error::other(black_box("connection refused"))))
                .unwrap_err()
        });
    });
    group.finish();
}

fn route_layer(c: &mut Criterion) {
    let probe = RouteProbe::new("bench");
    let bare: Router = Router::new().route("/", get(|| async { "ok" }));
    let watched: Router = Router::new().route("/", get(|| async { "ok" }).layer(probe.clone()));
    // Layered on the handler itself, before axum boxes the route: one box less.
    let on_handler: Router = Router::new().route("/", get((|| async { "ok" }).layer(probe)));
    // axum boxes a layered route; a pass-through layer shows that share.
    let passthrough: Router = Router::new().route(
        "/",
        get(|| async { "ok" }).layer(MapResponseLayer::new(std::convert::identity)),
    );
    // The error path of a route: every response a 503.
    let failing = RouteProbe::new("failing");
    let bare_503: Router = Router::new().route("/", get(|| async { http::StatusCode::SERVICE_UNAVAILABLE }));
    let watched_503: Router = Router::new().route(
        "/",
        get((|| async { http::StatusCode::SERVICE_UNAVAILABLE }).layer(failing)),
    );
    let mut group = c.benchmark_group("route");
    for (name, router) in [
        ("bare handler", bare),
        ("with a pass-through layer", passthrough),
        ("with RouteProbe", watched),
        ("with RouteProbe on the handler", on_handler),
        ("bare handler answering 503", bare_503),
        ("with RouteProbe on the handler answering 503", watched_503),
    ] {
        let mut service = router.into_service::<Body>();
        group.bench_function(name, |b| {
            b.iter(|| {
                let request = Request::get("/").body(Body::empty()).unwrap();
                let ready = service.ready().now_or_never().unwrap().unwrap();
                ready.call(request).now_or_never().unwrap().unwrap()
            });
        });
    }
    group.finish();
}

/// Nanoseconds per recorded call on each of `threads` threads recording at once.
fn contended(probe: &PassiveProbe, threads: usize, iters: u64) -> Duration {
    let barrier = Barrier::new(threads);
    let elapsed: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        let _ = probe.watch_blocking(|| work(i));
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    elapsed.into_iter().max().unwrap_or_default()
}

fn threads(c: &mut Criterion) {
    let probe = PassiveProbe::new("bench");
    let mut group = c.benchmark_group("threads");
    group.bench_function("1 thread recording", |b| {
        b.iter_custom(|iters| contended(&probe, 1, iters));
    });
    group.bench_function("2 threads recording at once", |b| {
        b.iter_custom(|iters| contended(&probe, 2, iters));
    });
    group.finish();
}

criterion_group! {
    name = passive;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = record_one_call, route_layer, threads
}
criterion_main!(passive);
