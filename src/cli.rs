//! The command line: raw flags, grouped by heading, exactly as clap parses
//! them. Every mount option is also accepted inside `-o key[=value],...`
//! (how mount(8) and fstab call us); `expand_mount_options` rewrites those
//! into long options before clap sees them, using clap's own definitions so
//! the two can never drift apart. Validation lives in `config.rs`.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::config::parse_duration;
use crate::creds::{Credentials, Secret};
use crate::server::{Access, FaultConfig, FaultKind, ServerConfig, StsEmulation};

/// Mount a Tencent Cloud COS bucket as a local filesystem.
#[derive(Debug, Parser)]
#[command(
    name = "cosmount",
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    override_usage = "cosmount [OPTIONS] <BUCKET[:/PREFIX]> <MOUNTPOINT> [-o OPT[=VAL],...]\n       \
                      cosmount [OPTIONS] --local <DIR> <MOUNTPOINT>\n       cosmount <COMMAND> ..."
)]
pub struct Cli {
    /// Other commands.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Mount options.
    #[command(flatten)]
    pub mount: MountArgs,
}

/// Subcommands besides mounting.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the embedded COS-compatible server over a local folder.
    Serve(Box<ServeArgs>),
    /// Test whether BUCKET can be mounted with these options: DNS, network
    /// (private or public), TCP latency, credentials, HEAD Bucket and List.
    #[command(override_usage = "cosmount check <BUCKET[:/PREFIX]> [OPTIONS] [-o OPT[=VAL],...]")]
    Check(Box<MountArgs>),
    /// List, and abort, the multipart uploads left under BUCKET[:/PREFIX]
    /// by a crash or a lost answer (their parts are billed as storage).
    #[command(
        override_usage = "cosmount cleanup <BUCKET[:/PREFIX]> [--older-than AGE] [--dry-run] [OPTIONS] [-o OPT[=VAL],...]"
    )]
    Cleanup(Box<CleanupArgs>),
}

/// `cosmount cleanup`.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Only uploads initiated longer ago than AGE (`0` for all; a younger
    /// upload may still be running somewhere).
    #[arg(long, value_name = "AGE", default_value = "24h")]
    pub older_than: String,

    /// List the uploads that would be aborted; abort nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// The bucket and how to reach it: the mount's options.
    #[command(flatten)]
    pub mount: MountArgs,
}

/// `cosmount serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Folder that holds the buckets (created if its parent exists).
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,

    /// Address to serve COS on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Bucket to serve, as NAME-APPID; created if missing. Repeat for more.
    /// Without it, the buckets already in DIR are served.
    #[arg(long = "bucket", value_name = "NAME-APPID")]
    pub buckets: Vec<String>,

    /// SecretId accepted in request signatures.
    #[arg(long, value_name = "ID", env = "COSMOUNT_SERVE_SECRET_ID")]
    pub secret_id: Option<String>,

    /// SecretKey of --secret-id.
    #[arg(
        long,
        value_name = "KEY",
        env = "COSMOUNT_SERVE_SECRET_KEY",
        hide_env_values = true
    )]
    pub secret_key: Option<String>,

    /// Allow anonymous HEAD, GET and list.
    #[arg(long, conflicts_with = "public_read_write")]
    pub public_read: bool,

    /// Allow anonymous reads and writes.
    #[arg(long)]
    pub public_read_write: bool,

    /// Also serve the admin endpoint (request counters) on this address.
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// Region named in copy sources and error documents.
    #[arg(long, value_name = "REGION", default_value = "ap-guangzhou")]
    pub region: String,

    /// fsync every object before answering (slower; survives power loss).
    #[arg(long)]
    pub fsync: bool,

    /// Emulate STS (AssumeRole, GetFederationToken) and the CVM metadata
    /// service (cam_role) on --sts-listen, issuing temporary keys that
    /// expire after SECS seconds (for tests).
    #[arg(long, value_name = "SECS", help_heading = "Temporary credentials")]
    pub sts_ttl: Option<u64>,

    /// Address of the STS and metadata emulation [default: 127.0.0.1:0].
    #[arg(
        long,
        value_name = "ADDR",
        requires = "sts_ttl",
        help_heading = "Temporary credentials"
    )]
    pub sts_listen: Option<SocketAddr>,

    /// Fraction of requests (0 to 1) that get a fault: an error answer, a
    /// dropped connection, a truncated body, added latency or a stall (for
    /// reliability tests). Off by default. Counters: `GET /faults` on
    /// --admin-listen, which also takes `POST /outage?secs=N`.
    #[arg(long, value_name = "P", help_heading = "Fault injection")]
    pub fault_rate: Option<f64>,

    /// Seed of the fault RNG [default: random, printed in the log].
    #[arg(long, value_name = "N", help_heading = "Fault injection")]
    pub fault_seed: Option<u64>,

    /// Faults to pick from: 500, 503, skew, reset, truncate, delay, stall,
    /// corrupt (whole-object GETs only), or all.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "500,503,skew,reset,truncate,delay,stall",
        help_heading = "Fault injection"
    )]
    pub fault_kinds: String,

    /// Longest latency a `delay` fault adds.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1s",
        help_heading = "Fault injection"
    )]
    pub fault_delay: String,

    /// How long a `stall` sends nothing before closing the connection
    /// (make it longer than the client's --request-timeout).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "65s",
        help_heading = "Fault injection"
    )]
    pub fault_stall: String,

    /// How far a `skew` fault's Date header is ahead of the time the
    /// request was signed at.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1h",
        help_heading = "Fault injection"
    )]
    pub fault_skew: String,
}

/// A failed command: a one-line message and an exit code.
#[derive(Debug)]
pub struct CliError {
    /// What went wrong.
    pub message: String,
    /// Process exit code.
    pub code: u8,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        let code = if e.kind() == io::ErrorKind::InvalidInput {
            2
        } else {
            1
        };
        CliError {
            message: e.to_string(),
            code,
        }
    }
}

impl ServeArgs {
    /// The validated server configuration.
    pub fn into_config(self) -> Result<ServerConfig, CliError> {
        let faults = self.fault_config()?;
        let keys = match (self.secret_id, self.secret_key) {
            (Some(id), Some(key)) => vec![Credentials::permanent(&id, &key)],
            (None, None) => Vec::new(),
            (Some(_), None) => return Err(usage("--secret-id needs --secret-key")),
            (None, Some(_)) => return Err(usage("--secret-key needs --secret-id")),
        };
        let access = match (self.public_read, self.public_read_write) {
            (_, true) => Access::PublicReadWrite,
            (true, false) => Access::PublicRead,
            (false, false) => Access::Private,
        };
        Ok(ServerConfig {
            root: self.root,
            listen: self.listen,
            admin_listen: self.admin_listen,
            buckets: self.buckets,
            keys,
            access,
            region: self.region,
            fsync: self.fsync,
            sts: self.sts_ttl.map(|secs| StsEmulation {
                listen: self
                    .sts_listen
                    .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
                ttl: std::time::Duration::from_secs(secs),
            }),
            faults,
        })
    }

    fn fault_config(&self) -> Result<FaultConfig, CliError> {
        let duration = |name: &str, text: &str| parse_duration(name, text).map_err(|e| usage(&e));
        let config = FaultConfig {
            rate: self.fault_rate.unwrap_or(0.0),
            seed: self.fault_seed.unwrap_or_else(rand::random),
            kinds: FaultKind::parse_list(&self.fault_kinds)
                .map_err(|e| usage(&format!("--fault-kinds: {e}")))?,
            delay: duration("--fault-delay", &self.fault_delay)?,
            stall: duration("--fault-stall", &self.fault_stall)?,
            skew: duration("--fault-skew", &self.fault_skew)?,
        };
        config.validate().map_err(|e| usage(&e))?;
        Ok(config)
    }
}

fn usage(message: &str) -> CliError {
    CliError {
        message: message.to_string(),
        code: 2,
    }
}

/// Options of the mount command.
#[derive(Debug, Args)]
pub struct MountArgs {
    /// Bucket `<name>-<appid>`, optionally `:/prefix` to mount a sub-folder.
    #[arg(value_name = "BUCKET")]
    pub bucket: Option<String>,

    /// Directory to mount on.
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: Option<PathBuf>,

    /// Mount options, comma-separated (`-o ro,allow_other,region=ap-guangzhou`).
    #[arg(short = 'o', value_name = "OPT[=VAL],...")]
    pub options: Vec<String>,

    /// Region of the bucket, e.g. ap-guangzhou.
    #[arg(long, env = "COS_REGION", help_heading = "Connection")]
    pub region: Option<String>,

    /// Custom endpoint URL (a private gateway, or `cosmount serve`).
    #[arg(long, alias = "url", value_name = "URL", help_heading = "Connection")]
    pub endpoint: Option<String>,

    /// Put the bucket in the path instead of the host name.
    #[arg(long, alias = "use-path-request-style", help_heading = "Connection")]
    pub path_style: bool,

    /// Use plain HTTP to COS's domains (HTTPS otherwise).
    #[arg(long, help_heading = "Connection")]
    pub http: bool,

    /// Use the global accelerate domain `<bucket>.cos.accelerate.myqcloud.com`
    /// (acceleration must be enabled on the bucket).
    #[arg(long, help_heading = "Connection")]
    pub accelerate: bool,

    /// Use the static-website domain `<bucket>.cos-website.<region>.myqcloud.com`
    /// (or --endpoint as a website): read-only, and names are found by HEAD
    /// only, never by listing.
    #[arg(long, help_heading = "Connection")]
    pub website: bool,

    /// Send requests for HOST to IP:PORT instead of asking DNS, keeping the
    /// Host header (like curl's --resolve).
    #[arg(long, value_name = "HOST:IP:PORT", help_heading = "Connection")]
    pub resolve: Option<String>,

    /// Serve DIR with the embedded COS server in-process and mount it.
    #[arg(long, value_name = "DIR", help_heading = "Connection")]
    pub local: Option<PathBuf>,

    /// Deadline of one HTTP attempt, e.g. `30s`.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "60s",
        help_heading = "Connection"
    )]
    pub request_timeout: String,

    /// Longest time one COS operation may take, all attempts and waits
    /// between them included; then it fails (EIO, or ETIMEDOUT when the
    /// last attempt timed out), so no file operation hangs on the network.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "120s",
        help_heading = "Connection"
    )]
    pub op_timeout: String,

    /// Attempts per request before giving up (retryable errors only).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 6,
        help_heading = "Connection"
    )]
    pub retries: u32,

    /// Where credentials come from: cli, env, passwd, cam_role, sts, process or anonymous.
    ///
    /// Without this option the first configured source wins: role_arn (STS,
    /// with the first keys found below), --secret-id/--secret-key, the
    /// environment (COS_SECRET_ID/COS_SECRET_KEY/COS_SESSION_TOKEN, then
    /// TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY/TENCENTCLOUD_SESSION_TOKEN),
    /// passwd_file, cam_role, credential_process, then ~/.passwd-cosfs and
    /// /etc/passwd-cosfs. Anonymous access is only used when asked for.
    #[arg(long, value_name = "NAME", help_heading = "Credentials")]
    pub credential_source: Option<String>,

    /// SecretId (permanent or temporary); the environment's COS_SECRET_ID or
    /// TENCENTCLOUD_SECRET_ID is used when no keys are given here.
    #[arg(long, help_heading = "Credentials")]
    pub secret_id: Option<String>,

    /// SecretKey (environment: COS_SECRET_KEY or TENCENTCLOUD_SECRET_KEY).
    #[arg(long, value_name = "SECRET_KEY", help_heading = "Credentials")]
    pub secret_key: Option<Secret>,

    /// Session token of temporary keys (environment: COS_SESSION_TOKEN or
    /// TENCENTCLOUD_SESSION_TOKEN).
    #[arg(long, value_name = "TOKEN", help_heading = "Credentials")]
    pub session_token: Option<Secret>,

    /// cosfs passwd file: `bucket:SecretId:SecretKey` lines, or temporary keys
    /// (COSAccessKeyId=, COSSecretKey=, COSAccessToken=, COSAccessTokenExpire=),
    /// re-read before they expire.
    #[arg(long, value_name = "FILE", help_heading = "Credentials")]
    pub passwd_file: Option<PathBuf>,

    /// CAM role of this CVM instance, whose temporary keys the metadata
    /// service hands out (`sts` means the temporary passwd file, as in cosfs).
    #[arg(long, value_name = "ROLE", help_heading = "Credentials")]
    pub cam_role: Option<String>,

    /// Base URL of the metadata service's role credentials
    /// [default: http://metadata.tencentyun.com/latest/meta-data/cam/security-credentials].
    #[arg(long, value_name = "URL", help_heading = "Credentials")]
    pub cam_role_endpoint: Option<String>,

    /// Role to assume with STS AssumeRole, using the permanent keys found
    /// (e.g. qcs::cam::uin/100000000001:roleName/NAME).
    #[arg(long, value_name = "ARN", help_heading = "Credentials")]
    pub role_arn: Option<String>,

    /// RoleSessionName for AssumeRole [default: cosmount].
    #[arg(long, value_name = "NAME", help_heading = "Credentials")]
    pub role_session_name: Option<String>,

    /// STS endpoint URL [default: https://sts.tencentcloudapi.com/].
    #[arg(long, value_name = "URL", help_heading = "Credentials")]
    pub sts_endpoint: Option<String>,

    /// Region sent to STS [default: --region, else ap-guangzhou].
    #[arg(long, value_name = "REGION", help_heading = "Credentials")]
    pub sts_region: Option<String>,

    /// Lifetime asked of STS, e.g. `2h` or `7200` (at most 12h) [default: 2h].
    #[arg(long, value_name = "DURATION", help_heading = "Credentials")]
    pub sts_duration: Option<String>,

    /// Command (run with `sh -c`) printing JSON
    /// {"TmpSecretId","TmpSecretKey","Token","ExpiredTime"}; run again before
    /// the keys expire. Inside -o it cannot contain commas.
    #[arg(long, value_name = "COMMAND", help_heading = "Credentials")]
    pub credential_process: Option<String>,

    /// Send unsigned requests (public buckets); same as --credential-source anonymous.
    #[arg(long, alias = "public-bucket", help_heading = "Credentials")]
    pub anonymous: bool,

    /// Stay in the foreground instead of daemonizing.
    #[arg(short, long, help_heading = "Mount")]
    pub foreground: bool,

    /// Mount read-only.
    #[arg(long, alias = "ro", help_heading = "Mount")]
    pub read_only: bool,

    /// Allow other users to access the mount.
    #[arg(long, help_heading = "Mount")]
    pub allow_other: bool,

    /// Allow root to access the mount.
    #[arg(long, help_heading = "Mount")]
    pub allow_root: bool,

    /// Let the kernel check permissions from mode/uid/gid (default with allow_other).
    #[arg(long, help_heading = "Mount")]
    pub default_permissions: bool,

    /// Do not let the kernel check permissions, even with allow_other.
    #[arg(long, help_heading = "Mount")]
    pub no_default_permissions: bool,

    /// Owner of every file (default: the stored uid, else the mounting user).
    #[arg(long, help_heading = "Mount")]
    pub uid: Option<u32>,

    /// Group of every file (default: the stored gid, else the mounting user's).
    #[arg(long, help_heading = "Mount")]
    pub gid: Option<u32>,

    /// Octal bits removed from every mode, e.g. 022.
    #[arg(long, value_name = "OCTAL", help_heading = "Mount")]
    pub umask: Option<String>,

    /// Octal permissions of files without stored mode (default 0644).
    #[arg(long, value_name = "OCTAL", help_heading = "Mount")]
    pub file_mode: Option<String>,

    /// Octal permissions of directories without stored mode (default 0755).
    #[arg(long, value_name = "OCTAL", help_heading = "Mount")]
    pub dir_mode: Option<String>,

    /// How long attributes and listings are trusted, e.g. `1s`, `5m`.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1s",
        help_heading = "Caching"
    )]
    pub metadata_ttl: String,

    /// How long a missing name is remembered.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "500ms",
        help_heading = "Caching"
    )]
    pub negative_ttl: String,

    /// List without a HEAD per entry: size and time only, modes from options.
    #[arg(long, help_heading = "Caching")]
    pub fast_list: bool,

    /// Memory for cached blocks and write buffers, e.g. `256MiB`.
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "256MiB",
        help_heading = "Caching"
    )]
    pub cache_size: String,

    /// Most bytes read ahead for one sequential reader.
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "32MiB",
        help_heading = "Caching"
    )]
    pub max_prefetch: String,

    /// Size of a cached block (and of one ranged GET).
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "1MiB",
        help_heading = "Caching"
    )]
    pub block_size: String,

    /// Requests in flight at once for one listing's HEADs.
    #[arg(long, value_name = "N", default_value_t = 64, help_heading = "Caching")]
    pub max_requests: usize,

    /// Threads reading FUSE requests.
    #[arg(long, value_name = "N", default_value_t = 4, help_heading = "Caching")]
    pub fuse_threads: usize,

    /// Kernel read-ahead of the mount in KiB.
    #[arg(
        long,
        value_name = "KIB",
        default_value_t = 1024,
        help_heading = "Caching"
    )]
    pub read_ahead_kb: u32,

    /// Bypass the kernel page cache (FOPEN_DIRECT_IO): `auto` for files of
    /// 32 MiB and more (when the kernel still allows mmap of them), `always`
    /// (the same as a bare `--direct-io` or `-o direct_io`) or `never`.
    /// Large sequential reads get much faster; re-reads are served from
    /// cosmount's own block cache.
    #[arg(
        long,
        value_name = "MODE",
        default_value = "auto",
        num_args = 0..=1,
        default_missing_value = DIRECT_IO_BARE,
        help_heading = "Caching"
    )]
    pub direct_io: String,

    /// Part size of multipart uploads (grows for very large files).
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "8MiB",
        help_heading = "Writing"
    )]
    pub part_size: String,

    /// Parts of one file uploading at once.
    #[arg(long, value_name = "N", default_value_t = 4, help_heading = "Writing")]
    pub upload_concurrency: usize,

    /// Folder for staging files of files changed in place [default: $TMPDIR/cosmount-staging].
    #[arg(long, value_name = "DIR", help_heading = "Writing")]
    pub staging_dir: Option<PathBuf>,

    /// Most disk space staging files may use (writes fail with ENOSPC past it).
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "16GiB",
        help_heading = "Writing"
    )]
    pub staging_size: String,

    /// At mount, abort the multipart uploads under the mounted prefix that
    /// were initiated more than AGE before (left by a crash or a lost
    /// answer); `off` keeps them (see `cosmount cleanup`).
    #[arg(
        long,
        value_name = "AGE",
        default_value = "24h",
        help_heading = "Writing"
    )]
    pub abort_stale_uploads: String,

    /// Log debug messages (same as `--log-level debug`).
    #[arg(short, long, help_heading = "Logging")]
    pub debug: bool,

    /// Log level: error, warn, info, debug, trace.
    #[arg(long, value_name = "LEVEL", help_heading = "Logging")]
    pub log_level: Option<String>,

    /// Write the log to FILE (default: stderr in the foreground, syslog as
    /// a daemon). SIGUSR2 toggles debug logging at runtime.
    #[arg(long, value_name = "FILE", help_heading = "Logging")]
    pub log_file: Option<PathBuf>,
}

/// Generic mount(8) options: accepted and ignored (they concern mount(8)
/// itself or are the kernel's defaults for us).
const IGNORED_MOUNT_OPTIONS: &[&str] = &[
    "rw",
    "dev",
    "nodev",
    "suid",
    "nosuid",
    "exec",
    "noexec",
    "auto",
    "noauto",
    "user",
    "users",
    "nouser",
    "owner",
    "group",
    "_netdev",
    "nofail",
    "defaults",
    "async",
    "sync",
    "atime",
    "noatime",
    "relatime",
    "norelatime",
    "strictatime",
    "diratime",
    "nodiratime",
    "lazytime",
    "nonempty",
    "silent",
    "loud",
    "bg",
    "fg",
];

/// Rewrites `-o a=b,c` items into `--a=b --c`, dropping generic mount
/// options. Unknown option names are left for clap to reject by name.
pub fn expand_mount_options(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let command = Cli::command();
    let known = |name: &str| {
        command.get_arguments().any(|a| {
            a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|al| al.contains(&name))
        })
    };
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy().into_owned();
        let list = match text.as_str() {
            "-o" => match iter.next() {
                Some(v) => v.to_string_lossy().into_owned(),
                None => return Err("-o needs a value, e.g. -o ro,allow_other".into()),
            },
            s if s.starts_with("-o") && s.len() > 2 => s[2..].to_string(),
            _ => {
                out.push(arg);
                continue;
            }
        };
        for item in list.split(',').filter(|s| !s.is_empty()) {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (item, None),
            };
            if IGNORED_MOUNT_OPTIONS.contains(&name) || name.starts_with("x-") || name == "comment"
            {
                continue;
            }
            let long = name.replace('_', "-");
            if !known(&long) {
                return Err(format!(
                    "unknown mount option `{name}` (see `cosmount --help` for the list)"
                ));
            }
            out.push(OsString::from(match value {
                Some(v) if is_flag(&command, &long) => flag_with_value(&long, v)?,
                Some(v) => format!("--{long}={v}"),
                None => match missing_value(&long) {
                    // `-o direct_io`: spell the implied value out, so the
                    // next argument is not taken for it.
                    Some(v) => format!("--{long}={v}"),
                    None => format!("--{long}"),
                },
            }));
        }
    }
    Ok(out.into_iter().filter(|a| !a.is_empty()).collect())
}

fn is_flag(command: &clap::Command, long: &str) -> bool {
    command
        .get_arguments()
        .find(|a| {
            a.get_long() == Some(long) || a.get_all_aliases().is_some_and(|al| al.contains(&long))
        })
        .is_some_and(|a| !a.get_action().takes_values())
}

/// The value an option takes when given bare, if it has one (clap keeps
/// these private, so they are named here and in the definitions).
fn missing_value(long: &str) -> Option<&'static str> {
    (long == "direct-io").then_some(DIRECT_IO_BARE)
}

/// What a bare `--direct-io` means.
const DIRECT_IO_BARE: &str = "always";

/// cosfs writes boolean options as `name=1`; accept 1/true/yes (and drop 0).
fn flag_with_value(long: &str, value: &str) -> Result<String, String> {
    match value {
        "1" | "true" | "yes" => Ok(format!("--{long}")),
        "0" | "false" | "no" => Ok(String::new()),
        _ => Err(format!(
            "mount option `{long}` is a switch; give it no value or 1"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: &[&str]) -> Result<Vec<String>, String> {
        expand_mount_options(args.iter().map(OsString::from).collect())
            .map(|v| v.into_iter().map(|a| a.into_string().unwrap()).collect())
    }

    #[test]
    fn expands_dash_o_lists() {
        let got = expand(&[
            "cosmount",
            "b-1",
            "/mnt",
            "-o",
            "ro,allow_other,region=ap-guangzhou,_netdev,x-systemd.automount",
        ])
        .unwrap();
        assert_eq!(
            got,
            vec![
                "cosmount",
                "b-1",
                "/mnt",
                "--ro",
                "--allow-other",
                "--region=ap-guangzhou"
            ]
        );
        let got = expand(&[
            "cosmount",
            "-opasswd_file=/etc/p,use_path_request_style,public_bucket=1,url=http://x",
        ])
        .unwrap();
        assert_eq!(
            got,
            vec![
                "cosmount",
                "--passwd-file=/etc/p",
                "--use-path-request-style",
                "--public-bucket",
                "--url=http://x"
            ]
        );
    }

    #[test]
    fn rejects_unknown_options_by_name() {
        assert!(
            expand(&["cosmount", "-o", "bogus=1"])
                .unwrap_err()
                .contains("bogus")
        );
        assert!(expand(&["cosmount", "-o"]).is_err());
        assert!(
            expand(&["cosmount", "-o", "ro=maybe"])
                .unwrap_err()
                .contains("switch")
        );
    }

    #[test]
    fn credential_options_work_inside_dash_o() {
        let bare = expand(&["cosmount", "-o", "direct_io", "b-1", "/mnt"]).unwrap();
        assert_eq!(bare, vec!["cosmount", "--direct-io=always", "b-1", "/mnt"]);
        let args = expand(&[
            "cosmount",
            "b-1",
            "/mnt",
            "-o",
            "credential_source=cam_role,cam_role=mount-role,cam_role_endpoint=http://127.0.0.1:9/meta",
            "-o",
            "role_arn=qcs::cam::uin/1:roleName/r,sts_endpoint=http://127.0.0.1:9/,sts_duration=15m",
            "-o",
            "credential_process=/usr/bin/get-keys --json",
        ])
        .unwrap();
        let m = Cli::try_parse_from(args).unwrap().mount;
        assert_eq!(m.credential_source.as_deref(), Some("cam_role"));
        assert_eq!(m.cam_role.as_deref(), Some("mount-role"));
        assert_eq!(
            m.cam_role_endpoint.as_deref(),
            Some("http://127.0.0.1:9/meta")
        );
        assert_eq!(m.role_arn.as_deref(), Some("qcs::cam::uin/1:roleName/r"));
        assert_eq!(m.sts_duration.as_deref(), Some("15m"));
        assert_eq!(
            m.credential_process.as_deref(),
            Some("/usr/bin/get-keys --json")
        );
    }

    #[test]
    fn debug_output_hides_keys() {
        let cli = Cli::try_parse_from([
            "cosmount",
            "--secret-id",
            "AKIDvisible",
            "--secret-key",
            "TOPSECRETKEY",
            "--session-token",
            "TOPSECRETTOKEN",
        ])
        .unwrap();
        let shown = format!("{cli:?}");
        assert!(shown.contains("AKIDvisible"), "{shown}");
        assert!(!shown.contains("TOPSECRET"), "{shown}");
        assert_eq!(cli.mount.secret_key.unwrap().expose(), "TOPSECRETKEY");
    }

    #[test]
    fn expanded_options_parse() {
        let args = expand(&[
            "cosmount",
            "b-1",
            "/mnt",
            "-o",
            "rw,uid=5,fast_list,cache_size=64MiB,dev,suid",
        ])
        .unwrap();
        let cli = Cli::try_parse_from(args).unwrap();
        assert_eq!(cli.mount.uid, Some(5));
        assert!(cli.mount.fast_list);
        assert_eq!(cli.mount.cache_size, "64MiB");
        assert_eq!(cli.mount.bucket.as_deref(), Some("b-1"));
    }
}
