//! The circuit breaker: the one place that decides whether a probe is called.
//!
//! After `threshold` consecutive unhealthy results the circuit opens for
//! `cooldown` and the probe is not called. After the cooldown the next run is
//! a real call: a passing result closes the circuit, a failure re-opens it at
//! once and counts another trip.

use std::time::Duration;

use tokio::time::Instant;

use crate::model::CircuitState;

/// When a probe's circuit opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CircuitPolicy {
    pub(crate) threshold: u32,
    pub(crate) cooldown: Duration,
}

/// One probe's breaker state.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Circuit {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    trips_total: u64,
}

impl Circuit {
    pub(crate) fn is_open(&self, now: Instant) -> bool {
        self.open_until.is_some_and(|until| now < until)
    }

    /// Counts one result of a real call.
    pub(crate) fn record(&mut self, passing: bool, policy: CircuitPolicy, now: Instant) {
        if passing {
            self.consecutive_failures = 0;
            self.open_until = None;
            return;
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.consecutive_failures >= policy.threshold {
            self.open_until = Some(now + policy.cooldown);
            self.trips_total += 1;
        }
    }

    pub(crate) fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// The state a result carries.
    pub(crate) fn state(&self, now: Instant) -> CircuitState {
        CircuitState::new(self.is_open(now), self.consecutive_failures, self.trips_total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: CircuitPolicy = CircuitPolicy {
        threshold: 3,
        cooldown: Duration::from_secs(60),
    };

    #[test]
    fn opens_after_threshold_and_reopens_on_failed_trial() {
        let t0 = Instant::now();
        let mut c = Circuit::default();
        c.record(false, POLICY, t0);
        c.record(false, POLICY, t0);
        assert!(!c.is_open(t0));
        c.record(false, POLICY, t0);
        assert!(c.is_open(t0));
        assert_eq!((c.consecutive_failures(), c.trips_total), (3, 1));
        let after = t0 + Duration::from_secs(60);
        assert!(!c.is_open(after));
        c.record(false, POLICY, after);
        assert!(c.is_open(after));
        assert_eq!((c.consecutive_failures(), c.trips_total), (4, 2));
        c.record(true, POLICY, after + Duration::from_secs(60));
        assert!(!c.is_open(after + Duration::from_secs(60)));
        assert_eq!((c.consecutive_failures(), c.trips_total), (0, 2));
    }

    #[test]
    fn a_pass_resets_the_count() {
        let t0 = Instant::now();
        let mut c = Circuit::default();
        c.record(false, POLICY, t0);
        c.record(false, POLICY, t0);
        c.record(true, POLICY, t0);
        c.record(false, POLICY, t0);
        assert!(!c.is_open(t0));
        assert_eq!(c.state(t0), CircuitState::new(false, 1, 0));
    }
}
