//! HTTP preconditions (`If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since`, also in their `x-cos-copy-source-` form) and
//! `Range: bytes=` parsing, evaluated in RFC 7232 order.

use std::time::{SystemTime, UNIX_EPOCH};

use hyper::HeaderMap;

/// What the preconditions say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Serve the request.
    Pass,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// Evaluates the conditional headers named `<prefix>If-...` against an
/// object's ETag (unquoted) and modification time.
pub fn evaluate(
    headers: &HeaderMap,
    prefix: &str,
    etag: &str,
    modified: SystemTime,
) -> Precondition {
    let get = |name: &str| {
        headers
            .get(format!("{prefix}{name}").as_str())
            .and_then(|v| v.to_str().ok())
    };
    let modified = whole_seconds(modified);
    let since = |v: &str| httpdate::parse_http_date(v).ok().map(whole_seconds);
    if let Some(v) = get("if-match") {
        if !etag_matches(v, etag) {
            return Precondition::Failed;
        }
    } else if let Some(t) = get("if-unmodified-since").and_then(since)
        && modified > t
    {
        return Precondition::Failed;
    }
    if let Some(v) = get("if-none-match") {
        if etag_matches(v, etag) {
            return Precondition::NotModified;
        }
    } else if let Some(t) = get("if-modified-since").and_then(since)
        && modified <= t
    {
        return Precondition::NotModified;
    }
    Precondition::Pass
}

fn whole_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// True when the comma-separated ETag list `header` names `etag` (or is `*`).
fn etag_matches(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        let candidate = candidate.strip_prefix("W/").unwrap_or(candidate);
        candidate == "*" || candidate.trim_matches('"').eq_ignore_ascii_case(etag)
    })
}

/// What a `Range` header asks of an object of `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: send the whole object.
    Whole,
    /// Bytes `start..=end`.
    Bytes(u64, u64),
    /// The range lies outside the object: 416.
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` or `bytes=-n`. Multiple ranges and
/// syntax errors are ignored (whole object), as HTTP allows.
pub fn parse_range(value: &str, size: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end => Some((start, end)),
        (Ok(start), Err(_)) if b.is_empty() => Some((start, u64::MAX)),
        (Err(_), Ok(suffix)) if a.is_empty() => {
            if suffix == 0 {
                return RangeRequest::Unsatisfiable;
            }
            Some((size.saturating_sub(suffix), u64::MAX))
        }
        _ => None,
    };
    match parsed {
        None => RangeRequest::Whole,
        Some((start, _)) if start >= size => RangeRequest::Unsatisfiable,
        Some((start, end)) => RangeRequest::Bytes(start, end.min(size - 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (n, v) in pairs {
            m.insert(
                hyper::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    #[test]
    fn evaluates_preconditions_in_order() {
        let t = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        let before = httpdate::fmt_http_date(t - Duration::from_secs(10));
        let at = httpdate::fmt_http_date(t);
        let e = "abc";
        assert_eq!(evaluate(&h(&[]), "", e, t), Precondition::Pass);
        assert_eq!(
            evaluate(&h(&[("if-match", "\"abc\"")]), "", e, t),
            Precondition::Pass
        );
        assert_eq!(
            evaluate(&h(&[("if-match", "\"x\", \"abc\"")]), "", e, t),
            Precondition::Pass
        );
        assert_eq!(
            evaluate(&h(&[("if-match", "\"x\"")]), "", e, t),
            Precondition::Failed
        );
        assert_eq!(
            evaluate(&h(&[("if-none-match", "\"abc\"")]), "", e, t),
            Precondition::NotModified
        );
        assert_eq!(
            evaluate(&h(&[("if-none-match", "*")]), "", e, t),
            Precondition::NotModified
        );
        assert_eq!(
            evaluate(&h(&[("if-modified-since", &at)]), "", e, t),
            Precondition::NotModified
        );
        assert_eq!(
            evaluate(&h(&[("if-modified-since", &before)]), "", e, t),
            Precondition::Pass
        );
        assert_eq!(
            evaluate(&h(&[("if-unmodified-since", &before)]), "", e, t),
            Precondition::Failed
        );
        assert_eq!(
            evaluate(&h(&[("if-unmodified-since", &at)]), "", e, t),
            Precondition::Pass
        );
        // If-Match wins over If-Unmodified-Since; If-None-Match over If-Modified-Since.
        assert_eq!(
            evaluate(
                &h(&[("if-match", "\"abc\""), ("if-unmodified-since", &before)]),
                "",
                e,
                t
            ),
            Precondition::Pass
        );
        assert_eq!(
            evaluate(
                &h(&[("if-none-match", "\"x\""), ("if-modified-since", &at)]),
                "",
                e,
                t
            ),
            Precondition::Pass
        );
        let copy = h(&[("x-cos-copy-source-if-match", "\"x\"")]);
        assert_eq!(
            evaluate(&copy, "x-cos-copy-source-", e, t),
            Precondition::Failed
        );
        assert_eq!(evaluate(&copy, "", e, t), Precondition::Pass);
    }

    #[test]
    fn parses_ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeRequest::Bytes(0, 9));
        assert_eq!(
            parse_range("bytes=90-200", 100),
            RangeRequest::Bytes(90, 99)
        );
        assert_eq!(parse_range("bytes=10-", 100), RangeRequest::Bytes(10, 99));
        assert_eq!(parse_range("bytes=-10", 100), RangeRequest::Bytes(90, 99));
        assert_eq!(parse_range("bytes=-1000", 100), RangeRequest::Bytes(0, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 100), RangeRequest::Whole);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeRequest::Whole);
        assert_eq!(parse_range("items=0-1", 100), RangeRequest::Whole);
    }
}
