//! The URL a command talks to: parsed once, with its credentials taken out
//! of it, so that what is printed (`shown`) and what the HTTP client sees
//! (`uri`) never carry a password or a secret query value.

use std::fmt;

/// Query parameters whose values are masked wherever the URL is shown.
const SECRET_PARAMS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "token",
    "access_token",
    "auth",
    "key",
    "api_key",
    "apikey",
    "api-key",
    "signature",
    "sig",
];

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Target {
    https: bool,
    /// `host` or `host:port`, brackets kept around an IPv6 address.
    authority: String,
    /// Path and query, never empty (at least `/`).
    path: String,
    /// Username and password from the URL, percent-decoded.
    credentials: Option<(String, String)>,
}

/// Never shows the credentials: the same text as [`Target::shown`].
impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

impl Target {
    /// Parses `http://[user[:password]@]host[:port][/path][?query]`; a URL
    /// without a scheme is taken as `http://`. The error never repeats the
    /// credentials.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (https, rest) = match text.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (false, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (true, rest),
            Some((scheme, _)) => return Err(format!("unsupported URL scheme {scheme:?} (http or https)")),
            None => (false, text),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err("the URL has no host".to_owned());
        }
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("the URL's host contains a space or a control character".to_owned());
        }
        if let Some((_, port)) = host.rsplit_once(':')
            && !port.ends_with(']')
            && port.parse::<u16>().is_err()
        {
            return Err("the URL's port is not a number from 0 to 65535".to_owned());
        }
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("the URL's path contains a space or a control character".to_owned());
        }
        let credentials = userinfo.map(|userinfo| {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            (percent_decode(user), percent_decode(password))
        });
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Self {
            https,
            authority: host.to_owned(),
            path,
            credentials,
        })
    }

    pub(crate) fn is_https(&self) -> bool {
        self.https
    }

    /// The URL without credentials, for the HTTP client.
    pub(crate) fn uri(&self) -> String {
        format!("{}://{}{}", self.scheme(), self.authority, self.path)
    }

    /// The URL as every message shows it: credentials as `***`, secret
    /// query values as `***`.
    pub(crate) fn shown(&self) -> String {
        let userinfo = if self.credentials.is_some() { "***@" } else { "" };
        format!(
            "{}://{userinfo}{}{}",
            self.scheme(),
            self.authority,
            masked_query(&self.path)
        )
    }

    /// `host:port` as connection errors name it.
    pub(crate) fn host_port(&self) -> String {
        if self.authority.ends_with(']') || !self.authority.contains(':') {
            let port = if self.https { 443 } else { 80 };
            format!("{}:{port}", self.authority)
        } else {
            self.authority.clone()
        }
    }

    /// The host alone, as DNS errors name it.
    pub(crate) fn host(&self) -> &str {
        match self.authority.rsplit_once(':') {
            Some((host, port)) if !port.ends_with(']') => host,
            _ => &self.authority,
        }
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// The same server at another path (and query).
    pub(crate) fn with_path(&self, path: &str) -> Self {
        Self {
            path: path.to_owned(),
            ..self.clone()
        }
    }

    /// `Authorization: Basic …` for credentials in the URL.
    pub(crate) fn authorization(&self) -> Option<String> {
        let (user, password) = self.credentials.as_ref()?;
        Some(format!("Basic {}", base64(format!("{user}:{password}").as_bytes())))
    }

    /// `text` with every secret of this URL (the password as given and
    /// decoded, secret query values) replaced by `***`: for messages that
    /// come from a library and might quote what they were given.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut secrets: Vec<String> = Vec::new();
        if let Some((_, password)) = &self.credentials
            && !password.is_empty()
        {
            secrets.push(password.clone());
        }
        if let Some((_, query)) = self.path.split_once('?') {
            for pair in query.split('&') {
                if let Some((name, value)) = pair.split_once('=')
                    && is_secret(name)
                    && !value.is_empty()
                {
                    secrets.push(value.to_owned());
                    secrets.push(percent_decode(value));
                }
            }
        }
        let mut out = text.replace(&self.uri(), &self.shown());
        for secret in secrets {
            out = out.replace(&secret, "***");
        }
        out
    }

    fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }
}

fn is_secret(name: &str) -> bool {
    let name = percent_decode(name).to_ascii_lowercase();
    SECRET_PARAMS.contains(&name.as_str())
}

fn masked_query(path: &str) -> String {
    let Some((path, query)) = path.split_once('?') else {
        return path.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret(name) => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                // Two hex digits make at most 255.
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn credentials_leave_the_url_and_become_basic_auth() {
        let t = Target::parse("http://ops:p%40ss:w0rd@127.0.0.1:8000/health/ready?token=abc&x=1").unwrap();
        assert_eq!(t.uri(), "http://127.0.0.1:8000/health/ready?token=abc&x=1");
        assert_eq!(t.shown(), "http://***@127.0.0.1:8000/health/ready?token=***&x=1");
        // "ops:p@ss:w0rd"
        assert_eq!(t.authorization().unwrap(), "Basic b3BzOnBAc3M6dzByZA==");
        assert_eq!(format!("{t:?}"), t.shown());
        assert_eq!(t.host_port(), "127.0.0.1:8000");
        assert_eq!(t.host(), "127.0.0.1");
        let scrubbed = t.scrub("failed: http://127.0.0.1:8000/health/ready?token=abc&x=1 said p@ss:w0rd and abc");
        assert!(
            !scrubbed.contains("abc") && !scrubbed.contains("p@ss:w0rd"),
            "{scrubbed}"
        );
    }

    #[test]
    fn forms_of_urls() {
        let cases = [
            ("localhost:8000", "http://localhost:8000/", "localhost:8000"),
            ("HTTPS://example.com", "https://example.com/", "example.com:443"),
            ("http://[::1]:9/x#frag", "http://[::1]:9/x", "[::1]:9"),
            ("http://[::1]/x", "http://[::1]/x", "[::1]:80"),
            ("http://h?tag=a", "http://h/?tag=a", "h:80"),
        ];
        for (input, uri, host_port) in cases {
            let t = Target::parse(input).unwrap();
            assert_eq!((t.uri().as_str(), t.host_port().as_str()), (uri, host_port), "{input}");
        }
        for bad in [
            "ftp://h/",
            "http://",
            "http://u:secret@/",
            "http://h:99999/",
            "http://h/a b",
        ] {
            let error = Target::parse(bad).unwrap_err();
            assert!(!error.contains("secret"), "{error}");
        }
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }
}
