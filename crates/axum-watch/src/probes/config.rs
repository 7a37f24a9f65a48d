//! [`ConfigError`]: why a built-in probe could not be built from its options.
//!
//! It is apart from [`ProbeError`](crate::ProbeError), which a check returns:
//! a `ConfigError` happens once, while the service starts, and says which
//! option of which probe to fix.
// Only some probes attach a source chain; with none of them built, the
// constructors are not all used.
#![cfg_attr(
    not(any(
        feature = "http",
        feature = "redis",
        feature = "celery",
        feature = "mongo",
        feature = "rabbitmq"
    )),
    allow(dead_code)
)]

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use crate::probe::error_chain;

/// Why a built-in probe could not be built: a URL or connection string that
/// does not parse, a scheme it does not speak, an option it cannot use, a
/// certificate it cannot read.
///
/// Its text is lowercase, ends with the messages of its sources and never
/// repeats a password; [`source`](StdError::source) walks the same chain,
/// redacted as well. [`kind`](Self::kind) says what went wrong,
/// [`probe`](Self::probe) and [`option`](Self::option) where.
///
/// ```
/// # #[cfg(feature = "http")]
/// # fn main() {
/// use axum_watch::probes::{ConfigErrorKind, HttpProbe};
///
/// let err = HttpProbe::new("ftp://user:s3cret@files.example.com/").unwrap_err();
/// assert_eq!(err.kind(), ConfigErrorKind::UnsupportedScheme);
/// assert_eq!((err.probe(), err.option()), ("HttpProbe", "url"));
/// assert_eq!(err.to_string(), "invalid HTTP probe URL: the scheme must be http or https, not ftp");
/// # }
/// # #[cfg(not(feature = "http"))]
/// # fn main() {}
/// ```
#[derive(Clone)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    probe: &'static str,
    option: &'static str,
    message: String,
    source: Option<Arc<Redacted>>,
}

/// What was wrong with a probe's options; see [`ConfigError::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// A URL, connection string or address that does not parse.
    InvalidUrl,
    /// A URL whose scheme the probe does not speak, such as `ftp://` for an
    /// HTTP probe or `rediss://` without TLS support.
    UnsupportedScheme,
    /// An option the probe cannot use: a header, an empty status range, an
    /// empty server list.
    InvalidOption,
    /// A root certificate that does not parse or holds no certificate.
    InvalidCertificate,
    /// The client the probe needs could not be set up.
    Client,
}

impl ConfigError {
    /// An error of `kind` about `option` of `probe`; `message` is redacted.
    pub(crate) fn new(
        kind: ConfigErrorKind,
        probe: &'static str,
        option: &'static str,
        message: impl AsRef<str>,
    ) -> Self {
        Self {
            kind,
            probe,
            option,
            message: crate::redact(message.as_ref()).into_owned(),
            source: None,
        }
    }

    /// An error whose text is `context` followed by the messages of `error`
    /// and its sources, which become its own sources.
    pub(crate) fn because(
        kind: ConfigErrorKind,
        probe: &'static str,
        option: &'static str,
        context: &str,
        error: &(dyn StdError + 'static),
    ) -> Self {
        Self::new(kind, probe, option, format!("{context}: {}", error_chain(error))).with_source(error)
    }

    /// Keeps `error` (redacted) as the source, for a message that already
    /// tells what it says.
    pub(crate) fn with_source(mut self, error: &(dyn StdError + 'static)) -> Self {
        self.source = Some(Arc::new(Redacted::of(error)));
        self
    }

    /// What was wrong.
    #[must_use]
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The probe type that refused its options, such as `"HttpProbe"`.
    #[must_use]
    pub fn probe(&self) -> &'static str {
        self.probe
    }

    /// The option at fault, such as `"url"`, `"header"` or
    /// `"root_certificate_pem"`.
    #[must_use]
    pub fn option(&self) -> &'static str {
        self.option
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigError")
            .field("kind", &self.kind)
            .field("probe", &self.probe)
            .field("option", &self.option)
            .field("message", &self.message)
            .finish()
    }
}

/// Equal when they say the same thing about the same option; the sources
/// are in the message.
impl PartialEq for ConfigError {
    fn eq(&self, other: &Self) -> bool {
        (self.kind, self.probe, self.option, &self.message) == (other.kind, other.probe, other.option, &other.message)
    }
}

impl Eq for ConfigError {}

impl StdError for ConfigError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn StdError + 'static))
    }
}

/// A copy of an error chain with every message redacted: a driver's error
/// may quote the URL it was given.
#[derive(Debug)]
struct Redacted {
    text: String,
    next: Option<Box<Redacted>>,
}

impl Redacted {
    fn of(error: &(dyn StdError + 'static)) -> Self {
        Self {
            text: crate::redact(&error.to_string()).into_owned(),
            next: error.source().map(|inner| Box::new(Self::of(inner))),
        }
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl StdError for Redacted {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.next.as_deref().map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::{ConfigError, ConfigErrorKind, StdError};

    #[derive(Debug, thiserror::Error)]
    #[error("cannot parse postgres://app:s3cret@db/x")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_is_in_the_text_and_the_sources_and_redacted_in_both() {
        let error = Outer(std::io::Error::other("password=hunter2 rejected"));
        let err = ConfigError::because(ConfigErrorKind::InvalidUrl, "TestProbe", "url", "invalid URL", &error);
        assert_eq!(
            err.to_string(),
            "invalid URL: cannot parse postgres://app:***@db/x: password=*** rejected"
        );
        let first = err.source().unwrap();
        assert_eq!(first.to_string(), "cannot parse postgres://app:***@db/x");
        assert_eq!(first.source().unwrap().to_string(), "password=*** rejected");
        assert!(first.source().unwrap().source().is_none());
        assert!(!format!("{err:?}").contains("s3cret"));
        assert_eq!(
            (err.kind(), err.probe(), err.option()),
            (ConfigErrorKind::InvalidUrl, "TestProbe", "url")
        );
    }

    #[test]
    fn a_plain_error_has_no_source() {
        let err = ConfigError::new(
            ConfigErrorKind::InvalidOption,
            "KafkaProbe",
            "bootstrap_servers",
            "no servers",
        );
        assert!(err.source().is_none());
        assert_eq!(err, err.clone());
    }
}
