//! Object keys on the wire. Paths are built by hand, never by `url::Url`
//! path manipulation, so `a/./b`, `a/../b`, `a//b` and a trailing `/` stay
//! distinct keys: every byte outside `A-Z a-z 0-9 - _ . ~ /` is escaped, and
//! a slash next to a `.` or `..` segment is sent as `%2F` so no URL parser
//! can collapse the segment (the Python SDK escapes `./` the same way).

use percent_encoding::{AsciiSet, percent_decode_str, utf8_percent_encode};

use super::CosError;
use super::sign::UNRESERVED;

/// Bytes escaped in a key path: everything but unreserved characters and `/`.
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// Encodes a key as the part of the URL path that follows the bucket
/// (without a leading `/`).
pub fn encode_key(key: &str) -> Result<String, CosError> {
    if key.is_empty() || key == "." || key == ".." {
        return Err(CosError::InvalidRequest(format!(
            "object key {key:?} cannot be addressed"
        )));
    }
    let segments: Vec<String> = key
        .split('/')
        .map(|s| utf8_percent_encode(s, PATH).to_string())
        .collect();
    let last = segments.len() - 1;
    let mut out = segments[0].clone();
    for i in 1..segments.len() {
        let escape =
            is_dot_segment(&segments[i - 1]) || (i == last && is_dot_segment(&segments[i]));
        out.push_str(if escape { "%2F" } else { "/" });
        out.push_str(&segments[i]);
    }
    Ok(out)
}

fn is_dot_segment(s: &str) -> bool {
    s == "." || s == ".."
}

/// Decodes a percent-encoded path (or list field) back into a key.
pub fn decode(s: &str) -> Result<String, CosError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| CosError::InvalidResponse(format!("{s:?} does not decode to UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_tricky_keys_distinct() {
        assert_eq!(encode_key("a/./b").unwrap(), "a/.%2Fb");
        assert_eq!(encode_key("a/../b").unwrap(), "a/..%2Fb");
        assert_eq!(encode_key("a/..").unwrap(), "a%2F..");
        assert_eq!(encode_key("./a").unwrap(), ".%2Fa");
        assert_eq!(encode_key("a//b").unwrap(), "a//b");
        assert_eq!(encode_key("dir/").unwrap(), "dir/");
        assert_eq!(encode_key("a b+c%#?~").unwrap(), "a%20b%2Bc%25%23%3F~");
        assert_eq!(encode_key("中").unwrap(), "%E4%B8%AD");
        assert_eq!(encode_key("a\\b").unwrap(), "a%5Cb");
        assert!(encode_key("..").is_err());
        assert!(encode_key("").is_err());
    }

    #[test]
    fn decode_inverts_encode() {
        for key in ["a/./b", "a/..", "x y/+%/中文", "a//b/", "..a/.b."] {
            assert_eq!(decode(&encode_key(key).unwrap()).unwrap(), key);
        }
    }
}
