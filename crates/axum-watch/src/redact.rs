//! Removal of credentials from text and details before they are stored,
//! shown or logged.
//!
//! Three kinds of rule, all hand-written scanners that copy nothing when
//! nothing matches:
//!
//! - **user info**: the password of a URL (`postgres://app:s3cret@db/x` →
//!   `postgres://app:***@db/x`), including passwords that hold `/`, `@` or
//!   `:`, and of a DSN without a scheme (`app:s3cret@tcp(db:3306)/app`,
//!   `app:s3cret@db:5432/app`);
//! - **secret keys**, as Spring Boot Actuator's sanitiser has them: the value
//!   of any key whose name holds `password`, `passwd`, `pwd`, `pass`,
//!   `secret`, `token`, `credential`, `api key`, `auth`, `private key`… with
//!   any prefix, suffix, separator or case (`DB_PASSWORD`, `client_secret`,
//!   `X-API-Key`, `sessionToken`), written `key=value`, `key: value`,
//!   `"key":"value"`, `<key>value</key>`, or with the value on the next line;
//! - **bearer tokens** standing alone (`sent Bearer eyJhbGciOi…`).
//!
//! ```
//! assert_eq!(
//!     axum_watch::redact("connect postgres://app:s3cret@db:5432/x failed; DB_PASSWORD=hunter2"),
//!     "connect postgres://app:***@db:5432/x failed; DB_PASSWORD=***"
//! );
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::model::Details;

/// What a secret is replaced with.
pub(crate) const MASK: &str = "***";

/// Fragments that make a key secret wherever they appear in its name. A name
/// is compared by its letters and digits only, lowercased, so `DB_PASSWORD`,
/// `db-password` and `dbPassword` all read `dbpassword`, and `X-API-Key`
/// reads `xapikey`.
const SECRET_FRAGMENTS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "credential",
    "apikey",
    "accesskey",
    "privatekey",
    "routingkey",
    "authorization",
];

/// Words that hold `pass` and are no secret: an occurrence of `pass`
/// inside one of them does not make a key secret (`compass`, `passed`).
const NOT_PASS: &[&str] = &[
    "passed",
    "passes",
    "passing",
    "passive",
    "passage",
    "passenger",
    "passport",
    "passthrough",
    "passthru",
    "passable",
    "compass",
    "bypass",
    "surpass",
    "overpass",
    "underpass",
    "trespass",
    "encompass",
];

/// What follows `auth` in words that are no secret (`authentication`,
/// `author`, `authority`, `unauthorized`).
const NOT_AUTH: &[&str] = &["ent", "or"];

/// HTTP authentication schemes whose credentials follow after a space.
const AUTH_SCHEMES: &[&[u8]] = &[b"Basic", b"Bearer", b"Digest", b"Token", b"Negotiate", b"NTLM"];

/// A standalone bearer token this short is more likely a word.
const MIN_BEARER_TOKEN: usize = 16;

/// A rule of the user's own, run over text after the built-in ones.
type TextRule = Arc<dyn for<'a> Fn(&'a str) -> Cow<'a, str> + Send + Sync>;

/// Returns `text` with every credential the built-in rules recognise masked
/// as `***`: URL and DSN passwords, values of secret-looking keys, bearer
/// tokens.
///
/// Text with nothing to redact is returned borrowed, without allocating. A
/// registry also applies the rules added with
/// [`redact_keys`](crate::HealthRegistryBuilder::redact_keys) and
/// [`redact_with`](crate::HealthRegistryBuilder::redact_with) to its probes'
/// results; this function knows the built-in rules only.
///
/// ```
/// use axum_watch::redact;
///
/// assert_eq!(redact("X-API-Key: k-123 rejected"), "X-API-Key: *** rejected");
/// assert_eq!(redact("dial app:s3cret@tcp(db:3306)/app"), "dial app:***@tcp(db:3306)/app");
/// assert_eq!(redact("authentication failed"), "authentication failed");
/// assert!(matches!(redact("connection refused"), std::borrow::Cow::Borrowed(_)));
/// ```
#[must_use]
pub fn redact(text: &str) -> Cow<'_, str> {
    DEFAULT.redact(text)
}

/// The built-in rules alone.
static DEFAULT: Redactor = Redactor::new();

/// The redaction rules of one registry: the built-in ones, extra key-name
/// fragments and rules of the user's own.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    /// Extra fragments, normalised like key names (lowercase letters and digits).
    keys: Vec<Box<[u8]>>,
    rules: Vec<TextRule>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<_> = self.keys.iter().map(|k| String::from_utf8_lossy(k)).collect();
        f.debug_struct("Redactor")
            .field("keys", &keys)
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl Redactor {
    /// The built-in rules.
    pub(crate) const fn new() -> Self {
        Self {
            keys: Vec::new(),
            rules: Vec::new(),
        }
    }

    /// Also treats as secret every key whose name contains `fragment`
    /// (compared like the built-in fragments). `false` when the fragment has
    /// no letter or digit, which would match every key.
    pub(crate) fn add_key(&mut self, fragment: &str) -> bool {
        let normalised: Vec<u8> = normalise(fragment.as_bytes()).collect();
        if normalised.is_empty() {
            return false;
        }
        if !self.keys.iter().any(|k| **k == *normalised) {
            self.keys.push(normalised.into_boxed_slice());
        }
        true
    }

    /// Runs `rule` over every text after the built-in rules.
    pub(crate) fn add_rule(&mut self, rule: TextRule) {
        self.rules.push(rule);
    }

    /// `text` with every credential these rules recognise masked.
    pub(crate) fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        if text.contains('@') {
            out = chain(out, redact_userinfo);
        }
        if text.contains([':', '=', '>']) {
            out = chain(out, |t| self.redact_pairs(t));
        }
        if text.contains("earer ") || text.contains("EARER ") {
            out = chain(out, redact_bearer);
        }
        for rule in &self.rules {
            out = chain(out, |t| rule(t));
        }
        out
    }

    /// `text` redacted, reusing its buffer when nothing was masked.
    pub(crate) fn redact_owned(&self, text: String) -> String {
        match self.redact(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(redacted) => redacted,
        }
    }

    /// Whether a key of this name holds a secret.
    pub(crate) fn is_secret_key(&self, key: &str) -> bool {
        self.is_secret_name(key.as_bytes())
    }

    fn is_secret_name(&self, key: &[u8]) -> bool {
        // Names are short: normalised on the stack, a long one on the heap.
        let mut stack = [0_u8; 64];
        let heap: Vec<u8>;
        let joined: &[u8] = if key.len() <= stack.len() {
            let mut n = 0;
            for b in normalise(key) {
                stack[n] = b;
                n += 1;
            }
            &stack[..n]
        } else {
            heap = normalise(key).collect();
            &heap
        };
        is_secret_by_default(joined) || self.keys.iter().any(|f| contains(joined, f))
    }

    /// Redacts a probe's details in place: the whole value of a secret key
    /// (a string, a number, an object…), and every string and key anywhere
    /// else through [`redact`](Self::redact).
    pub(crate) fn redact_details(&self, details: &mut Details) {
        for (key, value) in details.iter_mut() {
            if self.is_secret_key(key) {
                if !value.is_null() {
                    *value = Value::String(MASK.to_owned());
                }
            } else {
                self.redact_value(value);
            }
        }
        // Keys that carry credentials themselves (a URL used as a key) are
        // rare: the map is rebuilt, in order, only when one does.
        if details.keys().any(|k| matches!(self.redact(k), Cow::Owned(_))) {
            let old = std::mem::take(details);
            for (key, value) in old {
                details.insert(self.redact_owned(key), value);
            }
        }
    }

    fn redact_value(&self, value: &mut Value) {
        match value {
            Value::String(text) => {
                if let Cow::Owned(redacted) = self.redact(text) {
                    *text = redacted;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_value(v)),
            Value::Object(map) => self.redact_details(map),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Masks the value after every secret key followed by a separator.
    fn redact_pairs<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let bytes = text.as_bytes();
        let mut masker = Masker::new(text);
        let mut i = 0;
        while i < bytes.len() {
            if !is_key_char(bytes[i]) || (i > 0 && is_key_char(bytes[i - 1])) {
                i += 1;
                continue;
            }
            let key_end = i + bytes[i..].iter().take_while(|b| is_key_char(**b)).count();
            // A URL's user or host (`http://pwd:8080`, `u:p@token:6379`) is no key.
            if bytes[..i].ends_with(b"://") || bytes[..i].ends_with(b"@") {
                i = key_end;
                continue;
            }
            match self.secret_value(bytes, i, key_end) {
                Some((start, end)) => {
                    masker.mask(start, end);
                    i = end;
                }
                None => i = key_end,
            }
        }
        masker.finish()
    }

    /// Where the value of the key at `start..end` lies, when the key is
    /// secret, is followed by a separator and has a value not masked yet.
    fn secret_value(&self, bytes: &[u8], start: usize, end: usize) -> Option<(usize, usize)> {
        let xml = start > 0 && bytes[start - 1] == b'<' && bytes.get(end) == Some(&b'>');
        let mut j = end;
        if !xml {
            // The closing quote of a quoted key, escaped or not.
            if bytes[j..].starts_with(b"\\\"") {
                j += 2;
            } else if matches!(bytes.get(j), Some(b'"' | b'\'')) {
                j += 1;
            }
            j = skip_blanks(bytes, j);
            match bytes.get(j) {
                Some(b'=') => j += 1 + usize::from(bytes.get(j + 1) == Some(&b'>')),
                // `a::b` is a path, not a key and its value.
                Some(b':') if bytes.get(j + 1) != Some(&b':') => j += 1 + usize::from(bytes.get(j + 1) == Some(&b'=')),
                _ => return None,
            }
        } else {
            j += 1;
        }
        if !self.is_secret_name(key_name(bytes, start, end)) {
            return None;
        }
        let (from, to) = if xml {
            (j, j + bytes[j..].iter().take_while(|b| **b != b'<').count())
        } else {
            value_after(bytes, skip_blanks(bytes, j))?
        };
        // A value that starts masked was masked by an earlier rule
        // (`redis://token:***@cache`: the user is named like a key).
        let value = &bytes[from..to];
        (!value.is_empty() && !value.starts_with(MASK.as_bytes())).then_some((from, to))
    }
}

/// The key at `start..end`; a bare `key` takes the word before it
/// (`API Key`, `Private Key`), so that two-word names are judged whole.
fn key_name(bytes: &[u8], start: usize, end: usize) -> &[u8] {
    let key = &bytes[start..end];
    if !key.eq_ignore_ascii_case(b"key") {
        return key;
    }
    let blanks = bytes[..start].iter().rev().take_while(|b| **b == b' ').count();
    let word_end = start - blanks;
    let word = bytes[..word_end].iter().rev().take_while(|b| is_key_char(**b)).count();
    if blanks == 0 || word == 0 {
        key
    } else {
        &bytes[word_end - word..end]
    }
}

/// The value that starts at `j`: quoted, unquoted (with an authentication
/// scheme's credentials), or, when the line ends there (or with a YAML block
/// indicator), the whole next line.
fn value_after(bytes: &[u8], j: usize) -> Option<(usize, usize)> {
    let rest = &bytes[j..];
    if rest.starts_with(b"\\\"") {
        let len = rest[2..]
            .windows(2)
            .position(|w| w == b"\\\"")
            .unwrap_or(rest.len() - 2);
        return Some((j + 2, j + 2 + len));
    }
    if let Some(&quote @ (b'"' | b'\'')) = rest.first() {
        let mut k = 1;
        while k < rest.len() && rest[k] != quote {
            k += if rest[k] == b'\\' { 2 } else { 1 };
        }
        return Some((j + 1, j + k.min(rest.len())));
    }
    let len = rest
        .iter()
        .enumerate()
        .take_while(|(k, b)| !ends_value(rest, *k, **b))
        .count();
    let word = &rest[..len];
    let line_ends = |at: usize| matches!(rest.get(at), None | Some(b'\n' | b'\r'));
    let block = matches!(word, b"|" | b">" | b"|-" | b">-" | b"|+" | b">+");
    if (len == 0 || block) && line_ends(skip_blanks(rest, len)) {
        return next_line(bytes, j + skip_blanks(rest, len));
    }
    Some((j, j + extend_over_auth_scheme(rest, len)))
}

/// Whether the byte at `k` of an unquoted value ends it.
fn ends_value(rest: &[u8], k: usize, b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(b, b'&' | b';' | b',' | b')' | b'}' | b']' | b'"' | b'\'' | b'<')
        || (b == b'\\' && rest.get(k + 1) == Some(&b'"'))
}

/// The content of the line after the line end at `at`, without its
/// indentation and trailing blanks; `None` when it is empty.
fn next_line(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut j = at;
    if bytes.get(j) == Some(&b'\r') {
        j += 1;
    }
    if bytes.get(j) != Some(&b'\n') {
        return None;
    }
    let from = skip_blanks(bytes, j + 1);
    let len = bytes[from..].iter().take_while(|b| !matches!(b, b'\n' | b'\r')).count();
    let trimmed = bytes[from..from + len]
        .iter()
        .rev()
        .skip_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    (trimmed > 0).then_some((from, from + trimmed))
}

/// `Authorization: Basic abc` hides the credentials after the scheme too.
fn extend_over_auth_scheme(value: &[u8], len: usize) -> usize {
    let word = &value[..len];
    let is_scheme = AUTH_SCHEMES.iter().any(|s| word.eq_ignore_ascii_case(s));
    if !is_scheme || value.get(len) != Some(&b' ') {
        return len;
    }
    let more = value[len + 1..]
        .iter()
        .take_while(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b',' | b';'))
        .count();
    if more == 0 { len } else { len + 1 + more }
}

/// Whether a normalised name is secret by the built-in rules. One pass over
/// its bytes, each compared only with the fragments that start with it:
/// names are judged on every `key=` in every error, so this stays cheap.
fn is_secret_by_default(joined: &[u8]) -> bool {
    (0..joined.len()).any(|at| {
        let rest = &joined[at..];
        let first = rest[0];
        SECRET_FRAGMENTS
            .iter()
            .any(|f| f.as_bytes()[0] == first && rest.starts_with(f.as_bytes()))
            || (first == b'p' && rest.starts_with(b"pass") && !is_ordinary_pass(joined, at))
            || (first == b'a'
                && rest.starts_with(b"auth")
                && !NOT_AUTH.iter().any(|word| rest[4..].starts_with(word.as_bytes())))
    })
}

/// Whether the `pass` at `at` is part of a word that merely contains it
/// (`compass`, `passed`), not a secret (`dbpass`, `passcode`).
fn is_ordinary_pass(joined: &[u8], at: usize) -> bool {
    NOT_PASS.iter().any(|word| {
        let word = word.as_bytes();
        // Where `pass` sits in the word, and whether the word sits here.
        occurrences(word, b"pass").any(|offset| at >= offset && joined[at - offset..].starts_with(word))
    })
}

/// Where `needle` starts in `haystack`, every time.
fn occurrences<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(move |(_, w)| *w == needle)
        .map(|(k, _)| k)
}

/// A key name's letters and digits, lowercased.
fn normalise(key: &[u8]) -> impl Iterator<Item = u8> + '_ {
    key.iter()
        .filter(|b| b.is_ascii_alphanumeric())
        .map(u8::to_ascii_lowercase)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.len() >= needle.len() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

fn skip_blanks(bytes: &[u8], mut j: usize) -> usize {
    while matches!(bytes.get(j), Some(b' ' | b'\t')) {
        j += 1;
    }
    j
}

/// `previous` run through `step`, copied only when `step` changed it.
fn chain<'a>(previous: Cow<'a, str>, step: impl FnOnce(&str) -> Cow<'_, str>) -> Cow<'a, str> {
    match step(&previous) {
        Cow::Borrowed(_) => previous,
        Cow::Owned(changed) => Cow::Owned(changed),
    }
}

/// Copies a text with ranges replaced by the mask, allocating on the first one.
struct Masker<'a> {
    text: &'a str,
    out: Option<String>,
    copied: usize,
}

impl<'a> Masker<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            out: None,
            copied: 0,
        }
    }

    /// Masks `start..end`; ranges come in order and never overlap, and both
    /// ends sit next to an ASCII byte (a char boundary).
    fn mask(&mut self, start: usize, end: usize) {
        let text = self.text;
        let out = self.out.get_or_insert_with(|| String::with_capacity(text.len()));
        out.push_str(&text[self.copied..start]);
        out.push_str(MASK);
        self.copied = end;
    }

    fn finish(self) -> Cow<'a, str> {
        match self.out {
            Some(mut out) => {
                out.push_str(&self.text[self.copied..]);
                Cow::Owned(out)
            }
            None => Cow::Borrowed(self.text),
        }
    }
}

/// Bytes that end a URL or DSN: whitespace and quotes.
fn ends_token(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'`' | b'<' | b'>')
}

/// Masks the password in every URL's or schemeless DSN's user info.
fn redact_userinfo(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut masker = Masker::new(text);
    let mut pos = 0;
    while pos < bytes.len() {
        if ends_token(bytes[pos]) {
            pos += 1;
            continue;
        }
        let start = pos;
        while pos < bytes.len() && !ends_token(bytes[pos]) {
            pos += 1;
        }
        let token = &bytes[start..pos];
        if !token.contains(&b'@') {
            continue;
        }
        if contains(token, b"://") {
            let mut urls = Vec::new();
            url_passwords(token, &mut urls);
            for (from, to) in urls {
                masker.mask(start + from, start + to);
            }
        } else if let Some((from, to)) = dsn_password(token) {
            masker.mask(start + from, start + to);
        }
    }
    masker.finish()
}

/// The passwords of the URLs in `token`. A URL's user info ends at its last
/// `@` before the next URL, so a password may hold `/`, `@` and `:`; a URL
/// with no `@` before the next `scheme://` runs on past it, since that
/// `://` may be part of its password.
fn url_passwords(token: &[u8], found: &mut Vec<(usize, usize)>) {
    // A `://` after a scheme may start a URL.
    let scheme_len = |sep: usize| token[..sep].iter().rev().take_while(|b| is_scheme_char(**b)).count();
    let seps: Vec<usize> = occurrences(token, b"://").filter(|&k| scheme_len(k) > 0).collect();
    let mut n = 0;
    while n < seps.len() {
        let from = seps[n] + 3;
        let mut next = n + 1;
        let mut password = None;
        while next <= seps.len() {
            let to = seps.get(next).map_or(token.len(), |&sep| sep - scheme_len(sep));
            let url = token.get(from..to).unwrap_or_default();
            password = url_password(url).map(|(a, b)| (from + a, from + b));
            if password.is_some() || url.contains(&b'@') {
                break;
            }
            next += 1;
        }
        match password {
            Some(range) => {
                found.push(range);
                n = next;
            }
            None => n += 1,
        }
    }
}

/// The password in what follows a URL's `://`, when it has one.
fn url_password(url: &[u8]) -> Option<(usize, usize)> {
    let at = url.iter().rposition(|b| *b == b'@')?;
    let userinfo = &url[..at];
    let colon = userinfo.iter().position(|b| *b == b':')?;
    if userinfo[..colon].iter().any(|b| matches!(b, b'/' | b'?' | b'#')) {
        return None;
    }
    let password = &userinfo[colon + 1..];
    // `host:8080/users/@me` is a port and a path that holds an `@`, not a
    // password.
    let digits = password.iter().take_while(|b| b.is_ascii_digit()).count();
    let port =
        colon > 0 && digits > 0 && matches!(password.get(digits), Some(b'/' | b'?' | b'#')) && url[at - 1] == b'/';
    (!password.is_empty() && password != MASK.as_bytes() && !port).then_some((colon + 1, at))
}

fn is_scheme_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

/// The password of a DSN without a scheme: `user:password@host/db`,
/// `user:password@host:port`, `user:password@tcp(host:port)/db`. The user
/// info ends at the last `@` that a host follows.
fn dsn_password(token: &[u8]) -> Option<(usize, usize)> {
    let at = (0..token.len())
        .rev()
        .find(|&k| token[k] == b'@' && host_follows(&token[k + 1..]))?;
    let colon = token[..at].iter().position(|b| *b == b':')?;
    let user = token[..colon].iter().rev().take_while(|b| is_key_char(**b)).count();
    let password = &token[colon + 1..at];
    (user > 0 && !password.is_empty() && password != MASK.as_bytes()).then_some((colon + 1, at))
}

/// Whether `rest` starts with a DSN's host: `tcp(`, `unix(`…, or a host
/// name or `[IPv6]` followed by a port, a path or the end.
fn host_follows(rest: &[u8]) -> bool {
    let word = rest.iter().take_while(|b| b.is_ascii_lowercase()).count();
    if word > 0 && rest.get(word) == Some(&b'(') {
        return true;
    }
    let host = if rest.first() == Some(&b'[') {
        rest.iter().position(|b| *b == b']').map_or(0, |k| k + 1)
    } else {
        rest.iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            .count()
    };
    if host == 0 {
        return false;
    }
    match rest.get(host) {
        None | Some(b'/' | b')' | b',' | b';' | b'?' | b'\\') => true,
        // A port, or the colon that ends a clause (`app:pw@db: refused`).
        Some(b':') => rest.get(host + 1).is_none_or(u8::is_ascii_digit),
        _ => false,
    }
}

/// Masks a bearer token standing alone: `Bearer` and a long token68.
fn redact_bearer(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut masker = Masker::new(text);
    let mut i = 0;
    while i + 7 <= bytes.len() {
        let starts_word = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if !(starts_word && bytes[i..i + 7].eq_ignore_ascii_case(b"bearer ")) {
            i += 1;
            continue;
        }
        let from = skip_blanks(bytes, i + 7);
        let run = bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
            .count();
        let to = from + run + bytes[from + run..].iter().take_while(|b| **b == b'=').count();
        let ends = bytes
            .get(to)
            .is_none_or(|b| ends_token(*b) || matches!(b, b',' | b';' | b')'));
        if run >= MIN_BEARER_TOKEN && ends {
            masker.mask(from, to);
            i = to;
        } else {
            i = from;
        }
    }
    masker.finish()
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use proptest::prelude::*;
    use serde_json::json;

    use super::{Redactor, redact};

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

    /// The shapes issue 14 found unmasked, and their neighbours.
    #[test]
    fn masks_keys_by_pattern() {
        let cases = [
            ("DB_PASSWORD=s3", "DB_PASSWORD=***"),
            ("PGPASSWORD=s3 psql", "PGPASSWORD=*** psql"),
            ("MYSQL_PWD=s3", "MYSQL_PWD=***"),
            ("client_secret=s3&grant=x", "client_secret=***&grant=x"),
            ("clientSecret: s3", "clientSecret: ***"),
            ("access_token=s3", "access_token=***"),
            ("sessionToken: s3", "sessionToken: ***"),
            ("X-API-Key: s3", "X-API-Key: ***"),
            ("x-api-key:s3", "x-api-key:***"),
            ("Secret-Key: s3", "Secret-Key: ***"),
            ("X-Auth-Token: s3", "X-Auth-Token: ***"),
            ("pass=s3", "pass=***"),
            ("db_pass=s3", "db_pass=***"),
            ("dbPass: s3", "dbPass: ***"),
            ("DBPASS=s3", "DBPASS=***"),
            ("auth=s3", "auth=***"),
            ("basicAuth: s3", "basicAuth: ***"),
            ("credentials=s3", "credentials=***"),
            ("API Key: s3", "API Key: ***"),
            ("Private Key: s3", "Private Key: ***"),
            ("private_key=s3", "private_key=***"),
            ("--password=s3", "--password=***"),
            ("spring.datasource.password=s3", "spring.datasource.password=***"),
            ("Proxy-Authorization: Basic czM=", "Proxy-Authorization: ***"),
            ("'password': 's 3'", "'password': '***'"),
            (r#"password="a \" b" next"#, r#"password="***" next"#),
            (r#"{\"token\":\"s3\"}"#, r#"{\"token\":\"***\"}"#),
            ("<password>s3</password>", "<password>***</password>"),
            ("password := s3", "password := ***"),
            ("password => s3", "password => ***"),
            ("Server=db;Uid=app;Pwd=s3;", "Server=db;Uid=app;Pwd=***;"),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "input: {input}");
        }
    }

    #[test]
    fn masks_the_value_on_the_next_line() {
        let cases = [
            ("password:\ns3\nuser: app", "password:\n***\nuser: app"),
            ("password:\r\n    s3  \r\n", "password:\r\n    ***  \r\n"),
            ("secret: |\n  s3\n", "secret: |\n  ***\n"),
            ("password:   \n\tS 3", "password:   \n\t***"),
            ("password:\n\nnext", "password:\n\nnext"),
            ("password:", "password:"),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "input: {input:?}");
        }
    }

    #[test]
    fn masks_url_passwords_with_any_character() {
        let cases = [
            ("redis://:SEK/RET@h", "redis://:***@h"),
            ("redis://:SEK/RET@h:6379/0", "redis://:***@h:6379/0"),
            ("mysql://root:p@ss:w0rd@db/x", "mysql://root:***@db/x"),
            ("amqp://u:a#b?c@mq/v", "amqp://u:***@mq/v"),
            (
                "a=postgres://u:p1@h/x,b=redis://v:p2@k/0",
                "a=postgres://u:***@h/x,b=redis://v:***@k/0",
            ),
            ("(redis://:p@h:1)", "(redis://:***@h:1)"),
            ("http://host:8080/users/@me", "http://host:8080/users/@me"),
            (
                "https://registry.example/@scope/pkg",
                "https://registry.example/@scope/pkg",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "input: {input}");
        }
    }

    #[test]
    fn masks_dsns_without_a_scheme() {
        let cases = [
            ("app:s3@tcp(db:3306)/app", "app:***@tcp(db:3306)/app"),
            (
                "dsn=app:s3@tcp(127.0.0.1:3306)/test",
                "dsn=app:***@tcp(127.0.0.1:3306)/test",
            ),
            ("app:p@ss@tcp(db:3306)/app", "app:***@tcp(db:3306)/app"),
            ("app:s3@unix(/tmp/my.sock)/app", "app:***@unix(/tmp/my.sock)/app"),
            ("app:s3@db/app", "app:***@db/app"),
            ("app:s3@db:5432/app", "app:***@db:5432/app"),
            ("connect app:s3@cache failed", "connect app:***@cache failed"),
            ("app:s3@[::1]:5432/x", "app:***@[::1]:5432/x"),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "input: {input}");
        }
    }

    #[test]
    fn masks_bearer_tokens_standing_alone() {
        assert_eq!(
            redact("sent Bearer eyJhbGciOiJIUzI1NiJ9.e30.x-y_z= upstream"),
            "sent Bearer *** upstream"
        );
        assert_eq!(redact("Bearer token expired"), "Bearer token expired");
        assert_eq!(redact("bearer authentication failed"), "bearer authentication failed");
    }

    /// Ordinary text and data keep every word.
    #[test]
    fn leaves_ordinary_text_alone() {
        for text in [
            "authentication failed",
            "authentication failed: bad credentials for user app",
            "Authentication: failed",
            "author: Jane",
            "authority: db.example.com",
            "all 3 checks passed",
            "tests passed: 3/3",
            "passive: true",
            "compass: north",
            "bypass: false",
            "passenger count: 4",
            "status: 503 Service Unavailable",
            "HTTP 401 Unauthorized",
            "connection refused (os error 111)",
            "connect to 10.0.0.1:5432: timed out after 2s",
            "admin@example.com is not allowed",
            "git@github.com:org/repo.git",
            "see https://docs.example.com/auth/tokens#reset",
            "tokio_postgres::error::Error: db error",
            "secret::Kind was wrong",
            "the password was rejected",
            "key: value",
            "monkey: banana",
            "total_keys: 42",
            "Basic auth is enabled",
            "12:30:45",
            "",
        ] {
            assert_eq!(redact(text), text, "over-masked: {text:?}");
            assert!(matches!(redact(text), Cow::Borrowed(_)), "copied: {text:?}");
        }
    }

    #[test]
    fn clean_text_is_not_copied() {
        for text in ["connection refused", "timed out after 2s", "HTTP 503", "status: ok"] {
            assert!(matches!(redact(text), Cow::Borrowed(_)), "{text}");
        }
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
            "token=\\\"",
            "é://ü:ö@ä",
            "Authorization: Basic",
            "password:\r",
            "<password>",
            "x:y@",
            "@",
            "::@::",
            "Bearer ",
            "key: ",
            " key:",
        ] {
            let out = redact(input);
            assert!(!out.is_empty() || input.is_empty());
        }
    }

    #[test]
    fn extra_keys_and_rules_apply() {
        let mut redactor = Redactor::new();
        assert!(redactor.add_key("Session"));
        assert!(redactor.add_key("set-cookie"));
        assert!(!redactor.add_key(" - "), "a fragment with no letter matches everything");
        redactor.add_rule(std::sync::Arc::new(|text: &str| {
            if text.contains("sk_live_") {
                Cow::Owned(text.replace("sk_live_abc", "***"))
            } else {
                Cow::Borrowed(text)
            }
        }));
        assert_eq!(redactor.redact("session_id=s3"), "session_id=***");
        assert_eq!(redactor.redact("Set-Cookie: a=b"), "Set-Cookie: ***");
        assert_eq!(redactor.redact("key sk_live_abc used"), "key *** used");
        assert_eq!(redactor.redact("password=x"), "password=***");
        assert!(matches!(redactor.redact("all clear"), Cow::Borrowed(_)));
        assert_eq!(
            redact("session_id=s3"),
            "session_id=s3",
            "the default rules know nothing of it"
        );
    }

    #[test]
    fn details_are_redacted_by_key_and_by_value() {
        let redactor = Redactor::new();
        let mut details = json!({
            "dsn": "postgres://app:s3@db/x",
            "db_password": "s3",
            "api_token": 123_456,
            "credentials": {"user": "app", "pass": "s3"},
            "nested": {"list": ["password=s3", 1, null], "apiKey": ["a", "b"]},
            "secret_or_nothing": null,
            "depth": 3,
            "postgres://u:s3@h/x": "keyed by a URL",
            "status": "authentication failed",
        })
        .as_object()
        .cloned()
        .unwrap();
        redactor.redact_details(&mut details);
        assert_eq!(
            serde_json::Value::Object(details),
            json!({
                "dsn": "postgres://app:***@db/x",
                "db_password": "***",
                "api_token": "***",
                "credentials": "***",
                "nested": {"list": ["password=***", 1, null], "apiKey": "***"},
                "secret_or_nothing": null,
                "depth": 3,
                "postgres://u:***@h/x": "keyed by a URL",
                "status": "authentication failed",
            })
        );
    }

    #[test]
    fn key_names_are_judged_by_their_words() {
        let redactor = Redactor::new();
        for secret in [
            "password",
            "DB_PASSWORD",
            "PGPASSWORD",
            "client_secret",
            "X-API-Key",
            "Secret-Key",
            "access_token",
            "sessionToken",
            "pass",
            "dbPass",
            "DBPass",
            "MYSQL_PWD",
            "oauth",
            "X-Auth",
            "authKey",
            "private key",
            "routing_key",
            "aws_access_key_id",
            "credentials",
            "a_very_long_configuration_key_name_that_ends_in_a_password_and_then_some_more",
        ] {
            assert!(redactor.is_secret_key(secret), "{secret} should be secret");
        }
        for plain in [
            "passed",
            "passive",
            "compass",
            "bypass",
            "authentication",
            "author",
            "authority",
            "key",
            "monkey",
            "total_keys",
            "depth",
            "status",
            "url",
            "username",
            "pool_size",
            "last_error",
            "traffic",
        ] {
            assert!(!redactor.is_secret_key(plain), "{plain} should not be secret");
        }
    }

    /// Secret key names built from a fragment with random affixes.
    fn secret_key() -> impl Strategy<Value = String> {
        let fragment = prop::sample::select(vec![
            "password",
            "PASSWORD",
            "Passwd",
            "pwd",
            "pass",
            "Secret",
            "token",
            "Token",
            "credential",
            "api_key",
            "ApiKey",
            "api-key",
            "auth",
            "private_key",
            "privateKey",
        ]);
        let affix = "[a-z]{0,5}";
        (
            affix,
            prop::sample::select(vec!["", "_", "-", "."]),
            fragment,
            prop::sample::select(vec!["", "_", "-"]),
            affix,
        )
            .prop_map(|(pre, s1, fragment, s2, post)| {
                let pre = if pre.is_empty() {
                    String::new()
                } else {
                    format!("{pre}{s1}")
                };
                let post = if post.is_empty() {
                    String::new()
                } else {
                    format!("{s2}{post}")
                };
                format!("{pre}{fragment}{post}")
            })
            .prop_filter("an ordinary word", |key| {
                let joined: Vec<u8> = super::normalise(key.as_bytes()).collect();
                let word = |w: &str| super::contains(&joined, w.as_bytes());
                !(super::NOT_PASS.iter().any(|w| word(w)) || word("authent") || word("author"))
            })
    }

    proptest! {
        #[test]
        fn never_panics_and_is_idempotent(text in "\\PC{0,80}") {
            let once = redact(&text).into_owned();
            prop_assert_eq!(redact(&once), once.as_str());
        }

        #[test]
        fn punctuation_soup_is_redacted_once_for_all(text in "(pass|token|key|api|[a-z:=@/\"' \\n\\\\<>|])*") {
            let once = redact(&text).into_owned();
            prop_assert_eq!(redact(&once), once.as_str());
        }

        #[test]
        fn secret_key_values_never_survive(
            key in secret_key(),
            separator in prop::sample::select(vec!["=", ": ", ":", " = ", "\":\"", "\": \"", "=\"", ":\n  "]),
            secret in "[A-Za-z0-9]{10,20}",
            before in "[a-z ]{0,10}",
            after in prop::sample::select(vec!["", " next", ", next", "&x=1", "\";", "\n"]),
        ) {
            let text = format!("{before} {key}{separator}{secret}{after}");
            let out = redact(&text);
            prop_assert!(!out.contains(&secret), "{:?} → {:?}", text, out);
        }

        #[test]
        fn url_passwords_never_survive(
            scheme in "(postgres|redis|amqp|mysql|https)",
            user in "[a-z]{0,8}",
            // A password that ends with `/` after a leading number reads as a port and a path.
            password in "[A-Za-z0-9/@:#?!$%*]{1,6}[A-Za-z0-9]{8}([A-Za-z0-9/@:#?!$%*]{0,5}[A-Za-z0-9])?",
            host in "[a-z]{1,8}(:[0-9]{2,5})?",
            path in "(/[a-z0-9]{0,6})?",
        ) {
            let text = format!("dial {scheme}://{user}:{password}@{host}{path} failed");
            let out = redact(&text);
            prop_assert!(!out.contains(&password), "{:?} → {:?}", text, out);
            prop_assert!(out.contains(&format!("@{host}{path} failed")), "{:?} → {:?}", text, out);
        }

        #[test]
        fn dsn_passwords_never_survive(
            user in "[a-z]{1,8}",
            password in "[A-Za-z0-9!$%*]{10,16}",
            host in "(tcp\\([a-z]{1,6}:[0-9]{2,4}\\)|[a-z]{1,8}:[0-9]{2,4}|[a-z]{1,8})",
            db in "(/[a-z]{1,6})?",
        ) {
            let text = format!("open {user}:{password}@{host}{db}: refused");
            let out = redact(&text);
            prop_assert!(!out.contains(&password), "{:?} → {:?}", text, out);
        }

        #[test]
        fn plain_words_are_never_copied(text in "[A-Za-z0-9 .,()/-]{0,80}") {
            prop_assert!(matches!(redact(&text), Cow::Borrowed(_)));
        }
    }
}
