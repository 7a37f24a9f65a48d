//! The demo service and the benchmark programs of axum-watch, kept in their
//! own package so that `cargo run --example quickstart` builds only what the
//! demo needs, not the dev-dependencies of axum-watch's unit tests and
//! doctests.
//!
//! Nothing here is meant to be used: the programs live in `examples/`
//! (`quickstart`, `dashboard_fixture`, `loadbench`, `sse_load`,
//! `storage_bench`, `grpc_health`, `grpc_bench`). The `redis-storage`,
//! `postgres-storage` and `grpc` features forward the axum-watch features of
//! the same name.
