//! The validated configuration: every check on the raw command line happens
//! here, with a message that names the bad value and what to do. Inner
//! layers get their own small config structs and never see clap.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::cache::CacheConfig;
use crate::cli::MountArgs;
use crate::cos::endpoint::{Endpoint, Style};
use crate::cos::retry::RetryPolicy;
use crate::creds::select::{self, Surroundings};
use crate::creds::{CredentialOptions, Credentials, ProviderSpec, Secret, Selected, SourceKind};
use crate::fs::FsConfig;
use crate::fs::attr::Ownership;
use crate::fuse::DirectIo;
use crate::mount::MountOptions;
use crate::upload::{MAX_PART_SIZE, MIN_PART_SIZE, UploadConfig};

/// Bucket name used by `--local` when none is given.
pub const LOCAL_BUCKET: &str = "local-1250000000";

/// Where requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One of COS's own domains.
    Cos {
        /// Use HTTPS (the default; `--http` turns it off).
        https: bool,
        /// Which domain.
        domain: Domain,
    },
    /// A custom endpoint URL.
    Custom {
        /// The URL.
        url: String,
        /// Path-style addressing.
        path_style: bool,
    },
    /// The embedded server over a local folder.
    Local {
        /// The folder.
        dir: PathBuf,
    },
}

/// COS's own domains for a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// `<bucket>.cos.<region>.myqcloud.com` (the default).
    VirtualHosted,
    /// `cos.<region>.myqcloud.com/<bucket>` (`--path-style`).
    PathStyle,
    /// `<bucket>.cos.accelerate.myqcloud.com` (`--accelerate`).
    Accelerate,
    /// `<bucket>.cos-website.<region>.myqcloud.com` (`--website`).
    Website,
}

impl Target {
    /// Where `bucket` of `region` lives for this target (not for `Local`,
    /// whose address is known only once its server runs).
    pub fn endpoint(&self, bucket: &str, region: &str) -> Result<Endpoint, String> {
        Ok(match self {
            Target::Cos { https, domain } => match domain {
                Domain::VirtualHosted => Endpoint::virtual_hosted(bucket, region, *https),
                Domain::PathStyle => Endpoint::path_style(bucket, region, *https),
                Domain::Accelerate => Endpoint::accelerate(bucket, region, *https),
                Domain::Website => Endpoint::website(bucket, region, *https),
            },
            Target::Custom { url, path_style } => {
                let style = if *path_style {
                    Style::PathStyle
                } else {
                    Style::VirtualHosted
                };
                Endpoint::custom(url, bucket, region, style).map_err(|e| e.to_string())?
            }
            Target::Local { dir } => {
                return Err(format!(
                    "--local {} has no endpoint before its server starts",
                    dir.display()
                ));
            }
        })
    }
}

/// `--resolve HOST:ADDR`: send requests for HOST to ADDR instead of asking DNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolve {
    /// The host name (no port).
    pub host: String,
    /// Where its requests go.
    pub addr: SocketAddr,
}

/// How requests are signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// No signature (public buckets).
    Anonymous,
    /// Fixed keys; `origin` says where they came from (for messages).
    Static {
        /// The keys.
        credentials: Credentials,
        /// Where they were found.
        origin: String,
    },
    /// Keys generated for the in-process server (`--local`).
    Generated,
    /// Temporary keys fetched from a source and refreshed before expiry.
    Refreshing(ProviderSpec),
}

impl CredentialSource {
    /// Where the credentials come from, for messages (`None` when anonymous).
    pub fn origin(&self) -> Option<String> {
        match self {
            CredentialSource::Anonymous => None,
            CredentialSource::Static { origin, .. } => Some(origin.clone()),
            CredentialSource::Generated => Some("keys generated for --local".into()),
            CredentialSource::Refreshing(spec) => Some(spec.origin()),
        }
    }
}

/// Everything needed to mount.
#[derive(Clone, Debug)]
pub struct MountConfig {
    /// Bucket `name-appid`.
    pub bucket: String,
    /// Region.
    pub region: String,
    /// Where requests go.
    pub target: Target,
    /// The static-website domain's behaviour: read-only, no listing.
    pub website: bool,
    /// DNS override for the endpoint's host.
    pub resolve: Option<Resolve>,
    /// How requests are signed.
    pub credentials: CredentialSource,
    /// Warnings about the credential choice (sources configured but unused),
    /// logged once the logger runs.
    pub credential_notes: Vec<String>,
    /// Per-attempt deadline.
    pub request_timeout: Duration,
    /// Per-operation deadline (all attempts).
    pub op_timeout: Duration,
    /// At mount, abort multipart uploads under the prefix initiated this
    /// long before the mount started (`None`: keep them).
    pub abort_stale_uploads: Option<Duration>,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Filesystem behaviour.
    pub fs: FsConfig,
    /// Kernel mount settings.
    pub mount: MountOptions,
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
pub fn log_config(args: &MountArgs) -> Result<LogConfig, String> {
    let level = match (&args.log_level, args.debug) {
        (Some(l), _) => l.parse().map_err(|_| {
            format!("--log-level {l:?} is not one of error, warn, info, debug, trace")
        })?,
        (None, true) => log::LevelFilter::Debug,
        (None, false) => log::LevelFilter::Info,
    };
    Ok(LogConfig {
        level,
        file: args.log_file.clone(),
    })
}

impl MountConfig {
    /// Validates the raw mount arguments, looking for credentials in the
    /// process environment and the default passwd files.
    pub fn from_args(args: &MountArgs) -> Result<MountConfig, String> {
        MountConfig::from_args_in(args, &Surroundings::of_process())
    }

    /// Validates the raw mount arguments with the given environment and
    /// default passwd files (tests).
    pub fn from_args_in(
        args: &MountArgs,
        around: &Surroundings<'_>,
    ) -> Result<MountConfig, String> {
        let (spec, mountpoint) = match (&args.bucket, &args.mountpoint, &args.local) {
            (Some(b), Some(m), _) => (b.clone(), m.clone()),
            (Some(m), None, Some(_)) => (LOCAL_BUCKET.to_string(), PathBuf::from(m)),
            (None, None, _) => {
                return Err("missing BUCKET and MOUNTPOINT; see `cosmount --help`".into());
            }
            _ => return Err("missing MOUNTPOINT: `cosmount BUCKET MOUNTPOINT`".into()),
        };
        MountConfig::build(args, &spec, mountpoint, around)
    }

    /// Validates the arguments of `cosmount check BUCKET [options]`: the
    /// same as a mount's, without a mountpoint.
    pub fn for_check(args: &MountArgs, around: &Surroundings<'_>) -> Result<MountConfig, String> {
        MountConfig::for_command("check", args, around)
    }

    /// Validates the arguments of `cosmount COMMAND BUCKET [options]`
    /// (`check`, `cleanup`): a mount's, without a mountpoint.
    pub fn for_command(
        command: &str,
        args: &MountArgs,
        around: &Surroundings<'_>,
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
        MountConfig::build(args, spec, PathBuf::new(), around)
    }

    fn build(
        args: &MountArgs,
        spec: &str,
        mountpoint: PathBuf,
        around: &Surroundings<'_>,
    ) -> Result<MountConfig, String> {
        let (bucket, prefix) = parse_bucket_spec(spec)?;
        let target = target(args)?;
        let region = match (&args.region, &target) {
            (Some(r), _) => validate_region(r)?,
            (None, Target::Custom { url, .. }) if url_region(url).is_some() => {
                url_region(url).unwrap_or_default()
            }
            (None, Target::Cos { .. }) => {
                return Err("--region is required (e.g. --region ap-guangzhou) unless --endpoint or --local is given".into());
            }
            (None, _) => "ap-guangzhou".to_string(),
        };
        let resolve = match &args.resolve {
            Some(text) => Some(resolve(text, &target, &bucket, &region)?),
            None => None,
        };
        let website = args.website;
        let (credentials, credential_notes) = credentials(args, &bucket, &region, &target, around)?;
        let ownership = ownership(args)?;
        let block_size = parse_size("--block-size", &args.block_size)?;
        let memory_bytes = parse_size("--cache-size", &args.cache_size)?;
        if memory_bytes < 8 * block_size {
            return Err(format!(
                "--cache-size {} is too small: give at least 8 blocks ({} bytes)",
                args.cache_size,
                8 * block_size
            ));
        }
        if args.retries == 0 {
            return Err("--retries must be at least 1".into());
        }
        let read_only = args.read_only || website;
        let fs = FsConfig {
            prefix,
            ownership,
            metadata_ttl: parse_duration("--metadata-ttl", &args.metadata_ttl)?,
            negative_ttl: parse_duration("--negative-ttl", &args.negative_ttl)?,
            fast_list: args.fast_list,
            read_only,
            no_listing: website,
            head_concurrency: args.max_requests.max(1),
            cache: CacheConfig {
                block_size,
                max_prefetch: parse_size("--max-prefetch", &args.max_prefetch)?,
            },
            memory_bytes,
            upload: UploadConfig {
                part_size: part_size(&args.part_size)?,
                part_concurrency: args.upload_concurrency.clamp(1, 64),
            },
            staging_dir: args
                .staging_dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("cosmount-staging")),
            staging_bytes: parse_size("--staging-size", &args.staging_size)?,
        };
        let mount = MountOptions {
            mountpoint,
            source: spec.to_string(),
            read_only,
            allow_other: args.allow_other,
            allow_root: args.allow_root,
            default_permissions: args.default_permissions
                || (args.allow_other && !args.no_default_permissions),
            fuse_threads: args.fuse_threads.clamp(1, 64),
            read_ahead_kb: args.read_ahead_kb,
            direct_io: match args.direct_io.as_str() {
                "auto" => DirectIo::Auto,
                "always" => DirectIo::Always,
                "never" => DirectIo::Never,
                other => {
                    return Err(format!(
                        "--direct-io {other:?} is not one of auto, always, never"
                    ));
                }
            },
        };
        Ok(MountConfig {
            bucket,
            region,
            target,
            website,
            resolve,
            credentials,
            credential_notes,
            request_timeout: parse_duration("--request-timeout", &args.request_timeout)?,
            op_timeout: op_timeout(&args.op_timeout)?,
            abort_stale_uploads: match args.abort_stale_uploads.as_str() {
                "off" | "never" => None,
                age => Some(parse_duration("--abort-stale-uploads", age)?),
            },
            retry: RetryPolicy {
                max_attempts: args.retries,
                ..RetryPolicy::default()
            },
            fs,
            mount,
            foreground: args.foreground,
        })
    }
}

fn op_timeout(text: &str) -> Result<Duration, String> {
    let d = parse_duration("--op-timeout", text)?;
    if d.is_zero() {
        return Err("--op-timeout must be longer than 0 (e.g. 30s)".into());
    }
    Ok(d)
}

/// Splits `name-appid[:/prefix]` and checks the bucket name.
pub fn parse_bucket_spec(spec: &str) -> Result<(String, String), String> {
    let (bucket, prefix) = match spec.split_once(':') {
        Some((b, p)) => (b, p.trim_start_matches('/')),
        None => (spec, ""),
    };
    validate_bucket(bucket)?;
    let prefix = match prefix {
        "" => String::new(),
        p if p.ends_with('/') => p.to_string(),
        p => format!("{p}/"),
    };
    Ok((bucket.to_string(), prefix))
}

/// A bucket is `<name>-<appid>`: lowercase letters, digits and `-`, then digits.
pub fn validate_bucket(bucket: &str) -> Result<(), String> {
    let ok = bucket.rsplit_once('-').is_some_and(|(name, appid)| {
        !name.is_empty()
            && !appid.is_empty()
            && appid.bytes().all(|b| b.is_ascii_digit())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bucket {bucket:?} is not of the form <name>-<appid> (e.g. examplebucket-1250000000)"
        ))
    }
}

fn validate_region(region: &str) -> Result<String, String> {
    let ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(region.to_string())
    } else {
        Err(format!(
            "region {region:?} is not a COS region name (e.g. ap-guangzhou)"
        ))
    }
}

fn target(args: &MountArgs) -> Result<Target, String> {
    let named = [
        ("--local", args.local.is_some()),
        ("--endpoint", args.endpoint.is_some()),
        ("--accelerate", args.accelerate),
        ("--website", args.website),
        ("--path-style", args.path_style),
        ("--http", args.http),
        ("--resolve", args.resolve.is_some()),
    ];
    let given = |name: &str| named.iter().any(|(n, on)| *n == name && *on);
    // Pairs that contradict each other, and why.
    let conflicts = [
        (
            "--local",
            "--endpoint",
            "the embedded server is the endpoint",
        ),
        (
            "--local",
            "--accelerate",
            "the embedded server is the endpoint",
        ),
        (
            "--local",
            "--website",
            "the embedded server is the endpoint",
        ),
        (
            "--local",
            "--resolve",
            "the embedded server is the endpoint",
        ),
        (
            "--endpoint",
            "--accelerate",
            "give the accelerate URL as --endpoint instead",
        ),
        (
            "--endpoint",
            "--http",
            "write http:// in the --endpoint URL instead",
        ),
        ("--accelerate", "--website", "they are different domains"),
        (
            "--accelerate",
            "--path-style",
            "the accelerate domain names the bucket in the host",
        ),
        (
            "--website",
            "--path-style",
            "the website domain names the bucket in the host",
        ),
    ];
    for (a, b, why) in conflicts {
        if given(a) && given(b) {
            return Err(format!("{a} and {b} cannot be combined: {why}"));
        }
    }
    if let Some(dir) = &args.local {
        return Ok(Target::Local { dir: dir.clone() });
    }
    if let Some(url) = &args.endpoint {
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(format!(
                "--endpoint {url:?} must start with http:// or https://"
            ));
        }
        return Ok(Target::Custom {
            url: url.clone(),
            path_style: args.path_style,
        });
    }
    let domain = if args.accelerate {
        Domain::Accelerate
    } else if args.website {
        Domain::Website
    } else if args.path_style {
        Domain::PathStyle
    } else {
        Domain::VirtualHosted
    };
    Ok(Target::Cos {
        https: !args.http,
        domain,
    })
}

/// The region a COS regional-domain URL names (`https://cos.<region>.myqcloud.com`).
fn url_region(url: &str) -> Option<String> {
    let host = url.split_once("://")?.1.split('/').next()?;
    crate::cos::endpoint::regional_domain(host).map(str::to_string)
}

/// Parses `--resolve HOST:ADDR` (ADDR is `IP:PORT` or `[IPv6]:PORT`) and
/// checks HOST is the host requests go to.
fn resolve(text: &str, target: &Target, bucket: &str, region: &str) -> Result<Resolve, String> {
    let bad = || {
        format!(
            "--resolve {text:?} is not HOST:IP:PORT (e.g. {bucket}.cos.{region}.myqcloud.com:127.0.0.1:8080)"
        )
    };
    let (host, addr) = text.split_once(':').ok_or_else(bad)?;
    let addr: SocketAddr = addr.parse().map_err(|_| bad())?;
    let endpoint = target.endpoint(bucket, region)?;
    let endpoint_host = endpoint.host.split(':').next().unwrap_or_default();
    if host.is_empty() || !host.eq_ignore_ascii_case(endpoint_host) {
        return Err(format!(
            "--resolve names host {host:?}, but requests go to {endpoint_host}"
        ));
    }
    Ok(Resolve {
        host: endpoint_host.to_string(),
        addr,
    })
}

/// Picks the credential source (precedence in `creds/select.rs`); also
/// returns warnings about configured sources left unused.
fn credentials(
    args: &MountArgs,
    bucket: &str,
    region: &str,
    target: &Target,
    around: &Surroundings<'_>,
) -> Result<(CredentialSource, Vec<String>), String> {
    if let Target::Local { .. } = target {
        return Ok((CredentialSource::Generated, Vec::new()));
    }
    let opts = credential_options(args, region)?;
    let selection = select::select(&opts, bucket, around).map_err(|e| e.to_string())?;
    let source = match selection.selected {
        Selected::Anonymous => CredentialSource::Anonymous,
        Selected::Static {
            credentials,
            origin,
        } => CredentialSource::Static {
            credentials,
            origin,
        },
        Selected::Refreshing(spec) => CredentialSource::Refreshing(spec),
    };
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
fn credential_options(args: &MountArgs, region: &str) -> Result<CredentialOptions, String> {
    let mut source = match &args.credential_source {
        Some(name) => Some(name.parse::<SourceKind>().map_err(|e| e.to_string())?),
        None => None,
    };
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
    let sts_duration = match &args.sts_duration {
        Some(d) => Some(parse_duration("--sts-duration", d)?),
        None => None,
    };
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let secret = |v: &Option<Secret>| nonempty(&v.as_ref().map(|s| s.expose().to_string()));
    Ok(CredentialOptions {
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
        sts_duration,
        credential_process: nonempty(&args.credential_process),
        region: Some(region.to_string()),
    })
}

fn ownership(args: &MountArgs) -> Result<Ownership, String> {
    // SAFETY: getuid/getgid cannot fail and have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    Ok(Ownership {
        uid: args.uid.unwrap_or(uid),
        gid: args.gid.unwrap_or(gid),
        force_owner: args.uid.is_some() || args.gid.is_some(),
        file_mode: parse_octal("--file-mode", args.file_mode.as_deref(), 0o644)?,
        dir_mode: parse_octal("--dir-mode", args.dir_mode.as_deref(), 0o755)?,
        umask: parse_octal("--umask", args.umask.as_deref(), 0)?,
    })
}

fn parse_octal(name: &str, value: Option<&str>, default: u16) -> Result<u16, String> {
    match value {
        None => Ok(default),
        Some(v) => u16::from_str_radix(v.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| format!("{name} {v:?} is not an octal mode such as 0644")),
    }
}

/// Parses `1048576`, `64MiB`, `64M`, `1G`, `512k` (binary units).
pub fn parse_size(name: &str, value: &str) -> Result<u64, String> {
    let v = value.trim();
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(digits);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("{name} {value:?} is not a size such as 64MiB")),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{name} {value:?} is not a size such as 64MiB"))
}

/// The multipart part size: between COS's 1 MiB and 5 GiB limits.
fn part_size(value: &str) -> Result<u64, String> {
    let size = parse_size("--part-size", value)?;
    if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&size) {
        return Err(format!(
            "--part-size {value} must be between 1MiB and 5GiB (COS part limits)"
        ));
    }
    Ok(size)
}

/// Parses `1s`, `500ms`, `5m` or plain seconds (`1.5`).
pub fn parse_duration(name: &str, value: &str) -> Result<Duration, String> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if secs >= 0.0 && secs.is_finite() {
            return Ok(Duration::from_secs_f64(secs));
        }
    }
    humantime::parse_duration(v)
        .map_err(|_| format!("{name} {value:?} is not a duration such as 1s or 500ms"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn config(args: &[&str]) -> Result<MountConfig, String> {
        config_with_env(args, &[])
    }

    /// Parses with the given environment and no default passwd files.
    fn config_with_env(args: &[&str], vars: &[(&str, &str)]) -> Result<MountConfig, String> {
        let mut full = vec!["cosmount"];
        full.extend_from_slice(args);
        let lookup = |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        };
        let around = Surroundings {
            env: &lookup,
            default_passwd_files: Vec::new(),
        };
        MountConfig::from_args_in(&Cli::try_parse_from(full).unwrap().mount, &around)
    }

    #[test]
    fn builds_a_config_from_keys_and_prefix() {
        let c = config(&[
            "b-125:/data/x",
            "/mnt",
            "--region",
            "ap-beijing",
            "--secret-id",
            "AK",
            "--secret-key",
            "SK",
        ])
        .unwrap();
        assert_eq!(
            (c.bucket.as_str(), c.fs.prefix.as_str()),
            ("b-125", "data/x/")
        );
        assert_eq!(
            c.target,
            Target::Cos {
                https: true,
                domain: Domain::VirtualHosted
            }
        );
        assert!(matches!(c.credentials, CredentialSource::Static { .. }));
        assert_eq!(c.fs.metadata_ttl, Duration::from_secs(1));
        assert_eq!(c.fs.memory_bytes, 256 << 20);
    }

    #[test]
    fn local_mode_needs_only_a_mountpoint() {
        let c = config(&["--local", "/tmp/data", "/mnt"]).unwrap();
        assert_eq!(c.bucket, LOCAL_BUCKET);
        assert_eq!(c.mount.mountpoint, PathBuf::from("/mnt"));
        assert_eq!(c.credentials, CredentialSource::Generated);
    }

    #[test]
    fn explains_bad_input() {
        let err = |a: &[&str]| config(a).unwrap_err();
        assert!(err(&["bucket", "/m", "--region", "r", "--anonymous"]).contains("<name>-<appid>"));
        assert!(err(&["b-1", "/m", "--anonymous"]).contains("--region is required"));
        assert!(
            err(&["b-1", "/m", "--region", "ap-x", "--secret-id", "A"])
                .contains("without --secret-key")
        );
        assert!(err(&["b-1", "/m", "--region", "AP", "--anonymous"]).contains("region"));
        assert!(
            err(&[
                "b-1",
                "/m",
                "--region",
                "r",
                "--anonymous",
                "--cache-size",
                "lots"
            ])
            .contains("--cache-size")
        );
        assert!(
            err(&["b-1", "/m", "--region", "r", "--anonymous", "--umask", "99"]).contains("octal")
        );
        assert!(
            err(&[
                "b-1",
                "/m",
                "--region",
                "r",
                "--anonymous",
                "--metadata-ttl",
                "soon"
            ])
            .contains("duration")
        );
        assert!(
            err(&["b-1", "/m", "--endpoint", "localhost:9", "--anonymous"]).contains("http://")
        );
        assert!(err(&["b-1"]).contains("MOUNTPOINT"));
    }

    #[test]
    fn picks_each_endpoint_kind() {
        let endpoint = |extra: &[&str]| {
            let args = [
                &["b-1", "/m", "--region", "ap-beijing", "--anonymous"][..],
                extra,
            ]
            .concat();
            let c = config(&args).unwrap();
            (c.target.endpoint(&c.bucket, &c.region).unwrap(), c)
        };
        let (e, _) = endpoint(&[]);
        assert_eq!(e.bucket_url(), "https://b-1.cos.ap-beijing.myqcloud.com/");
        let (e, _) = endpoint(&["--path-style", "--http"]);
        assert_eq!(e.bucket_url(), "http://cos.ap-beijing.myqcloud.com/b-1/");
        let (e, _) = endpoint(&["--accelerate"]);
        assert_eq!(e.bucket_url(), "https://b-1.cos.accelerate.myqcloud.com/");
        let (e, c) = endpoint(&["--website"]);
        assert_eq!(
            e.bucket_url(),
            "https://b-1.cos-website.ap-beijing.myqcloud.com/"
        );
        assert!(c.website && c.fs.no_listing && c.fs.read_only && c.mount.read_only);
        let (e, c) = endpoint(&["--endpoint", "http://gw:81", "--website"]);
        assert_eq!(e.bucket_url(), "http://gw:81/");
        assert!(c.fs.no_listing);
        let (e, _) = endpoint(&["--endpoint", "https://gw", "--path-style"]);
        assert_eq!(e.bucket_url(), "https://gw/b-1/");
        // cosfs's `url=https://cos.<region>.myqcloud.com`: the bucket goes in
        // front, and the region comes from the URL.
        let c = config(&[
            "b-1",
            "/m",
            "--url",
            "https://cos.ap-chengdu.myqcloud.com",
            "--anonymous",
        ])
        .unwrap();
        let e = c.target.endpoint(&c.bucket, &c.region).unwrap();
        assert_eq!(e.bucket_url(), "https://b-1.cos.ap-chengdu.myqcloud.com/");
        assert_eq!(c.region, "ap-chengdu");
        let (_, c) = endpoint(&[]);
        assert!(!c.website && !c.fs.no_listing && !c.fs.read_only);
    }

    #[test]
    fn resolve_must_name_the_endpoint_host() {
        let base = ["b-1", "/m", "--region", "ap-beijing", "--anonymous"];
        let with = |extra: &[&str]| config(&[&base[..], extra].concat());
        let c = with(&[
            "--resolve",
            "b-1.cos.ap-beijing.myqcloud.com:127.0.0.1:8080",
        ])
        .unwrap();
        let r = c.resolve.unwrap();
        assert_eq!(r.host, "b-1.cos.ap-beijing.myqcloud.com");
        assert_eq!(r.addr, "127.0.0.1:8080".parse().unwrap());
        let c = with(&[
            "--path-style",
            "--resolve",
            "cos.ap-beijing.myqcloud.com:[::1]:80",
        ])
        .unwrap();
        assert_eq!(c.resolve.unwrap().addr, "[::1]:80".parse().unwrap());
        let e = with(&["--resolve", "other.example.com:127.0.0.1:80"]).unwrap_err();
        assert!(
            e.contains("requests go to b-1.cos.ap-beijing.myqcloud.com"),
            "{e}"
        );
        let e = with(&["--resolve", "b-1.cos.ap-beijing.myqcloud.com"]).unwrap_err();
        assert!(e.contains("HOST:IP:PORT"), "{e}");
    }

    #[test]
    fn contradictory_endpoint_options_are_refused() {
        let base = ["b-1", "/m", "--region", "ap-beijing", "--anonymous"];
        let err = |extra: &[&str]| config(&[&base[..], extra].concat()).unwrap_err();
        assert!(err(&["--accelerate", "--website"]).contains("--accelerate and --website"));
        assert!(err(&["--accelerate", "--path-style"]).contains("cannot be combined"));
        assert!(err(&["--website", "--path-style"]).contains("cannot be combined"));
        assert!(err(&["--endpoint", "http://x", "--http"]).contains("write http://"));
        assert!(
            err(&["--endpoint", "http://x", "--accelerate"])
                .contains("--endpoint and --accelerate")
        );
        let e = config(&["--local", "/d", "/m", "--website"]).unwrap_err();
        assert!(e.contains("--local and --website"), "{e}");
    }

    #[test]
    fn check_needs_a_bucket_and_no_mountpoint() {
        let parse = |args: &[&str]| {
            let full = [&["cosmount"][..], args].concat();
            let around = Surroundings {
                env: &|_: &str| None,
                default_passwd_files: Vec::new(),
            };
            MountConfig::for_check(&Cli::try_parse_from(full).unwrap().mount, &around)
        };
        let c = parse(&["b-1", "--region", "r", "--anonymous"]).unwrap();
        assert_eq!(c.bucket, "b-1");
        assert!(
            parse(&["b-1", "/mnt", "--region", "r", "--anonymous"])
                .unwrap_err()
                .contains("no mountpoint")
        );
        assert!(
            parse(&["--region", "r", "--anonymous"])
                .unwrap_err()
                .contains("missing BUCKET")
        );
    }

    #[test]
    fn parses_sizes_and_durations() {
        assert_eq!(parse_size("x", "64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("x", "1G"), Ok(1 << 30));
        assert_eq!(parse_size("x", "4096"), Ok(4096));
        assert!(parse_size("x", "0").is_err());
        assert_eq!(parse_duration("x", "500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("x", "2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("x", "5m"), Ok(Duration::from_secs(300)));
    }

    #[test]
    fn allow_other_turns_on_default_permissions() {
        let c = config(&["b-1", "/m", "--region", "r", "--anonymous", "--allow-other"]).unwrap();
        assert!(c.mount.default_permissions);
        let c = config(&[
            "b-1",
            "/m",
            "--region",
            "r",
            "--anonymous",
            "--allow-other",
            "--no-default-permissions",
        ])
        .unwrap();
        assert!(!c.mount.default_permissions);
    }

    #[test]
    fn environment_keys_and_the_source_picker() {
        let base = ["b-1", "/m", "--region", "ap-beijing"];
        let env = [
            ("TENCENTCLOUD_SECRET_ID", "AKIDtc"),
            ("TENCENTCLOUD_SECRET_KEY", "TCKEY"),
        ];
        let c = config_with_env(&base, &env).unwrap();
        assert_eq!(
            c.credentials.origin().unwrap(),
            "environment TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY"
        );
        assert!(c.credential_notes.is_empty());
        let with_cli = [&base[..], &["--secret-id", "AKIDcli", "--secret-key", "K"]].concat();
        let c = config_with_env(&with_cli, &env).unwrap();
        assert_eq!(c.credentials.origin().unwrap(), "the command line");
        assert_eq!(
            c.credential_notes,
            [
                "credentials come from the command line; also configured but not used: env (choose with --credential-source)"
            ]
        );
        let picked = [&with_cli[..], &["--credential-source", "env"]].concat();
        let c = config_with_env(&picked, &env).unwrap();
        assert!(c.credentials.origin().unwrap().starts_with("environment"));
        let c = config_with_env(&[&base[..], &["--anonymous"]].concat(), &env).unwrap();
        assert_eq!(c.credentials, CredentialSource::Anonymous);
    }

    #[test]
    fn refreshing_sources_and_their_errors() {
        let base = ["b-1", "/m", "--region", "ap-beijing"];
        let c = config(
            &[
                &base[..],
                &[
                    "--cam-role",
                    "r",
                    "--cam-role-endpoint",
                    "http://127.0.0.1:9/m",
                ],
            ]
            .concat(),
        )
        .unwrap();
        assert_eq!(c.credentials.origin().unwrap(), "cam_role r");
        let c = config(
            &[
                &base[..],
                &[
                    "--secret-id",
                    "A",
                    "--secret-key",
                    "K",
                    "--role-arn",
                    "qcs::cam::uin/1:roleName/r",
                    "--sts-duration",
                    "15m",
                ],
            ]
            .concat(),
        )
        .unwrap();
        let CredentialSource::Refreshing(ProviderSpec::AssumeRole(sts)) = &c.credentials else {
            panic!("{:?}", c.credentials)
        };
        assert_eq!(
            (sts.duration, sts.region.as_str()),
            (Duration::from_secs(900), "ap-beijing")
        );
        let err = |a: &[&str]| config(&[&base[..], a].concat()).unwrap_err();
        assert!(err(&["--credential-source", "vault"]).contains("not one of"));
        assert!(err(&["--anonymous", "--credential-source", "env"]).contains("conflicts"));
        assert!(
            err(&["--role-arn", "x", "--anonymous", "--sts-duration", "soon"])
                .contains("--sts-duration")
        );
        assert!(err(&[]).contains("no credentials found"));
    }
}
