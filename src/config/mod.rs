//! The validated configuration: the typed flags of `cli/` become each
//! layer's own settings ([`ClientConfig`], [`FsConfig`], [`MountOptions`],
//! [`ServerConfig`](crate::server::ServerConfig), the credential source),
//! with every check on their combination and a message that names the bad
//! value and what to do. Inner layers never see clap; defaults live with
//! the layer that uses them and `cli/` shows them from there.

mod creds;
mod layers;
mod monitor;
mod serve;
mod target;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

pub use monitor::Monitoring;

use crate::cli::{LogLevel, MountArgs, ProviderArg};
use crate::cos::client::ClientConfig;
use crate::cos::endpoint::Endpoint;
use crate::cos::provider::probe_blocking;
use crate::cos::{Encryption, Provider, StorageClass};
use crate::creds::Selected;
use crate::creds::select::Surroundings;
use crate::fs::FsConfig;
use crate::mount::MountOptions;
use crate::retry::RetryPolicy;

pub use serve::server_config;
pub use target::{Domain, Probe, Resolve, Target, parse_bucket_spec, validate_bucket};

/// Bucket name used by `--local` when none is given.
pub const LOCAL_BUCKET: &str = "local-1250000000";

/// The client's deadlines (see [`ClientConfig`] for what each bounds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timeouts {
    /// Ceiling of the learned first-byte deadline (`--request-timeout`).
    pub first_byte: Duration,
    /// Longest silence of a moving body (`--stall-timeout`).
    pub stall: Duration,
    /// Per-operation deadline, all attempts (`--op-timeout`).
    pub op: Duration,
}

/// Everything needed to mount.
#[derive(Clone, Debug)]
pub struct MountConfig {
    /// Bucket `name-appid` (any S3 name for S3 targets).
    pub bucket: String,
    /// The dialect requests are written in.
    pub provider: Provider,
    /// Region.
    pub region: String,
    /// Where requests go.
    pub target: Target,
    /// The static-website domain's behaviour: read-only, no listing.
    pub website: bool,
    /// DNS override for the endpoint's host.
    pub resolve: Option<Resolve>,
    /// How requests are signed.
    pub credentials: Selected,
    /// Warnings about the credential choice (sources configured but unused),
    /// logged once the logger runs.
    pub credential_notes: Vec<String>,
    /// How long the client waits for progress, and per operation.
    pub timeouts: Timeouts,
    /// The class of new objects (`--storage-class`).
    pub storage_class: StorageClass,
    /// The encryption of new objects (`--sse`).
    pub encryption: Encryption,
    /// At mount, abort multipart uploads under the prefix initiated this
    /// long before the mount started (`None`: keep them).
    pub abort_stale_uploads: Option<Duration>,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Filesystem behaviour.
    pub fs: FsConfig,
    /// Kernel mount settings.
    pub mount: MountOptions,
    /// Metrics endpoint and audit log.
    pub monitoring: Monitoring,
    /// Stay in the foreground.
    pub foreground: bool,
}

/// Logging settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `error`..`trace`.
    pub level: log::LevelFilter,
    /// Log file instead of stderr.
    pub file: Option<PathBuf>,
}

/// Reads the logging part of the command line.
pub fn log_config(args: &MountArgs) -> LogConfig {
    let level = match (args.log_level, args.debug) {
        (Some(level), _) => level_filter(level),
        (None, true) => log::LevelFilter::Debug,
        (None, false) => log::LevelFilter::Info,
    };
    LogConfig {
        level,
        file: args.log_file.clone(),
    }
}

fn level_filter(level: LogLevel) -> log::LevelFilter {
    match level {
        LogLevel::Off => log::LevelFilter::Off,
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Trace => log::LevelFilter::Trace,
    }
}

impl MountConfig {
    /// Validates the raw mount arguments, looking for credentials in the
    /// process environment and the default passwd files, and asking a
    /// custom endpoint its dialect when nothing else tells it.
    pub fn from_args(args: &MountArgs) -> Result<MountConfig, String> {
        MountConfig::from_args_in(args, &Surroundings::of_process(), &probe_blocking)
    }

    /// Validates the raw mount arguments with the given environment,
    /// default passwd files and endpoint probe (tests).
    pub fn from_args_in(
        args: &MountArgs,
        around: &Surroundings<'_>,
        probe: Probe<'_>,
    ) -> Result<MountConfig, String> {
        let (spec, mountpoint) = match (&args.bucket, &args.mountpoint, &args.local) {
            (Some(b), Some(m), _) => (b.clone(), m.clone()),
            (Some(m), None, Some(_)) => (LOCAL_BUCKET.to_string(), PathBuf::from(m)),
            (None, None, _) => {
                return Err("missing BUCKET and MOUNTPOINT; see `cosmount --help`".into());
            }
            _ => return Err("missing MOUNTPOINT: `cosmount BUCKET MOUNTPOINT`".into()),
        };
        MountConfig::build(args, &spec, mountpoint, around, probe)
    }

    /// Validates the arguments of `cosmount COMMAND BUCKET [options]`
    /// (`check`, `cleanup`): a mount's, without a mountpoint.
    pub fn for_command(
        command: &str,
        args: &MountArgs,
        around: &Surroundings<'_>,
        probe: Probe<'_>,
    ) -> Result<MountConfig, String> {
        if args.local.is_some() {
            return Err(format!(
                "`cosmount {command}` works on a bucket at COS or --endpoint, not --local"
            ));
        }
        let Some(spec) = &args.bucket else {
            return Err(format!(
                "missing BUCKET: `cosmount {command} BUCKET [options]`"
            ));
        };
        if let Some(extra) = &args.mountpoint {
            return Err(format!(
                "`cosmount {command}` takes no mountpoint (got {})",
                extra.display()
            ));
        }
        MountConfig::build(args, spec, PathBuf::new(), around, probe)
    }

    fn build(
        args: &MountArgs,
        spec: &str,
        mountpoint: PathBuf,
        around: &Surroundings<'_>,
        probe: Probe<'_>,
    ) -> Result<MountConfig, String> {
        let explicit = args.provider.map(|p| match p {
            ProviderArg::Cos => Provider::Cos,
            ProviderArg::S3 => Provider::S3,
        });
        let target = target::target(args, explicit)?;
        let provider = target::provider(args, explicit, &target, probe)?;
        let (bucket, prefix) = parse_bucket_spec(spec, provider)?;
        let region = target::region(args, &target, provider)?;
        let resolve = match &args.resolve {
            Some(text) => Some(target::resolve(text, &target, &bucket, &region)?),
            None => None,
        };
        let (credentials, credential_notes) =
            creds::credentials(args, &bucket, &region, &target, provider, around)?;
        let fs = layers::fs_config(args, &bucket, prefix)?;
        let mount = layers::mount_options(args, spec, mountpoint);
        let (timeouts, retry) = layers::deadlines(args)?;
        let monitoring = monitor::monitoring(args)?;
        Ok(MountConfig {
            bucket,
            provider,
            region,
            target,
            website: args.website,
            resolve,
            credentials,
            credential_notes,
            timeouts,
            storage_class: args.storage_class.clone().unwrap_or_default(),
            encryption: args.sse.clone().unwrap_or_default(),
            abort_stale_uploads: args.abort_stale_uploads.0,
            retry,
            fs,
            mount,
            monitoring,
            foreground: args.foreground,
        })
    }

    /// The client settings for `endpoint` (where [`Target`] says, or the
    /// `--local` server's address): timeouts, retries, `--resolve`.
    pub fn client_config(&self, endpoint: Endpoint) -> ClientConfig {
        ClientConfig {
            request_timeout: self.timeouts.first_byte,
            stall_timeout: self.timeouts.stall,
            op_timeout: self.timeouts.op,
            retry: self.retry.clone(),
            resolve: self.resolve.as_ref().map(|r| r.addr),
            provider: self.provider,
            storage_class: self.storage_class.clone(),
            encryption: self.encryption.clone(),
            ..ClientConfig::new(endpoint)
        }
    }
}
