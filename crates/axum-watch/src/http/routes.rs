//! Every health route in one table: the router serves it and the OpenAPI
//! document describes it (feature `openapi`), so neither can list a route,
//! a method or an open endpoint the other lacks.
//!
//! Each [`Op`] is one method on one path. The router turns an `Op` into its
//! handler and the document into its description, both with an exhaustive
//! `match`: a new operation does not compile until it has both.

use super::HttpConfig;
use super::auth::OpenEndpoint;
use super::dashboard::Dashboard;
use Verb::{Delete, Get, Post};

/// One operation of the health endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Live,
    Ready,
    ReadyProbe,
    ReadyStream,
    Status,
    StatusProbe,
    StatusStream,
    Startup,
    Probes,
    History,
    Alerts,
    Deliveries,
    Metrics,
    MaintenanceStatus,
    MaintenanceStart,
    MaintenanceEnd,
    Dashboard,
}

/// The method an operation answers; `Get` answers `HEAD` too, as axum's
/// `get` does (the body left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Verb {
    Get,
    Post,
    Delete,
}

/// What the path with a trailing slash does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slash {
    /// It is the same endpoint: easy to write in a probe's configuration.
    Same,
    /// It answers 308 to the path without it: a page whose links are
    /// relative to its own address.
    Redirect,
}

/// When a route is part of the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    Always,
    /// Unless the dashboard is disabled.
    Dashboard,
}

/// One path under the prefix and the operations on it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    /// The path after `<prefix>/`, in axum's syntax (`ready/{name}`), which
    /// is also OpenAPI's.
    pub(crate) path: &'static str,
    /// The endpoint whose openness the route shares, when it can be left
    /// open to callers without credentials.
    pub(crate) open: Option<OpenEndpoint>,
    pub(crate) ops: &'static [(Verb, Op)],
    pub(crate) slash: Slash,
    pub(crate) when: When,
}

impl Route {
    const fn new(path: &'static str, ops: &'static [(Verb, Op)]) -> Self {
        Self {
            path,
            open: None,
            ops,
            slash: Slash::Same,
            when: When::Always,
        }
    }

    const fn open(mut self, endpoint: OpenEndpoint) -> Self {
        self.open = Some(endpoint);
        self
    }

    const fn only(mut self, when: When) -> Self {
        self.when = when;
        self
    }

    const fn slash(mut self, slash: Slash) -> Self {
        self.slash = slash;
        self
    }

    /// Whether the router serves this route under `config`.
    pub(crate) fn served(&self, config: &HttpConfig) -> bool {
        match self.when {
            When::Always => true,
            When::Dashboard => !matches!(config.dashboard, Dashboard::Disabled),
        }
    }
}

/// Every health route, in the order the document lists them.
pub(crate) const ROUTES: &[Route] = &[
    Route::new("live", &[(Get, Op::Live)]).open(OpenEndpoint::Live),
    Route::new("ready", &[(Get, Op::Ready)]).open(OpenEndpoint::Ready),
    // A probe's own path is open when its endpoint is.
    Route::new("ready/{name}", &[(Get, Op::ReadyProbe)]).open(OpenEndpoint::Ready),
    Route::new("ready/stream", &[(Get, Op::ReadyStream)]),
    Route::new("status", &[(Get, Op::Status)]).open(OpenEndpoint::Status),
    Route::new("status/{name}", &[(Get, Op::StatusProbe)]).open(OpenEndpoint::Status),
    Route::new("status/stream", &[(Get, Op::StatusStream)]),
    Route::new("startup", &[(Get, Op::Startup)]).open(OpenEndpoint::Startup),
    Route::new("probes", &[(Get, Op::Probes)]),
    Route::new("history", &[(Get, Op::History)]),
    Route::new("alerts", &[(Get, Op::Alerts)]),
    Route::new("alerts/deliveries", &[(Get, Op::Deliveries)]),
    Route::new("metrics", &[(Get, Op::Metrics)]),
    Route::new(
        "maintenance",
        &[
            (Get, Op::MaintenanceStatus),
            (Post, Op::MaintenanceStart),
            (Delete, Op::MaintenanceEnd),
        ],
    ),
    Route::new("dashboard", &[(Get, Op::Dashboard)])
        .only(When::Dashboard)
        .slash(Slash::Redirect),
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{Op, ROUTES, Verb};

    #[test]
    fn every_operation_is_on_exactly_one_route_and_paths_are_unique() {
        let mut ops = HashSet::new();
        let mut paths = HashSet::new();
        for route in ROUTES {
            assert!(paths.insert(route.path), "{} twice", route.path);
            assert!(
                !route.path.starts_with('/') && !route.path.ends_with('/'),
                "{}",
                route.path
            );
            let mut verbs = HashSet::new();
            for (verb, op) in route.ops {
                assert!(ops.insert(*op), "{op:?} twice");
                assert!(verbs.insert(*verb), "{} has two {verb:?}", route.path);
            }
        }
        assert_eq!(ops.len(), 17, "an operation is on no route");
        let maintenance = ROUTES.iter().find(|r| r.path == "maintenance").map(|r| r.ops);
        assert_eq!(
            maintenance,
            Some(
                &[
                    (Verb::Get, Op::MaintenanceStatus),
                    (Verb::Post, Op::MaintenanceStart),
                    (Verb::Delete, Op::MaintenanceEnd)
                ][..]
            )
        );
    }
}
