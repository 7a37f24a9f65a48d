//! The integration tests and benchmarks of axum-watch, kept in their own
//! package so that their heavy dev-dependencies (database and broker
//! clients, TLS, criterion) are not built with axum-watch's examples.
//!
//! Nothing here is meant to be used: the tests live in `tests/`, the
//! benchmark in `benches/`. Each cargo feature forwards the axum-watch
//! feature of the same name.
