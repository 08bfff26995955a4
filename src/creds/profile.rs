//! AWS profiles: `~/.aws/credentials` (or `$AWS_SHARED_CREDENTIALS_FILE`)
//! and `~/.aws/config` (or `$AWS_CONFIG_FILE`), as the AWS CLI and SDKs
//! read them. A profile is `[NAME]` in the credentials file and
//! `[profile NAME]` in the config file (`[default]` in both); the two are
//! merged key by key, the credentials file winning, so the config file is
//! used when the credentials file lacks the profile. A profile gives
//! `aws_access_key_id`/`aws_secret_access_key` [`aws_session_token`], or
//! `credential_process` (run by `process.rs`).
//!
//! The files are INI as botocore reads them, parsed here in a few lines
//! rather than with an INI crate: the AWS rules (`[profile x]` naming, `#`
//! and `;` comments, indented sub-properties, keys case-insensitive) are
//! not any crate's defaults, and only three keys matter. Messages name
//! files, profiles, keys and line numbers, never a value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::env::EnvLookup;
use super::{Credentials, CredsError};

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";

/// The variable that names the profile when `--profile` does not.
pub const PROFILE_VAR: &str = "AWS_PROFILE";

/// The two files' places when their variables are unset (`~/.aws/...`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DefaultFiles {
    /// `~/.aws/credentials`.
    pub credentials: Option<PathBuf>,
    /// `~/.aws/config`.
    pub config: Option<PathBuf>,
}

/// The shared files this process reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedFiles {
    /// The credentials file, if any place is known.
    pub credentials: Option<PathBuf>,
    /// The config file, if any place is known.
    pub config: Option<PathBuf>,
}

impl SharedFiles {
    /// `$AWS_SHARED_CREDENTIALS_FILE` and `$AWS_CONFIG_FILE` (a leading
    /// `~/` is the home directory), else `defaults`.
    pub fn locate(env: EnvLookup<'_>, defaults: &DefaultFiles) -> SharedFiles {
        let named = |var: &str| {
            env(var)
                .filter(|v| !v.is_empty())
                .map(|v| expand_home(&v, env))
        };
        SharedFiles {
            credentials: named("AWS_SHARED_CREDENTIALS_FILE").or(defaults.credentials.clone()),
            config: named("AWS_CONFIG_FILE").or(defaults.config.clone()),
        }
    }

    fn paths(&self) -> impl Iterator<Item = (FileKind, &PathBuf)> {
        [
            (FileKind::Credentials, self.credentials.as_ref()),
            (FileKind::Config, self.config.as_ref()),
        ]
        .into_iter()
        .filter_map(|(kind, path)| Some((kind, path?)))
    }
}

fn expand_home(path: &str, env: EnvLookup<'_>) -> PathBuf {
    match (path.strip_prefix("~/"), env("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Which file: they name profiles differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    Credentials,
    Config,
}

impl FileKind {
    /// The profile a section header names, if it names one.
    fn profile(self, header: &str) -> Option<&str> {
        match self {
            FileKind::Credentials => Some(header),
            FileKind::Config if header == DEFAULT_PROFILE => Some(header),
            FileKind::Config => header
                .strip_prefix("profile")
                .filter(|rest| rest.starts_with([' ', '\t']))
                .map(str::trim),
        }
    }
}

/// What a profile gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileKeys {
    /// Keys written in a file.
    Static {
        /// The keys.
        credentials: Credentials,
        /// `profile "NAME" in FILE`, for messages.
        origin: String,
    },
    /// A `credential_process` command.
    Process {
        /// Run with `sh -c`.
        command: String,
    },
}

/// One `[header]` of a file and its `key = value` lines (keys lowercase).
/// Not `Debug`: the values are keys.
struct Section {
    header: String,
    keys: Vec<(String, String)>,
}

/// One key's value and the file it came from.
struct Found {
    value: String,
    file: PathBuf,
}

/// A profile's keys, merged from both files (lowercase key names).
type Profile = BTreeMap<String, Found>;

/// Reads profile `name`; `Ok(None)` when neither file has it (missing
/// files count as empty).
pub fn find(files: &SharedFiles, name: &str) -> Result<Option<ProfileKeys>, CredsError> {
    let mut profile: Option<Profile> = None;
    // The config file first, so that the credentials file overrides it.
    for (kind, path) in files.paths().collect::<Vec<_>>().into_iter().rev() {
        let Some(sections) = read(path)? else {
            continue;
        };
        for section in sections {
            if kind.profile(&section.header) != Some(name) {
                continue;
            }
            let merged = profile.get_or_insert_with(BTreeMap::new);
            for (key, value) in section.keys {
                let file = path.clone();
                merged.insert(key, Found { value, file });
            }
        }
    }
    profile.map(|p| keys_of(name, &p)).transpose()
}

/// The profiles the files hold, sorted, for messages.
pub fn names(files: &SharedFiles) -> Vec<String> {
    let mut names: Vec<String> = files
        .paths()
        .filter_map(|(kind, path)| Some((kind, read(path).ok()??)))
        .flat_map(|(kind, sections)| {
            sections
                .into_iter()
                .filter_map(move |s| kind.profile(&s.header).map(str::to_string))
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Where profiles were looked for, for messages: `FILE and FILE`.
pub fn describe(files: &SharedFiles) -> String {
    let shown: Vec<String> = files
        .paths()
        .map(|(_, p)| {
            let absent = if p.exists() { "" } else { " (absent)" };
            format!("{}{absent}", p.display())
        })
        .collect();
    if shown.is_empty() {
        "no AWS shared file (HOME is unset)".into()
    } else {
        shown.join(" and ")
    }
}

fn keys_of(name: &str, profile: &Profile) -> Result<ProfileKeys, CredsError> {
    let get = |key: &str| profile.get(key).filter(|f| !f.value.is_empty());
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(id), Some(key)) => {
            let mut credentials = Credentials::permanent(&id.value, &key.value);
            credentials.session_token = get("aws_session_token").map(|t| t.value.clone());
            let origin = format!("profile \"{name}\" in {}", id.file.display());
            Ok(ProfileKeys::Static {
                credentials,
                origin,
            })
        }
        (Some(f), None) | (None, Some(f)) => Err(CredsError::Config(format!(
            "profile \"{name}\" in {} has only one of aws_access_key_id and aws_secret_access_key: give both",
            f.file.display()
        ))),
        (None, None) => match get("credential_process") {
            Some(command) => Ok(ProfileKeys::Process {
                command: command.value.clone(),
            }),
            None => Err(CredsError::Config(format!(
                "profile \"{name}\" has neither aws_access_key_id/aws_secret_access_key nor \
                 credential_process (role_arn, sso_* and web identity profiles are not supported)"
            ))),
        },
    }
}

/// Sections of the file at `path`, in file order; `None` when it does not exist.
fn read(path: &Path) -> Result<Option<Vec<Section>>, CredsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CredsError::Config(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    parse(&text)
        .map(Some)
        .map_err(|m| CredsError::Config(format!("{}: {m}", path.display())))
}

/// Parses INI the way the AWS tools do: `[section]` headers, `key = value`
/// lines, whole-line `#`/`;` comments, indented lines continuing the
/// previous key (sub-properties, skipped).
fn parse(text: &str) -> Result<Vec<Section>, String> {
    let mut sections: Vec<Section> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if let Some(header) = section_header(trimmed) {
            sections.push(Section {
                header: header?.to_string(),
                keys: Vec::new(),
            });
            continue;
        }
        let Some(Section { keys, .. }) = sections.last_mut() else {
            return Err(format!("line {} comes before any [section]", n + 1));
        };
        if line.starts_with([' ', '\t']) && !keys.is_empty() {
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(format!(
                "line {} is neither [section] nor key = value",
                n + 1
            ));
        };
        keys.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(sections)
}

/// `Some` for a `[...]` line (a trailing comment allowed): its trimmed
/// name, or why it is not one.
fn section_header(line: &str) -> Option<Result<&str, String>> {
    let inner = line.strip_prefix('[')?;
    Some(match inner.split_once(']') {
        Some((name, rest)) if !name.trim().is_empty() && is_comment_or_empty(rest) => {
            Ok(name.trim())
        }
        _ => Err("a section header must be [name]".into()),
    })
}

fn is_comment_or_empty(rest: &str) -> bool {
    let rest = rest.trim();
    rest.is_empty() || rest.starts_with(['#', ';'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path, credentials: Option<&str>, config: Option<&str>) -> SharedFiles {
        let write = |name: &str, text: Option<&str>| {
            let path = dir.join(name);
            if let Some(text) = text {
                std::fs::write(&path, text).unwrap();
            }
            Some(path)
        };
        SharedFiles {
            credentials: write("credentials", credentials),
            config: write("config", config),
        }
    }

    fn static_keys(keys: Option<ProfileKeys>) -> (Credentials, String) {
        match keys {
            Some(ProfileKeys::Static {
                credentials,
                origin,
            }) => (credentials, origin),
            other => panic!("not static keys: {other:?}"),
        }
    }

    #[test]
    fn parses_ini_the_aws_way() {
        let text = "# top\n[default] ; comment\naws_access_key_id = AKIA1\n\
                    AWS_Secret_Access_Key=SK=with=equals\r\n  ; indented comment\n\
                    s3 =\n  max_concurrent_requests = 20\n\n[ profile dev ]\nregion=x\n";
        let sections = parse(text).unwrap();
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].header, "default");
        assert_eq!(
            sections[0].keys,
            vec![
                ("aws_access_key_id".to_string(), "AKIA1".to_string()),
                ("aws_secret_access_key".into(), "SK=with=equals".into()),
                ("s3".into(), String::new()),
            ]
        );
        assert_eq!(sections[1].header, "profile dev");
        let e = parse("key = SECRET\n").err().unwrap();
        assert!(e.contains("line 1 comes before any [section]"), "{e}");
        let e = parse("[a]\nSECRETVALUE\n").err().unwrap();
        assert!(
            e.contains("line 2 is neither") && !e.contains("SECRET"),
            "{e}"
        );
        assert!(parse("[a\n").is_err());
        assert!(parse("[]\n").is_err());
    }

    #[test]
    fn the_credentials_file_wins_key_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(
            dir.path(),
            Some("[dev]\naws_access_key_id = AKIACRED\naws_secret_access_key = CREDKEY\n"),
            Some(
                "[profile dev]\naws_access_key_id = AKIACONF\naws_secret_access_key = CONFKEY\n\
                 aws_session_token = CONFTOKEN\n[dev]\naws_access_key_id = IGNORED\n",
            ),
        );
        let (c, origin) = static_keys(find(&f, "dev").unwrap());
        assert_eq!(
            (c.secret_id.as_str(), c.secret_key.as_str()),
            ("AKIACRED", "CREDKEY")
        );
        assert_eq!(c.session_token.as_deref(), Some("CONFTOKEN"));
        let path = f.credentials.as_ref().unwrap().display().to_string();
        assert_eq!(origin, format!("profile \"dev\" in {path}"));
        assert_eq!(names(&f), ["dev"]);
    }

    #[test]
    fn the_config_file_serves_a_profile_the_credentials_file_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(
            dir.path(),
            Some("[other]\naws_access_key_id = A\naws_secret_access_key = B\n"),
            Some(
                "[default]\naws_access_key_id = AKIADEF\naws_secret_access_key = DEFKEY\n\
                 [profile tool]\ncredential_process = /bin/get-keys --profile x\n",
            ),
        );
        let (c, origin) = static_keys(find(&f, "default").unwrap());
        assert_eq!(c.secret_id, "AKIADEF");
        assert!(origin.ends_with("config"), "{origin}");
        assert_eq!(
            find(&f, "tool").unwrap(),
            Some(ProfileKeys::Process {
                command: "/bin/get-keys --profile x".into()
            })
        );
        assert_eq!(find(&f, "missing").unwrap(), None);
        assert_eq!(names(&f), ["default", "other", "tool"]);
    }

    #[test]
    fn incomplete_profiles_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(
            dir.path(),
            Some("[half]\naws_access_key_id = A\n[role]\nrole_arn = arn:aws:iam::1:role/r\n"),
            None,
        );
        let e = find(&f, "half").unwrap_err().to_string();
        assert!(e.contains("only one of aws_access_key_id"), "{e}");
        let e = find(&f, "role").unwrap_err().to_string();
        assert!(e.contains("role_arn, sso_*"), "{e}");
        assert!(describe(&f).contains("config (absent)"), "{}", describe(&f));
    }

    #[test]
    fn variables_name_the_files() {
        let vars = |name: &str| match name {
            "AWS_SHARED_CREDENTIALS_FILE" => Some("~/keys/creds".to_string()),
            "AWS_CONFIG_FILE" => Some(String::new()),
            "HOME" => Some("/home/u".to_string()),
            _ => None,
        };
        let defaults = DefaultFiles {
            credentials: Some("/home/u/.aws/credentials".into()),
            config: Some("/home/u/.aws/config".into()),
        };
        let f = SharedFiles::locate(&vars, &defaults);
        assert_eq!(f.credentials, Some(PathBuf::from("/home/u/keys/creds")));
        assert_eq!(f.config, defaults.config);
    }
}
