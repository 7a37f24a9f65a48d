//! The parts of axum-watch's JSON bodies the commands read: the report of
//! `ready`, `status` and their streams, and the short bodies (`ok`,
//! `starting`, `draining`, `maintenance`, `started`) of the others.
//! Unknown fields are ignored, so newer servers stay readable.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct Report {
    pub(crate) status: String,
    pub(crate) probes: Vec<ProbeLine>,
    pub(crate) failing: Vec<String>,
    /// Present while the service drains or has stopped.
    pub(crate) lifecycle: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct ProbeLine {
    pub(crate) name: String,
    pub(crate) status: String,
    pub(crate) critical: bool,
    pub(crate) latency_ms: f64,
    pub(crate) error: Option<String>,
}

impl Report {
    pub(crate) fn parse(body: &[u8]) -> Result<Self, String> {
        let report: Self = serde_json::from_slice(body).map_err(|e| format!("bad JSON: {e}"))?;
        if report.status.is_empty() {
            return Err("bad JSON: no \"status\" field".to_owned());
        }
        Ok(report)
    }

    /// Whether this body says the service is not fit to serve, whatever
    /// the HTTP status was.
    pub(crate) fn says_failing(&self) -> bool {
        matches!(self.status.as_str(), "unhealthy" | "starting" | "draining")
    }
}
