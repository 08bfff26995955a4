//! The AWS key family (S3 targets): which sources are configured, in the
//! precedence `select.rs`'s opening comment gives with its reasons, and how
//! each is built. Tencent Cloud's sources (`cam_role`, STS `role_arn`) do
//! not exist here; `select.rs` refuses them before anything is read.

use std::path::{Path, PathBuf};

use super::CredsError;
use super::env::{self, EnvLookup};
use super::passwd::{self, Dialect};
use super::profile::{self, DEFAULT_PROFILE, PROFILE_VAR, ProfileKeys, SharedFiles};
use super::select::{
    CredentialOptions, ProviderSpec, Selected, Surroundings, command_line, process,
};
use super::source::SourceKind;

/// Where the AWS family looks when no option names a file (injected by
/// tests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsDefaults {
    /// `~/.passwd-s3fs` and `/etc/passwd-s3fs`, in that order.
    pub passwd_files: Vec<PathBuf>,
    /// `~/.aws/credentials` and `~/.aws/config`.
    pub shared: profile::DefaultFiles,
}

impl AwsDefaults {
    /// The places under `home` (none without one) and the system file.
    pub fn under(home: Option<&Path>) -> AwsDefaults {
        let mut passwd_files: Vec<PathBuf> = home
            .map(|h| h.join(Dialect::S3fs.home_file()))
            .into_iter()
            .collect();
        passwd_files.push(PathBuf::from(Dialect::S3fs.system_file()));
        AwsDefaults {
            passwd_files,
            shared: profile::DefaultFiles {
                credentials: home.map(|h| h.join(".aws/credentials")),
                config: home.map(|h| h.join(".aws/config")),
            },
        }
    }

    fn default_passwd(&self) -> Option<&PathBuf> {
        self.passwd_files.iter().find(|p| p.exists())
    }
}

/// Configured sources, in precedence order.
pub(super) fn configured(opts: &CredentialOptions, around: &Surroundings<'_>) -> Vec<SourceKind> {
    let candidates = [
        (SourceKind::CommandLine, opts.has_cli_keys()),
        (SourceKind::Env, env::is_aws_configured(around.env)),
        (SourceKind::Passwd, opts.passwd_file.is_some()),
        (SourceKind::Profile, opts.profile.is_some()),
        (SourceKind::Process, opts.credential_process.is_some()),
        (
            SourceKind::Profile,
            opts.profile.is_none() && default_profile_configured(around),
        ),
        (
            SourceKind::Passwd,
            opts.passwd_file.is_none() && around.aws.default_passwd().is_some(),
        ),
    ];
    candidates
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| k)
        .collect()
}

/// `AWS_PROFILE` is set, or the files hold (or fail to parse around) the
/// `default` profile; a broken file counts, so that its error is shown.
fn default_profile_configured(around: &Surroundings<'_>) -> bool {
    let (name, _) = default_profile(around.env);
    name != DEFAULT_PROFILE || !matches!(profile::find(&shared_files(around), &name), Ok(None))
}

/// The profile used without `--profile`, and what named it.
fn default_profile(env: EnvLookup<'_>) -> (String, &'static str) {
    match env(PROFILE_VAR).filter(|v| !v.is_empty()) {
        Some(name) => (name, PROFILE_VAR),
        None => (DEFAULT_PROFILE.to_string(), "the default profile"),
    }
}

fn shared_files(around: &Surroundings<'_>) -> SharedFiles {
    SharedFiles::locate(around.env, &around.aws.shared)
}

/// The "no credentials" message, naming the AWS ways.
pub(super) fn nothing_found() -> CredsError {
    CredsError::Config(
        "no credentials found: give --secret-id/--secret-key, set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY \
         (or s3fs's AWSACCESSKEYID/AWSSECRETACCESSKEY), write a [default] profile in ~/.aws/credentials \
         (or choose one with --profile or AWS_PROFILE), write ~/.passwd-s3fs or /etc/passwd-s3fs \
         (or passwd_file=FILE), use credential_process=CMD, or --anonymous for a public bucket"
            .into(),
    )
}

/// Builds the chosen source.
pub(super) fn build(
    kind: SourceKind,
    opts: &CredentialOptions,
    bucket: &str,
    around: &Surroundings<'_>,
) -> Result<Selected, CredsError> {
    match kind {
        SourceKind::CommandLine => command_line(opts),
        SourceKind::Env => env_source(around.env),
        SourceKind::Passwd => passwd_source(opts, bucket, around),
        SourceKind::Profile => profile_source(opts, around),
        SourceKind::Process => process(opts),
        SourceKind::Anonymous => Ok(Selected::Anonymous),
        SourceKind::CamRole | SourceKind::Sts => Err(CredsError::Config(format!(
            "credential source {kind} is Tencent Cloud's, for COS targets; an S3 target takes \
             AWS keys (cli, env, passwd, profile, process)"
        ))),
    }
}

fn env_source(env: EnvLookup<'_>) -> Result<Selected, CredsError> {
    match env::load_aws(env)? {
        Some((credentials, origin)) => Ok(Selected::Static {
            credentials,
            origin,
        }),
        None => Err(CredsError::Config(
            "credential source env: neither AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY nor \
             AWSACCESSKEYID/AWSSECRETACCESSKEY is set"
                .into(),
        )),
    }
}

fn passwd_source(
    opts: &CredentialOptions,
    bucket: &str,
    around: &Surroundings<'_>,
) -> Result<Selected, CredsError> {
    let Some(path) = opts.passwd_file.as_ref().or(around.aws.default_passwd()) else {
        return Err(CredsError::Config(
            "no passwd file: give passwd_file=FILE, or write ~/.passwd-s3fs or /etc/passwd-s3fs"
                .into(),
        ));
    };
    let credentials =
        passwd::load_as(path, bucket, Dialect::S3fs).map_err(|e| CredsError::Config(e.0))?;
    Ok(Selected::Static {
        credentials,
        origin: format!("passwd file {}", path.display()),
    })
}

fn profile_source(
    opts: &CredentialOptions,
    around: &Surroundings<'_>,
) -> Result<Selected, CredsError> {
    let (name, named_by) = match &opts.profile {
        Some(name) => (name.clone(), "--profile"),
        None => default_profile(around.env),
    };
    let files = shared_files(around);
    match profile::find(&files, &name)? {
        Some(ProfileKeys::Static {
            credentials,
            origin,
        }) => Ok(Selected::Static {
            credentials,
            origin,
        }),
        Some(ProfileKeys::Process { command }) => {
            Ok(Selected::Refreshing(ProviderSpec::Process { command }))
        }
        None => Err(missing_profile(&name, named_by, &files)),
    }
}

fn missing_profile(name: &str, named_by: &str, files: &SharedFiles) -> CredsError {
    let names = profile::names(files);
    let held = if names.is_empty() {
        "they hold no profile".to_string()
    } else {
        format!("they hold: {}", names.join(", "))
    };
    CredsError::Config(format!(
        "profile \"{name}\" ({named_by}) is not in {}; {held}",
        profile::describe(files)
    ))
}
