//! Which credentials a mount signs with: the flags become
//! [`CredentialOptions`] and `creds::select` picks the source (its
//! precedence and reasons are written there, once).

use crate::cli::MountArgs;
use crate::cos::Provider;
use crate::creds::select::{self, Surroundings};
use crate::creds::{CredentialOptions, KeyFamily, Secret, Selected, SourceKind};

use super::target::Target;

/// Picks the credential source (precedence in `creds/select.rs`); also
/// returns warnings about configured sources left unused.
pub(super) fn credentials(
    args: &MountArgs,
    bucket: &str,
    region: &str,
    target: &Target,
    provider: Provider,
    around: &Surroundings<'_>,
) -> Result<(Selected, Vec<String>), String> {
    if let Target::Local { .. } = target {
        return Ok((Selected::Generated, Vec::new()));
    }
    let family = match provider {
        Provider::Cos => KeyFamily::Tencent,
        Provider::S3 => KeyFamily::Aws,
    };
    let opts = credential_options(args, region, family)?;
    let selection = select::select(&opts, bucket, around).map_err(|e| e.to_string())?;
    let source = selection.selected;
    let mut notes = Vec::new();
    if !selection.unused.is_empty() {
        let unused: Vec<&str> = selection.unused.iter().map(|k| k.name()).collect();
        notes.push(format!(
            "credentials come from {}; also configured but not used: {} (choose with --credential-source)",
            source.origin().unwrap_or_else(|| "nowhere (anonymous)".into()),
            unused.join(", ")
        ));
    }
    Ok((source, notes))
}

/// The credential part of the command line, without clap.
fn credential_options(
    args: &MountArgs,
    region: &str,
    family: KeyFamily,
) -> Result<CredentialOptions, String> {
    let mut source = args.credential_source;
    if args.anonymous {
        match source {
            None | Some(SourceKind::Anonymous) => source = Some(SourceKind::Anonymous),
            Some(other) => {
                return Err(format!(
                    "--anonymous conflicts with --credential-source {other}"
                ));
            }
        }
    }
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let secret = |v: &Option<Secret>| nonempty(&v.as_ref().map(|s| s.expose().to_string()));
    Ok(CredentialOptions {
        family,
        source,
        secret_id: nonempty(&args.secret_id),
        secret_key: secret(&args.secret_key),
        session_token: secret(&args.session_token),
        passwd_file: args.passwd_file.clone(),
        cam_role: nonempty(&args.cam_role),
        cam_role_endpoint: nonempty(&args.cam_role_endpoint),
        role_arn: nonempty(&args.role_arn),
        role_session_name: nonempty(&args.role_session_name),
        sts_endpoint: nonempty(&args.sts_endpoint),
        sts_region: nonempty(&args.sts_region),
        sts_duration: args.sts_duration.map(|s| s.0),
        credential_process: nonempty(&args.credential_process),
        profile: nonempty(&args.profile),
        region: Some(region.to_string()),
    })
}
