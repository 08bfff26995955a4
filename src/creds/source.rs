//! The names of the credential sources, as `--credential-source` takes
//! them (with the aliases cosfs and the SDKs use).

use std::fmt;
use std::str::FromStr;

use super::CredsError;

/// A credential source, as named by `--credential-source`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// Keys given on the command line or with `-o`.
    CommandLine,
    /// Keys in environment variables.
    Env,
    /// A cosfs passwd file (format 1 or 2).
    Passwd,
    /// A CAM role from the instance metadata service.
    CamRole,
    /// STS AssumeRole with permanent keys.
    Sts,
    /// An external command printing JSON.
    Process,
    /// Unsigned requests.
    Anonymous,
    /// An AWS profile in `~/.aws/credentials` or `~/.aws/config`.
    Profile,
}

impl SourceKind {
    /// Every source, in the order of the names accepted.
    pub const ALL: [SourceKind; 8] = [
        SourceKind::CommandLine,
        SourceKind::Env,
        SourceKind::Passwd,
        SourceKind::CamRole,
        SourceKind::Sts,
        SourceKind::Process,
        SourceKind::Anonymous,
        SourceKind::Profile,
    ];

    /// The name `--credential-source` takes.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::CommandLine => "cli",
            SourceKind::Env => "env",
            SourceKind::Passwd => "passwd",
            SourceKind::CamRole => "cam_role",
            SourceKind::Sts => "sts",
            SourceKind::Process => "process",
            SourceKind::Anonymous => "anonymous",
            SourceKind::Profile => "profile",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SourceKind {
    type Err = CredsError;

    fn from_str(s: &str) -> Result<SourceKind, CredsError> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        let alias = match wanted.as_str() {
            "command_line" => "cli",
            "environment" => "env",
            "passwd_file" => "passwd",
            "assume_role" => "sts",
            "credential_process" => "process",
            "public" => "anonymous",
            "aws_profile" | "shared_credentials" => "profile",
            other => other,
        };
        SourceKind::ALL
            .into_iter()
            .find(|k| k.name() == alias)
            .ok_or_else(|| {
                let names: Vec<&str> = SourceKind::ALL.iter().map(|k| k.name()).collect();
                CredsError::Config(format!(
                    "credential source {s:?} is not one of {}",
                    names.join(", ")
                ))
            })
    }
}
