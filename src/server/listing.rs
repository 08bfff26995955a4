//! List Objects (v1) over a sorted index: prefix, delimiter, marker and
//! max-keys (objects and common prefixes together). After a common prefix is
//! emitted the walk jumps straight past every key that shares it (one
//! `BTreeMap::range` seek), so a folder of 100,000 keys costs one step.

use std::collections::BTreeMap;
use std::ops::Bound;

/// The parameters of one listing request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    /// Only keys starting with this.
    pub prefix: String,
    /// Group keys on this string (empty: no grouping).
    pub delimiter: String,
    /// Only entries after this.
    pub marker: String,
    /// At most this many entries (objects + prefixes).
    pub max_keys: usize,
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing<V> {
    /// Objects, in key order.
    pub objects: Vec<(String, V)>,
    /// Common prefixes, in order.
    pub prefixes: Vec<String>,
    /// Whether entries remain after this page.
    pub truncated: bool,
    /// The last entry of this page, when truncated.
    pub next_marker: Option<String>,
}

/// The smallest string greater than every string starting with `prefix`,
/// when one exists: `prefix` with its last character incremented.
pub fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The common prefix `key` rolls up into, if any.
fn common_prefix<'k>(key: &'k str, prefix: &str, delimiter: &str) -> Option<&'k str> {
    if delimiter.is_empty() {
        return None;
    }
    let rest = key.get(prefix.len()..)?;
    rest.find(delimiter)
        .map(|i| &key[..prefix.len() + i + delimiter.len()])
}

/// Where the walk starts: after the marker (and after the whole group the
/// marker belongs to, since that group sorts before it), never before the prefix.
fn start_bound(p: &ListParams) -> Bound<String> {
    if p.marker.as_str() < p.prefix.as_str() {
        return Bound::Included(p.prefix.clone());
    }
    if p.marker.starts_with(&p.prefix)
        && let Some(group) = common_prefix(&p.marker, &p.prefix, &p.delimiter)
        && let Some(after) = successor(group)
    {
        return Bound::Included(after);
    }
    Bound::Excluded(p.marker.clone())
}

/// Lists one page of `index`.
pub fn list<V: Clone>(index: &BTreeMap<String, V>, p: &ListParams) -> Listing<V> {
    let mut out = Listing {
        objects: Vec::new(),
        prefixes: Vec::new(),
        truncated: false,
        next_marker: None,
    };
    if p.max_keys == 0 {
        return out;
    }
    let mut count = 0;
    let mut lower = start_bound(p);
    'walk: loop {
        let range = index.range::<str, _>((lower.as_ref().map(String::as_str), Bound::Unbounded));
        let mut jump = None;
        for (key, value) in range {
            if !key.starts_with(&p.prefix) {
                break 'walk;
            }
            let group = common_prefix(key, &p.prefix, &p.delimiter);
            if let (Some(g), Some(last)) = (group, out.prefixes.last())
                && g == last
            {
                continue; // only when the group has no successor to jump to
            }
            if count == p.max_keys {
                out.truncated = true;
                break 'walk;
            }
            count += 1;
            match group {
                Some(g) => {
                    out.prefixes.push(g.to_string());
                    out.next_marker = Some(g.to_string());
                    if let Some(after) = successor(g) {
                        jump = Some(after);
                        break;
                    }
                }
                None => {
                    out.objects.push((key.clone(), value.clone()));
                    out.next_marker = Some(key.clone());
                }
            }
        }
        match jump {
            Some(after) => lower = Bound::Included(after),
            None => break,
        }
    }
    if !out.truncated {
        out.next_marker = None;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(keys: &[&str]) -> BTreeMap<String, ()> {
        keys.iter().map(|k| (k.to_string(), ())).collect()
    }

    fn params(prefix: &str, delimiter: &str, marker: &str, max_keys: usize) -> ListParams {
        ListParams {
            prefix: prefix.into(),
            delimiter: delimiter.into(),
            marker: marker.into(),
            max_keys,
        }
    }

    fn keys(l: &Listing<()>) -> Vec<&str> {
        l.objects.iter().map(|(k, _)| k.as_str()).collect()
    }

    const KEYS: &[&str] = &[
        "a", "a/", "a/1", "a/2", "a/b/c", "a0", "b/x", "b/y", "c", "中/文",
    ];

    #[test]
    fn lists_everything_without_a_delimiter() {
        let l = list(&index(KEYS), &params("", "", "", 1000));
        assert_eq!(keys(&l), KEYS);
        assert!(!l.truncated && l.next_marker.is_none() && l.prefixes.is_empty());
    }

    #[test]
    fn groups_on_the_delimiter() {
        let l = list(&index(KEYS), &params("", "/", "", 1000));
        assert_eq!(keys(&l), ["a", "a0", "c"]);
        assert_eq!(l.prefixes, ["a/", "b/", "中/"]);
        let l = list(&index(KEYS), &params("a/", "/", "", 1000));
        assert_eq!(keys(&l), ["a/", "a/1", "a/2"]);
        assert_eq!(l.prefixes, ["a/b/"]);
    }

    #[test]
    fn paginates_over_objects_and_prefixes_together() {
        let idx = index(KEYS);
        let mut marker = String::new();
        let mut seen = Vec::new();
        loop {
            let l = list(&idx, &params("", "/", &marker, 2));
            assert!(l.objects.len() + l.prefixes.len() <= 2);
            seen.extend(keys(&l).iter().map(|k| k.to_string()));
            seen.extend(l.prefixes.iter().cloned());
            if !l.truncated {
                assert!(l.next_marker.is_none());
                break;
            }
            marker = l.next_marker.unwrap();
        }
        seen.sort();
        assert_eq!(seen, ["a", "a/", "a0", "b/", "c", "中/"]);
    }

    #[test]
    fn a_marker_inside_a_group_skips_the_group() {
        let l = list(&index(KEYS), &params("", "/", "a/1", 1000));
        assert_eq!(keys(&l), ["a0", "c"]);
        assert_eq!(l.prefixes, ["b/", "中/"]);
        let l = list(&index(KEYS), &params("", "", "a/1", 2));
        assert_eq!(keys(&l), ["a/2", "a/b/c"]);
        assert_eq!(l.next_marker.as_deref(), Some("a/b/c"));
    }

    #[test]
    fn honours_the_prefix_and_markers_before_it() {
        let l = list(&index(KEYS), &params("b/", "", "a", 1000));
        assert_eq!(keys(&l), ["b/x", "b/y"]);
        let l = list(&index(KEYS), &params("b/", "", "b/x", 1000));
        assert_eq!(keys(&l), ["b/y"]);
        let l = list(&index(KEYS), &params("zz", "/", "", 1000));
        assert!(l.objects.is_empty() && l.prefixes.is_empty() && !l.truncated);
    }

    #[test]
    fn truncation_is_exact() {
        let idx = index(&["x", "y"]);
        let l = list(&idx, &params("", "", "", 2));
        assert!(!l.truncated, "nothing remains after the page");
        let l = list(&idx, &params("", "", "", 1));
        assert!(l.truncated);
        assert_eq!(l.next_marker.as_deref(), Some("x"));
        assert!(list(&idx, &params("", "", "", 0)).objects.is_empty());
    }

    #[test]
    fn jumps_past_a_large_group_in_one_step() {
        let mut idx: BTreeMap<String, ()> =
            (0..100_000).map(|i| (format!("big/{i:06}"), ())).collect();
        idx.insert("after".into(), ());
        idx.insert("zz".into(), ());
        // How fast (one step, not a scan): `cargo bench --bench server`.
        let l = list(&idx, &params("", "/", "", 1000));
        assert_eq!(l.prefixes, ["big/"]);
        assert_eq!(keys(&l), ["after", "zz"]);
    }

    #[test]
    fn successor_bounds_exactly_the_prefixed_keys() {
        assert_eq!(successor("a/").as_deref(), Some("a0"));
        assert_eq!(successor("\u{d7ff}").as_deref(), Some("\u{e000}"));
        assert_eq!(successor("a\u{10ffff}").as_deref(), Some("b"));
        assert_eq!(successor("\u{10ffff}"), None);
        assert_eq!(successor(""), None);
    }

    #[test]
    fn multi_byte_delimiters_work() {
        let idx = index(&["a中b", "a中c", "ab"]);
        let l = list(&idx, &params("", "中", "", 1000));
        assert_eq!(l.prefixes, ["a中"]);
        assert_eq!(keys(&l), ["ab"]);
    }
}
