//! The query parameters of the report endpoints: the filters `?tag=a,b`,
//! `?probe=a,b` and `?exclude=a,b` (each also repeatable), `?verbose` and
//! `?scope=`. List pieces are trimmed, empty ones dropped, at most 50 taken
//! per list. Malformed percent-escapes are kept as written rather than
//! refused.

use crate::model::ProbeResult;

const MAX_ITEMS: usize = 50;

/// What a report answer keeps of the probes: those with any of `tags`
/// (when given), named in `probes` (when given), and not in `exclude`.
/// Tags and names combine by AND; an empty filter keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Filter {
    pub(super) tags: Vec<String>,
    pub(super) probes: Vec<String>,
    pub(super) exclude: Vec<String>,
}

impl Filter {
    pub(super) fn parse(query: Option<&str>) -> Self {
        Self {
            tags: list(query, "tag"),
            probes: list(query, "probe"),
            exclude: list(query, "exclude"),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.probes.is_empty() && self.exclude.is_empty()
    }

    /// Whether `?tag=` and `?probe=` select `probe` (exclusion aside).
    pub(super) fn selects(&self, probe: &ProbeResult) -> bool {
        (self.tags.is_empty() || probe.tags.iter().any(|t| self.tags.contains(t)))
            && (self.probes.is_empty() || self.probes.contains(&probe.name))
    }

    pub(super) fn excludes(&self, name: &str) -> bool {
        self.exclude.iter().any(|e| e == name)
    }

    /// Whether the answer keeps `probe`.
    pub(super) fn keeps(&self, probe: &ProbeResult) -> bool {
        self.selects(probe) && !self.excludes(&probe.name)
    }
}

/// Every value of the `key` parameters, split on commas.
fn list(query: Option<&str>, key: &str) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    for (k, value) in pairs(query) {
        if k != key {
            continue;
        }
        for piece in value.split(',') {
            let piece = piece.trim();
            if items.len() == MAX_ITEMS {
                return items;
            }
            if !piece.is_empty() && !items.iter().any(|t| t == piece) {
                items.push(piece.to_owned());
            }
        }
    }
    items
}

/// The decoded `key=value` pairs of a query, in order.
fn pairs(query: Option<&str>) -> impl Iterator<Item = (String, String)> + '_ {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
}

/// Whether the query has a `verbose` parameter, whatever its value (as the
/// Kubernetes API server reads it: `?verbose`, `?verbose=1`, `?verbose=true`).
pub(super) fn verbose(query: Option<&str>) -> bool {
    pairs(query).any(|(key, _)| key == "verbose")
}

/// The value of the first `scope=` parameter, if any.
pub(super) fn scope(query: Option<&str>) -> Option<String> {
    pairs(query).find_map(|(key, value)| (key == "scope").then(|| value.trim().to_owned()))
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
    use super::{Filter, list, scope, verbose};
    use crate::model::{ProbeResult, Status};

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
            assert_eq!(list(*query, "tag"), *want, "{query:?}");
        }
    }

    #[test]
    fn takes_at_most_fifty() {
        let many: Vec<String> = (0..80).map(|i| format!("t{i}")).collect();
        let query = format!("tag={}", many.join(","));
        assert_eq!(list(Some(&query), "tag").len(), 50);
    }

    #[test]
    fn every_list_is_repeatable_and_comma_separated() {
        let filter = Filter::parse(Some("probe=db,cache&exclude=a&exclude=b,%20c&tag=x&probe=db"));
        assert_eq!(filter.probes, ["db", "cache"]);
        assert_eq!(filter.exclude, ["a", "b", "c"]);
        assert_eq!(filter.tags, ["x"]);
        assert!(Filter::parse(Some("probe=&exclude=,&tag=%20")).is_empty());
    }

    #[test]
    fn tags_and_names_combine_by_and_and_exclusion_wins() {
        let mut db = ProbeResult::new("db", Status::Healthy);
        db.tags = vec!["storage".into()];
        let mut cache = ProbeResult::new("cache", Status::Healthy);
        cache.tags = vec!["storage".into(), "fast".into()];
        let keeps = |query: &str| -> Vec<&str> {
            let filter = Filter::parse(Some(query));
            [&db, &cache]
                .into_iter()
                .filter(|p| filter.keeps(p))
                .map(|p| p.name.as_str())
                .collect()
        };
        assert_eq!(keeps(""), ["db", "cache"]);
        assert_eq!(keeps("tag=fast"), ["cache"]);
        assert_eq!(keeps("probe=db,cache&tag=fast"), ["cache"]);
        assert_eq!(keeps("probe=db&tag=fast"), Vec::<&str>::new());
        assert_eq!(keeps("tag=storage&exclude=db"), ["cache"]);
        assert_eq!(keeps("probe=db&exclude=db"), Vec::<&str>::new());
    }

    #[test]
    fn verbose_is_a_presence_flag_and_scope_a_value() {
        for yes in ["verbose", "verbose=", "verbose=1", "verbose=false", "tag=x&verbose"] {
            assert!(verbose(Some(yes)), "{yes}");
        }
        for no in ["", "tag=verbose", "verbosex", "v"] {
            assert!(!verbose(Some(no)), "{no}");
        }
        assert!(!verbose(None));
        assert_eq!(scope(Some("scope=%20fleet")), Some("fleet".to_owned()));
        assert_eq!(scope(Some("tag=x")), None);
    }
}
