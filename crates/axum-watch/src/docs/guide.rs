//! The guide: each part of axum-watch in depth, with examples. The pages are
//! the README's sections (`src/docs/*.md`, generated from it by
//! `crates/axum-watch-tests/regenerate-docs.py`); their examples run as
//! doctests.
//!
//! The modules are empty: they exist for their pages.

macro_rules! page {
    ($name:ident, $file:literal) => {
        pub mod $name {
            #![doc = include_str!($file)]
            // Inside the module, so the pages' links name the crate's items
            // as the crate root does.
            #[allow(unused_imports)]
            use crate::*;
        }
    };
}

page!(endpoints, "endpoints.md");
page!(probes, "probes.md");
page!(streams, "streams.md");
page!(resilience, "resilience.md");
page!(grpc, "grpc.md");
page!(storage, "storage.md");
page!(metrics, "metrics.md");
page!(maintenance, "maintenance.md");
page!(auth, "auth.md");
page!(alerting, "alerting.md");
page!(passive, "passive.md");
page!(builtin_probes, "builtin_probes.md");
page!(configuration, "configuration.md");
