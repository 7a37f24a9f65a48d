//! What the chat and paging alerters show of a record: one headline and the
//! same labelled facts everywhere, so a page reads alike in every tool.

use std::fmt::Write as _;

use crate::model::AlertRecord;

/// `checkout/db is now unhealthy (was healthy)`, or `… is still unhealthy`
/// for a reminder.
pub(super) fn headline(alert: &AlertRecord) -> String {
    let mut line = String::new();
    if let Some(service) = &alert.service {
        line.push_str(service);
        line.push('/');
    }
    line.push_str(&alert.probe);
    if alert.is_reminder() {
        let _ = write!(line, " is still {}", alert.new_status);
    } else {
        let _ = write!(line, " is now {} (was {})", alert.new_status, alert.old_status);
    }
    line
}

/// The labelled facts of a record, in the order people read them; unset
/// fields are left out.
pub(super) fn facts(alert: &AlertRecord) -> Vec<(&'static str, String)> {
    let mut facts = Vec::with_capacity(12);
    if let Some(service) = &alert.service {
        facts.push(("Service", service.clone()));
    }
    if let Some(replica) = &alert.replica {
        facts.push(("Replica", replica.clone()));
    }
    facts.push(("Probe", alert.probe.clone()));
    facts.push(("Status", alert.new_status.to_string()));
    facts.push(("Previous", alert.old_status.to_string()));
    if let Some(error) = &alert.error {
        facts.push(("Error", error.clone()));
    }
    facts.push(("Critical", if alert.critical { "yes" } else { "no" }.to_owned()));
    if !alert.tags.is_empty() {
        facts.push(("Tags", alert.tags.join(", ")));
    }
    if let Some(since) = &alert.since {
        let lasted = alert.duration_ms.map(lasted).unwrap_or_default();
        let label = if alert.is_reminder() { "Since" } else { "Previous since" };
        facts.push((label, format!("{since}{lasted}")));
    }
    facts.push(("Time", alert.timestamp.to_string()));
    if !alert.id.is_empty() {
        facts.push(("Alert id", alert.id.clone()));
    }
    facts
}

/// ` (for 1h 2m 3s)`: a duration in the largest units that matter.
fn lasted(millis: u64) -> String {
    let secs = millis / 1000;
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let text = match (d, h, m) {
        (0, 0, 0) => format!("{}.{:01}s", s, millis % 1000 / 100),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m"),
    };
    format!(" (for {text})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_their_largest_units() {
        assert_eq!(lasted(1_250), " (for 1.2s)");
        assert_eq!(lasted(192_000), " (for 3m 12s)");
        assert_eq!(lasted(3_723_000), " (for 1h 2m 3s)");
        assert_eq!(lasted(90_061_000), " (for 1d 1h 1m)");
    }
}
