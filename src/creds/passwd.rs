//! cosfs-compatible passwd files: `bucket:SecretId:SecretKey` lines and one
//! optional default `SecretId:SecretKey` line, `#` comments; refused when
//! anyone but the owner could read them (cosfs allows group-read only for
//! `/etc/passwd-cosfs`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::Credentials;

/// Why a passwd file cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswdError(pub String);

impl std::fmt::Display for PasswdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PasswdError {}

/// The system-wide passwd file, which may be group-readable.
pub const SYSTEM_PASSWD: &str = "/etc/passwd-cosfs";

/// Reads the credentials for `bucket` from the passwd file at `path`.
pub fn load(path: &Path, bucket: &str) -> Result<Credentials, PasswdError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| PasswdError(format!("cannot read passwd file {}: {e}", path.display())))?;
    check_mode(path, meta.permissions().mode())?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| PasswdError(format!("cannot read passwd file {}: {e}", path.display())))?;
    parse(&text, bucket).map_err(|m| PasswdError(format!("passwd file {}: {m}", path.display())))
}

/// Refuses files readable or writable by others (and by the group, except
/// read for the system file).
pub fn check_mode(path: &Path, mode: u32) -> Result<(), PasswdError> {
    let group_allowed = if path == Path::new(SYSTEM_PASSWD) {
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
    let bare = bucket
        .rsplit_once('-')
        .map(|(name, _)| name)
        .unwrap_or(bucket);
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
            [b, id, key] if *b == bucket || *b == bare => {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
