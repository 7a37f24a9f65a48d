//! The HTTP plumbing the built-in alerters share: one [`reqwest::Client`],
//! JSON `POST`s, and the mapping of every failure to a transient or permanent
//! [`AlertError`] whose text never carries the URL or a secret.
//!
//! Connection errors, timeouts, 5xx, 408 and 429 are transient (the
//! dispatcher retries them); any other answer outside 2xx, including a
//! redirect (redirects are not followed, so a secret URL is never replayed
//! elsewhere), is permanent.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use serde::Serialize;

use super::AlertError;

/// A backstop for callers of `notify` outside the dispatcher, whose own
/// timeout (`alert_timeout`) is normally much shorter.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of an error answer read to quote it.
const BODY_READ_LIMIT: usize = 2048;
/// Characters of an error answer quoted in the error.
const BODY_QUOTE_LIMIT: usize = 200;
/// What replaces a URL or a secret found in error text.
const HIDDEN: &str = "<redacted>";

/// The client every built-in alerter shares, built once (when the first
/// alerter is configured). A failure to build it is kept and reported by
/// every send instead of panicking.
fn client() -> Result<&'static reqwest::Client, AlertError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .user_agent(concat!("axum-watch/", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(REQUEST_TIMEOUT)
                .build()
                .map_err(describe)
        })
        .as_ref()
        .map_err(|e| AlertError::permanent(format!("the HTTP client could not be built: {e}")))
}

/// A validated `http` or `https` URL. It has no `Debug` on purpose: the URL
/// of a chat webhook is itself the credential.
#[derive(Clone)]
pub(super) struct Endpoint {
    url: Url,
}

impl Endpoint {
    /// Parses `url`, naming it `what` (`webhook`, `Slack webhook`, …) in the
    /// error, which never repeats the URL.
    pub(super) fn parse(url: &str, what: &str) -> Result<Self, AlertError> {
        let url = Url::parse(url.trim()).map_err(|e| AlertError::permanent(format!("invalid {what} URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(AlertError::permanent(format!(
                "invalid {what} URL: the scheme must be http or https"
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(AlertError::permanent(format!("invalid {what} URL: it has no host")));
        }
        // Build the shared client now, at configuration time, so that the
        // first alert's timeout is not spent setting up TLS. A failure is
        // kept and reported by every send.
        let _ = client();
        Ok(Self { url })
    }

    /// This endpoint with `segments` appended to its path, each
    /// percent-encoded, and `query` as its query string.
    pub(super) fn with_path(&self, segments: &[&str], query: Option<&str>) -> Self {
        let mut url = self.url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url.set_query(query);
        Self { url }
    }

    /// The parts of the URL that may hold a token, to scrub from error text.
    fn secrets(&self) -> [&str; 4] {
        [
            self.url.as_str(),
            self.url.path(),
            self.url.query().unwrap_or_default(),
            self.url.password().unwrap_or_default(),
        ]
    }
}

/// `POST`s `body` as JSON to `endpoint` with the extra `headers`; any 2xx is
/// success. `who` names the alerter in errors; `secrets` are hidden from
/// them along with the URL.
pub(super) async fn post_json(
    who: &str,
    endpoint: &Endpoint,
    headers: &HeaderMap,
    body: &impl Serialize,
    secrets: &[&str],
) -> Result<(), AlertError> {
    let scrub = |text: String| {
        let mut text = text;
        for secret in endpoint.secrets().iter().chain(secrets) {
            // Short pieces (`/`, empty) are not secrets and would mangle text.
            if secret.len() >= 4 && text.contains(secret) {
                text = text.replace(secret, HIDDEN);
            }
        }
        text
    };
    let sent = client()?
        .post(endpoint.url.clone())
        .headers(headers.clone())
        .json(body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            let transient = !(e.is_builder() || e.is_redirect());
            let message = scrub(format!("{who} request failed: {}", describe(e)));
            return Err(if transient {
                AlertError::transient(message)
            } else {
                AlertError::permanent(message)
            });
        }
    };
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let quote = quote_body(response).await;
    let message = scrub(if quote.is_empty() {
        format!("{who} answered {status}")
    } else {
        format!("{who} answered {status}: {quote}")
    });
    Err(if is_transient_status(status) {
        AlertError::transient(message)
    } else {
        AlertError::permanent(message)
    })
}

/// 5xx, 429 Too Many Requests and 408 Request Timeout are worth retrying.
fn is_transient_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT
}

/// The error and its causes on one line, without the URL reqwest attaches.
fn describe(e: reqwest::Error) -> String {
    crate::probe::error_chain(&e.without_url())
}

/// The start of an error answer's body, whitespace collapsed, for the error
/// text (services such as Slack explain a 400 there: `invalid_payload`).
async fn quote_body(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < BODY_READ_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut quote = String::new();
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            quote.push(' ');
        }
        quote.push_str(word);
        if quote.chars().count() > BODY_QUOTE_LIMIT {
            quote = quote.chars().take(BODY_QUOTE_LIMIT).collect();
            quote.push('…');
            break;
        }
    }
    quote
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host_are_accepted() {
        for good in [
            "http://127.0.0.1:9/hook",
            "https://hooks.example.com/services/T/B/X",
            " https://localhost/x ",
        ] {
            assert!(Endpoint::parse(good, "webhook").is_ok(), "{good}");
        }
        for bad in [
            "",
            "hooks.example.com/x",
            "ftp://example.com/x",
            "file:///etc/passwd",
            "http://",
        ] {
            let Err(err) = Endpoint::parse(bad, "webhook") else {
                panic!("{bad} accepted");
            };
            assert!(err.to_string().starts_with("invalid webhook URL: "), "{err}");
            assert!(!err.is_transient());
        }
    }

    #[test]
    fn statuses_are_classified() {
        for transient in [500, 502, 503, 504, 429, 408] {
            assert!(
                is_transient_status(StatusCode::from_u16(transient).unwrap()),
                "{transient}"
            );
        }
        for permanent in [400, 401, 403, 404, 410, 413, 301, 302] {
            assert!(
                !is_transient_status(StatusCode::from_u16(permanent).unwrap()),
                "{permanent}"
            );
        }
    }
}
