//! The Tencent Cloud key family (COS targets): which sources are
//! configured, in the precedence `select.rs`'s opening comment gives with
//! its reasons, and how each is built, STS AssumeRole and the CVM role
//! included.

use std::time::Duration;

use super::CredsError;
use super::env;
use super::http;
use super::metadata::{CamRoleConfig, DEFAULT_CAM_ROLE_ENDPOINT};
use super::passwd;
use super::select::{
    CredentialOptions, ProviderSpec, Selected, Surroundings, command_line, process,
};
use super::source::SourceKind;
use super::sts::{self, AssumeRoleConfig};

/// Configured Tencent sources, in precedence order.
pub(super) fn configured(opts: &CredentialOptions, around: &Surroundings<'_>) -> Vec<SourceKind> {
    let candidates = [
        (SourceKind::Sts, opts.role_arn.is_some()),
        (SourceKind::CommandLine, opts.has_cli_keys()),
        (SourceKind::Env, env::is_configured(around.env)),
        (SourceKind::Passwd, opts.explicit_passwd()),
        (SourceKind::CamRole, opts.role().is_some()),
        (SourceKind::Process, opts.credential_process.is_some()),
        (
            SourceKind::Passwd,
            !opts.explicit_passwd() && around.default_passwd().is_some(),
        ),
    ];
    candidates
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| k)
        .collect()
}

/// The error when no Tencent source is configured.
pub(super) fn nothing_found() -> CredsError {
    CredsError::Config(
        "no credentials found: give --secret-id/--secret-key, set COS_SECRET_ID/COS_SECRET_KEY \
         (or TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY), write ~/.passwd-cosfs or /etc/passwd-cosfs \
         (or passwd_file=FILE), use cam_role=ROLE on a CVM instance or credential_process=CMD, \
         or --anonymous for a public bucket"
            .into(),
    )
}

/// Builds the chosen source; also returns the source that supplied STS's keys.
pub(super) fn build(
    kind: SourceKind,
    opts: &CredentialOptions,
    bucket: &str,
    around: &Surroundings<'_>,
) -> Result<(Selected, Option<SourceKind>), CredsError> {
    let selected = match kind {
        SourceKind::CommandLine => command_line(opts)?,
        SourceKind::Env => match env::load(around.env)? {
            Some((credentials, origin)) => Selected::Static {
                credentials,
                origin,
            },
            None => {
                return Err(CredsError::Config(
                    "credential source env: neither COS_SECRET_ID/COS_SECRET_KEY nor \
                     TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY is set"
                        .into(),
                ));
            }
        },
        SourceKind::Passwd => passwd_source(opts, bucket, around)?,
        SourceKind::CamRole => cam_role(opts)?,
        SourceKind::Sts => return assume_role(opts, bucket, around),
        SourceKind::Process => process(opts)?,
        SourceKind::Anonymous => Selected::Anonymous,
        SourceKind::Profile => {
            return Err(CredsError::Config(
                "credential source profile reads AWS profiles (~/.aws/credentials): it is for S3 targets"
                    .into(),
            ));
        }
    };
    Ok((selected, None))
}

fn passwd_source(
    opts: &CredentialOptions,
    bucket: &str,
    around: &Surroundings<'_>,
) -> Result<Selected, CredsError> {
    let path = match (&opts.passwd_file, around.default_passwd()) {
        (Some(p), _) | (None, Some(p)) => p.clone(),
        (None, None) => {
            return Err(CredsError::Config(
                "no passwd file: give passwd_file=FILE, or write ~/.passwd-cosfs or /etc/passwd-cosfs".into(),
            ));
        }
    };
    let credentials = passwd::load(&path, bucket).map_err(|e| CredsError::Config(e.0))?;
    if credentials.expires_at.is_some() {
        return Ok(Selected::Refreshing(ProviderSpec::PasswdFile {
            path,
            bucket: bucket.to_string(),
        }));
    }
    Ok(Selected::Static {
        credentials,
        origin: format!("passwd file {}", path.display()),
    })
}

fn cam_role(opts: &CredentialOptions) -> Result<Selected, CredsError> {
    let Some(role) = opts.role() else {
        return Err(CredsError::Config(
            "credential source cam_role needs cam_role=ROLE".into(),
        ));
    };
    if !is_name(role, 1) {
        return Err(CredsError::Config(format!(
            "cam_role {role:?} is not a role name (letters, digits and +=,.@_-)"
        )));
    }
    let endpoint = opts
        .cam_role_endpoint
        .as_deref()
        .unwrap_or(DEFAULT_CAM_ROLE_ENDPOINT);
    http::parse_url("cam_role_endpoint", endpoint)?;
    Ok(Selected::Refreshing(ProviderSpec::CamRole(CamRoleConfig {
        role: role.to_string(),
        endpoint: endpoint.to_string(),
    })))
}

fn assume_role(
    opts: &CredentialOptions,
    bucket: &str,
    around: &Surroundings<'_>,
) -> Result<(Selected, Option<SourceKind>), CredsError> {
    let Some(role_arn) = opts.role_arn.as_deref().filter(|a| !a.is_empty()) else {
        return Err(CredsError::Config(
            "credential source sts needs role_arn=ROLE_ARN".into(),
        ));
    };
    let base_kind = configured(opts, around)
        .into_iter()
        .find(|k| {
            matches!(
                k,
                SourceKind::CommandLine | SourceKind::Env | SourceKind::Passwd
            )
        })
        .ok_or_else(|| {
            CredsError::Config(
                "role_arn needs permanent keys to call STS with: give --secret-id/--secret-key, \
                 set COS_SECRET_ID/COS_SECRET_KEY, or write a passwd file"
                    .into(),
            )
        })?;
    let (base, base_origin) = match build(base_kind, opts, bucket, around)?.0 {
        Selected::Static {
            credentials,
            origin,
        } => (credentials, origin),
        other => {
            let origin = match other {
                Selected::Refreshing(spec) => spec.origin(),
                _ => base_kind.to_string(),
            };
            return Err(CredsError::Config(format!(
                "role_arn needs permanent keys, but {origin} holds temporary ones"
            )));
        }
    };
    let session_name = opts
        .role_session_name
        .as_deref()
        .unwrap_or(sts::DEFAULT_SESSION_NAME);
    if !(is_name(session_name, 2) && session_name.len() <= 128) {
        return Err(CredsError::Config(format!(
            "role_session_name {session_name:?} must be 2-128 letters, digits or +=,.@_-"
        )));
    }
    let duration = opts.sts_duration.unwrap_or(sts::DEFAULT_DURATION);
    if duration < Duration::from_secs(1) || duration > sts::MAX_DURATION {
        return Err(CredsError::Config(format!(
            "sts_duration {}s is out of range: STS grants 1 s to 12 h",
            duration.as_secs()
        )));
    }
    let endpoint = opts
        .sts_endpoint
        .as_deref()
        .unwrap_or(sts::DEFAULT_STS_ENDPOINT);
    http::parse_url("sts_endpoint", endpoint)?;
    let region = opts
        .sts_region
        .as_deref()
        .or(opts.region.as_deref())
        .unwrap_or("ap-guangzhou");
    let config = AssumeRoleConfig {
        role_arn: role_arn.to_string(),
        session_name: session_name.to_string(),
        endpoint: endpoint.to_string(),
        region: region.to_string(),
        duration,
        base,
        base_origin,
    };
    Ok((
        Selected::Refreshing(ProviderSpec::AssumeRole(config)),
        Some(base_kind),
    ))
}

/// Letters, digits and `+=,.@_-`, at least `min` long (CAM's name rule).
fn is_name(s: &str, min: usize) -> bool {
    s.len() >= min
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}
