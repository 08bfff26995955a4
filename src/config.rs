//! The validated configuration: every check on the raw command line happens
//! here, with a message that names the bad value and what to do. Inner
//! layers get their own small config structs and never see clap.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cache::CacheConfig;
use crate::cli::MountArgs;
use crate::cos::retry::RetryPolicy;
use crate::creds::{Credentials, passwd};
use crate::fs::FsConfig;
use crate::fs::attr::Ownership;
use crate::mount::MountOptions;

/// Bucket name used by `--local` when none is given.
pub const LOCAL_BUCKET: &str = "local-1250000000";

/// Where requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The default COS domain of the region.
    Cos {
        /// Use HTTPS.
        https: bool,
        /// Path-style addressing.
        path_style: bool,
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
    /// How requests are signed.
    pub credentials: CredentialSource,
    /// Per-attempt deadline.
    pub request_timeout: Duration,
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
    /// Validates the raw mount arguments.
    pub fn from_args(args: &MountArgs) -> Result<MountConfig, String> {
        let (spec, mountpoint) = match (&args.bucket, &args.mountpoint, &args.local) {
            (Some(b), Some(m), _) => (b.clone(), m.clone()),
            (Some(m), None, Some(_)) => (LOCAL_BUCKET.to_string(), PathBuf::from(m)),
            (None, None, _) => {
                return Err("missing BUCKET and MOUNTPOINT; see `cosmount --help`".into());
            }
            _ => return Err("missing MOUNTPOINT: `cosmount BUCKET MOUNTPOINT`".into()),
        };
        let (bucket, prefix) = parse_bucket_spec(&spec)?;
        let target = target(args)?;
        let region = match (&args.region, &target) {
            (Some(r), _) => validate_region(r)?,
            (None, Target::Cos { .. }) => {
                return Err("--region is required (e.g. --region ap-guangzhou) unless --endpoint or --local is given".into());
            }
            (None, _) => "ap-guangzhou".to_string(),
        };
        let credentials = credentials(args, &bucket, &target)?;
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
        let read_only = args.read_only;
        let fs = FsConfig {
            prefix,
            ownership,
            metadata_ttl: parse_duration("--metadata-ttl", &args.metadata_ttl)?,
            negative_ttl: parse_duration("--negative-ttl", &args.negative_ttl)?,
            fast_list: args.fast_list,
            read_only,
            head_concurrency: args.max_requests.max(1),
            cache: CacheConfig {
                block_size,
                max_prefetch: parse_size("--max-prefetch", &args.max_prefetch)?,
            },
            memory_bytes,
        };
        let mount = MountOptions {
            mountpoint,
            source: spec,
            read_only,
            allow_other: args.allow_other,
            allow_root: args.allow_root,
            default_permissions: args.default_permissions
                || (args.allow_other && !args.no_default_permissions),
            fuse_threads: args.fuse_threads.clamp(1, 64),
            read_ahead_kb: args.read_ahead_kb,
        };
        Ok(MountConfig {
            bucket,
            region,
            target,
            credentials,
            request_timeout: parse_duration("--request-timeout", &args.request_timeout)?,
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
    match (&args.local, &args.endpoint) {
        (Some(_), Some(_)) => Err("--local and --endpoint cannot be combined".into()),
        (Some(dir), None) => Ok(Target::Local { dir: dir.clone() }),
        (None, Some(url)) => {
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(format!(
                    "--endpoint {url:?} must start with http:// or https://"
                ));
            }
            Ok(Target::Custom {
                url: url.clone(),
                path_style: args.path_style,
            })
        }
        (None, None) => Ok(Target::Cos {
            https: !args.http,
            path_style: args.path_style,
        }),
    }
}

/// Picks the credentials: command line/environment keys, then the passwd
/// file given, then `~/.passwd-cosfs` and `/etc/passwd-cosfs`.
fn credentials(
    args: &MountArgs,
    bucket: &str,
    target: &Target,
) -> Result<CredentialSource, String> {
    if let Target::Local { .. } = target {
        return Ok(CredentialSource::Generated);
    }
    if args.anonymous {
        return Ok(CredentialSource::Anonymous);
    }
    match (&args.secret_id, &args.secret_key) {
        (Some(id), Some(key)) => {
            let mut credentials = Credentials::permanent(id, key);
            credentials.session_token = args.session_token.clone().filter(|t| !t.is_empty());
            return Ok(CredentialSource::Static {
                credentials,
                origin: "the command line or COS_SECRET_ID/COS_SECRET_KEY".into(),
            });
        }
        (Some(_), None) => {
            return Err(
                "--secret-id (or COS_SECRET_ID) is given without --secret-key (or COS_SECRET_KEY)"
                    .into(),
            );
        }
        (None, Some(_)) => {
            return Err(
                "--secret-key (or COS_SECRET_KEY) is given without --secret-id (or COS_SECRET_ID)"
                    .into(),
            );
        }
        (None, None) => {}
    }
    let files: Vec<PathBuf> = match &args.passwd_file {
        Some(p) => vec![p.clone()],
        None => default_passwd_files()
            .into_iter()
            .filter(|p| p.exists())
            .collect(),
    };
    match files.first() {
        Some(path) => {
            let credentials = passwd::load(path, bucket).map_err(|e| e.to_string())?;
            Ok(CredentialSource::Static {
                credentials,
                origin: format!("passwd file {}", path.display()),
            })
        }
        None => Err("no credentials found: give --secret-id/--secret-key, set COS_SECRET_ID/COS_SECRET_KEY, \
                     write ~/.passwd-cosfs or /etc/passwd-cosfs (passwd_file=FILE), or use --anonymous for a public bucket"
            .into()),
    }
}

fn default_passwd_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(home) = std::env::var_os("HOME") {
        files.push(Path::new(&home).join(".passwd-cosfs"));
    }
    files.push(PathBuf::from(passwd::SYSTEM_PASSWD));
    files
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
        let mut full = vec!["cosmount"];
        full.extend_from_slice(args);
        MountConfig::from_args(&Cli::try_parse_from(full).unwrap().mount)
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
                path_style: false
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
}
