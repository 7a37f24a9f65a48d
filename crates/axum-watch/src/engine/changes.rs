//! Probes added and removed while the engine runs: the list is swapped
//! whole under one lock, so a run that started with the old list finishes
//! with it, and the next snapshot is merged against the new one.
//!
//! A probe added at runtime gets its first check at once (a run of the
//! probes that have no result yet, which readers arriving meanwhile join);
//! a removed probe leaves the latest snapshot at once, and whatever a run
//! still brings in for it is dropped.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, MutexGuard, PoisonError};

use super::Engine;
use super::Entry;

/// One version of the list of probes.
#[derive(Debug)]
pub(crate) struct ProbeList {
    /// Counts changes: a snapshot merged against this version carries it.
    pub(crate) generation: u64,
    pub(crate) entries: Arc<[Arc<Entry>]>,
}

impl ProbeList {
    pub(super) fn new(entries: Vec<Arc<Entry>>) -> Self {
        Self {
            generation: 1,
            entries: entries.into(),
        }
    }
}

/// What changes of the list check, kept beside it under the lock.
#[derive(Debug)]
pub(crate) struct Changes {
    /// Every registered name: a duplicate is refused in O(1).
    names: HashSet<String>,
    /// The names of the probes added at runtime and still registered: the
    /// cap counts these.
    runtime: HashSet<String>,
}

impl Changes {
    pub(super) fn new(entries: &[Arc<Entry>]) -> Self {
        Self {
            names: entries.iter().map(|e| e.name.clone()).collect(),
            runtime: HashSet::new(),
        }
    }
}

/// Why a probe was not added at runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Another registered probe has its name.
    Duplicate,
    /// As many probes as the cap allows were added at runtime already.
    Limit,
    /// Its name or an option is invalid.
    Invalid,
}

impl Refusal {
    /// Every reason, in the order `/metrics` lists them.
    pub(crate) const ALL: [Self; 3] = [Self::Duplicate, Self::Limit, Self::Invalid];

    /// The reason as `/metrics` labels it.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::Limit => "limit",
            Self::Invalid => "invalid",
        }
    }
}

/// Refusals counted by reason, and whether the runtime API was used at all
/// (`/metrics` shows the family from then on).
#[derive(Debug, Default)]
pub(crate) struct Refused {
    counts: [AtomicU64; 3],
    used: AtomicBool,
}

impl Engine {
    fn changes(&self) -> MutexGuard<'_, Changes> {
        // Each critical section checks, then swaps: a panic cannot leave
        // the sets and the list apart.
        self.changes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The version of the list of probes now.
    pub(crate) fn generation(&self) -> u64 {
        self.probes.load().generation
    }

    /// Registers `entry` after every other probe, unless its name is taken
    /// or the cap on probes added at runtime is reached (counted and
    /// logged); then checks it once, publishing a snapshot with it.
    pub(crate) fn insert(self: &Arc<Self>, entry: Entry) -> Result<(), Refusal> {
        self.refused.used.store(true, Ordering::Relaxed);
        let added = {
            let mut changes = self.changes();
            if changes.names.contains(&entry.name) {
                drop(changes);
                self.refuse(&entry.name, Refusal::Duplicate);
                return Err(Refusal::Duplicate);
            }
            if changes.runtime.len() >= self.config.max_runtime_probes {
                drop(changes);
                self.refuse(&entry.name, Refusal::Limit);
                return Err(Refusal::Limit);
            }
            let current = self.probes.load_full();
            entry.set_index(current.entries.len());
            let entry = Arc::new(entry);
            let mut entries = Vec::with_capacity(current.entries.len() + 1);
            entries.extend(current.entries.iter().cloned());
            entries.push(Arc::clone(&entry));
            changes.names.insert(entry.name.clone());
            changes.runtime.insert(entry.name.clone());
            self.probes.store(Arc::new(ProbeList {
                generation: current.generation + 1,
                entries: entries.into(),
            }));
            entry
        };
        tracing::info!(probe = %added.name, critical = added.critical, "probe added");
        self.first_check(&added);
        Ok(())
    }

    /// Removes the probe called `name`; `false` when there is none. The
    /// latest snapshot is published again without it at once.
    pub(crate) fn remove(self: &Arc<Self>, name: &str) -> bool {
        self.refused.used.store(true, Ordering::Relaxed);
        {
            let mut changes = self.changes();
            if !changes.names.remove(name) {
                return false;
            }
            changes.runtime.remove(name);
            let current = self.probes.load_full();
            let mut entries = Vec::with_capacity(current.entries.len().saturating_sub(1));
            for entry in current.entries.iter() {
                if entry.name == name {
                    entry.retire();
                } else {
                    entry.set_index(entries.len());
                    entries.push(Arc::clone(entry));
                }
            }
            self.probes.store(Arc::new(ProbeList {
                generation: current.generation + 1,
                entries: entries.into(),
            }));
        }
        tracing::info!(probe = %name, "probe removed");
        self.republish();
        self.probes_changed();
        true
    }

    /// Counts and logs a probe refused at runtime.
    pub(crate) fn refuse(&self, name: &str, reason: Refusal) {
        self.refused.used.store(true, Ordering::Relaxed);
        self.refused.counts[reason as usize].fetch_add(1, Ordering::Relaxed);
        tracing::warn!(probe = %name, reason = reason.as_str(), "probe refused");
    }

    /// Probes refused at runtime by reason, once the runtime API was used
    /// (else `None`: `/metrics` leaves the family out).
    pub(crate) fn probes_refused(&self) -> Option<[(Refusal, u64); 3]> {
        self.refused
            .used
            .load(Ordering::Relaxed)
            .then(|| Refusal::ALL.map(|reason| (reason, self.refused.counts[reason as usize].load(Ordering::Relaxed))))
    }

    /// How many probes added at runtime are registered.
    pub(crate) fn runtime_probes(&self) -> usize {
        self.changes().runtime.len()
    }

    /// Checks the probes that have no result yet, in the background, so
    /// that streams and exporters get a snapshot with them; readers that
    /// arrive meanwhile join that run. Outside a runtime, the next reader
    /// runs them.
    fn first_check(self: &Arc<Self>, added: &Entry) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        if self.is_polling() && added.next_due(self.poll_interval()).is_some() {
            // The poll loop, woken, checks it at once (it is due) and
            // publishes the result: no second check.
            self.probes_changed();
            return;
        }
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            engine.run_missing().await;
            engine.probes_changed();
        });
    }
}
