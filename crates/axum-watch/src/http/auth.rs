//! Authentication over every health endpoint: HTTP Basic, an API key header,
//! or a user closure. Secrets are compared in constant time (as SHA-256
//! digests, so neither content nor length leaks), malformed headers are a
//! 401/403 and never a 500.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::json_bytes;

/// What a custom authentication closure sees of a request.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthRequest {
    /// The request method.
    pub method: Method,
    /// The request URI.
    pub uri: Uri,
    /// The request headers.
    pub headers: HeaderMap,
}

type SyncCheck = dyn Fn(&AuthRequest) -> bool + Send + Sync;
type AsyncCheck = dyn Fn(AuthRequest) -> BoxFuture<'static, bool> + Send + Sync;

/// How callers prove who they are.
#[derive(Clone)]
pub(crate) enum Credentials {
    Basic { user: [u8; 32], password: [u8; 32] },
    ApiKey { header: HeaderName, key: [u8; 32] },
    Sync(Arc<SyncCheck>),
    Async(Arc<AsyncCheck>),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never show secrets, not even their digests.
        f.write_str(match self {
            Self::Basic { .. } => "Basic(..)",
            Self::ApiKey { .. } => "ApiKey(..)",
            Self::Sync(_) => "Custom",
            Self::Async(_) => "CustomAsync",
        })
    }
}

/// The registry's authentication: a method and the endpoints left open.
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    pub(crate) credentials: Credentials,
    pub(crate) open: HashSet<OpenEndpoint>,
}

impl Auth {
    /// The header an API key goes in, under API-key authentication.
    pub(crate) fn key_header(&self) -> Option<&str> {
        match &self.credentials {
            Credentials::ApiKey { header, .. } => Some(header.as_str()),
            _ => None,
        }
    }
}

/// An endpoint that may be left open to callers without credentials: its
/// answer to them reduces to the status code and `{"status": …}`; see
/// [`HealthRegistryBuilder::open_endpoints`](crate::HealthRegistryBuilder::open_endpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpenEndpoint {
    /// `live`.
    Live,
    /// `ready`.
    Ready,
    /// `status`.
    Status,
    /// `startup`.
    Startup,
}

/// Marks a request to an open endpoint from a caller without credentials:
/// the handler answers with the status alone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StatusOnly;

/// Marks a request whose caller presented valid credentials: `?verbose`
/// answers then say why a check failed. Without authentication
/// configured, nobody is authenticated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Authenticated;

fn digest(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

impl Credentials {
    pub(crate) fn basic(user: &str, password: &str) -> Result<Self, String> {
        if user.is_empty() || password.is_empty() {
            return Err("basic authentication needs a non-empty username and password".to_owned());
        }
        if user.contains(':') {
            return Err("a basic-authentication username cannot contain ':'".to_owned());
        }
        for (what, secret) in [("username", user), ("password", password)] {
            if let Some(why) = unusable(secret) {
                return Err(format!(
                    "the basic-authentication {what} {why}: nobody could ever present it"
                ));
            }
        }
        Ok(Self::Basic {
            user: digest(user.as_bytes()),
            password: digest(password.as_bytes()),
        })
    }

    pub(crate) fn api_key(header: &str, key: &str) -> Result<Self, String> {
        if key.is_empty() {
            return Err("an API key cannot be empty".to_owned());
        }
        if let Some(why) = unusable(key) {
            return Err(format!(
                "the API key {why}: HTTP trims header values and cannot carry control characters, so nobody could ever present it"
            ));
        }
        let header =
            HeaderName::try_from(header).map_err(|e| format!("invalid API key header name {header:?}: {e}"))?;
        Ok(Self::ApiKey {
            header,
            key: digest(key.as_bytes()),
        })
    }

    pub(crate) fn sync(check: impl Fn(&AuthRequest) -> bool + Send + Sync + 'static) -> Self {
        Self::Sync(Arc::new(check))
    }

    pub(crate) fn asynchronous<F, Fut>(check: F) -> Self
    where
        F: Fn(AuthRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        Self::Async(Arc::new(move |request| check(request).boxed()))
    }

    /// `None` when the caller is allowed, else the refusal to send.
    async fn check(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
        let allowed = match self {
            Self::Basic { user, password } => {
                return (!basic_matches(headers, user, password)).then(unauthorized);
            }
            Self::ApiKey { header, key } => {
                let given = headers.get(header).map_or(&b""[..], HeaderValue::as_bytes);
                // A missing header still costs one digest comparison.
                let matches: bool = digest(given).ct_eq(key).into();
                matches && !given.is_empty()
            }
            Self::Sync(check) => {
                let view = AuthRequest {
                    method: method.clone(),
                    uri: uri.clone(),
                    headers: headers.clone(),
                };
                std::panic::catch_unwind(AssertUnwindSafe(|| check(&view))).unwrap_or_else(|_| {
                    tracing::error!("authentication closure panicked: request refused");
                    false
                })
            }
            Self::Async(check) => {
                let view = AuthRequest {
                    method: method.clone(),
                    uri: uri.clone(),
                    headers: headers.clone(),
                };
                AssertUnwindSafe(async move { check(view).await })
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| {
                        tracing::error!("async authentication closure panicked: request refused");
                        false
                    })
            }
        };
        (!allowed).then(forbidden)
    }
}

/// Why a secret could never be presented, if it could not: whitespace at
/// either end (trimmed on the way) or a control character (not allowed in a
/// header). The secret itself is never part of the answer.
fn unusable(secret: &str) -> Option<&'static str> {
    if secret.chars().any(char::is_control) {
        Some("contains a control character")
    } else if secret.trim() != secret {
        Some("has whitespace at its start or end")
    } else {
        None
    }
}

/// Parses `Authorization: Basic …` and compares both parts in constant time,
/// without an early exit between them.
pub(crate) fn basic_matches(headers: &HeaderMap, user: &[u8; 32], password: &[u8; 32]) -> bool {
    let (given_user, given_password) = parse_basic(headers).unwrap_or_default();
    let user_ok = digest(given_user.as_bytes()).ct_eq(user);
    let password_ok = digest(given_password.as_bytes()).ct_eq(password);
    (user_ok & password_ok).into()
}

/// The user and password of a well-formed Basic header; `None` for anything
/// else (absent, another scheme, bad base64, not UTF-8, no colon).
pub(crate) fn parse_basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim_ascii())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn unauthorized() -> Response {
    let mut response = json_bytes(
        StatusCode::UNAUTHORIZED,
        Bytes::from_static(br#"{"detail":"Unauthorized"}"#),
    );
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="health""#));
    response
}

fn forbidden() -> Response {
    json_bytes(StatusCode::FORBIDDEN, Bytes::from_static(br#"{"detail":"Forbidden"}"#))
}

/// The state the middleware needs: the authentication and whether the
/// routes it wraps are open.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    auth: Arc<Auth>,
    open: bool,
}

impl Guard {
    pub(crate) fn new(auth: Arc<Auth>, open: bool) -> Self {
        Self { auth, open }
    }
}

/// Lets authenticated requests through marked [`Authenticated`]; on an
/// open route, lets an unauthenticated caller through marked [`StatusOnly`].
pub(crate) async fn require(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let refusal = guard
        .auth
        .credentials
        .check(request.method(), request.uri(), request.headers())
        .await;
    match refusal {
        None => {
            request.extensions_mut().insert(Authenticated);
            next.run(request).await
        }
        Some(_) if guard.open => {
            request.extensions_mut().insert(StatusOnly);
            next.run(request).await
        }
        Some(refusal) => refusal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
        h
    }

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn parses_basic_headers_strictly() {
        let ok = format!("Basic {}", b64(b"admin:pa:ss"));
        assert_eq!(
            parse_basic(&headers(ok.as_bytes())),
            Some(("admin".into(), "pa:ss".into()))
        );
        let lower = format!("basic {}", b64(b"a:b"));
        assert_eq!(parse_basic(&headers(lower.as_bytes())), Some(("a".into(), "b".into())));
        let cases: Vec<Vec<u8>> = vec![
            b"Bearer abc".to_vec(),
            b"Basic".to_vec(),
            b"Basic !!!not-base64".to_vec(),
            format!("Basic {}", b64(b"no-colon")).into_bytes(),
            format!("Basic {}", b64(&[0xff, 0xfe, b':', b'x'])).into_bytes(),
            b"Basic \xff\xfe".to_vec(),
        ];
        for case in cases {
            assert_eq!(parse_basic(&headers(&case)), None, "{}", String::from_utf8_lossy(&case));
        }
        assert_eq!(parse_basic(&HeaderMap::new()), None);
    }

    #[test]
    fn both_parts_must_match() {
        let Credentials::Basic { user, password } = Credentials::basic("admin", "s3cret").unwrap() else {
            unreachable!()
        };
        let h = |s: &str| headers(format!("Basic {}", b64(s.as_bytes())).as_bytes());
        assert!(basic_matches(&h("admin:s3cret"), &user, &password));
        assert!(!basic_matches(&h("admin:wrong"), &user, &password));
        assert!(!basic_matches(&h("other:s3cret"), &user, &password));
        assert!(!basic_matches(&h(":"), &user, &password));
        assert!(!basic_matches(&HeaderMap::new(), &user, &password));
    }

    #[test]
    fn secrets_nobody_could_present_are_refused_without_echoing_them() {
        for key in [
            " ",
            "\t",
            " s3cr3t ",
            "s3cr3t\n",
            "s3cr3t ",
            "\u{7f}s3cr3t",
            "s3\u{0}cr3t",
        ] {
            let err = Credentials::api_key("X-API-Key", key).unwrap_err();
            assert!(err.starts_with("the API key "), "{key:?}: {err}");
            assert!(!err.contains("s3cr3t") && !err.contains("cr3t"), "{err}");
        }
        let err = Credentials::basic("ops", " ").unwrap_err();
        assert!(err.contains("password has whitespace"), "{err}");
        let err = Credentials::basic(" ops", "s3cret").unwrap_err();
        assert!(err.contains("username has whitespace"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        assert!(Credentials::basic("ops", "pass word").is_ok(), "inner spaces are fine");
        assert!(Credentials::api_key("X-API-Key", "k3y-With.Symbols!").is_ok());
    }

    proptest::proptest! {
        #[test]
        fn an_accepted_api_key_can_always_be_sent_and_matches(key in "(?s).{0,40}") {
            if let Ok(Credentials::ApiKey { header, key: digest_of }) = Credentials::api_key("X-API-Key", &key) {
                // Whatever build accepts survives as a header value, untrimmed.
                let value = HeaderValue::from_bytes(key.as_bytes());
                proptest::prop_assert!(value.is_ok(), "{:?}", key);
                let mut headers = HeaderMap::new();
                headers.insert(header, value.unwrap());
                let given = headers.get("x-api-key").unwrap().as_bytes();
                proptest::prop_assert_eq!(given, key.as_bytes());
                proptest::prop_assert!(bool::from(digest(given).ct_eq(&digest_of)));
            } else {
                proptest::prop_assert!(key.is_empty() || key.trim() != key || key.chars().any(char::is_control));
            }
        }
    }

    #[test]
    fn empty_secrets_are_refused() {
        assert!(Credentials::basic("", "x").is_err());
        assert!(Credentials::basic("x", "").is_err());
        assert!(Credentials::api_key("X-API-Key", "").is_err());
        assert!(Credentials::api_key("bad header", "k").is_err());
        assert_eq!(
            format!("{:?}", Credentials::api_key("X-API-Key", "k").unwrap()),
            "ApiKey(..)"
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_authorization_bytes_never_panic(value in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128)) {
            if let Ok(v) = HeaderValue::from_bytes(&value) {
                let mut h = HeaderMap::new();
                h.insert(AUTHORIZATION, v);
                let _ = parse_basic(&h);
                let Credentials::Basic { user, password } = Credentials::basic("u", "p").unwrap() else { unreachable!() };
                let _ = basic_matches(&h, &user, &password);
            }
        }
    }
}
