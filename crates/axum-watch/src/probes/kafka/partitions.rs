//! Partition health from a `Metadata` response: which partitions are
//! offline (no leader) or under-replicated (fewer in-sync replicas than
//! replicas), and what status the user's rules make of that.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::wire::{Metadata, PartitionMetadata};
use crate::Status;

/// At most this many partitions are listed per kind in the details; the
/// counts are always exact.
const LISTED: usize = 100;

/// What a [`KafkaProbe`](super::KafkaProbe) makes of offline and
/// under-replicated partitions, for every topic or for named ones.
///
/// A partition is **offline** when it has no leader (leader `-1`, or the
/// broker answers `LEADER_NOT_AVAILABLE`): nobody can read or write it. It
/// is **under-replicated** when fewer replicas are in sync than it has:
/// it still serves, with less redundancy than configured. A **named**
/// topic that the cluster does not list (missing, being deleted, or not
/// visible to the probe's user) counts as offline.
///
/// The probe applies every rule and the worst status wins. By default it
/// has one, [`all_topics`](Self::all_topics): an offline partition anywhere
/// is degraded, under-replication is only reported.
///
/// ```
/// use axum_watch::Status;
/// use axum_watch::probes::{KafkaProbe, PartitionRule};
///
/// // Unhealthy when a partition of `orders` or `payments` is offline (or
/// // the topic is gone), degraded when one is under-replicated; elsewhere
/// // the default rule still applies.
/// let probe = KafkaProbe::new("b1:9092,b2:9092")
///     .unwrap()
///     .partition_rule(PartitionRule::topics(["orders", "payments"]));
///
/// // Only the service's own topics count, and under-replication is fine.
/// let relaxed = KafkaProbe::new("b1:9092").unwrap().partition_rules([
///     PartitionRule::topics(["orders"]).under_replicated(Status::Healthy),
/// ]);
/// # drop((probe, relaxed));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct PartitionRule {
    /// `None`: every topic, internal ones included.
    topics: Option<Vec<String>>,
    offline: Status,
    under_replicated: Status,
}

impl PartitionRule {
    /// Every topic, internal ones (`__consumer_offsets`) included: offline
    /// partitions are [`Degraded`](Status::Degraded), under-replicated ones
    /// [`Healthy`](Status::Healthy) (listed in the details only).
    pub fn all_topics() -> Self {
        Self {
            topics: None,
            offline: Status::Degraded,
            under_replicated: Status::Healthy,
        }
    }

    /// The named topics: an offline partition, or a topic the cluster does
    /// not list, is [`Unhealthy`](Status::Unhealthy); an under-replicated
    /// partition is [`Degraded`](Status::Degraded).
    pub fn topics<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut topics: Vec<String> = Vec::new();
        for name in names {
            let name = name.into();
            if !topics.contains(&name) {
                topics.push(name);
            }
        }
        Self {
            topics: Some(topics),
            offline: Status::Unhealthy,
            under_replicated: Status::Degraded,
        }
    }

    /// The status an offline partition (or a missing named topic) gives.
    pub fn offline(mut self, status: Status) -> Self {
        self.offline = status;
        self
    }

    /// The status an under-replicated partition gives.
    pub fn under_replicated(mut self, status: Status) -> Self {
        self.under_replicated = status;
        self
    }

    fn covers(&self, topic: &str) -> bool {
        self.topics
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == topic))
    }
}

impl Default for PartitionRule {
    /// [`PartitionRule::all_topics`].
    fn default() -> Self {
        Self::all_topics()
    }
}

/// A partition with no leader, whatever the broker's way of saying it.
fn is_offline(p: &PartitionMetadata) -> bool {
    const LEADER_NOT_AVAILABLE: i16 = 5;
    p.leader < 0 || p.error_code == LEADER_NOT_AVAILABLE
}

fn is_under_replicated(p: &PartitionMetadata) -> bool {
    !is_offline(p) && p.isr.len() < p.replicas.len()
}

/// The partition health of a cluster: the details it adds, and the status
/// and reason the rules give.
#[derive(Debug, PartialEq)]
pub(super) struct Verdict {
    pub(super) status: Status,
    pub(super) reason: Option<String>,
    pub(super) details: Vec<(&'static str, Value)>,
}

pub(super) fn judge(metadata: &Metadata, rules: &[PartitionRule]) -> Verdict {
    let mut partition_count = 0;
    let mut offline: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    let mut under: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for topic in metadata
        .topics
        .iter()
        .filter(|t| t.error_code == 0 && !t.name.is_empty())
    {
        partition_count += topic.partitions.len();
        for p in &topic.partitions {
            if is_offline(p) {
                offline.entry(&topic.name).or_default().push(p.index);
            } else if is_under_replicated(p) {
                under.entry(&topic.name).or_default().push(p.index);
            }
        }
    }
    let listed = |topic: &str| {
        metadata
            .topics
            .iter()
            .any(|t| t.name == topic && t.error_code == 0 && !t.partitions.is_empty())
    };
    let mut missing: Vec<&str> = rules
        .iter()
        .filter_map(|r| r.topics.as_deref())
        .flatten()
        .map(String::as_str)
        .filter(|t| !listed(t))
        .collect();
    missing.sort_unstable();
    missing.dedup();

    let mut status = Status::Healthy;
    let mut reasons = Vec::new();
    let mut raise = |to: Status, why: String| {
        if to > Status::Healthy {
            status = status.max(to);
            reasons.push((to, why));
        }
    };
    for rule in rules {
        let count = |map: &BTreeMap<&str, Vec<i32>>| -> usize {
            map.iter().filter(|(t, _)| rule.covers(t)).map(|(_, ps)| ps.len()).sum()
        };
        let (o, u) = (count(&offline), count(&under));
        let gone: Vec<&str> = missing
            .iter()
            .copied()
            .filter(|t| rule.covers(t) && rule.topics.is_some())
            .collect();
        let scope = match &rule.topics {
            None => String::new(),
            Some(names) => format!(" of {}", names.join(", ")),
        };
        if !gone.is_empty() {
            raise(rule.offline, format!("topic not found: {}", gone.join(", ")));
        }
        if o > 0 {
            raise(rule.offline, format!("{o} offline partition{}{scope}", plural(o)));
        }
        if u > 0 {
            raise(
                rule.under_replicated,
                format!("{u} under-replicated partition{}{scope}", plural(u)),
            );
        }
    }
    // The reasons of the worst status, each once, in rule order.
    let mut reason: Vec<String> = Vec::new();
    for (s, why) in reasons {
        if s == status && !reason.contains(&why) {
            reason.push(why);
        }
    }

    let mut details = vec![
        ("partition_count", json!(partition_count)),
        (
            "offline_partition_count",
            json!(offline.values().map(Vec::len).sum::<usize>()),
        ),
        ("offline_partitions", listing(&offline)),
        (
            "under_replicated_partition_count",
            json!(under.values().map(Vec::len).sum::<usize>()),
        ),
        ("under_replicated_partitions", listing(&under)),
    ];
    if !missing.is_empty() {
        details.push(("missing_topics", json!(missing)));
    }
    Verdict {
        status,
        reason: (!reason.is_empty()).then(|| reason.join("; ")),
        details,
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `{"orders": [0, 3]}`, partitions sorted, at most [`LISTED`] in all.
fn listing(map: &BTreeMap<&str, Vec<i32>>) -> Value {
    let mut left = LISTED;
    let mut out = serde_json::Map::new();
    for (topic, partitions) in map {
        if left == 0 {
            break;
        }
        let mut partitions = partitions.clone();
        partitions.sort_unstable();
        partitions.truncate(left);
        left -= partitions.len();
        out.insert((*topic).to_owned(), json!(partitions));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::wire::Metadata;
    use super::super::wire::tests::{partition, topic};
    use super::{PartitionRule, judge};
    use crate::Status;

    fn cluster() -> Metadata {
        Metadata {
            broker_count: 3,
            controller_id: 1,
            cluster_id: None,
            topics: vec![
                topic(
                    "orders",
                    vec![
                        partition(0, 1, &[1, 2, 3], &[1, 2, 3]),
                        partition(1, -1, &[2, 3], &[]),
                        partition(2, 3, &[1, 2, 3], &[3]),
                    ],
                ),
                topic("audit", vec![partition(0, 2, &[2, 3], &[2])]),
                topic("__consumer_offsets", vec![partition(0, 1, &[1], &[1])]),
            ],
        }
    }

    fn detail(verdict: &super::Verdict, key: &str) -> serde_json::Value {
        verdict.details.iter().find(|(k, _)| *k == key).unwrap().1.clone()
    }

    #[test]
    fn the_default_rule_degrades_on_offline_partitions_only() {
        let verdict = judge(&cluster(), &[PartitionRule::all_topics()]);
        assert_eq!(verdict.status, Status::Degraded);
        assert_eq!(verdict.reason.as_deref(), Some("1 offline partition"));
        assert_eq!(detail(&verdict, "partition_count"), 5);
        assert_eq!(detail(&verdict, "offline_partition_count"), 1);
        assert_eq!(detail(&verdict, "offline_partitions"), json!({"orders": [1]}));
        assert_eq!(detail(&verdict, "under_replicated_partition_count"), 2);
        assert_eq!(
            detail(&verdict, "under_replicated_partitions"),
            json!({"audit": [0], "orders": [2]})
        );
        assert!(verdict.details.iter().all(|(k, _)| *k != "missing_topics"));
    }

    #[test]
    fn a_named_topic_offline_is_unhealthy_and_under_replication_degraded() {
        let rules = [PartitionRule::all_topics(), PartitionRule::topics(["orders"])];
        let verdict = judge(&cluster(), &rules);
        assert_eq!(verdict.status, Status::Unhealthy);
        assert_eq!(verdict.reason.as_deref(), Some("1 offline partition of orders"));

        let audit = judge(&cluster(), &[PartitionRule::topics(["audit"])]);
        assert_eq!(audit.status, Status::Degraded);
        assert_eq!(audit.reason.as_deref(), Some("1 under-replicated partition of audit"));

        let relaxed = judge(
            &cluster(),
            &[PartitionRule::topics(["audit"]).under_replicated(Status::Healthy)],
        );
        assert_eq!((relaxed.status, relaxed.reason), (Status::Healthy, None));
    }

    #[test]
    fn a_missing_named_topic_counts_as_offline() {
        let verdict = judge(&cluster(), &[PartitionRule::topics(["payments", "orders", "payments"])]);
        assert_eq!(verdict.status, Status::Unhealthy);
        assert_eq!(
            verdict.reason.as_deref(),
            Some("topic not found: payments; 1 offline partition of payments, orders")
        );
        assert_eq!(detail(&verdict, "missing_topics"), json!(["payments"]));
        let lenient = judge(
            &cluster(),
            &[PartitionRule::topics(["payments"]).offline(Status::Degraded)],
        );
        assert_eq!(lenient.status, Status::Degraded);
        assert_eq!(lenient.reason.as_deref(), Some("topic not found: payments"));
    }

    #[test]
    fn a_healthy_cluster_and_no_rules() {
        let mut healthy = cluster();
        healthy.topics.truncate(1);
        healthy.topics[0].partitions.truncate(1);
        let verdict = judge(
            &healthy,
            &[PartitionRule::all_topics(), PartitionRule::topics(["orders"])],
        );
        assert_eq!((verdict.status, verdict.reason.clone()), (Status::Healthy, None));
        assert_eq!(detail(&verdict, "offline_partitions"), json!({}));
        let none = judge(&cluster(), &[]);
        assert_eq!(none.status, Status::Healthy);
        assert_eq!(detail(&none, "offline_partition_count"), 1);
    }

    #[test]
    fn leader_not_available_is_offline_and_listings_are_capped() {
        let mut m = cluster();
        m.topics[1].partitions[0].error_code = 5;
        let verdict = judge(&m, &[PartitionRule::all_topics()]);
        assert_eq!(
            detail(&verdict, "offline_partitions"),
            json!({"audit": [0], "orders": [1]})
        );
        let many = Metadata {
            topics: vec![topic(
                "big",
                (0..250).rev().map(|i| partition(i, -1, &[1], &[])).collect(),
            )],
            ..Metadata::default()
        };
        let verdict = judge(&many, &[PartitionRule::all_topics()]);
        assert_eq!(detail(&verdict, "offline_partition_count"), 250);
        let listed = detail(&verdict, "offline_partitions")["big"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(listed.len(), 100);
        assert_eq!((listed[0].clone(), listed[99].clone()), (json!(0), json!(99)));
        assert_eq!(verdict.reason.as_deref(), Some("250 offline partitions"));
    }
}
