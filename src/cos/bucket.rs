//! The bucket-name rules: COS's `<name>-<appid>`, shared by the client
//! (flag checks) and the embedded server (which buckets it serves and
//! routes to), and S3's, for S3 targets.

/// True for `<name>-<appid>`: a name of lowercase letters, digits and `-`
/// that does not start with `-`, then `-` and a decimal APPID, 64
/// characters at most in all.
pub fn is_valid_name(bucket: &str) -> bool {
    let Some((name, appid)) = bucket.rsplit_once('-') else {
        return false;
    };
    !name.is_empty()
        && name.len() + appid.len() < 64
        && !appid.is_empty()
        && appid.bytes().all(|b| b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

/// True for a name S3 accepts: 3 to 63 lowercase letters, digits, `.`
/// and `-`, starting and ending with a letter or digit, no `..`, and not
/// an IPv4 address.
pub fn is_valid_s3_name(bucket: &str) -> bool {
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && edge(bucket.bytes().next())
        && edge(bucket.bytes().last())
        && !bucket.contains("..")
        && bucket.parse::<std::net::Ipv4Addr>().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_cos_bucket_names() {
        for good in [
            "examplebucket-1250000000",
            "examplebucket-1-1250000000",
            "mybucket123-1250000000",
            "1-newproject-1250000000",
            "a-b-1",
        ] {
            assert!(is_valid_name(good), "{good}");
        }
        let longest = format!("{}-1250000000", "a".repeat(53));
        assert_eq!(longest.len(), 64);
        assert!(is_valid_name(&longest));
    }

    #[test]
    fn refuses_other_names() {
        let too_long = format!("{}-1250000000", "a".repeat(54));
        for bad in [
            "examplebucket",
            "Bucket-1",
            "b-",
            "-1",
            "--1",
            "b-12a",
            "b_x-1",
            "b.x-1",
            "../x-1",
            "",
            too_long.as_str(),
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn s3_names_follow_s3s_rule() {
        for good in ["bench", "my.bucket-1", "abc", "examplebucket-1250000000"] {
            assert!(is_valid_s3_name(good), "{good}");
        }
        let long = "a".repeat(64);
        for bad in [
            "ab",
            "Bench",
            "-ab",
            "ab-",
            "a..b",
            "a_b",
            "192.168.1.1",
            long.as_str(),
        ] {
            assert!(!is_valid_s3_name(bad), "{bad}");
        }
    }
}
