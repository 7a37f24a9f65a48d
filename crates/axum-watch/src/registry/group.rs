//! [`ProbeGroup`]: probe registrations collected where they are defined and
//! included in the registry in one call.

use std::collections::HashSet;

use crate::probe::ProbeHandle;

/// One registered probe with its criticality and the tags its groups added.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    pub(crate) probe: ProbeHandle,
    pub(crate) critical: bool,
    pub(crate) extra_tags: Vec<String>,
}

/// A set of probe registrations, defined next to the code that owns the
/// dependencies and included in a registry (or in another group) at startup.
///
/// Adding the same instance twice is a no-op; groups compose with
/// [`include`](Self::include) and keep each probe's criticality. Tags given
/// to a group are added to every probe in it.
///
/// ```
/// use axum_watch::{probe, HealthRegistry, Outcome, ProbeGroup};
///
/// let db = ProbeGroup::new()
///     .with_tags(["storage"])
///     .add(probe::from_fn("postgres", || async { Ok(Outcome::healthy()) }))
///     .add_non_critical(probe::from_fn("replica", || async { Ok(Outcome::healthy()) }));
/// let all = ProbeGroup::new().include(db);
///
/// let registry = HealthRegistry::builder().include(all).build().unwrap();
/// assert_eq!(registry.probe_names(), ["postgres", "replica"]);
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ProbeGroup {
    pub(crate) registrations: Vec<Registration>,
    /// The instances registered, so adding one is O(1) however many there are.
    instances: HashSet<usize>,
    tags: Vec<String>,
}

impl ProbeGroup {
    /// An empty group.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tags added to every probe of this group, including ones added later.
    pub fn with_tags<I, T>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Adds a critical probe.
    #[allow(clippy::should_implement_trait)] // the registration verb users expect
    pub fn add(mut self, probe: impl Into<ProbeHandle>) -> Self {
        self.push(probe.into(), true, Vec::new());
        self
    }

    /// Adds a probe that is reported but never changes the overall status.
    pub fn add_non_critical(mut self, probe: impl Into<ProbeHandle>) -> Self {
        self.push(probe.into(), false, Vec::new());
        self
    }

    /// Adds several critical probes.
    pub fn add_probes<I>(mut self, probes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<ProbeHandle>,
    {
        for probe in probes {
            self.push(probe.into(), true, Vec::new());
        }
        self
    }

    /// Adds several non-critical probes.
    pub fn add_probes_non_critical<I>(mut self, probes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<ProbeHandle>,
    {
        for probe in probes {
            self.push(probe.into(), false, Vec::new());
        }
        self
    }

    /// Adds every probe of `other`, keeping its criticality and tags.
    pub fn include(mut self, other: ProbeGroup) -> Self {
        for r in other.into_registrations() {
            self.push(r.probe, r.critical, r.extra_tags);
        }
        self
    }

    /// The number of distinct probes in the group.
    #[must_use]
    pub fn len(&self) -> usize {
        self.registrations.len()
    }

    /// `true` when the group has no probe.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.registrations.is_empty()
    }

    pub(crate) fn into_registrations(self) -> Vec<Registration> {
        let tags = self.tags;
        self.registrations
            .into_iter()
            .map(|mut r| {
                for t in &tags {
                    if !r.extra_tags.contains(t) {
                        r.extra_tags.push(t.clone());
                    }
                }
                r
            })
            .collect()
    }

    fn push(&mut self, probe: ProbeHandle, critical: bool, extra_tags: Vec<String>) {
        // The group holds every handle it registered, so an address stays
        // unique to its instance for as long as the set has it.
        if !self.instances.insert(probe.instance()) {
            return;
        }
        self.registrations.push(Registration {
            probe,
            critical,
            extra_tags,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::probe::{self, Outcome};

    fn p(name: &'static str) -> impl crate::Probe {
        probe::from_fn(name, || async { Ok(Outcome::healthy()) })
    }

    #[test]
    fn same_instance_is_added_once_even_through_nested_groups() {
        let shared = ProbeHandle::from(Arc::new(p("db")));
        let a = ProbeGroup::new().add(shared.clone());
        let b = ProbeGroup::new().add_non_critical(shared.clone()).add(p("cache"));
        let all = ProbeGroup::new().include(a).include(b).add(shared);
        let names: Vec<_> = all
            .registrations
            .iter()
            .map(|r| (r.probe.name().to_owned(), r.critical))
            .collect();
        assert_eq!(names, [("db".to_owned(), true), ("cache".to_owned(), true)]);
    }

    #[test]
    fn group_tags_reach_every_probe() {
        let inner = ProbeGroup::new().with_tags(["db"]).add(p("pg"));
        let outer = ProbeGroup::new()
            .with_tags(["infra", "db"])
            .include(inner)
            .add_probes([p("a"), p("b")]);
        let regs = outer.into_registrations();
        assert_eq!(regs[0].extra_tags, ["db", "infra"]);
        assert_eq!(regs[1].extra_tags, ["infra", "db"]);
        assert_eq!(regs.len(), 3);
    }
}
