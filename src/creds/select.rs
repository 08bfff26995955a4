//! Which source the credentials come from. A mount signs with one key
//! family: Tencent Cloud's for COS targets (the default), AWS's for S3
//! targets ([`KeyFamily`]); each reads only its own variables and files.
//! `--credential-source NAME` picks one source and nothing else is
//! consulted. Otherwise the first configured source wins, in this order.
//!
//! Tencent (COS; built in `tencent.rs`):
//!
//! 1. `role_arn=` (STS AssumeRole): its permanent keys come from the first
//!    of 2, 3, 4, 7 that is configured; those keys only ever call STS.
//! 2. `cli`: `--secret-id`/`--secret-key` [`--session-token`] (or `-o`).
//! 3. `env`: `COS_SECRET_ID`/`COS_SECRET_KEY` [`COS_SESSION_TOKEN`], then
//!    `TENCENTCLOUD_SECRET_ID`/`TENCENTCLOUD_SECRET_KEY` [`..._SESSION_TOKEN`].
//! 4. `passwd`: the file named by `passwd_file=` (or cosfs's `cam_role=sts`).
//! 5. `cam_role=ROLE`: the CVM instance metadata service.
//! 6. `credential_process=CMD`.
//! 7. `passwd`: `~/.passwd-cosfs`, then `/etc/passwd-cosfs`, if present.
//!
//! AWS (S3; built in `aws.rs`):
//!
//! 1. `cli`: `--secret-id`/`--secret-key` [`--session-token`].
//! 2. `env`: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` [`AWS_SESSION_TOKEN`],
//!    then s3fs's `AWSACCESSKEYID`/`AWSSECRETACCESSKEY` [`AWSSESSIONTOKEN`].
//! 3. `passwd`: the s3fs file named by `passwd_file=`.
//! 4. `profile`: `--profile NAME` in `~/.aws/credentials`, else `[profile
//!    NAME]` in `~/.aws/config` (keys or `credential_process`).
//! 5. `credential_process=CMD`.
//! 6. `profile`: `AWS_PROFILE`'s profile, or `default` if the files hold it.
//! 7. `passwd`: `~/.passwd-s3fs`, then `/etc/passwd-s3fs`, if present.
//!
//! `anonymous` is only ever chosen explicitly (`--anonymous`). Sources
//! named by an option (Tencent 4-6, AWS 3-5) rank above the files that
//! merely exist (Tencent 7, AWS 6-7) because naming one on a mount is a
//! clearer statement of intent than a file that happens to exist (cosfs
//! also prefers `cam_role` over its passwd files). Keys on the command line
//! and in the environment come first because they are given for this one
//! mount. Among the AWS files the shared profile comes before s3fs's passwd
//! files, as in s3fs and the AWS tools, and `AWS_PROFILE` counts as naming
//! a profile only below the options, as the AWS SDKs rank it below explicit
//! configuration. `cam_role=` and `role_arn=` are Tencent Cloud's and
//! refused for AWS keys; `--profile` is AWS's and refused for Tencent keys.
//! Configured sources that lose are reported so the caller can warn.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::aws::{self, AwsDefaults};
use super::env::{self, EnvLookup};
use super::metadata::{CamRoleConfig, CamRoleProvider};
use super::passwd::{Dialect, PasswdProvider};
use super::process::ProcessProvider;
use super::source::SourceKind;
use super::sts::{AssumeRoleConfig, AssumeRoleProvider};
use super::tencent;
use super::{
    Clock, CredentialStore, Credentials, CredsError, Provider, RefreshPolicy, SystemClock,
};

/// Whose keys a mount signs with, which decides where they are looked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyFamily {
    /// Tencent Cloud SecretId/SecretKey (COS targets).
    #[default]
    Tencent,
    /// AWS access keys (S3 and S3-compatible targets).
    Aws,
}

/// Everything the user said about credentials (no clap types).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CredentialOptions {
    /// Whose keys: decides the sources and their order.
    pub family: KeyFamily,
    /// `--credential-source`: use only this source.
    pub source: Option<SourceKind>,
    /// `--secret-id`.
    pub secret_id: Option<String>,
    /// `--secret-key`.
    pub secret_key: Option<String>,
    /// `--session-token`.
    pub session_token: Option<String>,
    /// `passwd_file=`.
    pub passwd_file: Option<PathBuf>,
    /// `cam_role=` (`sts` means the passwd file, as in cosfs).
    pub cam_role: Option<String>,
    /// `cam_role_endpoint=`.
    pub cam_role_endpoint: Option<String>,
    /// `role_arn=`.
    pub role_arn: Option<String>,
    /// `role_session_name=`.
    pub role_session_name: Option<String>,
    /// `sts_endpoint=`.
    pub sts_endpoint: Option<String>,
    /// `sts_region=`.
    pub sts_region: Option<String>,
    /// `sts_duration=`.
    pub sts_duration: Option<Duration>,
    /// `credential_process=`.
    pub credential_process: Option<String>,
    /// `--profile`: an AWS profile.
    pub profile: Option<String>,
    /// The bucket's region: STS's region unless `sts_region` is given.
    pub region: Option<String>,
}

impl fmt::Debug for CredentialOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "******");
        f.debug_struct("CredentialOptions")
            .field("family", &self.family)
            .field("source", &self.source)
            .field("secret_id", &self.secret_id)
            .field("secret_key", &hidden(&self.secret_key))
            .field("session_token", &hidden(&self.session_token))
            .field("passwd_file", &self.passwd_file)
            .field("cam_role", &self.cam_role)
            .field("cam_role_endpoint", &self.cam_role_endpoint)
            .field("role_arn", &self.role_arn)
            .field("role_session_name", &self.role_session_name)
            .field("sts_endpoint", &self.sts_endpoint)
            .field("sts_region", &self.sts_region)
            .field("sts_duration", &self.sts_duration)
            .field("credential_process", &self.credential_process)
            .field("profile", &self.profile)
            .field("region", &self.region)
            .finish()
    }
}

impl CredentialOptions {
    /// Keys (or a token) given on the command line.
    pub(super) fn has_cli_keys(&self) -> bool {
        self.secret_id.is_some() || self.secret_key.is_some() || self.session_token.is_some()
    }

    /// `cam_role=sts` without an endpoint: cosfs's way of naming the passwd file.
    pub(super) fn cam_role_means_passwd(&self) -> bool {
        self.cam_role.as_deref() == Some("sts") && self.cam_role_endpoint.is_none()
    }

    pub(super) fn explicit_passwd(&self) -> bool {
        self.passwd_file.is_some() || self.cam_role_means_passwd()
    }

    pub(super) fn role(&self) -> Option<&str> {
        self.cam_role
            .as_deref()
            .filter(|_| !self.cam_role_means_passwd())
    }
}

/// What the selection may look at besides the options (injected by tests).
pub struct Surroundings<'a> {
    /// Environment variables.
    pub env: EnvLookup<'a>,
    /// `~/.passwd-cosfs` and `/etc/passwd-cosfs`, in that order.
    pub default_passwd_files: Vec<PathBuf>,
    /// The AWS family's default files.
    pub aws: AwsDefaults,
}

impl Surroundings<'static> {
    /// The real environment and default file locations.
    pub fn of_process() -> Surroundings<'static> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let mut files = Vec::new();
        if let Some(home) = &home {
            files.push(home.join(Dialect::Cosfs.home_file()));
        }
        files.push(PathBuf::from(Dialect::Cosfs.system_file()));
        Surroundings {
            env: &env::process_env,
            default_passwd_files: files,
            aws: AwsDefaults::under(home.as_deref()),
        }
    }
}

impl Surroundings<'_> {
    pub(super) fn default_passwd(&self) -> Option<&PathBuf> {
        self.default_passwd_files.iter().find(|p| p.exists())
    }
}

/// The chosen source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selected {
    /// Unsigned requests.
    Anonymous,
    /// Keys that never change.
    Static {
        /// The keys.
        credentials: Credentials,
        /// Where they were found, for messages.
        origin: String,
    },
    /// Keys generated for the in-process server (`--local`); [`select`]
    /// never picks these.
    Generated,
    /// A source to fetch from and refresh.
    Refreshing(ProviderSpec),
}

impl Selected {
    /// Where the credentials come from, for messages (`None` when anonymous).
    pub fn origin(&self) -> Option<String> {
        match self {
            Selected::Anonymous => None,
            Selected::Static { origin, .. } => Some(origin.clone()),
            Selected::Generated => Some("keys generated for --local".into()),
            Selected::Refreshing(spec) => Some(spec.origin()),
        }
    }

    /// The store requests sign with; a refreshing source is asked for its
    /// first keys here, so unusable credentials fail up front. `Generated`
    /// keys belong to the `--local` server, which makes its own store.
    pub async fn store(&self) -> Result<CredentialStore, String> {
        Ok(match self {
            Selected::Anonymous => CredentialStore::anonymous(),
            Selected::Static { credentials, .. } => CredentialStore::fixed(credentials.clone()),
            Selected::Refreshing(spec) => {
                let clock = Arc::new(SystemClock);
                let provider = spec.build(clock.clone()).map_err(|e| e.to_string())?;
                CredentialStore::refreshing(provider, clock, RefreshPolicy::default())
                    .await
                    .map_err(|e| format!("cannot get credentials: {e}"))?
            }
            Selected::Generated => return Err("generated credentials need --local".into()),
        })
    }
}

/// A refreshing source, ready to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderSpec {
    /// A format-2 passwd file, re-read before expiry.
    PasswdFile {
        /// The file.
        path: PathBuf,
        /// The bucket (for format-1 files written later).
        bucket: String,
    },
    /// The instance metadata service.
    CamRole(CamRoleConfig),
    /// STS AssumeRole.
    AssumeRole(AssumeRoleConfig),
    /// A credential command.
    Process {
        /// Run with `sh -c`.
        command: String,
    },
}

impl ProviderSpec {
    /// Builds the provider; `clock` stamps STS requests.
    pub fn build(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Provider>, CredsError> {
        Ok(match self {
            ProviderSpec::PasswdFile { path, bucket } => {
                Arc::new(PasswdProvider::new(path, bucket))
            }
            ProviderSpec::CamRole(c) => Arc::new(CamRoleProvider::new(c.clone())?),
            ProviderSpec::AssumeRole(c) => Arc::new(AssumeRoleProvider::new(c.clone(), clock)?),
            ProviderSpec::Process { command } => Arc::new(ProcessProvider::new(command)),
        })
    }

    /// Names the source, as its provider does.
    pub fn origin(&self) -> String {
        match self {
            ProviderSpec::PasswdFile { path, .. } => format!("passwd file {}", path.display()),
            ProviderSpec::CamRole(c) => format!("cam_role {}", c.role),
            ProviderSpec::AssumeRole(c) => format!("sts AssumeRole {}", c.role_arn),
            ProviderSpec::Process { command } => ProcessProvider::new(command).name(),
        }
    }
}

/// The choice, and the configured sources it leaves unused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The source requests use.
    pub selected: Selected,
    /// Other sources that were configured but lost (worth a warning).
    pub unused: Vec<SourceKind>,
}

/// Chooses the credential source for `bucket`.
pub fn select(
    opts: &CredentialOptions,
    bucket: &str,
    around: &Surroundings<'_>,
) -> Result<Selection, CredsError> {
    check_family(opts)?;
    check_dangling(opts)?;
    let kind = match opts.source {
        Some(kind) => kind,
        None => first_configured(opts, around).ok_or_else(|| nothing_found(opts.family))?,
    };
    let (selected, base) = match opts.family {
        KeyFamily::Tencent => tencent::build(kind, opts, bucket, around)?,
        KeyFamily::Aws => (aws::build(kind, opts, bucket, around)?, None),
    };
    let unused = configured(opts, around)
        .into_iter()
        .filter(|k| *k != kind && Some(*k) != base)
        .collect();
    Ok(Selection { selected, unused })
}

/// Options that belong to the other family's sources.
fn check_family(opts: &CredentialOptions) -> Result<(), CredsError> {
    let foreign = match opts.family {
        KeyFamily::Tencent => opts
            .profile
            .as_ref()
            .map(|_| "--profile names an AWS profile (~/.aws/credentials): it is for S3 targets"),
        KeyFamily::Aws => [
            (opts.cam_role.is_some(), "cam_role="),
            (opts.cam_role_endpoint.is_some(), "cam_role_endpoint="),
            (opts.role_arn.is_some(), "role_arn="),
        ]
        .into_iter()
        .find(|(set, _)| *set)
        .map(|_| {
            "cam_role= and role_arn= get Tencent Cloud keys, for COS targets; an S3 target \
             takes AWS keys (--secret-id/--secret-key, AWS_ACCESS_KEY_ID, --profile, \
             passwd_file=, credential_process=)"
        }),
    };
    match foreign {
        Some(message) => Err(CredsError::Config(message.into())),
        None => Ok(()),
    }
}

/// Options that only matter with another one.
fn check_dangling(opts: &CredentialOptions) -> Result<(), CredsError> {
    let sts_only = [
        ("role_session_name", opts.role_session_name.is_some()),
        ("sts_endpoint", opts.sts_endpoint.is_some()),
        ("sts_region", opts.sts_region.is_some()),
        ("sts_duration", opts.sts_duration.is_some()),
    ];
    if let Some((name, _)) = sts_only
        .iter()
        .find(|(_, set)| *set)
        .filter(|_| opts.role_arn.is_none())
    {
        return Err(CredsError::Config(format!(
            "{name} is only used with role_arn=ROLE_ARN (STS AssumeRole)"
        )));
    }
    if opts.cam_role_endpoint.is_some() && opts.cam_role.is_none() {
        return Err(CredsError::Config(
            "cam_role_endpoint is only used with cam_role=ROLE".into(),
        ));
    }
    Ok(())
}

/// Configured sources, in precedence order.
fn configured(opts: &CredentialOptions, around: &Surroundings<'_>) -> Vec<SourceKind> {
    match opts.family {
        KeyFamily::Tencent => tencent::configured(opts, around),
        KeyFamily::Aws => aws::configured(opts, around),
    }
}

fn first_configured(opts: &CredentialOptions, around: &Surroundings<'_>) -> Option<SourceKind> {
    configured(opts, around).first().copied()
}

fn nothing_found(family: KeyFamily) -> CredsError {
    match family {
        KeyFamily::Tencent => tencent::nothing_found(),
        KeyFamily::Aws => aws::nothing_found(),
    }
}

/// `credential_process=COMMAND`.
pub(super) fn process(opts: &CredentialOptions) -> Result<Selected, CredsError> {
    match opts
        .credential_process
        .as_deref()
        .filter(|c| !c.trim().is_empty())
    {
        Some(command) => Ok(Selected::Refreshing(ProviderSpec::Process {
            command: command.to_string(),
        })),
        None => Err(CredsError::Config(
            "credential source process needs credential_process=COMMAND".into(),
        )),
    }
}

/// `--secret-id`/`--secret-key` [`--session-token`].
pub(super) fn command_line(opts: &CredentialOptions) -> Result<Selected, CredsError> {
    match (&opts.secret_id, &opts.secret_key) {
        (Some(id), Some(key)) => {
            let mut credentials = Credentials::permanent(id, key);
            credentials.session_token = opts.session_token.clone().filter(|t| !t.is_empty());
            Ok(Selected::Static {
                credentials,
                origin: "the command line".into(),
            })
        }
        (Some(_), None) => Err(CredsError::Config(
            "--secret-id is given without --secret-key".into(),
        )),
        (None, Some(_)) => Err(CredsError::Config(
            "--secret-key is given without --secret-id".into(),
        )),
        (None, None) => Err(CredsError::Config(
            "credential source cli needs --secret-id and --secret-key".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::creds::metadata::DEFAULT_CAM_ROLE_ENDPOINT;
    use crate::creds::sts;

    const BUCKET: &str = "examplebucket-1250000000";

    /// A temp dir with optional default and explicit passwd files, and
    /// the AWS family's default files (`s3fs-home-passwd`,
    /// `s3fs-etc-passwd`, `aws-credentials`, `aws-config`).
    struct Fixture {
        dir: tempfile::TempDir,
        vars: Vec<(&'static str, &'static str)>,
        defaults: Vec<PathBuf>,
        bucket: &'static str,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let defaults = vec![
                dir.path().join("home-passwd"),
                dir.path().join("etc-passwd"),
            ];
            Fixture {
                dir,
                vars: Vec::new(),
                defaults,
                bucket: BUCKET,
            }
        }

        fn aws_defaults(&self) -> AwsDefaults {
            let at = |name: &str| self.dir.path().join(name);
            AwsDefaults {
                passwd_files: vec![at("s3fs-home-passwd"), at("s3fs-etc-passwd")],
                shared: super::super::profile::DefaultFiles {
                    credentials: Some(at("aws-credentials")),
                    config: Some(at("aws-config")),
                },
            }
        }

        fn file(&self, name: &str, text: &str) -> PathBuf {
            let path = self.dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            path
        }

        fn env(mut self, vars: &[(&'static str, &'static str)]) -> Fixture {
            self.vars.extend_from_slice(vars);
            self
        }

        fn select(&self, opts: &CredentialOptions) -> Result<Selection, CredsError> {
            let vars = self.vars.clone();
            let lookup = move |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            };
            let around = Surroundings {
                env: &lookup,
                default_passwd_files: self.defaults.clone(),
                aws: self.aws_defaults(),
            };
            select(opts, self.bucket, &around)
        }
    }

    fn all_configured(f: &Fixture) -> CredentialOptions {
        CredentialOptions {
            secret_id: Some("AKIDcli".into()),
            secret_key: Some("CLIKEY".into()),
            passwd_file: Some(f.file("explicit", "AKIDfile:FILEKEY\n")),
            cam_role: Some("role".into()),
            credential_process: Some("true".into()),
            ..CredentialOptions::default()
        }
    }

    fn static_id(s: &Selection) -> &str {
        match &s.selected {
            Selected::Static { credentials, .. } => &credentials.secret_id,
            other => panic!("not static: {other:?}"),
        }
    }

    fn spec(s: &Selection) -> &ProviderSpec {
        match &s.selected {
            Selected::Refreshing(spec) => spec,
            other => panic!("not refreshing: {other:?}"),
        }
    }

    #[test]
    fn first_configured_source_wins_in_order() {
        let f = Fixture::new().env(&[("COS_SECRET_ID", "AKIDenv"), ("COS_SECRET_KEY", "ENVKEY")]);
        f.file("home-passwd", "AKIDhome:HOMEKEY\n");
        let mut opts = all_configured(&f);
        use SourceKind::*;
        let s = f.select(&opts).unwrap();
        assert_eq!(static_id(&s), "AKIDcli");
        assert_eq!(s.unused, [Env, Passwd, CamRole, Process]);
        (opts.secret_id, opts.secret_key) = (None, None);
        let s = f.select(&opts).unwrap();
        assert_eq!(static_id(&s), "AKIDenv");
        let f = Fixture {
            vars: Vec::new(),
            ..f
        };
        let s = f.select(&opts).unwrap();
        assert_eq!(static_id(&s), "AKIDfile");
        assert_eq!(s.unused, [CamRole, Process]);
        opts.passwd_file = None;
        let s = f.select(&opts).unwrap();
        assert!(
            matches!(spec(&s), ProviderSpec::CamRole(c) if c.role == "role" && c.endpoint == DEFAULT_CAM_ROLE_ENDPOINT)
        );
        assert_eq!(s.unused, [Process, Passwd]);
        opts.cam_role = None;
        assert!(
            matches!(spec(&f.select(&opts).unwrap()), ProviderSpec::Process { command } if command == "true")
        );
        opts.credential_process = None;
        let s = f.select(&opts).unwrap();
        assert_eq!(static_id(&s), "AKIDhome");
        assert!(s.unused.is_empty());
    }

    #[test]
    fn tencentcloud_variables_and_etc_passwd_are_found() {
        let f = Fixture::new().env(&[
            ("TENCENTCLOUD_SECRET_ID", "AKIDtc"),
            ("TENCENTCLOUD_SECRET_KEY", "TCKEY"),
            ("TENCENTCLOUD_SESSION_TOKEN", "TCTOKEN"),
        ]);
        let s = f.select(&CredentialOptions::default()).unwrap();
        assert_eq!(static_id(&s), "AKIDtc");
        let Selected::Static {
            credentials,
            origin,
        } = &s.selected
        else {
            unreachable!()
        };
        assert_eq!(credentials.session_token.as_deref(), Some("TCTOKEN"));
        assert!(origin.contains("TENCENTCLOUD_SECRET_ID"));
        let f = Fixture::new();
        f.file("etc-passwd", "examplebucket:AKIDetc:ETCKEY\n");
        assert_eq!(
            static_id(&f.select(&CredentialOptions::default()).unwrap()),
            "AKIDetc"
        );
    }

    #[test]
    fn the_explicit_picker_uses_only_its_source() {
        let f = Fixture::new().env(&[("COS_SECRET_ID", "AKIDenv"), ("COS_SECRET_KEY", "ENVKEY")]);
        let mut opts = all_configured(&f);
        opts.source = Some(SourceKind::Process);
        let s = f.select(&opts).unwrap();
        assert!(matches!(spec(&s), ProviderSpec::Process { .. }));
        use SourceKind::*;
        assert_eq!(s.unused, [CommandLine, Env, Passwd, CamRole]);
        opts.source = Some(Env);
        assert_eq!(static_id(&f.select(&opts).unwrap()), "AKIDenv");
        opts.source = Some(Anonymous);
        assert_eq!(f.select(&opts).unwrap().selected, Selected::Anonymous);
        let empty = Fixture::new();
        let e = empty
            .select(&CredentialOptions {
                source: Some(Env),
                ..CredentialOptions::default()
            })
            .unwrap_err();
        assert!(e.to_string().contains("neither COS_SECRET_ID"), "{e}");
        let e = empty
            .select(&CredentialOptions {
                source: Some(CamRole),
                ..CredentialOptions::default()
            })
            .unwrap_err();
        assert!(e.to_string().contains("needs cam_role=ROLE"), "{e}");
        let e = empty
            .select(&CredentialOptions {
                source: Some(Passwd),
                ..CredentialOptions::default()
            })
            .unwrap_err();
        assert!(e.to_string().contains("no passwd file"), "{e}");
    }

    #[test]
    fn source_names_parse() {
        for kind in SourceKind::ALL {
            assert_eq!(kind.name().parse::<SourceKind>().unwrap(), kind);
        }
        assert_eq!(
            "cam-role".parse::<SourceKind>().unwrap(),
            SourceKind::CamRole
        );
        assert_eq!(
            "credential_process".parse::<SourceKind>().unwrap(),
            SourceKind::Process
        );
        let e = "vault".parse::<SourceKind>().unwrap_err().to_string();
        assert!(
            e.contains("cli, env, passwd, cam_role, sts, process, anonymous"),
            "{e}"
        );
    }

    #[test]
    fn role_arn_assumes_a_role_with_the_first_keys_found() {
        let f = Fixture::new().env(&[("COS_SECRET_ID", "AKIDenv"), ("COS_SECRET_KEY", "ENVKEY")]);
        let opts = CredentialOptions {
            role_arn: Some("qcs::cam::uin/1:roleName/r".into()),
            secret_id: Some("AKIDcli".into()),
            secret_key: Some("CLIKEY".into()),
            region: Some("ap-beijing".into()),
            ..CredentialOptions::default()
        };
        let s = f.select(&opts).unwrap();
        let ProviderSpec::AssumeRole(c) = spec(&s) else {
            panic!()
        };
        assert_eq!(
            (c.base.secret_id.as_str(), c.base_origin.as_str()),
            ("AKIDcli", "the command line")
        );
        assert_eq!(
            (c.region.as_str(), c.session_name.as_str()),
            ("ap-beijing", "cosmount")
        );
        assert_eq!(
            (c.endpoint.as_str(), c.duration),
            (sts::DEFAULT_STS_ENDPOINT, Duration::from_secs(7200))
        );
        assert_eq!(s.unused, [SourceKind::Env]);
        let opts = CredentialOptions {
            secret_id: None,
            secret_key: None,
            sts_region: Some("ap-shanghai".into()),
            sts_endpoint: Some("http://127.0.0.1:9/".into()),
            sts_duration: Some(Duration::from_secs(900)),
            role_session_name: Some("mount@host".into()),
            ..opts
        };
        let s = f.select(&opts).unwrap();
        let ProviderSpec::AssumeRole(c) = spec(&s) else {
            panic!()
        };
        assert_eq!(
            (c.base.secret_id.as_str(), c.region.as_str()),
            ("AKIDenv", "ap-shanghai")
        );
        assert_eq!(
            (
                c.endpoint.as_str(),
                c.duration.as_secs(),
                c.session_name.as_str()
            ),
            ("http://127.0.0.1:9/", 900, "mount@host")
        );
        assert!(s.unused.is_empty());
    }

    #[test]
    fn role_arn_errors_are_explained() {
        let f = Fixture::new();
        let arn = CredentialOptions {
            role_arn: Some("qcs::cam::uin/1:roleName/r".into()),
            ..CredentialOptions::default()
        };
        let e = f.select(&arn).unwrap_err().to_string();
        assert!(
            e.contains("role_arn needs permanent keys to call STS"),
            "{e}"
        );
        let tmp = f.file("tmp", "COSAccessKeyId=A\nCOSSecretKey=B\nCOSAccessToken=T\nCOSAccessTokenExpire=2030-01-01T00:00:00\n");
        let e = f
            .select(&CredentialOptions {
                passwd_file: Some(tmp),
                ..arn.clone()
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds temporary ones"), "{e}");
        let f = f.env(&[("COS_SECRET_ID", "A"), ("COS_SECRET_KEY", "B")]);
        let bad = |opts: CredentialOptions| f.select(&opts).unwrap_err().to_string();
        assert!(
            bad(CredentialOptions {
                role_session_name: Some("a b".into()),
                ..arn.clone()
            })
            .contains("role_session_name")
        );
        assert!(
            bad(CredentialOptions {
                sts_duration: Some(Duration::from_secs(50000)),
                ..arn.clone()
            })
            .contains("sts_duration")
        );
        assert!(
            bad(CredentialOptions {
                sts_endpoint: Some("sts.example".into()),
                ..arn.clone()
            })
            .contains("sts_endpoint")
        );
        let e = bad(CredentialOptions {
            sts_endpoint: Some("http://127.0.0.1:1/".into()),
            ..CredentialOptions::default()
        });
        assert!(e.contains("sts_endpoint is only used with role_arn"), "{e}");
        let e = bad(CredentialOptions {
            cam_role_endpoint: Some("http://127.0.0.1:1/".into()),
            ..CredentialOptions::default()
        });
        assert!(
            e.contains("cam_role_endpoint is only used with cam_role"),
            "{e}"
        );
    }

    #[test]
    fn cam_role_sts_means_the_temporary_passwd_file() {
        let f = Fixture::new();
        let tmp = f.file("tmp", "COSAccessKeyId=A\nCOSSecretKey=B\nCOSAccessToken=T\nCOSAccessTokenExpire=2030-01-01T00:00:00\n");
        let opts = CredentialOptions {
            cam_role: Some("sts".into()),
            passwd_file: Some(tmp.clone()),
            ..CredentialOptions::default()
        };
        let s = f.select(&opts).unwrap();
        assert_eq!(
            spec(&s),
            &ProviderSpec::PasswdFile {
                path: tmp,
                bucket: BUCKET.into()
            }
        );
        assert!(s.unused.is_empty());
        let opts = CredentialOptions {
            cam_role: Some("bad/role".into()),
            ..CredentialOptions::default()
        };
        assert!(
            f.select(&opts)
                .unwrap_err()
                .to_string()
                .contains("not a role name")
        );
    }

    #[test]
    fn nothing_configured_says_every_way() {
        let e = Fixture::new()
            .select(&CredentialOptions::default())
            .unwrap_err()
            .to_string();
        for way in [
            "--secret-id",
            "TENCENTCLOUD_SECRET_ID",
            "passwd_file",
            "cam_role",
            "credential_process",
            "--anonymous",
        ] {
            assert!(e.contains(way), "{way}: {e}");
        }
        let f = Fixture::new();
        let half = CredentialOptions {
            secret_id: Some("A".into()),
            ..CredentialOptions::default()
        };
        assert!(
            f.select(&half)
                .unwrap_err()
                .to_string()
                .contains("without --secret-key")
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let f = Fixture::new();
        let opts = CredentialOptions {
            secret_id: Some("AKIDcli".into()),
            secret_key: Some("CLIKEY".into()),
            session_token: Some("CLITOKEN".into()),
            role_arn: Some("qcs::cam::uin/1:roleName/r".into()),
            ..CredentialOptions::default()
        };
        let shown = format!("{opts:?} {:?}", f.select(&opts).unwrap());
        assert!(shown.contains("AKIDcli"), "{shown}");
        assert!(
            !shown.contains("CLIKEY") && !shown.contains("CLITOKEN"),
            "{shown}"
        );
    }

    const S3_BUCKET: &str = "my-bucket";

    /// A fixture for an S3 bucket.
    fn s3_fixture(vars: &[(&'static str, &'static str)]) -> Fixture {
        Fixture {
            bucket: S3_BUCKET,
            ..Fixture::new().env(vars)
        }
    }

    fn aws(opts: CredentialOptions) -> CredentialOptions {
        CredentialOptions {
            family: KeyFamily::Aws,
            ..opts
        }
    }

    fn static_origin(s: &Selection) -> &str {
        match &s.selected {
            Selected::Static { origin, .. } => origin,
            other => panic!("not static: {other:?}"),
        }
    }

    #[test]
    fn aws_sources_win_in_order() {
        let f = s3_fixture(&[
            ("AWS_ACCESS_KEY_ID", "AKIAenv"),
            ("AWS_SECRET_ACCESS_KEY", "ENVKEY"),
            ("AWS_SESSION_TOKEN", "ENVTOKEN"),
        ]);
        f.file("aws-credentials", "[default]\naws_access_key_id = AKIAdefault\naws_secret_access_key = K\n[dev]\naws_access_key_id = AKIAdev\naws_secret_access_key = K\n");
        f.file("s3fs-home-passwd", "AKIAhome:HOMEKEY\n");
        f.file("s3fs-etc-passwd", "my-bucket:AKIAetc:ETCKEY\n");
        let mut opts = aws(CredentialOptions {
            secret_id: Some("AKIAcli".into()),
            secret_key: Some("CLIKEY".into()),
            passwd_file: Some(f.file("explicit", "other:A:B\nmy-bucket:AKIAfile:FILEKEY\n")),
            profile: Some("dev".into()),
            credential_process: Some("true".into()),
            ..CredentialOptions::default()
        });
        use SourceKind::*;
        let s = f.select(&opts).unwrap();
        assert_eq!(static_id(&s), "AKIAcli");
        assert_eq!(s.unused, [Env, Passwd, Profile, Process]);
        (opts.secret_id, opts.secret_key) = (None, None);
        let s = f.select(&opts).unwrap();
        assert_eq!(static_id(&s), "AKIAenv");
        assert_eq!(
            static_origin(&s),
            "environment AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        );
        let f = Fixture {
            vars: Vec::new(),
            ..f
        };
        assert_eq!(static_id(&f.select(&opts).unwrap()), "AKIAfile");
        opts.passwd_file = None;
        let s = f.select(&opts).unwrap();
        assert_eq!(static_id(&s), "AKIAdev");
        let credentials_file = f.dir.path().join("aws-credentials");
        assert_eq!(
            static_origin(&s),
            format!("profile \"dev\" in {}", credentials_file.display())
        );
        assert_eq!(s.unused, [Process, Passwd]);
        opts.profile = None;
        assert!(
            matches!(spec(&f.select(&opts).unwrap()), ProviderSpec::Process { command } if command == "true")
        );
        opts.credential_process = None;
        let s = f.select(&opts).unwrap();
        assert_eq!(static_id(&s), "AKIAdefault");
        assert_eq!(s.unused, [Passwd]);
        f.file(
            "aws-credentials",
            "[dev]\naws_access_key_id = AKIAdev\naws_secret_access_key = K\n",
        );
        assert_eq!(static_id(&f.select(&opts).unwrap()), "AKIAhome");
        std::fs::remove_file(f.dir.path().join("s3fs-home-passwd")).unwrap();
        assert_eq!(static_id(&f.select(&opts).unwrap()), "AKIAetc");
    }

    #[test]
    fn aws_keys_ignore_cos_variables_and_files_and_say_where_to_look() {
        let f = s3_fixture(&[("COS_SECRET_ID", "AKIDcos"), ("COS_SECRET_KEY", "COSKEY")]);
        f.file("home-passwd", "AKIDhome:HOMEKEY\n");
        let e = f
            .select(&aws(CredentialOptions::default()))
            .unwrap_err()
            .to_string();
        for way in [
            "--secret-id",
            "AWS_ACCESS_KEY_ID",
            "AWSACCESSKEYID",
            "~/.aws/credentials",
            "--profile",
            "AWS_PROFILE",
            "~/.passwd-s3fs",
            "passwd_file",
            "credential_process",
            "--anonymous",
        ] {
            assert!(e.contains(way), "{way}: {e}");
        }
        assert!(
            !e.contains("COS_SECRET_ID") && !e.contains("cam_role"),
            "{e}"
        );
        let f = s3_fixture(&[
            ("AWS_ACCESS_KEY_ID", "AKIAenv"),
            ("AWS_SECRET_ACCESS_KEY", "K"),
        ]);
        f.file(
            "aws-credentials",
            "[default]\naws_access_key_id = A\naws_secret_access_key = K\n",
        );
        let e = f
            .select(&CredentialOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("COS_SECRET_ID") && !e.contains("AWS_ACCESS_KEY_ID"),
            "{e}"
        );
        let e = f
            .select(&aws(CredentialOptions {
                source: Some(SourceKind::Env),
                ..CredentialOptions::default()
            }))
            .map(|s| static_id(&s).to_string());
        assert_eq!(e, Ok("AKIAenv".to_string()));
    }

    #[test]
    fn session_tokens_come_with_aws_keys() {
        let f = s3_fixture(&[
            ("AWSACCESSKEYID", "AKIAs3fs"),
            ("AWSSECRETACCESSKEY", "K"),
            ("AWSSESSIONTOKEN", "S3FSTOKEN"),
        ]);
        let token = |s: Selection| match s.selected {
            Selected::Static { credentials, .. } => credentials.session_token,
            other => panic!("not static: {other:?}"),
        };
        let s = f.select(&aws(CredentialOptions::default())).unwrap();
        assert_eq!(token(s), Some("S3FSTOKEN".into()));
        let cli = aws(CredentialOptions {
            secret_id: Some("AKIAcli".into()),
            secret_key: Some("K".into()),
            session_token: Some("CLITOKEN".into()),
            ..CredentialOptions::default()
        });
        assert_eq!(token(f.select(&cli).unwrap()), Some("CLITOKEN".into()));
    }

    #[test]
    fn a_missing_profile_names_the_files_and_their_profiles() {
        let f = s3_fixture(&[]);
        let named = aws(CredentialOptions {
            profile: Some("dev".into()),
            ..CredentialOptions::default()
        });
        let e = f.select(&named).unwrap_err().to_string();
        assert!(e.contains("profile \"dev\" (--profile) is not in"), "{e}");
        assert!(
            e.contains("aws-config (absent)") && e.contains("they hold no profile"),
            "{e}"
        );
        f.file(
            "aws-credentials",
            "[default]\naws_access_key_id = A\naws_secret_access_key = K\n[prod]\n",
        );
        f.file(
            "aws-config",
            "[profile stage]\nregion = x\n[sso-session s]\n",
        );
        let e = f.select(&named).unwrap_err().to_string();
        let credentials_file = f.dir.path().join("aws-credentials");
        assert!(e.contains(&credentials_file.display().to_string()), "{e}");
        assert!(e.contains("they hold: default, prod, stage"), "{e}");
        let f = Fixture {
            vars: vec![("AWS_PROFILE", "dev")],
            ..f
        };
        let e = f
            .select(&aws(CredentialOptions::default()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("profile \"dev\" (AWS_PROFILE) is not in"), "{e}");
    }

    #[test]
    fn aws_profile_picks_a_config_file_profile() {
        let f = s3_fixture(&[("AWS_PROFILE", "stage")]);
        f.file(
            "aws-credentials",
            "[default]\naws_access_key_id = AKIAdefault\naws_secret_access_key = K\n",
        );
        f.file(
            "aws-config",
            "[default]\nregion = us-east-1\n[profile stage]\naws_access_key_id = AKIAstage\n\
             aws_secret_access_key = STAGEKEY\naws_session_token = STAGETOKEN\n",
        );
        let s = f.select(&aws(CredentialOptions::default())).unwrap();
        let Selected::Static {
            credentials,
            origin,
        } = &s.selected
        else {
            panic!("{s:?}")
        };
        assert_eq!(credentials.secret_id, "AKIAstage");
        assert_eq!(credentials.session_token.as_deref(), Some("STAGETOKEN"));
        assert!(
            origin.starts_with("profile \"stage\" in ") && origin.ends_with("aws-config"),
            "{origin}"
        );
        let f = Fixture {
            vars: vec![("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")],
            ..f
        };
        let s = f.select(&aws(CredentialOptions::default()));
        assert!(
            s.is_err(),
            "the variable replaces ~/.aws/credentials: {s:?}"
        );
    }

    #[tokio::test]
    async fn a_profiles_credential_process_prints_aws_json() {
        let f = s3_fixture(&[]);
        f.file(
            "aws-config",
            "[profile tool]\ncredential_process = printf '{\"Version\":1,\"AccessKeyId\":\"AKIAproc\",\"SecretAccessKey\":\"K\",\"SessionToken\":\"T\",\"Expiration\":\"2030-01-01T00:00:00Z\"}'\n",
        );
        let opts = aws(CredentialOptions {
            profile: Some("tool".into()),
            ..CredentialOptions::default()
        });
        let s = f.select(&opts).unwrap();
        let ProviderSpec::Process { command } = spec(&s) else {
            panic!("{s:?}")
        };
        assert!(command.starts_with("printf"), "{command}");
        let provider = spec(&s).build(Arc::new(SystemClock)).unwrap();
        let c = provider.fetch().await.unwrap();
        assert_eq!(c.secret_id, "AKIAproc");
        assert_eq!(c.session_token.as_deref(), Some("T"));
        assert!(c.expires_at.is_some());
    }

    #[test]
    fn a_readable_s3fs_passwd_file_is_refused() {
        let f = s3_fixture(&[]);
        let home = f.file("s3fs-home-passwd", "AKIAhome:HOMEKEY\n");
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = f
            .select(&aws(CredentialOptions::default()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("chmod 600") && e.contains("s3fs-home-passwd"),
            "{e}"
        );
    }

    #[test]
    fn each_family_refuses_the_others_options() {
        let f = s3_fixture(&[("AWS_ACCESS_KEY_ID", "A"), ("AWS_SECRET_ACCESS_KEY", "K")]);
        for opts in [
            CredentialOptions {
                cam_role: Some("role".into()),
                ..CredentialOptions::default()
            },
            CredentialOptions {
                role_arn: Some("qcs::cam::uin/1:roleName/r".into()),
                ..CredentialOptions::default()
            },
        ] {
            let e = f.select(&aws(opts)).unwrap_err().to_string();
            assert!(e.contains("for COS targets"), "{e}");
        }
        let e = f
            .select(&aws(CredentialOptions {
                source: Some(SourceKind::CamRole),
                ..CredentialOptions::default()
            }))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cam_role is Tencent Cloud's"), "{e}");
        let e = f
            .select(&CredentialOptions {
                profile: Some("dev".into()),
                ..CredentialOptions::default()
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("for S3 targets"), "{e}");
        let e = f
            .select(&CredentialOptions {
                source: Some(SourceKind::Profile),
                ..CredentialOptions::default()
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("for S3 targets"), "{e}");
    }

    #[test]
    fn profile_source_names_parse() {
        for name in ["profile", "aws_profile", "shared-credentials"] {
            assert_eq!(name.parse::<SourceKind>().unwrap(), SourceKind::Profile);
        }
    }
}
