//! Keys from the environment: cosmount's `COS_SECRET_ID`/`COS_SECRET_KEY`/
//! `COS_SESSION_TOKEN`, then Tencent Cloud's `TENCENTCLOUD_SECRET_ID`/
//! `TENCENTCLOUD_SECRET_KEY`/`TENCENTCLOUD_SESSION_TOKEN`. Variables are
//! read through a lookup function so tests never touch the process
//! environment. An empty variable counts as unset; a half-given pair is an
//! error rather than silently skipped.

use super::{Credentials, CredsError};

/// Looks an environment variable up (`std::env::var(..).ok()` in production).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// One family of variables.
struct Family {
    id: &'static str,
    key: &'static str,
    token: &'static str,
}

const FAMILIES: [Family; 2] = [
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

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// True when any of the key variables is set (so `env` counts as configured).
pub fn is_configured(env: EnvLookup<'_>) -> bool {
    FAMILIES
        .iter()
        .any(|f| get(env, f.id).is_some() || get(env, f.key).is_some())
}

/// The keys of the first complete family, with a description of where they
/// came from; `None` when no variable is set.
pub fn load(env: EnvLookup<'_>) -> Result<Option<(Credentials, String)>, CredsError> {
    for f in &FAMILIES {
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
