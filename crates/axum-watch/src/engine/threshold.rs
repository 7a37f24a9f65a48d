//! Failure and success thresholds: how many results in a row it takes
//! before a probe's reported status worsens or recovers (Kubernetes'
//! `failureThreshold` / `successThreshold`). Applied to each real result
//! before it is recorded, so alerts, callbacks, history and metrics agree.

use crate::model::{Pending, Status};

/// Results in a row needed to worsen and to recover (each at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ThresholdPolicy {
    pub(crate) failures: u32,
    pub(crate) successes: u32,
}

impl ThresholdPolicy {
    /// The policy that reports every result as it is.
    pub(crate) const IMMEDIATE: Self = Self {
        failures: 1,
        successes: 1,
    };
}

/// One probe's reported status and the streak that may change it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Hysteresis {
    reported: Option<Status>,
    /// Whether the streak is of results worse than the reported status.
    worse: bool,
    streak: u32,
}

impl Hysteresis {
    /// The status to report for an `observed` one, and the change pending
    /// while a streak has not reached its threshold yet. The first result
    /// is reported as it is.
    pub(crate) fn apply(&mut self, observed: Status, policy: ThresholdPolicy) -> (Status, Option<Pending>) {
        let Some(reported) = self.reported else {
            self.reported = Some(observed);
            return (observed, None);
        };
        if observed == reported {
            self.streak = 0;
            return (reported, None);
        }
        let worse = observed > reported;
        self.streak = if self.streak > 0 && self.worse == worse {
            self.streak.saturating_add(1)
        } else {
            1
        };
        self.worse = worse;
        let needed = if worse { policy.failures } else { policy.successes };
        if self.streak >= needed {
            self.reported = Some(observed);
            self.streak = 0;
            return (observed, None);
        }
        (reported, Some(Pending::new(observed, self.streak, needed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::{Degraded, Healthy, Unhealthy};

    fn run(policy: ThresholdPolicy, observed: &[Status]) -> Vec<Status> {
        let mut h = Hysteresis::default();
        observed.iter().map(|s| h.apply(*s, policy).0).collect()
    }

    #[test]
    fn immediate_reports_every_result() {
        let seq = [Healthy, Unhealthy, Healthy, Degraded];
        assert_eq!(run(ThresholdPolicy::IMMEDIATE, &seq), seq);
    }

    #[test]
    fn three_failures_in_a_row_to_worsen_two_successes_to_recover() {
        let policy = ThresholdPolicy {
            failures: 3,
            successes: 2,
        };
        assert_eq!(
            run(policy, &[Healthy, Unhealthy, Unhealthy, Unhealthy, Healthy, Healthy]),
            [Healthy, Healthy, Healthy, Unhealthy, Unhealthy, Healthy]
        );
        // A success in between starts the count again.
        assert_eq!(
            run(
                policy,
                &[Healthy, Unhealthy, Unhealthy, Healthy, Unhealthy, Unhealthy, Unhealthy]
            ),
            [Healthy, Healthy, Healthy, Healthy, Healthy, Healthy, Unhealthy]
        );
        // Degraded and unhealthy both count as worse; the latest is reported.
        assert_eq!(
            run(policy, &[Healthy, Degraded, Unhealthy, Degraded]),
            [Healthy, Healthy, Healthy, Degraded]
        );
    }

    #[test]
    fn the_pending_change_says_what_and_how_far() {
        let policy = ThresholdPolicy {
            failures: 3,
            successes: 1,
        };
        let mut h = Hysteresis::default();
        assert_eq!(h.apply(Healthy, policy), (Healthy, None));
        assert_eq!(
            h.apply(Unhealthy, policy),
            (Healthy, Some(Pending::new(Unhealthy, 1, 3)))
        );
        assert_eq!(
            h.apply(Unhealthy, policy),
            (Healthy, Some(Pending::new(Unhealthy, 2, 3)))
        );
        assert_eq!(h.apply(Unhealthy, policy), (Unhealthy, None));
        assert_eq!(h.apply(Healthy, policy), (Healthy, None));
    }
}
