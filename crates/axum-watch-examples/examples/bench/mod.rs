//! What the benchmark examples share: settings from the environment and the
//! synthetic probes they register. Included with `mod bench;`.
#![allow(dead_code)]

use std::time::Duration;

use axum_watch::{HealthRegistryBuilder, Outcome, ProbeExt, probe};

/// `name`'s value parsed, or `default` when unset or unparsable.
pub(crate) fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Ten probes as a typical service has them: `(name, critical)`, 6
/// critical and 4 not.
pub(crate) const PROBES: [(&str, bool); 10] = [
    ("postgres", true),
    ("redis", false),
    ("kafka", true),
    ("s3", false),
    ("smtp", false),
    ("auth-api", true),
    ("search", true),
    ("disk", true),
    ("clock", false),
    ("config", true),
];

/// Adds [`PROBES`], each healthy at once with a detail or two, tagged
/// `core` (critical) or `extra`.
pub(crate) fn add_typical(mut builder: HealthRegistryBuilder) -> HealthRegistryBuilder {
    for (i, (name, critical)) in PROBES.into_iter().enumerate() {
        let check = probe::from_fn(name, move || async move {
            Ok(Outcome::healthy()
                .detail("pool_size", 8 + i)
                .detail("endpoint", format!("{name}.internal:{}", 5000 + i)))
        })
        .with_tags([if critical { "core" } else { "extra" }]);
        builder = if critical {
            builder.add(check)
        } else {
            builder.add_non_critical(check)
        };
    }
    builder
}

/// Adds `count` probes `probe-00000`…, each sleeping `sleep` (none when
/// zero) and then healthy with two details; every third one is not
/// critical and tagged `extra`, the rest `core`.
pub(crate) fn add_numbered(mut builder: HealthRegistryBuilder, count: usize, sleep: Duration) -> HealthRegistryBuilder {
    for i in 0..count {
        let check = probe::from_fn(format!("probe-{i:05}"), move || async move {
            if !sleep.is_zero() {
                tokio::time::sleep(sleep).await;
            }
            Ok(Outcome::healthy()
                .detail("pool_size", 8 + i % 7)
                .detail("shard", i % 16))
        })
        .with_tags([if i % 3 == 0 { "extra" } else { "core" }]);
        builder = if i % 3 == 0 {
            builder.add_non_critical(check)
        } else {
            builder.add(check)
        };
    }
    builder
}
