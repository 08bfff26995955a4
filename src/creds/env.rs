//! Keys from the environment. COS keys: cosmount's `COS_SECRET_ID`/
//! `COS_SECRET_KEY`/`COS_SESSION_TOKEN`, then Tencent Cloud's
//! `TENCENTCLOUD_SECRET_ID`/`TENCENTCLOUD_SECRET_KEY`/
//! `TENCENTCLOUD_SESSION_TOKEN`. AWS keys: the AWS CLI's and SDKs'
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, then
//! s3fs's `AWSACCESSKEYID`/`AWSSECRETACCESSKEY`/`AWSSESSIONTOKEN`. Neither
//! family reads the other's variables. Variables are read through a lookup
//! function so tests never touch the process environment. An empty
//! variable counts as unset; a half-given pair is an error rather than
//! silently skipped.

use super::{Credentials, CredsError};

/// Looks an environment variable up (`std::env::var(..).ok()` in production).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// One family of variables.
struct Family {
    id: &'static str,
    key: &'static str,
    token: &'static str,
}

/// The COS keys' variables, in precedence order.
const TENCENT: [Family; 2] = [
    Family {
        id: "COS_SECRET_ID",
        key: "COS_SECRET_KEY",
        token: "COS_SESSION_TOKEN",
    },
    Family {
        id: "TENCENTCLOUD_SECRET_ID",
        key: "TENCENTCLOUD_SECRET_KEY",
        token: "TENCENTCLOUD_SESSION_TOKEN",
    },
];

/// The AWS keys' variables, in precedence order.
const AWS: [Family; 2] = [
    Family {
        id: "AWS_ACCESS_KEY_ID",
        key: "AWS_SECRET_ACCESS_KEY",
        token: "AWS_SESSION_TOKEN",
    },
    Family {
        id: "AWSACCESSKEYID",
        key: "AWSSECRETACCESSKEY",
        token: "AWSSESSIONTOKEN",
    },
];

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// True when any of the COS key variables is set (so `env` counts as
/// configured).
pub fn is_configured(env: EnvLookup<'_>) -> bool {
    any_set(env, &TENCENT)
}

/// [`is_configured`] for the AWS key variables.
pub fn is_aws_configured(env: EnvLookup<'_>) -> bool {
    any_set(env, &AWS)
}

fn any_set(env: EnvLookup<'_>, families: &[Family]) -> bool {
    families
        .iter()
        .any(|f| get(env, f.id).is_some() || get(env, f.key).is_some())
}

/// The COS keys of the first complete family, with a description of where
/// they came from; `None` when no variable is set.
pub fn load(env: EnvLookup<'_>) -> Result<Option<(Credentials, String)>, CredsError> {
    load_first(env, &TENCENT)
}

/// [`load`] for the AWS key variables.
pub fn load_aws(env: EnvLookup<'_>) -> Result<Option<(Credentials, String)>, CredsError> {
    load_first(env, &AWS)
}

fn load_first(
    env: EnvLookup<'_>,
    families: &[Family],
) -> Result<Option<(Credentials, String)>, CredsError> {
    for f in families {
        match (get(env, f.id), get(env, f.key)) {
            (Some(id), Some(key)) => {
                let mut creds = Credentials::permanent(&id, &key);
                creds.session_token = get(env, f.token);
                return Ok(Some((creds, format!("environment {}/{}", f.id, f.key))));
            }
            (Some(_), None) => {
                return Err(CredsError::Config(format!(
                    "{} is set but {} is not: set both, or unset {}",
                    f.id, f.key, f.id
                )));
            }
            (None, Some(_)) => {
                return Err(CredsError::Config(format!(
                    "{} is set but {} is not: set both, or unset {}",
                    f.key, f.id, f.key
                )));
            }
            (None, None) => {}
        }
    }
    Ok(None)
}

fn get(env: EnvLookup<'_>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn cos_variables_come_first() {
        let env = lookup(&[
            ("TENCENTCLOUD_SECRET_ID", "TC"),
            ("TENCENTCLOUD_SECRET_KEY", "TK"),
            ("COS_SECRET_ID", "CI"),
            ("COS_SECRET_KEY", "CK"),
            ("COS_SESSION_TOKEN", "CT"),
        ]);
        let (creds, origin) = load(&env).unwrap().unwrap();
        assert_eq!(creds.secret_id, "CI");
        assert_eq!(creds.session_token.as_deref(), Some("CT"));
        assert_eq!(origin, "environment COS_SECRET_ID/COS_SECRET_KEY");
    }

    #[test]
    fn tencentcloud_variables_are_read() {
        let env = lookup(&[
            ("COS_SECRET_ID", ""),
            ("TENCENTCLOUD_SECRET_ID", "TC"),
            ("TENCENTCLOUD_SECRET_KEY", "TK"),
            ("TENCENTCLOUD_SESSION_TOKEN", "TT"),
        ]);
        assert!(is_configured(&env));
        let (creds, origin) = load(&env).unwrap().unwrap();
        assert_eq!(
            (creds.secret_id.as_str(), creds.secret_key.as_str()),
            ("TC", "TK")
        );
        assert_eq!(creds.session_token.as_deref(), Some("TT"));
        assert!(origin.contains("TENCENTCLOUD_SECRET_ID"));
    }

    #[test]
    fn aws_variables_then_s3fs_ones_and_no_cos_ones() {
        let env = lookup(&[
            ("COS_SECRET_ID", "CI"),
            ("COS_SECRET_KEY", "CK"),
            ("AWSACCESSKEYID", "S3FSID"),
            ("AWSSECRETACCESSKEY", "S3FSKEY"),
            ("AWSSESSIONTOKEN", "S3FSTOKEN"),
        ]);
        assert!(is_aws_configured(&env));
        let (creds, origin) = load_aws(&env).unwrap().unwrap();
        assert_eq!(creds.secret_id, "S3FSID");
        assert_eq!(creds.session_token.as_deref(), Some("S3FSTOKEN"));
        assert_eq!(origin, "environment AWSACCESSKEYID/AWSSECRETACCESSKEY");
        let env = lookup(&[
            ("AWSACCESSKEYID", "S3FSID"),
            ("AWSSECRETACCESSKEY", "S3FSKEY"),
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "ENVKEY"),
            ("AWS_SESSION_TOKEN", "ENVTOKEN"),
        ]);
        let (creds, _) = load_aws(&env).unwrap().unwrap();
        assert_eq!(creds.secret_id, "AKIAENV");
        assert_eq!(creds.session_token.as_deref(), Some("ENVTOKEN"));
        assert!(!is_configured(&env), "AWS variables are not COS keys");
        assert_eq!(load(&env).unwrap(), None);
        let only_cos = lookup(&[("COS_SECRET_ID", "CI"), ("COS_SECRET_KEY", "CK")]);
        assert!(!is_aws_configured(&only_cos));
        let e = load_aws(&lookup(&[("AWS_ACCESS_KEY_ID", "A")])).unwrap_err();
        assert!(
            e.to_string().contains("AWS_SECRET_ACCESS_KEY is not"),
            "{e}"
        );
    }

    #[test]
    fn half_pairs_are_errors_and_nothing_is_none() {
        let e = load(&lookup(&[("COS_SECRET_ID", "A")])).unwrap_err();
        assert!(e.to_string().contains("COS_SECRET_KEY is not"), "{e}");
        let e = load(&lookup(&[("TENCENTCLOUD_SECRET_KEY", "A")])).unwrap_err();
        assert!(
            e.to_string().contains("TENCENTCLOUD_SECRET_ID is not"),
            "{e}"
        );
        assert_eq!(load(&lookup(&[])).unwrap(), None);
        assert!(!is_configured(&lookup(&[("COS_SESSION_TOKEN", "T")])));
    }
}
