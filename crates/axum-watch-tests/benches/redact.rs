//! What redaction costs on every result: clean error text (the common case,
//! returned borrowed), text with a credential in it, a kilobyte of log-like
//! text, and a whole run of a probe with ten details (the engine redacts
//! its error and every detail).
//!
//! `cargo bench -p axum-watch-tests --bench redact`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use axum_watch::{HealthRegistry, Outcome, probe, redact};
use criterion::{Criterion, criterion_group, criterion_main};

fn text(c: &mut Criterion) {
    let mut group = c.benchmark_group("redact");
    let clean = "connect to db.internal:5432 failed: Connection refused (os error 111)";
    let secret = "connect postgres://app:s3cret@db.internal:5432/orders failed; PGPASSWORD=hunter2";
    let long = "GET /v1/items?page=2 answered 503 Service Unavailable: upstream timed out, retrying; ".repeat(12);
    group.bench_function("clean error", |b| b.iter(|| redact(black_box(clean))));
    group.bench_function("error with a URL and a key", |b| b.iter(|| redact(black_box(secret))));
    group.bench_function("1 KB of clean text", |b| b.iter(|| redact(black_box(&long))));
    group.finish();
}

fn run(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let registry = HealthRegistry::builder()
        .add(probe::from_fn("db", || async {
            Ok(Outcome::degraded()
                .error_text("slow: 950 ms to connect to db.internal:5432")
                .detail("pool_size", 10)
                .detail("idle_connections", 3)
                .detail("active_connections", 7)
                .detail("server", "PostgreSQL 17.2")
                .detail("host", "db.internal")
                .detail("port", 5432)
                .detail("connect_ms", 950.2)
                .detail("version", "17.2")
                .detail("tls", true)
                .detail("status", "accepting connections"))
        }))
        .cache_age(std::time::Duration::ZERO)
        .circuit_breaker(false)
        .build()
        .unwrap();
    c.bench_function("run one probe with ten details", |b| {
        b.iter(|| runtime.block_on(registry.run_all()));
    });
}

criterion_group!(benches, text, run);
criterion_main!(benches);
