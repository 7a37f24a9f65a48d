//! Removal of credentials from text before it is stored, shown or logged.
//!
//! Two shapes are recognised: the password in a URL's user info
//! (`postgres://app:s3cret@db/x` → `postgres://app:***@db/x`) and the value of
//! a secret-looking key (`password=s3cret`, `token: abc`, `"api_key":"abc"`).
//!
//! ```
//! assert_eq!(
//!     axum_watch::redact("connect postgres://app:s3cret@db:5432/x failed; password=hunter2"),
//!     "connect postgres://app:***@db:5432/x failed; password=***"
//! );
//! ```

use std::borrow::Cow;

const MASK: &str = "***";

/// Keys whose values are secrets, compared without regard to case.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "private_key",
    "authorization",
    "routing_key",
];

/// Returns `text` with URL passwords and secret key/value pairs masked as `***`.
///
/// Text with nothing to redact is returned borrowed, without allocating.
#[must_use]
pub fn redact(text: &str) -> Cow<'_, str> {
    let urls = redact_url_userinfo(text);
    match redact_pairs(&urls) {
        Cow::Borrowed(_) => urls,
        Cow::Owned(s) => Cow::Owned(s),
    }
}

fn is_url_authority_end(c: char) -> bool {
    matches!(
        c,
        '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`' | ')' | ']' | ',' | ';'
    ) || c.is_whitespace()
}

/// Masks the password in every `scheme://user:password@host`.
fn redact_url_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let authority_len = tail.find(is_url_authority_end).unwrap_or(tail.len());
        let authority = &tail[..authority_len];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push(':');
                        out.push_str(MASK);
                        changed = true;
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_len..];
    }
    out.push_str(rest);
    if changed { Cow::Owned(out) } else { Cow::Borrowed(text) }
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Masks the value after every secret key followed by `=` or `:`.
fn redact_pairs(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !is_key_char(bytes[i]) || (i > 0 && is_key_char(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let key_end = i + bytes[i..].iter().take_while(|b| is_key_char(**b)).count();
        let key = &text[i..key_end];
        if !SECRET_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
            i = key_end;
            continue;
        }
        // Optional closing quote of a JSON key, then the separator.
        let mut j = key_end;
        if j < bytes.len() && (bytes[j] == b'"' || bytes[j] == b'\'') {
            j += 1;
        }
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j >= bytes.len() || (bytes[j] != b'=' && bytes[j] != b':') {
            i = key_end;
            continue;
        }
        j += 1;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        let quote = match bytes.get(j) {
            Some(q @ (b'"' | b'\'')) => {
                j += 1;
                Some(*q)
            }
            _ => None,
        };
        let value_len = match quote {
            Some(q) => bytes[j..].iter().take_while(|b| **b != q).count(),
            None => bytes[j..]
                .iter()
                .take_while(|b| {
                    !matches!(
                        b,
                        b' ' | b'\t' | b'\n' | b'\r' | b'&' | b';' | b',' | b')' | b'}' | b']'
                    )
                })
                .count(),
        };
        // `Authorization: Basic abc` hides the credentials after the scheme too.
        let value_len = extend_over_auth_scheme(&bytes[j..], value_len);
        if value_len == 0 || text[j..j + value_len] == *MASK {
            i = j + value_len;
            continue;
        }
        let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
        buf.push_str(&text[copied..j]);
        buf.push_str(MASK);
        copied = j + value_len;
        i = copied;
    }
    match out {
        Some(mut buf) => {
            buf.push_str(&text[copied..]);
            Cow::Owned(buf)
        }
        None => Cow::Borrowed(text),
    }
}

fn extend_over_auth_scheme(value: &[u8], len: usize) -> usize {
    let word = &value[..len];
    let is_scheme = [b"Basic".as_slice(), b"Bearer", b"Digest", b"Token"]
        .iter()
        .any(|s| word.eq_ignore_ascii_case(s));
    if !is_scheme || value.get(len) != Some(&b' ') {
        return len;
    }
    let more = value[len + 1..]
        .iter()
        .take_while(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b',' | b';'))
        .count();
    len + 1 + more
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn masks_known_shapes() {
        let cases = [
            ("postgres://app:s3cret@db:5432/x", "postgres://app:***@db:5432/x"),
            ("redis://:only-pass@cache:6379", "redis://:***@cache:6379"),
            (
                "amqp://guest:guest@localhost:5672/%2f",
                "amqp://guest:***@localhost:5672/%2f",
            ),
            ("mysql://root@db/x", "mysql://root@db/x"),
            ("http://example.com/a?b=c", "http://example.com/a?b=c"),
            (
                "dial 'postgres://u:p@a:1' and 'redis://x:y@b'",
                "dial 'postgres://u:***@a:1' and 'redis://x:***@b'",
            ),
            ("password=hunter2 user=app", "password=*** user=app"),
            ("host=db PASSWORD = hunter2", "host=db PASSWORD = ***"),
            (
                r#"{"password":"hunter2","user":"app"}"#,
                r#"{"password":"***","user":"app"}"#,
            ),
            ("token: abc.def, next", "token: ***, next"),
            ("url?api_key=k1&x=1", "url?api_key=***&x=1"),
            ("Authorization: Bearer abc.def.ghi end", "Authorization: *** end"),
            (
                "passwords are not keys: passwordless",
                "passwords are not keys: passwordless",
            ),
            ("no secrets here", "no secrets here"),
            ("password=***", "password=***"),
            ("p@ss://weird", "p@ss://weird"),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "input: {input}");
        }
    }

    #[test]
    fn clean_text_is_not_copied() {
        assert!(matches!(redact("connection refused"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn never_panics_on_odd_text() {
        for input in [
            "://",
            "a://@",
            "a://:@",
            "password=",
            "password:",
            "token=\"",
            "é://ü:ö@ä",
            "Authorization: Basic",
        ] {
            let out = redact(input);
            assert!(!out.is_empty() || input.is_empty());
        }
    }
}
