//! cosfs- and s3fs-compatible passwd files, refused when anyone but the
//! owner could read them (both tools allow group-read only for their
//! system-wide file, `/etc/passwd-cosfs` or `/etc/passwd-s3fs`).
//! - Format 1 (permanent keys): `bucket:SecretId:SecretKey` lines and one
//!   optional default `SecretId:SecretKey` line, `#` comments. cosfs names
//!   a bucket `name-appid` or `name`; S3 buckets have no appid, so an s3fs
//!   line matches the bucket name exactly.
//! - Format 2 (temporary keys, cosfs only): `COSAccessKeyId=`,
//!   `COSSecretKey=`, `COSAccessToken=` and
//!   `COSAccessTokenExpire=%Y-%m-%dT%H:%M:%S` (GMT) lines. Whatever renews
//!   the keys rewrites the file; [`PasswdProvider`] re-reads it, and the
//!   refresher does so before the keys expire.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::clock::parse_time;
use super::{Credentials, CredsError, FetchFuture, Provider};

/// Why a passwd file cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswdError(pub String);

impl std::fmt::Display for PasswdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PasswdError {}

/// cosfs's system-wide passwd file, which may be group-readable.
pub const SYSTEM_PASSWD: &str = "/etc/passwd-cosfs";

/// Whose passwd files: cosfs's (COS keys) or s3fs's (AWS keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `~/.passwd-cosfs`, `/etc/passwd-cosfs`; `name-appid` buckets;
    /// format 2 too.
    Cosfs,
    /// `~/.passwd-s3fs`, `/etc/passwd-s3fs`; bucket names matched exactly.
    S3fs,
}

impl Dialect {
    /// The system-wide file, the only one that may be group-readable.
    pub fn system_file(self) -> &'static str {
        match self {
            Dialect::Cosfs => SYSTEM_PASSWD,
            Dialect::S3fs => "/etc/passwd-s3fs",
        }
    }

    /// The per-user file's name, in the home directory.
    pub fn home_file(self) -> &'static str {
        match self {
            Dialect::Cosfs => ".passwd-cosfs",
            Dialect::S3fs => ".passwd-s3fs",
        }
    }

    /// True when a line's bucket field names `bucket`.
    fn names_bucket(self, field: &str, bucket: &str) -> bool {
        match self {
            Dialect::Cosfs => field == bucket || Some(field) == bare_name(bucket),
            Dialect::S3fs => field == bucket,
        }
    }
}

/// `name` of a `name-appid` bucket.
fn bare_name(bucket: &str) -> Option<&str> {
    bucket.rsplit_once('-').map(|(name, _)| name)
}

/// Reads the credentials for `bucket` from the cosfs passwd file at
/// `path`: permanent keys (format 1) or temporary ones with `expires_at`
/// (format 2).
pub fn load(path: &Path, bucket: &str) -> Result<Credentials, PasswdError> {
    load_as(path, bucket, Dialect::Cosfs)
}

/// [`load`] for either tool's files.
pub fn load_as(path: &Path, bucket: &str, dialect: Dialect) -> Result<Credentials, PasswdError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| PasswdError(format!("cannot read passwd file {}: {e}", path.display())))?;
    check_mode_as(path, meta.permissions().mode(), dialect)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| PasswdError(format!("cannot read passwd file {}: {e}", path.display())))?;
    let parsed = if dialect == Dialect::Cosfs && is_temporary_format(&text) {
        parse_temporary(&text)
    } else {
        parse_as(&text, bucket, dialect)
    };
    parsed.map_err(|m| PasswdError(format!("passwd file {}: {m}", path.display())))
}

/// Refuses files readable or writable by others (and by the group, except
/// read for cosfs's system file).
pub fn check_mode(path: &Path, mode: u32) -> Result<(), PasswdError> {
    check_mode_as(path, mode, Dialect::Cosfs)
}

/// [`check_mode`] with `dialect`'s system file.
pub fn check_mode_as(path: &Path, mode: u32, dialect: Dialect) -> Result<(), PasswdError> {
    let group_allowed = if path == Path::new(dialect.system_file()) {
        0o040
    } else {
        0
    };
    let bad = mode & 0o077 & !group_allowed;
    if bad != 0 || mode & 0o100 != 0 {
        return Err(PasswdError(format!(
            "passwd file {} has mode {:o}, so other users may read your keys; run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

/// Finds the line for `bucket` (as `name-appid` or bare `name`), else the
/// default line.
pub fn parse(text: &str, bucket: &str) -> Result<Credentials, String> {
    parse_as(text, bucket, Dialect::Cosfs)
}

/// [`parse`] with `dialect`'s bucket matching.
pub fn parse_as(text: &str, bucket: &str, dialect: Dialect) -> Result<Credentials, String> {
    let mut default = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.contains([' ', '\t']) || line.starts_with('[') {
            return Err(format!(
                "line {} must be bucket:SecretId:SecretKey without spaces",
                n + 1
            ));
        }
        let fields: Vec<&str> = line.split(':').collect();
        match fields.as_slice() {
            [b, id, key] if dialect.names_bucket(b, bucket) => {
                return Ok(Credentials::permanent(id, key));
            }
            [_, _, _] => {}
            [id, key] if default.is_none() => default = Some(Credentials::permanent(id, key)),
            [_, _] => {
                return Err(format!(
                    "line {}: only one default SecretId:SecretKey line is allowed",
                    n + 1
                ));
            }
            _ => {
                return Err(format!(
                    "line {} must be bucket:SecretId:SecretKey or SecretId:SecretKey",
                    n + 1
                ));
            }
        }
    }
    default.ok_or_else(|| {
        format!("no line for bucket {bucket} and no default SecretId:SecretKey line")
    })
}

/// The keys of format 2, in the order cosfs documents them.
const TEMPORARY_KEYS: [&str; 4] = [
    "COSAccessKeyId",
    "COSSecretKey",
    "COSAccessToken",
    "COSAccessTokenExpire",
];

/// True when the file is in format 2 (any line sets one of its keys).
pub fn is_temporary_format(text: &str) -> bool {
    text.lines().any(|line| {
        line.split_once('=')
            .is_some_and(|(k, _)| TEMPORARY_KEYS.contains(&k))
    })
}

/// Parses format 2. Unknown keys are ignored, as cosfs does.
pub fn parse_temporary(text: &str) -> Result<Credentials, String> {
    let mut values: [Option<&str>; 4] = [None; 4];
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "line {} must be KEY=VALUE (COSAccessKeyId=..., COSSecretKey=..., COSAccessToken=..., COSAccessTokenExpire=...)",
                n + 1
            ));
        };
        if let Some(i) = TEMPORARY_KEYS.iter().position(|k| *k == key) {
            values[i] = Some(value);
        }
    }
    let [Some(id), Some(key), Some(token), Some(expire)] = values else {
        let missing: Vec<&str> = TEMPORARY_KEYS
            .iter()
            .zip(values)
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| *k)
            .collect();
        return Err(format!("temporary keys need {} too", missing.join(", ")));
    };
    let expires_at = parse_time(expire).ok_or_else(|| {
        format!("COSAccessTokenExpire {expire:?} is not a GMT time like 2017-08-29T20:30:00")
    })?;
    Ok(Credentials::temporary(id, key, token, expires_at))
}

/// Reads a passwd file on every fetch (format 1 or 2).
pub struct PasswdProvider {
    path: PathBuf,
    bucket: String,
}

impl PasswdProvider {
    /// A provider reading `path` for `bucket`.
    pub fn new(path: &Path, bucket: &str) -> PasswdProvider {
        PasswdProvider {
            path: path.to_path_buf(),
            bucket: bucket.to_string(),
        }
    }
}

impl Provider for PasswdProvider {
    fn name(&self) -> String {
        format!("passwd file {}", self.path.display())
    }

    fn fetch(&self) -> FetchFuture<'_> {
        // A few hundred bytes from a local file: not worth a blocking thread.
        let result = load(&self.path, &self.bucket).map_err(|e| CredsError::Config(e.0));
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::creds::clock::unix_seconds;

    #[test]
    fn picks_the_bucket_line_then_the_default() {
        let text = "# keys\r\nother-1:A:B\nexamplebucket-1250000000:ID1:KEY1\nID0:KEY0\n";
        assert_eq!(
            parse(text, "examplebucket-1250000000").unwrap().secret_id,
            "ID1"
        );
        assert_eq!(
            parse("examplebucket:ID2:K\n", "examplebucket-1250000000")
                .unwrap()
                .secret_id,
            "ID2"
        );
        assert_eq!(parse(text, "nothere-1").unwrap().secret_key, "KEY0");
        assert!(
            parse("a:b:c\n", "x-1")
                .unwrap_err()
                .contains("no line for bucket")
        );
        assert!(parse("ID KEY\n", "x-1").is_err());
        assert!(
            parse("A:B\nC:D\n", "x-1")
                .unwrap_err()
                .contains("only one default")
        );
    }

    #[test]
    fn refuses_readable_files() {
        let p = Path::new("/home/u/.passwd-cosfs");
        assert!(check_mode(p, 0o600).is_ok());
        let e = check_mode(p, 0o644).unwrap_err().0;
        assert!(
            e.contains("chmod 600") && e.contains(".passwd-cosfs"),
            "{e}"
        );
        assert!(check_mode(p, 0o640).is_err());
        assert!(check_mode(Path::new(SYSTEM_PASSWD), 0o640).is_ok());
        assert!(check_mode(Path::new(SYSTEM_PASSWD), 0o660).is_err());
    }

    #[test]
    fn s3fs_lines_name_the_bucket_exactly() {
        let text = "# s3fs\nmy:IDBARE:K\nmy-bucket:IDFULL:K\nID0:KEY0\n";
        let s3fs = |bucket| parse_as(text, bucket, Dialect::S3fs).unwrap().secret_id;
        assert_eq!(s3fs("my-bucket"), "IDFULL");
        assert_eq!(s3fs("my-other"), "ID0", "no appid to strip");
        assert_eq!(
            parse_as("my:IDBARE:K\n", "my-other", Dialect::Cosfs)
                .unwrap()
                .secret_id,
            "IDBARE"
        );
        let e = parse_as("my:IDBARE:K\n", "my-other", Dialect::S3fs).unwrap_err();
        assert!(e.contains("no line for bucket my-other"), "{e}");
    }

    #[test]
    fn only_the_dialects_system_file_may_be_group_readable() {
        let s3fs_etc = Path::new(Dialect::S3fs.system_file());
        assert!(check_mode_as(s3fs_etc, 0o640, Dialect::S3fs).is_ok());
        assert!(check_mode_as(s3fs_etc, 0o640, Dialect::Cosfs).is_err());
        assert!(check_mode_as(Path::new(SYSTEM_PASSWD), 0o640, Dialect::S3fs).is_err());
        let e = check_mode_as(Path::new("/h/.passwd-s3fs"), 0o604, Dialect::S3fs).unwrap_err();
        assert!(e.0.contains("chmod 600 /h/.passwd-s3fs"), "{e}");
    }

    #[test]
    fn s3fs_files_have_no_temporary_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd-s3fs");
        let text = "COSAccessKeyId=A\nCOSSecretKey=B\nCOSAccessToken=T\nCOSAccessTokenExpire=2030-01-01T00:00:00\n";
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load_as(&path, "b", Dialect::S3fs).unwrap_err().0;
        assert!(
            e.contains("line 1 must be bucket:SecretId:SecretKey"),
            "{e}"
        );
        assert!(!e.contains("=B"), "{e}");
        assert!(
            load_as(&path, "b", Dialect::Cosfs)
                .unwrap()
                .expires_at
                .is_some()
        );
    }

    #[test]
    fn parses_temporary_keys() {
        let text = "# from the token service\r\nCOSAccessKeyId=AKIDtmp\nCOSSecretKey=SK=with=equals\r\n\
                    COSAccessToken=TOKEN\nCOSAccessTokenExpire=2017-08-29T20:30:00\nOther=1\n";
        assert!(is_temporary_format(text));
        let c = parse_temporary(text).unwrap();
        assert_eq!(c.secret_id, "AKIDtmp");
        assert_eq!(c.secret_key, "SK=with=equals");
        assert_eq!(c.session_token.as_deref(), Some("TOKEN"));
        assert_eq!(unix_seconds(c.expires_at.unwrap()), 1504038600);
        assert!(!is_temporary_format("b-1:ID:KEY\n"));
    }

    #[test]
    fn temporary_format_errors_say_what_is_missing() {
        let e = parse_temporary("COSAccessKeyId=A\nCOSSecretKey=B\n").unwrap_err();
        assert!(e.contains("COSAccessToken, COSAccessTokenExpire"), "{e}");
        let e = parse_temporary(
            "COSAccessKeyId=A\nCOSSecretKey=B\nCOSAccessToken=T\nCOSAccessTokenExpire=tomorrow\n",
        )
        .unwrap_err();
        assert!(e.contains("2017-08-29T20:30:00"), "{e}");
        assert!(!e.contains("=B"), "{e}");
        let e = parse_temporary("COSAccessKeyId=A\njunk\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }

    #[tokio::test]
    async fn the_provider_rereads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        let write = |id: &str, expire: &str| {
            let text = format!(
                "COSAccessKeyId={id}\nCOSSecretKey=K\nCOSAccessToken=T\nCOSAccessTokenExpire={expire}\n"
            );
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        };
        write("AKID1", "2030-01-01T00:00:00");
        let p = PasswdProvider::new(&path, "b-1");
        assert_eq!(p.fetch().await.unwrap().secret_id, "AKID1");
        write("AKID2", "2030-01-01T01:00:00");
        let c = p.fetch().await.unwrap();
        assert_eq!(c.secret_id, "AKID2");
        assert_eq!(unix_seconds(c.expires_at.unwrap()), 1893459600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = p.fetch().await.unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        assert!(p.name().starts_with("passwd file "));
    }
}
