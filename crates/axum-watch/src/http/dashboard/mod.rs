//! `GET dashboard`: one self-contained page (inline CSS and JS, nothing
//! fetched from anywhere but this service) that reads `status/stream` (with
//! `fetch` and a streaming body, so it can send an API key header),
//! `history`, `alerts` and `alerts/deliveries` (and, with a storage the
//! replicas share, `status?scope=fleet` for its replicas), or a page of the
//! user's own.
//!
//! The Content-Security-Policy allows exactly the page's own inline style
//! and script (by hash) and same-origin connections.

use std::fmt;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use http::{HeaderValue, StatusCode};
use sha2::{Digest, Sha256};

use super::Face;
use crate::model::HealthReport;

const PAGE: &str = include_str!("page.html");

/// What a custom dashboard renderer is given.
#[derive(Debug)]
#[non_exhaustive]
pub struct DashboardContext<'a> {
    /// The current report (cached or freshly run, like `/status`).
    pub report: &'a HealthReport,
    /// The prefix of the health endpoints, for links and `EventSource` URLs.
    pub prefix: &'a str,
}

type RenderFn = dyn Fn(&DashboardContext<'_>) -> String + Send + Sync;

/// Which dashboard the registry serves.
#[derive(Clone, Default)]
pub(crate) enum Dashboard {
    /// The built-in page.
    #[default]
    BuiltIn,
    /// No dashboard route at all.
    Disabled,
    /// HTML from the user's renderer.
    Custom(Arc<RenderFn>),
}

impl fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BuiltIn => "Dashboard::BuiltIn",
            Self::Disabled => "Dashboard::Disabled",
            Self::Custom(_) => "Dashboard::Custom",
        })
    }
}

impl Dashboard {
    pub(crate) fn custom(render: impl Fn(&DashboardContext<'_>) -> String + Send + Sync + 'static) -> Self {
        Self::Custom(Arc::new(render))
    }
}

/// The built-in page and its policy, computed once.
pub(crate) struct BuiltIn {
    page: Bytes,
    policy: HeaderValue,
}

impl BuiltIn {
    /// The page; with a storage several replicas share, its body is marked
    /// `data-fleet` and the page shows the replicas; under API-key
    /// authentication it is marked `data-key-header="<name>"`, and the page
    /// sends the key it is given in that header (never in a URL). The marks
    /// are outside the hashed script and style, so one policy fits all.
    pub(crate) fn new(fleet: bool, key_header: Option<&str>) -> Self {
        let mut body = String::from("<body");
        if fleet {
            body.push_str(" data-fleet");
        }
        if let Some(header) = key_header {
            // A header name is a token: no quote, angle bracket or space.
            if header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.!#$%&'*+^`|~".contains(&b))
                && !header.contains('\'')
            {
                body.push_str(" data-key-header=\"");
                body.push_str(header);
                body.push('"');
            }
        }
        let page = if body.len() == "<body".len() {
            Bytes::from_static(PAGE.as_bytes())
        } else {
            body.push('>');
            Bytes::from(PAGE.replacen("<body>", &body, 1))
        };
        Self {
            page,
            policy: policy_for(PAGE),
        }
    }
}

/// `'sha256-…'` of the text between each `<open>` tag and its `</close>`.
fn hashes(page: &str, open: &str, close: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find(open) {
        let after = &rest[start..];
        let Some(tag_end) = after.find('>') else { break };
        let body = &after[tag_end + 1..];
        let Some(end) = body.find(close) else { break };
        let digest = Sha256::digest(&body.as_bytes()[..end]);
        out.push(format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        ));
        rest = &body[end..];
    }
    out
}

fn policy_for(page: &str) -> HeaderValue {
    let policy = format!(
        "default-src 'none'; style-src {}; script-src {}; connect-src 'self'; img-src 'self' data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hashes(page, "<style", "</style>").join(" "),
        hashes(page, "<script", "</script>").join(" "),
    );
    // Hashes are base64 and the rest is ASCII, so the value is always valid.
    HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
}

fn html(body: Bytes, policy: HeaderValue) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(CONTENT_SECURITY_POLICY, policy);
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

pub(super) async fn built_in(State(page): State<Arc<BuiltIn>>) -> Response {
    html(page.page.clone(), page.policy.clone())
}

pub(super) async fn custom(State((face, render)): State<(Face, Arc<RenderFn>)>) -> Response {
    let snapshot = face.engine.report().await;
    let context = DashboardContext {
        report: &snapshot.report,
        prefix: &face.config.prefix,
    };
    let page = render(&context);
    // A user page may load what it likes; it still may not be framed.
    html(Bytes::from(page), HeaderValue::from_static("frame-ancestors 'none'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_hashes_each_inline_block() {
        let page = "<style>a{}</style><script>1</script><script type=\"module\">2</script>";
        let policy = policy_for(page);
        let policy = policy.to_str().unwrap();
        let sha = |s: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes()));
        assert!(
            policy.contains(&format!("style-src 'sha256-{}';", sha("a{}"))),
            "{policy}"
        );
        assert!(
            policy.contains(&format!("script-src 'sha256-{}' 'sha256-{}';", sha("1"), sha("2"))),
            "{policy}"
        );
        assert!(policy.contains("connect-src 'self'"));
        assert!(policy.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn the_built_in_page_is_self_contained() {
        for needle in ["http://", "https://", "src=\"//", "href=\"//", "@import", "url("] {
            assert!(!PAGE.contains(needle), "the page references {needle:?}");
        }
        assert_eq!(hashes(PAGE, "<script", "</script>").len(), 1);
        assert_eq!(hashes(PAGE, "<style", "</style>").len(), 1);
    }

    #[test]
    fn the_fleet_mark_changes_no_hash() {
        let plain = BuiltIn::new(false, None);
        let fleet = BuiltIn::new(true, None);
        assert!(!plain.page.windows(16).any(|w| w == b"<body data-fleet"));
        let text = std::str::from_utf8(&fleet.page).unwrap();
        assert!(text.contains("<body data-fleet>"));
        assert_eq!(policy_for(text), plain.policy);
    }

    #[test]
    fn the_key_header_mark_names_only_a_token() {
        let keyed = BuiltIn::new(true, Some("x-api-key"));
        let text = std::str::from_utf8(&keyed.page).unwrap();
        assert!(text.contains("<body data-fleet data-key-header=\"x-api-key\">"));
        let odd = BuiltIn::new(false, Some("x\"><script>"));
        assert!(std::str::from_utf8(&odd.page).unwrap().contains("<body>"));
    }
}
