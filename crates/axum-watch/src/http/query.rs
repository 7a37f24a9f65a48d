//! The `?tag=` filter: `tag=a,b` (or repeated `tag=` parameters), pieces
//! trimmed, empty ones dropped, at most 50 taken. Malformed percent-escapes
//! are kept as written rather than refused.

const MAX_TAGS: usize = 50;

/// The tags a query asks for; empty means no filter.
pub(super) fn tags(query: Option<&str>) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for pair in query.unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(key) != "tag" {
            continue;
        }
        for piece in decode(value).split(',') {
            let piece = piece.trim();
            if tags.len() == MAX_TAGS {
                return tags;
            }
            if !piece.is_empty() && !tags.iter().any(|t| t == piece) {
                tags.push(piece.to_owned());
            }
        }
    }
    tags
}

/// The value of the first `scope=` parameter, if any.
pub(super) fn scope(query: Option<&str>) -> Option<String> {
    query.unwrap_or_default().split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key) == "scope").then(|| decode(value).trim().to_owned())
    })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::tags;

    #[test]
    fn parses_like_the_contract() {
        let cases: &[(Option<&str>, &[&str])] = &[
            (None, &[]),
            (Some(""), &[]),
            (Some("tag="), &[]),
            (Some("tag=%20,%20"), &[]),
            (Some("tag=db"), &["db"]),
            (Some("tag=db,%20cache%20,,db"), &["db", "cache"]),
            (Some("other=1&tag=a+b&tag=c"), &["a b", "c"]),
            (Some("t%61g=x"), &["x"]),
            (Some("tag=100%&x"), &["100%"]),
            (Some("tag"), &[]),
        ];
        for (query, want) in cases {
            assert_eq!(tags(*query), *want, "{query:?}");
        }
    }

    #[test]
    fn takes_at_most_fifty() {
        let many: Vec<String> = (0..80).map(|i| format!("t{i}")).collect();
        let query = format!("tag={}", many.join(","));
        assert_eq!(tags(Some(&query)).len(), 50);
    }
}
