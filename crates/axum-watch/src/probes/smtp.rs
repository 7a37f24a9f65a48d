//! [`SmtpProbe`]: greets an SMTP server (banner, EHLO, optional TLS) and
//! leaves with QUIT, never sending mail.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::timeout::{Limit, within};
use crate::probe::{Outcome, Probe, ProbeError};
use crate::tls::{PeerTls, TlsOptions, Verification};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// RFC 5321 caps reply lines at 512 octets; allow generous slack, no more.
const MAX_LINE: u64 = 4096;
const MAX_LINES: usize = 100;

/// How an [`SmtpProbe`] secures the session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmtpTls {
    /// Plain text throughout (typical on port 25 between relays).
    #[default]
    None,
    /// Plain greeting, then `STARTTLS`, which the server must offer, and a
    /// second `EHLO` over TLS (typical on port 587).
    StartTls,
    /// TLS from the first byte, "SMTPS" (typical on port 465).
    Implicit,
}

impl SmtpTls {
    fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::StartTls => "starttls",
            Self::Implicit => "implicit",
        }
    }
}

/// Checks an SMTP server the way a mail client starts: it connects, reads the
/// `220` banner, says `EHLO`, optionally secures the session with TLS, and
/// says `QUIT` without sending mail or logging in. A `4xx`/`5xx` banner or
/// `EHLO` reply, a missing `STARTTLS` offer or a failed TLS handshake is
/// unhealthy with the server's own words in the error.
///
/// | option | default | |
/// | --- | --- | --- |
/// | [`tls`](Self::tls) | [`SmtpTls::None`] | `StartTls` or `Implicit` |
/// | [`timeout`](Self::timeout) | 5 s | connect, replies and TLS handshake together |
/// | [`ehlo_name`](Self::ehlo_name) | `localhost` | the name the probe gives in `EHLO` |
/// | [`root_certificate_pem`](Self::root_certificate_pem) | system roots | trust a private CA as well |
/// | [`danger_accept_invalid_certs`](Self::danger_accept_invalid_certs) | `false` | skip certificate checks |
/// | [`tls_options`](Self::tls_options) | system roots | every TLS option at once ([`TlsOptions`]) |
///
/// Details: `host`, `port`, `tls` (`"none"`, `"starttls"` or `"implicit"`),
/// `tls_version` (such as `"TLSv1.3"`, once encrypted), `banner` (the text of
/// the `220` greeting) and `extensions` (the keywords of the last `EHLO`
/// reply, such as `"SIZE 33554432"`, `"8BITMIME"`, `"STARTTLS"`); once
/// encrypted also `cert_not_after` and `cert_days_remaining` of the server's
/// certificate.
///
/// Certificates are checked against the system's root certificates plus any
/// [`root_certificate_pem`](Self::root_certificate_pem), with rustls and the
/// aws-lc-rs provider.
///
/// ```no_run
/// use std::time::Duration;
/// use axum_watch::{HealthRegistry, ProbeExt};
/// use axum_watch::probes::{SmtpProbe, SmtpTls};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mail = SmtpProbe::new("smtp.example.com", 587)
///     .tls(SmtpTls::StartTls)
///     .ehlo_name("health.example.com")
///     .timeout(Duration::from_secs(3))
///     .with_name("mail");
/// let registry = HealthRegistry::builder().add_non_critical(mail).build()?;
/// # drop(registry);
/// # Ok(())
/// # }
/// ```
pub struct SmtpProbe {
    host: String,
    port: u16,
    tls: SmtpTls,
    timeout: Duration,
    ehlo_name: String,
    tls_options: TlsOptions,
    /// A root certificate that could not be read, reported by every check.
    invalid_root: Option<String>,
}

impl SmtpProbe {
    /// A probe of the SMTP server at `host` (a name or an IP address) and
    /// `port` (25 for relays, 587 for submission with `STARTTLS`, 465 for
    /// implicit TLS).
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            tls: SmtpTls::None,
            timeout: DEFAULT_TIMEOUT,
            ehlo_name: "localhost".to_owned(),
            tls_options: TlsOptions::new(),
            invalid_root: None,
        }
    }

    /// How the session is secured (default [`SmtpTls::None`]).
    #[must_use]
    pub fn tls(mut self, tls: SmtpTls) -> Self {
        self.tls = tls;
        self
    }

    /// How long the whole conversation may take: connect, replies and TLS
    /// handshake together (default 5 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The domain the probe announces in `EHLO` (default `localhost`).
    #[must_use]
    pub fn ehlo_name(mut self, name: impl Into<String>) -> Self {
        self.ehlo_name = name.into();
        self
    }

    /// Trusts the certificates in `pem` (one or more `BEGIN CERTIFICATE`
    /// blocks) as roots, besides the system's, e.g. a private CA. A PEM
    /// without a valid certificate makes every check fail with a clear error.
    #[must_use]
    pub fn root_certificate_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        match self.tls_options.clone().root_certificate_pem(pem) {
            Ok(options) => self.tls_options = options,
            Err(error) => self.invalid_root = Some(error.to_string()),
        }
        self
    }

    /// Accepts any server certificate, expired, self-signed or for another
    /// name. Only for test servers: the session is then open to interception.
    #[must_use]
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.tls_options = self.tls_options.danger_accept_invalid_certs(accept);
        self
    }

    /// Every TLS option at once (see [`TlsOptions`]): a private CA, a client
    /// certificate, a server name, or no verification; replaces what
    /// [`root_certificate_pem`](Self::root_certificate_pem) and
    /// [`danger_accept_invalid_certs`](Self::danger_accept_invalid_certs) set.
    #[must_use]
    pub fn tls_options(mut self, options: TlsOptions) -> Self {
        self.tls_options = options;
        self.invalid_root = None;
        self
    }

    async fn converse(&self, deadline: Instant) -> Result<Outcome, ProbeError> {
        let limit = Limit::until(deadline, self.timeout);
        let mut outcome = Outcome::healthy()
            .detail("host", self.host.as_str())
            .detail("port", self.port)
            .detail("tls", self.tls.as_str());
        let connect = async {
            TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|error| {
                    ProbeError::with_kind(
                        "io::Error",
                        format!("cannot connect to smtp server at {}:{}: {error}", self.host, self.port),
                    )
                })
        };
        let tcp = within(limit, "smtp connect", connect).await?;
        match self.tls {
            SmtpTls::Implicit => {
                let tls = within(limit, "smtp TLS handshake", self.handshake(tcp)).await?;
                outcome = with_peer(outcome, &tls);
                let mut session = BufReader::new(tls);
                let banner = within(limit, "smtp banner", greeting(&mut session)).await?;
                let ehlo = within(limit, "smtp EHLO reply", self.ehlo(&mut session)).await?;
                quit(&mut session, deadline).await;
                Ok(outcome.detail("banner", banner).detail("extensions", ehlo))
            }
            SmtpTls::None | SmtpTls::StartTls => {
                let mut session = BufReader::new(tcp);
                let banner = within(limit, "smtp banner", greeting(&mut session)).await?;
                let extensions = within(limit, "smtp EHLO reply", self.ehlo(&mut session)).await?;
                outcome = outcome.detail("banner", banner);
                if self.tls == SmtpTls::None {
                    quit(&mut session, deadline).await;
                    return Ok(outcome.detail("extensions", extensions));
                }
                if !extensions.iter().any(|e| keyword(e).eq_ignore_ascii_case("STARTTLS")) {
                    quit(&mut session, deadline).await;
                    return Err(ProbeError::with_kind("SmtpError", "the server does not offer STARTTLS"));
                }
                within(limit, "smtp reply to STARTTLS", starttls(&mut session)).await?;
                // Whatever the server sent ahead of the handshake would be
                // read as if it came over TLS: refuse it (RFC 3207, 5).
                if !session.buffer().is_empty() {
                    return Err(ProbeError::with_kind(
                        "SmtpError",
                        "the server sent data before the TLS handshake",
                    ));
                }
                let tls = within(limit, "smtp TLS handshake", self.handshake(session.into_inner())).await?;
                outcome = with_peer(outcome, &tls);
                let mut session = BufReader::new(tls);
                let extensions = within(limit, "smtp EHLO reply over TLS", self.ehlo(&mut session)).await?;
                quit(&mut session, deadline).await;
                Ok(outcome.detail("extensions", extensions))
            }
        }
    }

    async fn handshake(&self, tcp: TcpStream) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ProbeError> {
        if let Some(invalid) = &self.invalid_root {
            return Err(ProbeError::with_kind("TlsError", invalid.clone()));
        }
        self.tls_options
            .handshake(Verification::Full, &self.host, tcp)
            .await
            .map_err(|error| {
                ProbeError::with_kind(
                    "TlsError",
                    format!("TLS handshake with {}:{} failed: {error}", self.host, self.port),
                )
            })
    }

    /// Says `EHLO` and returns the extension lines of the `250` reply.
    async fn ehlo<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        session: &mut BufReader<S>,
    ) -> Result<Vec<String>, ProbeError> {
        let reply = command(session, &format!("EHLO {}\r\n", self.ehlo_name)).await?;
        if reply.code != 250 {
            return Err(reply.rejection("EHLO"));
        }
        Ok(reply.lines.into_iter().skip(1).collect())
    }
}

impl fmt::Debug for SmtpProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpProbe")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("timeout", &self.timeout)
            .field("ehlo_name", &self.ehlo_name)
            .field("extra_roots", &self.tls_options.root_certificates().len())
            .field("accept_invalid_certs", &self.tls_options.accepts_invalid_certs())
            .finish_non_exhaustive()
    }
}

impl Probe for SmtpProbe {
    fn name(&self) -> &str {
        "smtp"
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        self.converse(Instant::now() + self.timeout).await
    }
}

/// One SMTP reply: its code and the text of each line.
#[derive(Debug)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn rejection(&self, what: &str) -> ProbeError {
        ProbeError::with_kind(
            "SmtpError",
            format!("{what} rejected: {} {}", self.code, self.lines.join(" ")),
        )
    }
}

async fn read_reply<S: AsyncRead + Unpin>(session: &mut BufReader<S>) -> Result<Reply, ProbeError> {
    let mut lines = Vec::new();
    let mut code = None;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let read = (&mut *session).take(MAX_LINE).read_until(b'\n', &mut raw).await?;
        if read == 0 {
            return Err(ProbeError::with_kind("SmtpError", "the server closed the connection"));
        }
        if raw.last() != Some(&b'\n') {
            return Err(ProbeError::with_kind("SmtpError", "reply line too long"));
        }
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\r', '\n']);
        let (digits, rest) = line.split_at_checked(3).unwrap_or((line, ""));
        let parsed = digits
            .parse::<u16>()
            .ok()
            .filter(|c| (200..600).contains(c) && digits.bytes().all(|b| b.is_ascii_digit()));
        let Some(this_code) = parsed else {
            return Err(ProbeError::with_kind(
                "SmtpError",
                format!("not an SMTP reply: {:?}", truncate(line)),
            ));
        };
        let separator = rest.chars().next().unwrap_or(' ');
        if *code.get_or_insert(this_code) != this_code || !matches!(separator, ' ' | '-') {
            return Err(ProbeError::with_kind(
                "SmtpError",
                format!("malformed SMTP reply line: {:?}", truncate(line)),
            ));
        }
        lines.push(rest.get(1..).unwrap_or_default().to_owned());
        if separator == ' ' {
            return Ok(Reply { code: this_code, lines });
        }
        if lines.len() >= MAX_LINES {
            return Err(ProbeError::with_kind("SmtpError", "reply has too many lines"));
        }
    }
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut BufReader<S>,
    line: &str,
) -> Result<Reply, ProbeError> {
    session.get_mut().write_all(line.as_bytes()).await?;
    session.get_mut().flush().await?;
    read_reply(session).await
}

/// Reads the banner, which must be a `220`, and returns its text.
async fn greeting<S: AsyncRead + Unpin>(session: &mut BufReader<S>) -> Result<String, ProbeError> {
    let reply = read_reply(session).await?;
    if reply.code != 220 {
        return Err(ProbeError::with_kind(
            "SmtpError",
            format!(
                "the server refused the session: {} {}",
                reply.code,
                reply.lines.join(" ")
            ),
        ));
    }
    Ok(reply.lines.join("\n"))
}

async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(session: &mut BufReader<S>) -> Result<(), ProbeError> {
    let reply = command(session, "STARTTLS\r\n").await?;
    if reply.code == 220 {
        Ok(())
    } else {
        Err(reply.rejection("STARTTLS"))
    }
}

/// Says goodbye, best effort: the check already has what it needs.
async fn quit<S: AsyncRead + AsyncWrite + Unpin>(session: &mut BufReader<S>, deadline: Instant) {
    let goodbye = async {
        let _ = command(session, "QUIT\r\n").await;
        let _ = session.get_mut().shutdown().await;
    };
    let _ = tokio::time::timeout_at(deadline, goodbye).await;
}

/// `SIZE 33554432` → `SIZE`.
fn keyword(extension: &str) -> &str {
    extension.split_whitespace().next().unwrap_or_default()
}

/// `outcome` with what the handshake showed: `tls_version`,
/// `cert_not_after`, `cert_days_remaining`.
fn with_peer(outcome: Outcome, stream: &tokio_rustls::client::TlsStream<TcpStream>) -> Outcome {
    PeerTls::of(stream.get_ref().1).add_to(outcome)
}

fn truncate(text: &str) -> &str {
    match text.char_indices().nth(120) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(text: &str) -> Result<Reply, ProbeError> {
        let mut session = BufReader::new(text.as_bytes());
        // A reader that cannot be written to is fine for read_reply.
        read_reply(&mut session).await
    }

    #[tokio::test]
    async fn replies_single_and_multi_line() {
        let reply = parse("220 mx.example.com ESMTP ready\r\n").await.unwrap();
        assert_eq!(reply.code, 220);
        assert_eq!(reply.lines, ["mx.example.com ESMTP ready"]);

        let reply = parse("250-mx.example.com\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 STARTTLS\r\n")
            .await
            .unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(reply.lines, ["mx.example.com", "SIZE 1000", "8BITMIME", "STARTTLS"]);

        let reply = parse("250\r\n").await.unwrap();
        assert_eq!(reply.lines, [""]);
    }

    #[tokio::test]
    async fn malformed_replies_are_clear_errors() {
        let cases = [
            (
                "HTTP/1.1 400 Bad Request\r\n",
                "SmtpError: not an SMTP reply: \"HTTP/1.1 400 Bad Request\"",
            ),
            ("250-a\r\n251 b\r\n", "SmtpError: malformed SMTP reply line: \"251 b\""),
            ("250xhello\r\n", "SmtpError: malformed SMTP reply line: \"250xhello\""),
            ("250-a\r\n", "SmtpError: the server closed the connection"),
            ("", "SmtpError: the server closed the connection"),
            ("099 low\r\n", "SmtpError: not an SMTP reply: \"099 low\""),
        ];
        for (input, expected) in cases {
            assert_eq!(parse(input).await.unwrap_err().to_string(), expected, "{input:?}");
        }
        let long = format!("220 {}\r\n", "x".repeat(5000));
        assert_eq!(
            parse(&long).await.unwrap_err().to_string(),
            "SmtpError: reply line too long"
        );
        let many = "250-x\r\n".repeat(200);
        assert_eq!(
            parse(&many).await.unwrap_err().to_string(),
            "SmtpError: reply has too many lines"
        );
    }

    #[test]
    fn an_invalid_root_certificate_fails_every_check_clearly() {
        let probe = SmtpProbe::new("localhost", 25).root_certificate_pem("not a certificate");
        let error = probe.invalid_root.clone().unwrap();
        assert_eq!(error, "invalid root certificate: the PEM holds no certificate");
        let probe = SmtpProbe::new("localhost", 25)
            .root_certificate_pem("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n");
        let error = probe.invalid_root.clone().unwrap();
        assert!(error.starts_with("invalid root certificate"), "{error}");
    }

    #[test]
    fn keywords_and_debug() {
        assert_eq!(keyword("SIZE 1000"), "SIZE");
        assert_eq!(keyword(""), "");
        let probe = SmtpProbe::new("mx.example.com", 587).tls(SmtpTls::StartTls);
        assert_eq!(
            format!("{probe:?}"),
            "SmtpProbe { host: \"mx.example.com\", port: 587, tls: StartTls, timeout: 5s, ehlo_name: \"localhost\", extra_roots: 0, accept_invalid_certs: false, .. }"
        );
    }
}
